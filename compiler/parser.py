"""Front end: `.qnn` text -> syntax tree (`qnnc.compiler.syntax`), with diagnostics.

One lark LALR grammar (`grammar/qnn.lark`) and one transformer, in the manner of lark's
`examples/calc.py`. Syntax errors become `Q01xx` diagnostics pointing at the offending
token, with what was expected in words.
"""

from __future__ import annotations

import contextvars
import functools
import os
import sys
from importlib.resources import files
from typing import Optional

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from qnnc.compiler import syntax as S
from qnnc.compiler.codes import (INVALID_ENCODING, UNEXPECTED_CHARACTER, UNEXPECTED_END,
                                 UNEXPECTED_TOKEN, UNTERMINATED_BLOCK, UNTERMINATED_STRING)
from qnnc.compiler.diagnostics import Diagnostic, QnncError, source_lines
from qnnc.compiler.ir import Span

KEYWORDS = frozenset({
    "import", "from", "stdlib", "param", "in", "neuron", "qubit", "carried", "ancilla",
    "measure", "emit", "reset", "network", "input", "with", "layer", "output", "of",
    "readout", "vote", "over", "shots", "train", "data", "validate", "on", "optimizer",
    "batch", "epochs", "seed", "loss", "gradient", "checkpoint", "and", "every", "steps",
    "at", "log", "end",
})


# Comments are skipped by the grammar but kept for `qnnc fmt`: the lexer hands each one
# to whichever parse is running in this context.
_comment_sink: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar("qnn_comments", default=None)


def _collect_comment(tok: Token) -> Token:
    sink = _comment_sink.get()
    if sink is not None:
        sink.append(S.Comment(str(tok), tok.line, tok.column))
    return tok


def _cache_path(start: str) -> Optional[str]:
    """Where lark keeps the analysed LALR tables between runs: building them takes about
    0.1 s of every command's start-up, loading them 10 ms. A per-user folder
    ($XDG_CACHE_HOME/qnnc or ~/.cache/qnnc, mode 0700), not the shared temporary folder
    lark uses by default, since the cache is a pickle. Lark checks the grammar's hash
    stored in the file and rebuilds it when the grammar changed. None (no cache) when the
    folder cannot be made or QNNC_NO_PARSER_CACHE is set."""
    if os.environ.get("QNNC_NO_PARSER_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "qnnc")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not os.access(folder, os.W_OK):
            return None
    except OSError:
        return None
    tag = f"lark{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}-{start}"
    return os.path.join(folder, f"qnn-grammar-{tag}.lalr")


@functools.lru_cache(maxsize=None)
def _parser(start: str = "start") -> lark.Lark:
    grammar = files("qnnc.grammar").joinpath("qnn.lark").read_text(encoding="utf-8")
    opts = dict(parser="lalr", start=start, propagate_positions=True, maybe_placeholders=True,
                lexer_callbacks={"COMMENT": _collect_comment})
    cache = _cache_path(start)
    if cache is not None:
        try:
            return lark.Lark(grammar, cache=cache, **opts)
        except Exception:  # an unreadable or foreign cache file: build the tables afresh
            pass
    return lark.Lark(grammar, **opts)


def _span_of(file: str, obj) -> Span:
    if isinstance(obj, Token):
        return Span(file, obj.line, obj.column, obj.end_line, obj.end_column)
    meta = obj
    if getattr(meta, "empty", True):
        return Span(file, 1, 1, 1, 1)
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _join(file: str, a: Span, b: Span) -> Span:
    return Span(file, a.line, a.col, b.end_line, b.end_col)


@v_args(meta=True)
class _ToSyntax(Transformer):
    """Parse tree -> syntax tree. Each method builds one node with its span."""

    def __init__(self, file: str):
        super().__init__(visit_tokens=False)
        self.file = file

    def _s(self, x) -> Span:
        return _span_of(self.file, x)

    # ---- expressions
    def number(self, meta, c):
        return S.Num(str(c[0]), self._s(c[0]))

    def string(self, meta, c):
        return S.Str(str(c[0]), self._s(c[0]))

    def name(self, meta, c):
        return S.Name(str(c[0]), self._s(c[0]))

    def neg(self, meta, c):
        return S.Neg(c[0], self._s(meta))

    def _bin(op):
        def build(self, meta, c):
            return S.BinOp(op, c[0], c[1], self._s(meta))
        return build

    add, sub, mul, div, pow = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("^")

    def positional(self, meta, c):
        return S.Arg(None, c[0], self._s(meta))

    def keyword(self, meta, c):
        return S.Arg(str(c[0]), c[1], self._s(meta), self._s(c[0]))

    def apply(self, meta, c):
        args = tuple(a for a in c[1:] if a is not None)
        return S.Apply(str(c[0]), args, self._s(meta), self._s(c[0]))

    def call(self, meta, c):
        name = c[0]
        if len(c) == 1 or (len(c) == 2 and c[1] is None and not _has_parens(meta, name)):
            return S.CallSyntax(str(name), None, self._s(meta), self._s(name))
        args = tuple(a for a in c[1:] if a is not None)
        return S.CallSyntax(str(name), args, self._s(meta), self._s(name))

    # ---- items
    def import_stmt(self, meta, c):
        return S.Import(str(c[0]), str(c[1]), self._s(meta), self._s(c[0]), self._s(c[1]))

    def value_range(self, meta, c):
        return S.Range(c[0], c[1], self._s(meta))

    def param_decl(self, meta, c):
        name, type_, range_, value = c
        return S.ParamDecl(str(name), str(type_) if type_ is not None else None, range_, value,
                           self._s(meta), self._s(name),
                           self._s(type_) if type_ is not None else self._s(name))

    def neuron_param(self, meta, c):
        name, type_, range_, default = c
        return S.NeuronParamSyntax(str(name), str(type_), range_, default, self._s(meta),
                                   self._s(name), self._s(type_))

    def neuron_def(self, meta, c):
        name = c[0]
        params = tuple(x for x in c[1:] if isinstance(x, S.NeuronParamSyntax))
        body = tuple(x for x in c[1:] if x is not None and not isinstance(x, S.NeuronParamSyntax))
        return S.NeuronSyntax(str(name), params, body, self._s(meta), self._s(name),
                              _end_brace(self.file, meta))

    def qubit_decl(self, meta, c):
        return S.QubitDecl(str(c[0]), c[1] is not None, self._s(meta))

    def ancilla_decl(self, meta, c):
        return S.AncillaDecl(tuple(str(t) for t in c), self._s(meta),
                             tuple(self._s(t) for t in c))

    def gate_stmt(self, meta, c):
        gate = c[0]
        angles = tuple(x for x in c[1:] if x is not None and not isinstance(x, Token))
        targets = [x for x in c[1:] if isinstance(x, Token)]
        return S.GateStmt(str(gate), angles, tuple(str(t) for t in targets), self._s(meta),
                          self._s(gate), tuple(self._s(t) for t in targets))

    def measure_stmt(self, meta, c):
        return S.MeasureStmt(str(c[1]), c[0] is not None, self._s(meta), self._s(c[1]))

    def reset_stmt(self, meta, c):
        return S.ResetStmt(str(c[0]), self._s(meta), self._s(c[0]))

    def network_def(self, meta, c):
        return S.NetworkSyntax(str(c[0]), tuple(c[1:]), self._s(meta), self._s(c[0]),
                               _end_brace(self.file, meta))

    def input_decl(self, meta, c):
        name = c[0]
        shape = tuple(x for x in c[1:] if x is not None and not isinstance(x, S.CallSyntax))
        steps = tuple(x for x in c[1:] if isinstance(x, S.CallSyntax))
        return S.InputDecl(str(name), shape, steps, self._s(meta), self._s(name))

    def layer_decl(self, meta, c):
        role, name, size, act, dense = c
        return S.LayerDecl(str(role), str(name), size, act, dense, self._s(meta), self._s(name))

    def readout_decl(self, meta, c):
        return S.ReadoutDecl(str(c[0]), c[1], self._s(meta), self._s(c[0]))

    def train_def(self, meta, c):
        return S.TrainSyntax(str(c[0]), tuple(c[1:]), self._s(meta), self._s(c[0]),
                             _end_brace(self.file, meta))

    def builtin_dataset(self, meta, c):
        return S.DatasetSyntax("builtin", f"{c[0]}.{c[1]}", self._s(meta))

    def file_dataset(self, meta, c):
        return S.DatasetSyntax("file", str(c[0]), self._s(meta))

    def _train(keyword):
        def build(self, meta, c):
            return S.TrainStmt(keyword, c[0], self._s(meta))
        return build

    data_stmt = _train("data")
    validate_stmt = _train("validate")
    optimizer_stmt = _train("optimizer")
    batch_stmt = _train("batch")
    epochs_stmt = _train("epochs")
    seed_stmt = _train("seed")
    gradient_stmt = _train("gradient")

    def loss_stmt(self, meta, c):
        return S.TrainStmt("loss", S.Name(str(c[0]), self._s(c[0])), self._s(meta))

    def checkpoint_stmt(self, meta, c):
        return S.TrainStmt("checkpoint", tuple(c), self._s(meta))

    def every_steps(self, meta, c):
        return S.Schedule("every", (c[0],), self._s(meta))

    def log_steps(self, meta, c):
        return S.Schedule("log", (), self._s(meta))

    def listed_steps(self, meta, c):
        return S.Schedule("steps", tuple(c), self._s(meta))

    def at_end(self, meta, c):
        return S.Schedule("end", (), self._s(meta))

    def start(self, meta, c):
        return tuple(c)


def _has_parens(meta, name_token) -> bool:
    # `call: NAME ["(" ... ")"]`: with maybe_placeholders an empty `()` and no parens
    # both give [NAME, None]; the span tells them apart.
    return (meta.end_line, meta.end_column) != (name_token.end_line, name_token.end_column)


def _end_brace(file: str, meta) -> Span:
    return Span(file, meta.end_line, max(meta.end_column - 1, 1), meta.end_line, meta.end_column)


# --------------------------------------------------------------------------- entry points


def parse_module(text: str, file: str = "<string>") -> S.Module:
    """Parse one file's text. Raises QnncError with a Q01xx diagnostic on a syntax error."""
    comments: list[S.Comment] = []
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        col = text.index("\x00") - (text.rfind("\n", 0, text.index("\x00")) + 1) + 1
        raise QnncError(Diagnostic(INVALID_ENCODING, "this file contains a NUL byte",
                                   Span(file, line, col, line, col + 1),
                                   help="a .qnn file is UTF-8 text"))
    token = _comment_sink.set(comments)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise QnncError(_syntax_diagnostic(exc, text, file)) from None
    finally:
        _comment_sink.reset(token)
    items = _transform(tree, file)
    return S.Module(file, items, tuple(comments), text)


def parse_expression(text: str, file: str = "<string>") -> S.Expr:
    """Parse a single expression (used for `--set name=value`)."""
    try:
        tree = _parser("expr").parse(text)
    except UnexpectedInput as exc:
        raise QnncError(_syntax_diagnostic(exc, text, file)) from None
    return _transform(tree, file)


def _transform(tree, file: str):
    try:
        return _ToSyntax(file).transform(tree)
    except VisitError as exc:
        # lark wraps what a callback raises; a RecursionError (a very deep expression such
        # as `2 ^ 2 ^ ... ^ 2`) is re-raised as itself for the callers' "nested too
        # deeply" diagnostic.
        if isinstance(exc.orig_exc, RecursionError):
            raise RecursionError(str(exc.orig_exc)) from None
        raise


# --------------------------------------------------------------------------- errors

_TERMINAL_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "STDLIB": "`stdlib`",
    "LAYER_ROLE": "`layer` or `output`", "CARRIED": "`carried`", "EMIT": "`emit`",
    "$END": "end of file",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        term = next(t for t in _parser().terminals if t.name == name)
        pattern = term.pattern
        if pattern.type == "str":
            return f"`{pattern.value}`"
    except StopIteration:
        pass
    return name.lower()


def _expected_words(expected) -> str:
    words = sorted({_describe_terminal(e) for e in expected})
    if len(words) > 8:
        words = words[:8] + ["…"]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _found(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"`{tok}`"


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    lines = source_lines(text) or [""]
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if char == '"':
            return Diagnostic(UNTERMINATED_STRING, "unterminated string", Span(file, line, col, line, col + 1),
                              "this string is never closed", help='close it with `"` on the same line')
        shown = repr(char)[1:-1] if char.isprintable() else f"\\u{ord(char):04x}"
        return Diagnostic(UNEXPECTED_CHARACTER, f"unexpected character `{shown}`",
                          Span(file, line, col, line, col + 1), "not part of the language",
                          help=_char_help(char))
    if isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
        tok = getattr(exc, "token", None)
        expected = _acceptable(exc)
        at_end = tok is None or tok.type == "$END"
        if at_end:
            open_brace = _unclosed_brace(text, file)
            if open_brace is not None:
                return Diagnostic(UNTERMINATED_BLOCK, "unterminated block", open_brace,
                                  "this `{` is never closed",
                                  help="add a `}` at the end of the block")
            end_line = len(lines)
            end_col = len(lines[-1]) + 1 if lines else 1
            return Diagnostic(UNEXPECTED_END, "unexpected end of file",
                              Span(file, end_line, max(end_col - 1, 1), end_line, end_col),
                              f"expected {_expected_words(expected)}",
                              help="the last statement is incomplete")
        span = Span(file, tok.line, tok.column, tok.end_line or tok.line,
                    tok.end_column or tok.column + 1)
        help_ = _token_help(tok, expected)
        return Diagnostic(UNEXPECTED_TOKEN, f"unexpected {_found(tok)}",
                          span, f"expected {_expected_words(expected)}", help=help_)
    return Diagnostic(UNEXPECTED_TOKEN, "syntax error", Span(file, 1, 1, 1, 2))


def _acceptable(exc: UnexpectedInput) -> set:
    """The terminals that can really come next. LALR merges the lookaheads of states
    shared by several rules (`call` after `layer ... =`, `with`, `optimizer`...), so
    `exc.expected` lists tokens that are only valid elsewhere; the interactive parser
    tries each one from the actual parse state."""
    ip = getattr(exc, "interactive_parser", None)
    if ip is not None:
        accepted = ip.accepts()
        if accepted:
            return accepted
    return set(exc.expected or ())


def _char_help(char: str) -> Optional[str]:
    if char == "'":
        return 'strings use double quotes: "like this"'
    if char in ";":
        return "statements need no terminator: end the line instead"
    if char == "*" or char == "=":
        return None
    return "comments start with `#`"


def _token_help(tok: Token, expected) -> Optional[str]:
    value = str(tok)
    if value in KEYWORDS and "NAME" in expected:
        return f"`{value}` is a keyword and cannot be used as a name here"
    if tok.type == "RBRACE" and "LBRACE" not in expected:
        return "a `}` closes a block; is there an extra one?"
    if "LPAR" in expected and tok.type == "NAME":
        return None
    return None


def _unclosed_brace(text: str, file: str) -> Optional[Span]:
    """The innermost `{` left open at end of file, ignoring strings and comments."""
    stack: list[tuple[int, int]] = []
    line, col, i = 1, 1, 0
    in_string = False
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
                col += 1
            elif ch == '"':
                in_string = False
            elif ch == "\n":
                in_string = False
        elif ch == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch == '"':
            in_string = True
        elif ch == "{":
            stack.append((line, col))
        elif ch == "}" and stack:
            stack.pop()
        if i < len(text) and text[i] == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    if not stack:
        return None
    line, col = stack[-1]
    return Span(file, line, col, line, col + 1)
