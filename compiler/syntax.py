"""The syntax tree of a `.qnn` file: what the user wrote, before names are resolved.

`qnnc fmt` prints this tree back; elaboration (`qnnc.compiler.elaborate`) turns it into
the IR. Spans do not take part in equality, so two texts that differ only in layout
and comments have equal trees (the property `fmt` is tested against).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from qnnc.compiler.ir import NO_SPAN, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Num:
    text: str  # as written; printed back verbatim
    span: Span = _span()

    @property
    def value(self) -> float | int:
        t = self.text
        if all(c.isdigit() for c in t):
            return int(t)
        return float(t)


@dataclass(frozen=True)
class Str:
    text: str  # with quotes and escapes, as written

    span: Span = _span()

    @property
    def value(self) -> str:
        body = self.text[1:-1]
        out, i = [], 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)


@dataclass(frozen=True)
class Name:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / ^
    lhs: "Expr"
    rhs: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Arg:
    name: Optional[str]  # None: positional
    value: "Expr"
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Apply:
    """`f(x, k = v)` inside an expression."""

    function: str
    args: tuple[Arg, ...]
    span: Span = _span()
    function_span: Span = _span()


Expr = Union[Num, Str, Name, Neg, BinOp, Apply]


@dataclass(frozen=True)
class CallSyntax:
    """A name with optional arguments in a statement position: `rotation(a)`, `sign`,
    `dense(x, bias = off)`, `scale(1 / 255)`. `args` is None for a bare name."""

    name: str
    args: Optional[tuple[Arg, ...]]
    span: Span = _span()
    name_span: Span = _span()


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Range:
    low: Expr
    high: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Import:
    module: str
    source: str  # "stdlib" or a string literal (with quotes)
    span: Span = _span()
    module_span: Span = _span()
    source_span: Span = _span()

    @property
    def is_stdlib(self) -> bool:
        return self.source == "stdlib"

    @property
    def path(self) -> str:
        return Str(self.source).value


@dataclass(frozen=True)
class ParamDecl:
    name: str
    type: Optional[str]
    range: Optional[Range]
    value: Expr
    span: Span = _span()
    name_span: Span = _span()
    type_span: Span = _span()


@dataclass(frozen=True)
class NeuronParamSyntax:
    name: str
    type: str
    range: Optional[Range]
    default: Optional[Expr]
    span: Span = _span()
    name_span: Span = _span()
    type_span: Span = _span()


@dataclass(frozen=True)
class QubitDecl:
    name: str
    carried: bool
    span: Span = _span()


@dataclass(frozen=True)
class AncillaDecl:
    names: tuple[str, ...]
    span: Span = _span()
    name_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class GateStmt:
    gate: str
    angles: tuple[Expr, ...]
    targets: tuple[str, ...]
    span: Span = _span()
    gate_span: Span = _span()
    target_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class MeasureStmt:
    target: str
    emit: bool
    span: Span = _span()
    target_span: Span = _span()


@dataclass(frozen=True)
class ResetStmt:
    target: str
    span: Span = _span()
    target_span: Span = _span()


NeuronStmt = Union[QubitDecl, AncillaDecl, GateStmt, MeasureStmt, ResetStmt]


@dataclass(frozen=True)
class NeuronSyntax:
    name: str
    params: tuple[NeuronParamSyntax, ...]
    body: tuple[NeuronStmt, ...]
    span: Span = _span()
    name_span: Span = _span()
    end_span: Span = _span()  # the closing brace


@dataclass(frozen=True)
class InputDecl:
    name: str
    shape: tuple[Expr, ...]
    steps: tuple[CallSyntax, ...]
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class LayerDecl:
    role: str  # "layer" or "output"
    name: str
    size: Expr
    activation: CallSyntax
    dense: CallSyntax
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class ReadoutDecl:
    kind: str
    shots: Optional[Expr]
    span: Span = _span()
    kind_span: Span = _span()


NetworkStmt = Union[InputDecl, LayerDecl, ReadoutDecl]


@dataclass(frozen=True)
class NetworkSyntax:
    name: str
    body: tuple[NetworkStmt, ...]
    span: Span = _span()
    name_span: Span = _span()
    end_span: Span = _span()


@dataclass(frozen=True)
class DatasetSyntax:
    kind: str  # "builtin" (family.split) or "file" (string literal with quotes)
    text: str
    span: Span = _span()


@dataclass(frozen=True)
class Schedule:
    kind: str  # "every", "log", "steps", "end"
    values: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True)
class TrainStmt:
    """`keyword value`: data/validate (DatasetSyntax), optimizer/gradient (CallSyntax),
    batch/epochs/seed (Expr), loss (Name), checkpoint (tuple of Schedule)."""

    keyword: str
    value: object
    span: Span = _span()


@dataclass(frozen=True)
class TrainSyntax:
    name: str
    body: tuple[TrainStmt, ...]
    span: Span = _span()
    name_span: Span = _span()
    end_span: Span = _span()


Item = Union[Import, ParamDecl, NeuronSyntax, NetworkSyntax, TrainSyntax]


@dataclass(frozen=True)
class Comment:
    text: str  # including '#'
    line: int
    col: int


@dataclass(frozen=True)
class Module:
    file: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)
