"""The neutral circuit IR: what every strategy lowers a network to, and what every
vendor emitter reads. Frozen dataclasses, no SDK.

Conventions: a measurement writes bit 1 for |1> (activation -1) and bit 0 for |0>
(activation +1). A `Condition` compares the clbits it lists, read as a little-endian
integer (clbits[0] is the least significant bit), with `value`. An angle is a float,
or a `Param` bound per execution on the host (the `layered` strategy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

ONE_QUBIT_ANGLE = ("ry", "rx", "rz")
ONE_QUBIT_FIXED = ("x", "h", "sx", "sxdg")
TWO_QUBIT = ("cx", "cz", "ms", "msdg")  # ms: exp(-i pi/4 XX); msdg its inverse
NON_UNITARY = ("measure", "reset", "barrier")
OP_NAMES = ONE_QUBIT_ANGLE + ONE_QUBIT_FIXED + TWO_QUBIT + NON_UNITARY

# What an op is for; the summary and the noise probes read it.
ROLES = ("neuron", "table", "multiplex", "prep", "noise", "copy", "reset", "fence", "probe")


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


@dataclass(frozen=True)
class Op:
    name: str
    qubits: tuple[int, ...]
    angle: Optional[Angle] = None
    clbit: Optional[int] = None
    condition: Optional[Condition] = None
    role: str = "neuron"
    layer: int = -1  # hidden-layer index the op belongs to; -1: none


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
            "gates": sum(1 for o in ops if o.name not in NON_UNITARY),
        }


def depth(ops) -> int:
    """Circuit depth, barriers excluded; a conditioned op also waits for its clbits."""
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
        start = max([level_q.get(q, 0) for q in o.qubits] + [level_c.get(c, 0) for c in cl])
        end = start + 1
        for q in o.qubits:
            level_q[q] = end
        for c in cl:
            level_c[c] = end
        best = max(best, end)
    return best
