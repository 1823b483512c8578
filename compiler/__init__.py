"""The qnnc compiler: front end, IR, verifier, passes and lowerings.

Public API (no vendor SDK and no torch is imported here):

    load_program(path, overrides=None) -> ir.Program     # a .qnn file, or IR JSON
    parse_program(text, filename, overrides=None) -> ir.Program
    dump_ir(program) -> str                              # IR JSON
    load_ir(text_or_path) -> ir.Program                  # IR JSON, verified
    format_source(text, filename) -> str                 # `qnnc fmt`

Errors in the user's program raise `qnnc.compiler.diagnostics.QnncError`.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

from qnnc.compiler import ir
from qnnc.compiler.codes import (FILE_NOT_FOUND, FILE_UNREADABLE, INVALID_ENCODING,
                                 IR_NESTED_TOO_DEEPLY, NESTED_TOO_DEEPLY, SET_WITH_IR)
from qnnc.compiler.diagnostics import Diagnostic, QnncError, error

__all__ = ["ir", "load_program", "parse_program", "dump_ir", "load_ir", "format_source", "QnncError"]


def parse_program(text: str, filename: str = "<string>",
                  overrides: Optional[Mapping[str, str]] = None) -> ir.Program:
    from qnnc.compiler.elaborate import elaborate
    from qnnc.compiler.verify import verify_or_raise

    try:
        return verify_or_raise(elaborate(text, filename, dict(overrides or {})))
    except RecursionError:
        raise error(NESTED_TOO_DEEPLY, f"{filename}: the program is nested too deeply to compile",
                    help="split very long or deeply nested expressions into parameters") from None


def read_source(path) -> str:
    """A source file's text, or a Q0404/Q0405 diagnostic."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise error(FILE_NOT_FOUND, f"no such file: {path}", help="check the path", exit_code=1)
    if os.path.isdir(path):
        raise error(FILE_UNREADABLE, f"{path} is a directory, not a file", exit_code=1)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise error(FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", exit_code=1) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw[: exc.start].decode("utf-8", errors="replace")
        line = text.count("\n") + 1
        col = len(text) - (text.rfind("\n") + 1) + 1
        raise QnncError(Diagnostic(
            INVALID_ENCODING, "this file is not valid UTF-8", ir.Span(path, line, col, line, col + 1),
            f"byte 0x{raw[exc.start]:02x}", help="save the file as UTF-8")) from None


def load_program(path: str, overrides: Optional[Mapping[str, str]] = None) -> ir.Program:
    """Load a `.qnn` program, or an IR JSON file (by its `.json` extension)."""
    path = os.fspath(path)
    overrides = {k: str(v) for k, v in (overrides or {}).items()}
    text = read_source(path)
    if path.endswith(".json"):
        if overrides:
            raise error(SET_WITH_IR, "`--set` applies to .qnn programs, not to IR files", exit_code=2)
        return load_ir_text(text, path)
    return parse_program(text, path, overrides)


def dump_ir(program: ir.Program) -> str:
    from qnnc.compiler.serialize import dumps

    return dumps(program)


def load_ir_text(text: str, filename: str = "<ir>") -> ir.Program:
    from qnnc.compiler.serialize import loads

    try:
        return loads(text, filename)
    except RecursionError:
        raise error(IR_NESTED_TOO_DEEPLY, f"{filename}: the IR JSON is nested too deeply",
                    help="an IR file is written by `qnnc ir FILE`") from None


def load_ir(path) -> ir.Program:
    path = os.fspath(path)
    return load_ir_text(read_source(path), path)


def format_source(text: str, filename: str = "<string>") -> str:
    from qnnc.compiler.formatter import format_module
    from qnnc.compiler.parser import parse_module

    try:
        return format_module(parse_module(text, filename))
    except RecursionError:
        raise error(NESTED_TOO_DEEPLY, f"{filename}: the program is nested too deeply to format",
                    help="split very long or deeply nested expressions into parameters") from None
