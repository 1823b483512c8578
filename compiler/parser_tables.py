"""The grammar's analysed LALR tables, shipped as JSON so that start-up does not rebuild them.

Building lark's tables for `grammar/qnn.lark` takes about 0.1 s, which every `qnnc check`
would pay. The tables are data, so they ship with the package (`grammar/qnn.tables.json`)
and load in a few milliseconds. JSON, not lark's own cache: that cache is a pickle, and
qnnc never unpickles anything. The file records the grammar's sha256 and the lark
version; when either differs, the tables are built from the grammar as before (a test
keeps the shipped file current: `python -m qnnc.compiler.parser_tables` rewrites it).
"""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files
from typing import Any, Callable, Optional

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

OPTIONS = dict(parser="lalr", propagate_positions=True, maybe_placeholders=True)
STARTS = ("start", "expr")
TABLES_FILE = "qnn.tables.json"


def grammar_text() -> str:
    return files("qnnc.grammar").joinpath("qnn.lark").read_text(encoding="utf-8")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build(start: str, lexer_callbacks: Optional[dict[str, Callable]] = None) -> Lark:
    return Lark(grammar_text(), start=start, lexer_callbacks=lexer_callbacks or {}, **OPTIONS)


def tables_json() -> str:
    """The shipped file's text, built from the grammar (deterministic)."""
    out: dict[str, Any] = {"grammar_sha256": _digest(grammar_text()), "lark": lark.__version__, "starts": {}}
    for start in STARTS:
        data, memo = build(start).memo_serialize([TerminalDef, Rule])
        out["starts"][start] = _encode({"data": data, "memo": memo})
    return json.dumps(out, sort_keys=True, separators=(",", ":")) + "\n"


def load(start: str, lexer_callbacks: dict[str, Callable]) -> Lark:
    """The parser for `start`: from the shipped tables when they match this grammar and
    lark, else built from the grammar."""
    try:
        shipped = json.loads(files("qnnc.grammar").joinpath(TABLES_FILE).read_text(encoding="utf-8"))
        if shipped.get("grammar_sha256") == _digest(grammar_text()) and shipped.get("lark") == lark.__version__:
            tables = _decode(shipped["starts"][start])
            return Lark.__new__(Lark)._load(tables, lexer_callbacks=lexer_callbacks)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no usable tables: build them
    return build(start, lexer_callbacks)


# JSON keeps only string keys and no tuples; lark's tables have both.
def _encode(o):
    if isinstance(o, dict):
        if all(isinstance(k, str) for k in o):
            return {k: _encode(v) for k, v in o.items()}
        return {"__items__": [[_encode(k), _encode(v)] for k, v in o.items()]}
    if isinstance(o, tuple):
        return {"__tuple__": [_encode(x) for x in o]}
    if isinstance(o, list):
        return [_encode(x) for x in o]
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    raise TypeError(f"lark tables hold a {type(o).__name__}")


def _decode(o):
    if isinstance(o, dict):
        if "__items__" in o:
            return {_decode(k): _decode(v) for k, v in o["__items__"]}
        if "__tuple__" in o:
            return tuple(_decode(x) for x in o["__tuple__"])
        return {k: _decode(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_decode(x) for x in o]
    return o


if __name__ == "__main__":  # regenerate the shipped tables after changing the grammar
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "grammar" / TABLES_FILE
    path.write_text(tables_json(), encoding="utf-8")
    print(f"wrote {path}")
