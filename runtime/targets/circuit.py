"""The neutral circuit IR: what every strategy lowers a network to, and what every
vendor emitter reads. Frozen dataclasses, no SDK.

Conventions: a measurement writes bit 1 for |1> (activation -1) and bit 0 for |0>
(activation +1). A `Condition` compares the clbits it lists, read as a little-endian
integer (clbits[0] is the least significant bit), with `value`. An angle is a float,
or a `Param` bound per execution on the host (the `layered` strategy).

Real-time classical computation (targets with `supports_realtime_arithmetic`): an
`assign` op sets the clbits `targets` (a little-endian unsigned register, or one bit)
to the value of an integer expression over clbits (`IntExpr`), during the shot. Its
`condition`, like a gate's, makes it conditional. A lowering keeps every value that
an expression produces non-negative and inside its target's width, so that a vendor's
unsigned fixed-width arithmetic computes the same integers as `evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

from qnnc.compiler.gates import GATES

# Gates come from the one gate table (compiler/gates.py).
ONE_QUBIT_ANGLE = tuple(n for n, g in GATES.items() if g.takes_angle)
ONE_QUBIT_FIXED = tuple(n for n, g in GATES.items() if g.qubits == 1 and not g.takes_angle)
TWO_QUBIT = tuple(n for n, g in GATES.items() if g.qubits == 2)
NON_UNITARY = ("measure", "reset", "barrier", "assign")
OP_NAMES = ONE_QUBIT_ANGLE + ONE_QUBIT_FIXED + TWO_QUBIT + NON_UNITARY

# What an op is for; the summary and the noise probes read it.
ROLES = ("neuron", "table", "multiplex", "prep", "noise", "copy", "reset", "fence", "probe",
         "classical", "realtime")  # classical: an `assign`; realtime: a rotation on computed bits


@dataclass(frozen=True)
class Param:
    """An angle bound per execution on the host; `index` into `Circuit.params`."""

    name: str
    index: int


Angle = Union[float, Param]


@dataclass(frozen=True)
class Condition:
    clbits: tuple[int, ...]
    value: int


# ------------------------------------------------------------------ integer expressions


@dataclass(frozen=True)
class Lit:
    value: int  # non-negative


@dataclass(frozen=True)
class BitVal:
    """The value (0 or 1) of one clbit."""

    clbit: int


@dataclass(frozen=True)
class RegVal:
    """The unsigned value of clbits read little-endian (a whole register)."""

    clbits: tuple[int, ...]


ARITH_OPS = ("+", "-", "*")
COMPARE_OPS = (">=", "<", ">", "==")  # 1 when true, else 0


@dataclass(frozen=True)
class Arith:
    op: str  # one of ARITH_OPS or COMPARE_OPS
    lhs: "IntExpr"
    rhs: "IntExpr"


IntExpr = Union[Lit, BitVal, RegVal, Arith]


def weighted_sum(terms: Sequence[tuple[int, int]], start: Optional[IntExpr] = None) -> IntExpr:
    """start + sum of coeff * bit over (coeff, clbit) terms."""
    out = start
    for coeff, clbit in terms:
        term: IntExpr = BitVal(clbit) if coeff == 1 else Arith("*", Lit(coeff), BitVal(clbit))
        out = term if out is None else Arith("+", out, term)
    return Lit(0) if out is None else out


def evaluate(e: IntExpr, bits: Sequence[int]) -> int:
    """The value of an expression given every clbit's value (exact Python integers)."""
    if isinstance(e, Lit):
        return e.value
    if isinstance(e, BitVal):
        return int(bits[e.clbit])
    if isinstance(e, RegVal):
        return sum(int(bits[c]) << k for k, c in enumerate(e.clbits))
    a, b = evaluate(e.lhs, bits), evaluate(e.rhs, bits)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
            ">=": lambda: int(a >= b), "<": lambda: int(a < b), ">": lambda: int(a > b),
            "==": lambda: int(a == b)}[e.op]()


def expr_clbits(e: IntExpr) -> set[int]:
    """The clbits an expression reads."""
    if isinstance(e, BitVal):
        return {e.clbit}
    if isinstance(e, RegVal):
        return set(e.clbits)
    if isinstance(e, Arith):
        return expr_clbits(e.lhs) | expr_clbits(e.rhs)
    return set()


@dataclass(frozen=True)
class Op:
    name: str
    qubits: tuple[int, ...]
    angle: Optional[Angle] = None
    clbit: Optional[int] = None
    condition: Optional[Condition] = None
    role: str = "neuron"
    layer: int = -1  # hidden-layer index the op belongs to; -1: none
    # `assign` only: targets := expr (mod 2^len(targets)), during the shot
    expr: Optional[IntExpr] = None
    targets: tuple[int, ...] = ()


@dataclass(frozen=True)
class ClReg:
    name: str
    clbits: tuple[int, ...]


@dataclass(frozen=True)
class Outcome:
    """What a measured clbit means: measurement `measure` (index among the neuron's
    MeasureOps) of neuron `neuron` in hidden layer `layer`, image copy `copy`."""

    clbit: int
    layer: int
    neuron: int
    copy: int
    measure: int
    emit: bool


@dataclass(frozen=True)
class Circuit:
    name: str
    num_qubits: int
    cregs: tuple[ClReg, ...]
    ops: tuple[Op, ...]
    params: tuple[str, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    layers: tuple[int, ...] = ()  # hidden layers realised here

    @property
    def num_clbits(self) -> int:
        return sum(len(r.clbits) for r in self.cregs)

    def stats(self, layer: Optional[int] = None) -> dict:
        """Counts over the neutral ops (all, or one layer's)."""
        ops = [o for o in self.ops if layer is None or o.layer == layer]
        qubits = sorted({q for o in ops if o.name != "barrier" for q in o.qubits})
        return {
            "qubits": len(qubits),
            "depth": depth(ops),
            "two_qubit_gates": sum(1 for o in ops if o.name in TWO_QUBIT),
            "measurements": sum(1 for o in ops if o.name == "measure"),
            "conditionals": sum(1 for o in ops if o.condition is not None),
            "resets": sum(1 for o in ops if o.name == "reset"),
            "classical": sum(1 for o in ops if o.name == "assign"),
            "gates": sum(1 for o in ops if o.name not in NON_UNITARY),
        }


def depth(ops) -> int:
    """Circuit depth, barriers and classical ops excluded; a conditioned op also waits
    for its clbits (and for the classical ops that compute them)."""
    level_q: dict[int, int] = {}
    level_c: dict[int, int] = {}
    best = 0
    for o in ops:
        if o.name == "barrier":
            # a barrier aligns its qubits without adding a layer
            top = max((level_q.get(q, 0) for q in o.qubits), default=0)
            for q in o.qubits:
                level_q[q] = top
            continue
        cl = list(o.condition.clbits) if o.condition else []
        if o.clbit is not None:
            cl.append(o.clbit)
        if o.expr is not None:
            cl.extend(expr_clbits(o.expr) | set(o.targets))
        start = max([level_q.get(q, 0) for q in o.qubits] + [level_c.get(c, 0) for c in cl],
                    default=0)
        if o.name == "assign":
            # classical work adds no quantum layer; its results wait for their inputs
            for c in o.targets:
                level_c[c] = start
            continue
        end = start + 1
        for q in o.qubits:
            level_q[q] = end
        for c in cl:
            level_c[c] = end
        best = max(best, end)
    return best
