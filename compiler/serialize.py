"""IR <-> JSON, and the JSON Schema of the IR.

Every node is an object with a `"node"` tag naming its class; tuples are arrays; spans
are `{"file", "line", "col", "end_line", "end_col"}`. Decoding is strict (unknown or
missing fields, wrong types and an unsupported `schema_version` are errors with the
JSON path), never uses pickle or eval, and the result is verified. The schema is derived
from the dataclasses themselves, so it cannot drift from the code; the shipped copy
(`compiler/schema/ir.schema.json`) is checked against it by the tests.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import reprlib
import types
import typing
from importlib.resources import files
from typing import Any, Optional, Union

from qnnc.compiler import ir
from qnnc.compiler.codes import INVALID_IR, INVALID_JSON, UNSUPPORTED_SCHEMA
from qnnc.compiler.diagnostics import Diagnostic, QnncError
from qnnc.compiler.limits import MAX_NUMBER_DIGITS

_SHORT = reprlib.Repr()  # a value quoted in a message: bounded, whatever its size or nesting
_SHORT.maxstring = _SHORT.maxother = 60

_BY_NAME = {cls.__name__: cls for cls in ir.NODE_TYPES}
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(ir))
    return _HINTS[cls]


# --------------------------------------------------------------------------- encode


# Spans in the installed standard library are written as `<stdlib>/NAME.qnn`, so an IR
# file holds no machine path; reading one maps them back to this installation's files.
STDLIB_PREFIX = "<stdlib>/"


def _stdlib_dir() -> str:
    from importlib.resources import files

    return os.path.normpath(str(files("qnnc.stdlib")))


def portable_file(file: str) -> str:
    if file.endswith(".qnn") and os.path.isabs(file) and os.path.dirname(os.path.normpath(file)) == _stdlib_dir():
        return STDLIB_PREFIX + os.path.basename(file)
    return file


def local_file(file: str) -> str:
    if file.startswith(STDLIB_PREFIX):
        return os.path.join(_stdlib_dir(), file[len(STDLIB_PREFIX):])
    return file


def to_json_obj(node: Any) -> Any:
    if dataclasses.is_dataclass(node):
        if isinstance(node, ir.Span):
            return {"file": portable_file(node.file), "line": node.line, "col": node.col,
                    "end_line": node.end_line, "end_col": node.end_col}
        out: dict[str, Any] = {"node": type(node).__name__}
        for f in dataclasses.fields(node):
            out[f.name] = to_json_obj(getattr(node, f.name))
        return out
    if isinstance(node, tuple):
        return [to_json_obj(x) for x in node]
    if isinstance(node, float) and not math.isfinite(node):
        raise ValueError("non-finite float in IR")
    return node


def dumps(program: ir.Program, indent: Optional[int] = 2) -> str:
    return json.dumps(to_json_obj(program), indent=indent, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- decode


class _DecodeError(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def _decode(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise _DecodeError(path, "null is not allowed here")
        node_options = [o for o in options if isinstance(o, type) and dataclasses.is_dataclass(o)]
        if node_options and isinstance(value, dict):
            tag = value.get("node")
            for o in node_options:
                if o.__name__ == tag:
                    return _decode_node(value, o, path)
            raise _DecodeError(path, f"expected one of {[o.__name__ for o in node_options]}, found node {_SHORT.repr(tag)}")
        # A primitive value decodes as its own JSON type when the union allows it, so an
        # int stays an int and a float a float through a round trip.
        for o in options:
            if o in (int, float, str, bool) and type(value) is o:
                return value
        for o in options:
            if o is type(None):
                continue
            try:
                return _decode(value, o, path)
            except _DecodeError:
                continue
        raise _DecodeError(path, f"unexpected value {_SHORT.repr(value)}")
    if origin is tuple:
        if not isinstance(value, list):
            raise _DecodeError(path, "expected an array")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_decode(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_node(value, hint, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise _DecodeError(path, "expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _DecodeError(path, "expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _DecodeError(path, "expected a number")
        if not math.isfinite(value):
            raise _DecodeError(path, "expected a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _DecodeError(path, "expected a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _DecodeError(path, "a string with a lone surrogate (not valid Unicode text)") from None
        return value
    raise _DecodeError(path, f"unsupported type {hint!r}")


def _decode_node(value: Any, cls: type, path: str) -> Any:
    if not isinstance(value, dict):
        raise _DecodeError(path, f"expected a {cls.__name__} object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is not ir.Span:
        if value.get("node") != cls.__name__:
            raise _DecodeError(path, f"expected node {cls.__name__!r}, found {_SHORT.repr(value.get('node'))}")
    extra = set(value) - set(fields) - ({"node"} if cls is not ir.Span else set())
    if extra:
        raise _DecodeError(path, f"unknown field(s) {_SHORT.repr(sorted(extra))} in {cls.__name__}")
    kwargs = {}
    hints = _hints(cls)
    for name, f in fields.items():
        if name not in value:
            raise _DecodeError(path, f"missing field {name!r} in {cls.__name__}")
        kwargs[name] = _decode(value[name], hints[name], f"{path}.{name}")
    if cls is ir.Span and isinstance(kwargs.get("file"), str):
        kwargs["file"] = local_file(kwargs["file"])
    node = cls(**kwargs)
    if cls is ir.Span and (min(node.line, node.col, node.end_col) < 1
                           or (node.end_line, node.end_col) < (node.line, node.col)):
        # Diagnostics point at spans: one that starts before 1:1 or ends before it starts
        # would put the caret nowhere.
        raise _DecodeError(path, f"invalid span {node.line}:{node.col} to {node.end_line}:{node.end_col}")
    return node


def loads(text: str, file: str = "<ir>") -> ir.Program:
    """Parse IR JSON, check the schema version, decode strictly and verify."""
    from qnnc.compiler.verify import verify_or_raise

    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                          parse_int=_bounded_int)
    except (json.JSONDecodeError, ValueError) as exc:
        line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        raise QnncError(Diagnostic(INVALID_JSON, f"not valid JSON: {getattr(exc, 'msg', str(exc))}",
                                   ir.Span(file, line, col, line, col + 1),
                                   help="an IR file is written by `qnnc ir FILE`")) from None
    if not isinstance(data, dict) or data.get("node") != "Program":
        raise QnncError(Diagnostic(INVALID_IR, "this JSON is not a qnnc IR program",
                                   ir.Span(file, 1, 1, 1, 2), help='the top level needs "node": "Program"'))
    version = data.get("schema_version")
    if version != ir.SCHEMA_VERSION:
        raise QnncError(Diagnostic(UNSUPPORTED_SCHEMA, f"IR schema_version {_SHORT.repr(version)} is not supported "
                                   f"(this qnnc reads version {ir.SCHEMA_VERSION})",
                                   ir.Span(file, 1, 1, 1, 2),
                                   help="regenerate the IR with this version: `qnnc ir FILE.qnn`"))
    try:
        program = _decode_node(data, ir.Program, "$")
    except _DecodeError as exc:
        raise QnncError(Diagnostic(INVALID_IR, f"invalid IR at {exc.path}: {exc.message}",
                                   ir.Span(file, 1, 1, 1, 2),
                                   help="compare with the schema: qnnc/compiler/schema/ir.schema.json")) from None
    return verify_or_raise(program)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in IR JSON")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent: finite (`1e999` is refused, as NaN and
    Infinity are), and of at most MAX_NUMBER_DIGITS characters."""
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number of {len(text):,} characters (the limit is {MAX_NUMBER_DIGITS})")
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"the number {text[:40]} is out of range (not a finite double)")
    return v


def _bounded_int(text: str) -> int:
    """A JSON integer of at most MAX_NUMBER_DIGITS characters, converted only then."""
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError(f"an integer of {len(text):,} digits (the limit is {MAX_NUMBER_DIGITS})")
    return int(text)


# --------------------------------------------------------------------------- schema


def json_schema() -> dict:
    """A JSON Schema (draft 2020-12) of the IR, derived from the dataclasses."""
    defs: dict[str, dict] = {}

    def ref(cls: type) -> dict:
        return {"$ref": f"#/$defs/{cls.__name__}"}

    def for_hint(hint: Any) -> dict:
        origin = typing.get_origin(hint)
        if origin in (Union, types.UnionType):
            opts = [o for o in typing.get_args(hint)]
            return {"anyOf": [for_hint(o) for o in opts]}
        if origin is tuple:
            return {"type": "array", "items": for_hint(typing.get_args(hint)[0])}
        if hint is type(None):
            return {"type": "null"}
        if hint is int:
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if hint is str:
            return {"type": "string"}
        if hint is bool:
            return {"type": "boolean"}
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return ref(hint)
        raise TypeError(hint)

    for cls in ir.NODE_TYPES:
        props: dict[str, Any] = {}
        hints = _hints(cls)
        if cls is not ir.Span:
            props["node"] = {"const": cls.__name__}
        for f in dataclasses.fields(cls):
            props[f.name] = for_hint(hints[f.name])
        if cls is ir.Program:
            props["schema_version"] = {"const": ir.SCHEMA_VERSION}
        defs[cls.__name__] = {
            "type": "object",
            "properties": props,
            "required": sorted(props),
            "additionalProperties": False,
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://qnnc.dev/schema/ir-v{ir.SCHEMA_VERSION}.json",
        "title": "qnnc IR program",
        "$ref": "#/$defs/Program",
        "$defs": defs,
    }


def shipped_schema() -> dict:
    return json.loads(files("qnnc.compiler.schema").joinpath("ir.schema.json").read_text(encoding="utf-8"))


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
