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
from qnnc.compiler.diagnostics import Diagnostic, QnncError, error, remember_source

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
    """A source file's text, or a Q0404/Q0405/Q0106 diagnostic. Only a regular file of at
    most MAX_SOURCE_BYTES is read (checked before reading); its text is remembered for
    the snippets of diagnostics."""
    from qnnc.compiler.fileio import NotReadable, read_regular_file
    from qnnc.compiler.limits import MAX_SOURCE_BYTES

    path = os.fspath(path)
    try:
        raw = read_regular_file(path, MAX_SOURCE_BYTES)
    except NotReadable as exc:
        if exc.missing:
            raise error(FILE_NOT_FOUND, f"no such file: {path}", help="check the path", exit_code=1) from None
        raise error(FILE_UNREADABLE, f"cannot read {path}: {exc.reason}",
                    help="a program is a regular .qnn or IR JSON file", exit_code=1) from None
    text = decode_source(raw, path)
    remember_source(path, text)
    return text


def decode_source(raw: bytes, path: str) -> str:
    """UTF-8 text of a source (a leading byte-order mark is dropped), or Q0106 at the
    first invalid byte."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw[: exc.start].decode("utf-8", errors="replace")
        line = text.count("\n") + 1
        col = len(text) - (text.rfind("\n") + 1) + 1
        # The snippet shows the valid text before the bad byte (remembered, never re-read).
        remember_source(path, text + raw[exc.start:].split(b"\n", 1)[0].decode("utf-8", errors="replace"))
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

    remember_source(filename, text)
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
