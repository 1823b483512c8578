"""What the strategies share: `Lowered` (a strategy's result), `ChunkPlan`, `Options`,
the circuit `Builder`, a layer's assembly with its noise probes (inserted here, so every
target sees the same pairs), and the tables of a layer's angles over the previous
layer's outcome patterns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from qnnc.compiler import ir
from qnnc.runtime.targets.capabilities import REALTIME_ANGLES, Capabilities, missing
from qnnc.runtime.targets.circuit import Circuit, ClReg, Op, Outcome, Param
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.network import HiddenLayer

ENUMERABLE_WIDTH = 20  # widest previous layer whose outcome patterns we enumerate
TOLERANCE = 1e-9


@dataclass
class ChunkPlan:
    """A layered circuit: `neurons` of hidden layer `layer`, `copies` times."""

    circuit: Circuit
    layer: int
    neurons: tuple[int, ...]
    copies: int
    angle_params: np.ndarray  # [copies, n, gates] Param index, -1 for fixed gates
    prep_params: np.ndarray  # [copies, n, 2] (ry, rz) Param index, -1 when not carried
    clbits: np.ndarray  # [copies, n, measures]


@dataclass
class Lowered:
    strategy: str
    circuits: list[Circuit]
    chunks: list[ChunkPlan] = field(default_factory=list)  # layered only
    notes: list[str] = field(default_factory=list)
    layer_realisation: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    # None: no probe. 0: the probe's fences without pairs (a noise study's baseline, the
    # same compiled circuit as K pairs minus the pairs). K > 0: K pairs between fences.
    noise_pairs: Optional[int] = None
    noise_kind: str = "sx"
    copies: Optional[int] = None  # layered: None fills the device
    max_table_width: Optional[int] = None  # None: the target's
    # The weight grid (a / 2^weight_bits) of layers computed in real time; the spec's
    # layers must have been quantised with it (`resolve(..., weight_bits=...)`).
    weight_bits: Optional[int] = None


# --------------------------------------------------------------------------- builder


class Builder:
    def __init__(self, name: str):
        self.name = name
        self.ops: list[Op] = []
        self.n_qubits = 0
        self.cregs: list[ClReg] = []
        self.n_clbits = 0
        self.params: list[str] = []
        self.outcomes: list[Outcome] = []
        self.final: list[Op] = []  # measurements deferred to the end

    def qubit(self) -> int:
        self.n_qubits += 1
        return self.n_qubits - 1

    def creg(self, name: str, size: int) -> tuple[int, ...]:
        bits = tuple(range(self.n_clbits, self.n_clbits + size))
        self.n_clbits += size
        self.cregs.append(ClReg(name, bits))
        return bits

    def param(self, name: str) -> Param:
        self.params.append(name)
        return Param(name, len(self.params) - 1)

    def build(self, layers: tuple[int, ...]) -> Circuit:
        return Circuit(self.name, self.n_qubits, tuple(self.cregs), tuple(self.ops + self.final),
                       tuple(self.params), tuple(sorted(self.outcomes, key=lambda o: o.clbit)),
                       layers)


# A neuron's ops realised as segments: (kind, ops, qubit the kind refers to).
# kind: "rotation" (an angle gate: noise goes after it), "gate", "measure", "reset".
Segment = tuple[str, list[Op], Optional[int]]


@dataclass
class NeuronOut:
    segments: list[Segment]
    primary: Optional[int]  # the qubit two-qubit noise pairs act on


def assemble_layer(b: Builder, neurons: list[NeuronOut], layer: int, opts: Options) -> None:
    """Append a layer's neurons with noise probes after their rotations."""
    k, kind = opts.noise_pairs, opts.noise_kind
    if k is None or kind == "sx":
        for n in neurons:
            for seg_kind, ops, q in n.segments:
                b.ops.extend(ops)
                if k is not None and seg_kind == "rotation":
                    b.ops.extend(_noise_1q(q, k, layer))
        return
    # two-qubit probes act on neighbouring neurons' primary qubits, after both rotations
    for j in range(0, len(neurons), 2):
        pair = neurons[j:j + 2]
        if len(pair) < 2 or pair[0].primary is None or pair[1].primary is None:
            for n in pair:
                for _, ops, _ in n.segments:
                    b.ops.extend(ops)
            continue
        cut = [_noise_point(n) for n in pair]
        for n, c in zip(pair, cut):
            for _, ops, _ in n.segments[:c + 1]:
                b.ops.extend(ops)
        b.ops.extend(_noise_2q(pair[0].primary, pair[1].primary, k, kind, layer))
        for n, c in zip(pair, cut):
            for _, ops, _ in n.segments[c + 1:]:
                b.ops.extend(ops)


def _noise_point(n: NeuronOut) -> int:
    rot = [i for i, (kind, _, q) in enumerate(n.segments) if kind == "rotation" and q == n.primary]
    if not rot:
        rot = [i for i, (kind, _, _) in enumerate(n.segments) if kind == "rotation"]
    return rot[-1] if rot else -1


def _noise_1q(q: int, k: int, layer: int) -> list[Op]:
    # Barriers between the gates keep every optimiser from cancelling the pairs; the
    # first one ("probe") marks the block for vendors that place pairs after routing.
    out = [Op("barrier", (q,), role="probe", layer=layer)]
    for _ in range(k):
        out += [Op("sx", (q,), role="noise", layer=layer), Op("barrier", (q,), role="fence", layer=layer),
                Op("sxdg", (q,), role="noise", layer=layer), Op("barrier", (q,), role="fence", layer=layer)]
    return out


def _noise_2q(q0: int, q1: int, k: int, kind: str, layer: int) -> list[Op]:
    first, second = ("cz", "cz") if kind == "cz" else ("ms", "msdg")
    qs = (q0, q1)
    out = [Op("barrier", qs, role="probe", layer=layer)]
    for _ in range(k):
        out += [Op(first, qs, role="noise", layer=layer), Op("barrier", qs, role="fence", layer=layer),
                Op(second, qs, role="noise", layer=layer), Op("barrier", qs, role="fence", layer=layer)]
    return out


# --------------------------------------------------------------------------- angle tables


def patterns(width: int) -> tuple[np.ndarray, np.ndarray]:
    v = np.arange(2 ** width, dtype=np.int64)
    bits = ((v[:, None] >> np.arange(width)) & 1).astype(np.int8)
    return bits, 1.0 - 2.0 * bits


def layer_angles(layer: HiddenLayer, d_prev: Optional[np.ndarray], x: np.ndarray) -> list:
    """angles[i][g] -> array over the rows of d_prev (or one row for the input)."""
    if d_prev is None:
        z = layer.z(x)[None, :]
        last = layer.last(None, 1)
    else:
        z = layer.z(d_prev)
        last = layer.last(d_prev, d_prev.shape[0])
    return [layer.model(i).angles(z[:, i], last[:, i]) for i in range(layer.size)]


def affine_increments(table: np.ndarray, width: int) -> Optional[np.ndarray]:
    """Per-bit increments if table[v] = table[0] + sum_j bit_j(v) * delta_j, else None."""
    bits, _ = patterns(width)
    delta = np.array([table[1 << j] - table[0] for j in range(width)])
    if np.allclose(table, table[0] + bits @ delta, atol=TOLERANCE, rtol=0):
        return delta
    return None


def table_width_limit(opts: Options, caps: Capabilities) -> int:
    return caps.max_table_width if opts.max_table_width is None else opts.max_table_width


def table_refusal(layer: HiddenLayer, prev: HiddenLayer, width: int, limit: int, strategy: str,
                   what: str, caps: Optional[Capabilities] = None) -> Exception:
    count = f"{2 ** width}" if width <= ENUMERABLE_WIDTH else f"2^{width}"
    hint = ("use `--strategy layered` (host feed-forward between layers), or a narrower "
            "previous layer")
    notes = ["an angle that is affine in the previous bits (clip squash with a >= sum |W|) "
             "needs only one condition per bit"]
    if caps is not None and not missing(REALTIME_ANGLES, caps):
        hint = (f"quantise the weights (`--weight-bits M`: grid a/2^M) so that `{caps.backend}` "
                "computes the angles in real time, " + hint)
    elif caps is not None:
        notes.append("a target with real-time classical arithmetic (`quantinuum`) computes such "
                     "angles during the shot when the weights are quantised (`--weight-bits M`, "
                     "clip squash or a = 0)")
    return refuse(
        "Q0306",
        f"layer `{layer.name}` needs a {what} over the {count} outcome patterns of "
        f"`{prev.name}` ({width} bits): the `{strategy}` strategy allows at most {limit} bits "
        f"(2^{limit} = {2 ** limit} patterns)",
        layer.span, help=hint, notes=notes)


def aux_index(nm, mi: int) -> int:
    return mi if mi < nm.emit_index else mi - 1


def later_uses(ops) -> list[set[str]]:
    """For each op index, the registers that ops after it touch."""
    out: list[set[str]] = []
    seen: set[str] = set()
    for op in reversed(ops):
        out.append(set(seen))
        if isinstance(op, ir.GateOp):
            seen.update(op.targets)
        else:
            seen.add(op.target)
    return out[::-1]
