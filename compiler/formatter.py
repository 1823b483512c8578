"""`qnnc fmt`: the canonical layout of a `.qnn` file.

Prints the syntax tree back with four-space indents, one statement per line, spaces
around binary operators and `=`, and the fewest parentheses that keep the meaning.
Comments are kept: a comment on its own line stays before the statement that follows
it, a comment after code stays at the end of that statement's line. One blank line
separates top-level definitions; a blank line the author left between statements is
kept (at most one). The output is a fixed point: formatting it again changes nothing.
"""

from __future__ import annotations

from typing import Optional

from qnnc.compiler import syntax as S
from qnnc.compiler.diagnostics import source_lines

INDENT = "    "

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_NEG_PREC = 3
_POW_PREC = 4
_ATOM_PREC = 5


def expr(e: S.Expr) -> str:
    return _expr(e)[0]


def _expr(e: S.Expr) -> tuple[str, int]:
    if isinstance(e, S.Num):
        return e.text, _ATOM_PREC
    if isinstance(e, S.Str):
        return e.text, _ATOM_PREC
    if isinstance(e, S.Name):
        return e.name, _ATOM_PREC
    if isinstance(e, S.Apply):
        return f"{e.function}({_args(e.args)})", _ATOM_PREC
    if isinstance(e, S.Neg):
        inner, p = _expr(e.operand)
        if p < _NEG_PREC:
            inner = f"({inner})"
        return f"-{inner}", _NEG_PREC
    if isinstance(e, S.BinOp):
        lhs, lp = _expr(e.lhs)
        rhs, rp = _expr(e.rhs)
        if e.op == "^":
            # power: atom ^ unary (right-associative; `-` allowed on the right)
            if lp < _ATOM_PREC:
                lhs = f"({lhs})"
            if rp < _NEG_PREC:
                rhs = f"({rhs})"
            return f"{lhs} ^ {rhs}", _POW_PREC
        prec = _PREC[e.op]
        if lp < prec:
            lhs = f"({lhs})"
        if rp <= prec:
            rhs = f"({rhs})"
        return f"{lhs} {e.op} {rhs}", prec
    raise AssertionError(e)


def _arg(a: S.Arg) -> str:
    return expr(a.value) if a.name is None else f"{a.name} = {expr(a.value)}"


def _args(args) -> str:
    return ", ".join(_arg(a) for a in args)


def call(c: S.CallSyntax) -> str:
    if c.args is None:
        return c.name
    return f"{c.name}({_args(c.args)})"


def _range(r: Optional[S.Range]) -> str:
    return f" in [{expr(r.low)}, {expr(r.high)}]" if r is not None else ""


def statement(st) -> str:
    """One statement (not a block) as canonical text, without indent."""
    if isinstance(st, S.Import):
        return f"import {st.module} from {st.source}"
    if isinstance(st, S.ParamDecl):
        t = f": {st.type}" if st.type else ""
        return f"param {st.name}{t}{_range(st.range)} = {expr(st.value)}"
    if isinstance(st, S.QubitDecl):
        return f"qubit {st.name}" + (" carried" if st.carried else "")
    if isinstance(st, S.AncillaDecl):
        return "ancilla " + ", ".join(st.names)
    if isinstance(st, S.GateStmt):
        angles = f"({', '.join(expr(a) for a in st.angles)})" if st.angles else ""
        return f"{st.gate}{angles} " + ", ".join(st.targets)
    if isinstance(st, S.MeasureStmt):
        return ("emit " if st.emit else "") + f"measure {st.target}"
    if isinstance(st, S.ResetStmt):
        return f"reset {st.target}"
    if isinstance(st, S.InputDecl):
        s = f"input {st.name}[{', '.join(expr(d) for d in st.shape)}]"
        if st.steps:
            s += " with " + ", ".join(call(c) for c in st.steps)
        return s
    if isinstance(st, S.LayerDecl):
        return f"{st.role} {st.name}[{expr(st.size)}] = {call(st.activation)} of {call(st.dense)}"
    if isinstance(st, S.ReadoutDecl):
        s = f"readout {st.kind}"
        if st.shots is not None:
            s += f", vote over {expr(st.shots)} shots"
        return s
    if isinstance(st, S.TrainStmt):
        return _train_stmt(st)
    raise AssertionError(st)


def _train_stmt(st: S.TrainStmt) -> str:
    k, v = st.keyword, st.value
    if k in ("data", "validate"):
        prefix = "validate on" if k == "validate" else "data"
        return f"{prefix} {v.text}"
    if k in ("optimizer", "gradient"):
        return f"{k} {call(v)}"
    if k == "loss":
        return f"loss {v.name}"
    if k == "checkpoint":
        parts = []
        for sch in v:
            if sch.kind == "every":
                parts.append(f"every {expr(sch.values[0])} steps")
            elif sch.kind == "log":
                parts.append("at log steps")
            elif sch.kind == "end":
                parts.append("at end")
            else:
                parts.append(f"at steps [{', '.join(expr(x) for x in sch.values)}]")
        return "checkpoint " + " and ".join(parts)
    return f"{k} {expr(v)}"


def _header(item) -> str:
    if isinstance(item, S.NeuronSyntax):
        params = []
        for p in item.params:
            d = f" = {expr(p.default)}" if p.default is not None else ""
            params.append(f"{p.name}: {p.type}{_range(p.range)}{d}")
        return f"neuron {item.name}({', '.join(params)}) {{"
    if isinstance(item, S.NetworkSyntax):
        return f"network {item.name} {{"
    return f"train {item.name} {{"


_BLOCKS = (S.NeuronSyntax, S.NetworkSyntax, S.TrainSyntax)


class _Printer:
    def __init__(self, module: S.Module):
        self.lines: list[str] = []
        self.comments = sorted(module.comments, key=lambda c: (c.line, c.col))
        self.next_comment = 0
        self.source_lines = source_lines(module.source)

    def _blank_before(self, line: int) -> bool:
        """Whether the author left a blank line just above `line` (or its comments)."""
        i = line - 2
        while i >= 0 and self.source_lines[i].strip().startswith("#"):
            i -= 1
        return i >= 0 and not self.source_lines[i].strip()

    def _leading(self, before_line: int, indent: str) -> None:
        """Own-line comments that come before `before_line`."""
        while self.next_comment < len(self.comments) and self.comments[self.next_comment].line < before_line:
            c = self.comments[self.next_comment]
            prev = self.source_lines[c.line - 2].strip() if c.line >= 2 and self.source_lines else "x"
            if self.lines and self.lines[-1] != "" and not prev and c.line >= 2:
                self.lines.append("")
            self.lines.append(indent + c.text.rstrip())
            self.next_comment += 1

    def _trailing(self, through_line: int) -> Optional[str]:
        """Comments that sit on lines up to `through_line` after code: joined, kept on the line."""
        found = []
        while self.next_comment < len(self.comments) and self.comments[self.next_comment].line <= through_line:
            found.append(self.comments[self.next_comment].text.rstrip())
            self.next_comment += 1
        return "  ".join(found) if found else None

    def _emit(self, indent: str, text: str, span_end_line: int) -> None:
        tail = self._trailing(span_end_line)
        self.lines.append(indent + text + (f"  {tail}" if tail else ""))

    def statements(self, stmts, indent: str, block_start_line: int) -> None:
        for i, st in enumerate(stmts):
            # A blank line above counts only for the first statement that starts on a line.
            first_on_line = i == 0 or stmts[i - 1].span.end_line < st.span.line
            if i > 0 and first_on_line and self._blank_before(st.span.line) and self.lines and self.lines[-1] != "":
                self.lines.append("")
            self._leading(st.span.line, indent)
            self._emit(indent, statement(st), st.span.end_line)

    def module(self, module: S.Module) -> str:
        prev = None
        for item in module.items:
            if prev is not None:
                separate = isinstance(item, _BLOCKS) or isinstance(prev, _BLOCKS) or type(item) is not type(prev) \
                    or (prev.span.end_line < item.span.line and self._blank_before(item.span.line))
                if separate and self.lines and self.lines[-1] != "":
                    self.lines.append("")
            self._leading(item.span.line, "")
            if isinstance(item, _BLOCKS):
                header_line = item.name_span.line
                self._emit("", _header(item), header_line)
                self.statements(item.body, INDENT, header_line)
                self._leading(item.end_span.line, INDENT)
                self._emit("", "}", item.end_span.line)
            else:
                self._emit("", statement(item), item.span.end_line)
            prev = item
        # Comments after the last item.
        if self.next_comment < len(self.comments):
            if self.lines and self.lines[-1] != "":
                self.lines.append("")
            self._leading(10 ** 9, "")
        while self.lines and self.lines[-1] == "":
            self.lines.pop()
        return "\n".join(self.lines) + "\n" if self.lines else ""


def format_module(module: S.Module) -> str:
    return _Printer(module).module(module)
