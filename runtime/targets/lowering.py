"""Strategies: named lowering passes from a `NetworkSpec` to neutral circuits.

- `dynamic`: one circuit per forward pass. Each layer's angles, functions of the
  previous layer's outcome bits, are realised exactly by gates conditioned on those
  bits: one conditioned correction per bit when the angle is affine in the bits,
  otherwise a table over the previous layer's outcome patterns (exponential: refused
  above `max_table_width`), or, on a target with real-time arithmetic and with
  quantised weights, an integer register computed during the shot (`_RealtimeAngles`).
  Qubits are reused through reset.
- `layered`: one parametrised circuit per layer (chunks of a wide layer, several
  copies packed side by side); the host binds angles per shot from the previous
  layer's measured bits.
- `deferred`: no mid-circuit measurement. Angles become rotations multiplexed on the
  previous layer's outcome qubits (or controlled rotations when affine); every
  measurement happens at the end.

Noise probes are inserted here too, so every target sees the same pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.gates import sign_flip_control
from qnnc.runtime.targets.capabilities import REALTIME_ANGLES, Capabilities, check_noise_kind, missing
from qnnc.runtime.targets.circuit import (Arith, Circuit, ClReg, Condition, Lit, Op, Outcome, Param,
                                          RegVal, weighted_sum)
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.network import HiddenLayer, NetworkSpec, realtime_squash

ENUMERABLE_WIDTH = 20  # widest previous layer whose outcome patterns we enumerate
_TOL = 1e-9
# Terms per real-time sum: one sum of hundreds of terms breaks vendor converters
# (pytket-qir crashed on 512), so long sums are accumulated in chunks.
REALTIME_CHUNK = 32


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


class _Builder:
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
class _NeuronOut:
    segments: list[Segment]
    primary: Optional[int]  # the qubit two-qubit noise pairs act on


def _assemble_layer(b: _Builder, neurons: list[_NeuronOut], layer: int, opts: Options) -> None:
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


def _noise_point(n: _NeuronOut) -> int:
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


def _patterns(width: int) -> tuple[np.ndarray, np.ndarray]:
    v = np.arange(2 ** width, dtype=np.int64)
    bits = ((v[:, None] >> np.arange(width)) & 1).astype(np.int8)
    return bits, 1.0 - 2.0 * bits


def _layer_angles(layer: HiddenLayer, d_prev: Optional[np.ndarray], x: np.ndarray) -> list:
    """angles[i][g] -> array over the rows of d_prev (or one row for the input)."""
    if d_prev is None:
        z = layer.z(x)[None, :]
        last = layer.last(None, 1)
    else:
        z = layer.z(d_prev)
        last = layer.last(d_prev, d_prev.shape[0])
    return [layer.neuron.angles(z[:, i], last[:, i]) for i in range(layer.size)]


def _wrap(a):
    """Angles mod 2 pi into (-pi, pi]: a conditioned rotation's sign is a phase of its branch."""
    return (np.asarray(a) + math.pi) % (2 * math.pi) - math.pi


def _affine(table: np.ndarray, width: int) -> Optional[np.ndarray]:
    """Per-bit increments if table[v] = table[0] + sum_j bit_j(v) * delta_j, else None."""
    bits, _ = _patterns(width)
    delta = np.array([table[1 << j] - table[0] for j in range(width)])
    if np.allclose(table, table[0] + bits @ delta, atol=_TOL, rtol=0):
        return delta
    return None


def _limit(opts: Options, caps: Capabilities) -> int:
    return caps.max_table_width if opts.max_table_width is None else opts.max_table_width


def _table_refusal(layer: HiddenLayer, prev: HiddenLayer, width: int, limit: int, strategy: str,
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


# --------------------------------------------------------------------------- dynamic


def lower_dynamic(spec: NetworkSpec, caps: Capabilities, opts: Options) -> Lowered:
    b = _Builder(spec.name)
    limit = _limit(opts, caps)
    lowered = Lowered("dynamic", [])
    free: list[int] = []  # measured qubits that a reset makes reusable
    used_before: set[int] = set()
    prev_qubit: list[Optional[int]] = []
    prev_clbits: tuple[int, ...] = ()
    for li, layer in enumerate(spec.hidden):
        prev = spec.hidden[li - 1] if li else None
        emit_bits = b.creg(layer.name, layer.size)
        n_scratch = len(layer.neuron.measures) - 1
        scratch = b.creg(f"{layer.name}_aux", n_scratch * layer.size) if n_scratch else ()
        angles: Optional[list] = None  # None: too wide to enumerate; real time only
        if prev is None:
            angles = _layer_angles(layer, None, spec.x)
            realisation = "constant"
        else:
            w = prev.size
            if w <= ENUMERABLE_WIDTH:
                _, d = _patterns(w)
                angles = _layer_angles(layer, d, spec.x)
            elif missing(REALTIME_ANGLES, caps):
                raise _table_refusal(layer, prev, w, limit, "dynamic", "table of conditions", caps)
            realisation = "affine"
        next_carries = li + 1 < len(spec.hidden) and spec.hidden[li + 1].carried
        outs: list[_NeuronOut] = []
        qubit_of: list[Optional[int]] = []
        release: list[int] = []
        for i in range(layer.size):
            nm = layer.neuron
            regs: dict[str, int] = {}
            pre: list[Op] = []
            for reg in nm.ndef.registers:
                if reg.carried and layer.carried:
                    regs[reg.name] = prev_qubit[i]
                    continue
                if free and caps.supports_reset:
                    q = free.pop(0)
                else:
                    q = b.qubit()
                if q in used_before:
                    pre.append(Op("reset", (q,), role="reset", layer=li))
                used_before.add(q)
                regs[reg.name] = q
            segs: list[Segment] = [("gate", pre, None)] if pre else []
            realtime = (_RealtimeAngles(b, layer, prev, li, i, prev_clbits, caps, opts)
                        if prev is not None else None)
            gi = mi = 0
            for op in nm.ndef.ops:
                if isinstance(op, ir.GateOp):
                    qs = tuple(regs[t] for t in op.targets)
                    if op.angle is None:
                        segs.append(("gate", [Op(op.gate, qs, layer=li)], None))
                    else:
                        if angles is not None:
                            table = angles[i][gi]
                        elif not nm.varies(gi):
                            table = np.atleast_1d(nm.angles(0.0, 1.0)[gi])
                        else:
                            table = None  # a function of bits too many to enumerate
                        ops, kind = _dynamic_rotation(op.gate, qs[0], table, prev, prev_clbits,
                                                      li, layer, limit, realtime, gi)
                        if kind == "table" and realisation != "real-time":
                            realisation = "table"
                        elif kind == "real-time":
                            realisation = kind
                        segs.append(("rotation", ops, qs[0]))
                    gi += 1
                elif isinstance(op, ir.MeasureOp):
                    q = regs[op.target]
                    cl = emit_bits[i] if op.emit else scratch[i * n_scratch + _aux_index(nm, mi)]
                    b.outcomes.append(Outcome(cl, li, i, 0, mi, op.emit))
                    segs.append(("measure", [Op("measure", (q,), clbit=cl, layer=li)], q))
                    mi += 1
                elif isinstance(op, ir.ResetOp):
                    segs.append(("reset", [Op("reset", (regs[op.target],), layer=li)], None))
            primary = regs.get(nm.qubit_reg) if nm.qubit_reg else regs[nm.registers[0]]
            outs.append(_NeuronOut(segs, primary))
            qubit_of.append(regs.get(nm.qubit_reg) if nm.qubit_reg else None)
            for name, q in regs.items():
                if not (next_carries and name == nm.qubit_reg):
                    release.append(q)
        _assemble_layer(b, outs, li, opts)
        # Reuse starts with the next layer: the neurons of one layer stay parallel.
        free.extend(release)
        q = layer.quantised
        if realisation == "real-time" and q is not None:
            realisation = (f"real-time {q.squash}, a/2^{q.bits} grid" if q.squash == "clip"
                           else f"real-time sign, 2^{int(np.log2(q.grid))} grid")
        lowered.layer_realisation[layer.name] = realisation
        prev_qubit, prev_clbits = qubit_of, emit_bits
        free.sort()
    if b.n_qubits > caps.max_qubits:
        raise _qubit_refusal(spec, caps, b.n_qubits, "dynamic")
    lowered.circuits.append(b.build(tuple(range(len(spec.hidden)))))
    return lowered


def _aux_index(nm, mi: int) -> int:
    return mi if mi < nm.emit_index else mi - 1


def _dynamic_rotation(gate: str, q: int, table: Optional[np.ndarray], prev: Optional[HiddenLayer],
                      prev_clbits: tuple[int, ...], li: int, layer: HiddenLayer,
                      limit: int, realtime: Optional["_RealtimeAngles"] = None,
                      gate_index: int = 0) -> tuple[list[Op], str]:
    """A rotation whose angle is `table[v]` for outcome pattern v of the previous layer
    (None: too many patterns to enumerate): constant, affine in the bits, a table of
    conditions, or computed in real time when the table is refused."""
    if prev is None or (table is not None and np.ptp(table) < _TOL):
        return [Op(gate, (q,), float(table[0]), layer=li)], "constant"
    w = prev.size
    delta = _affine(table, w) if table is not None else None
    if delta is not None:
        ops = [Op(gate, (q,), float(table[0]), layer=li)]
        for j in range(w):
            if abs(_wrap(delta[j])) > _TOL:
                ops.append(Op(gate, (q,), float(delta[j]), condition=Condition((prev_clbits[j],), 1),
                              role="table", layer=li))
        return ops, "affine"
    if table is None or w > limit:
        if realtime is None or not realtime.available:
            raise _table_refusal(layer, prev, w, limit, "dynamic", "table of conditions",
                                 realtime.caps if realtime else None)
        return realtime.rotation(gate, q, gate_index), "real-time"
    # Hoist the most common angle; condition only the patterns that differ from it.
    wrapped = np.round(_wrap(table), 9)
    vals, counts = np.unique(wrapped, return_counts=True)
    base_idx = int(np.flatnonzero(wrapped == vals[np.argmax(counts)])[0])
    base = float(table[base_idx])
    ops = [Op(gate, (q,), base, layer=li)] if abs(_wrap(base)) > _TOL else []
    for v in range(table.size):
        diff = float(_wrap(table[v] - base))
        if abs(diff) > _TOL:
            ops.append(Op(gate, (q,), diff, condition=Condition(prev_clbits, v), role="table", layer=li))
    return ops, "table"


class _RealtimeAngles:
    """One neuron's angles computed during the shot from the previous layer's bits.

    With weights K and bias Kb on the layer's integer grid, the pre-activation in grid
    units is Z = Kb + sum_j K_j d_j = (Kb + sum K) - 2 sum_j K_j b_j (d_j = 1 - 2 b_j).
    A register T = Z + A + O (A = 2^bits for clip, 0 for sign; the offset O >= 0 makes
    T >= 0 for every pattern) is accumulated from a constant: first the terms with
    K_j < 0 (added), then those with K_j > 0 (subtracted), so that every intermediate
    value lies in [0, max T]. Then
      clip: T is clamped to [O, O + 2A] and O subtracted: V = clip(Z, -A, A) + A, and
            f(z/a) = (V - A) / A; the angle c0 + c1 f + c2 last is a constant rotation
            plus one rotation c1 2^k / A conditioned on bit k of V, exact;
      sign: one comparison bit s = (T >= O), i.e. Z >= 0 (sign(0) = +1), and the
            angle is a constant plus 2 c1 conditioned on s.
    `last` (the previous outcome of a carried qubit) is one bit: -2 c2 conditioned on it."""

    def __init__(self, b: _Builder, layer: HiddenLayer, prev: HiddenLayer, li: int, i: int,
                 prev_clbits: tuple[int, ...], caps: Capabilities, opts: Options):
        self.b, self.layer, self.prev, self.li, self.i = b, layer, prev, li, i
        self.prev_clbits, self.caps, self.opts = prev_clbits, caps, opts
        self.available = not missing(REALTIME_ANGLES, caps)
        self.value: Optional[tuple[int, ...]] = None  # V's clbits (clip) or (s,) (sign)

    def _refuse_form(self) -> Exception:
        nm, layer = self.layer.neuron, self.layer
        form = realtime_squash(nm)
        tail = ("use `f = clip` (exact with `--weight-bits M`), `--strategy layered` (host "
                f"feed-forward), or a previous layer of at most {_limit(self.opts, self.caps)} "
                "bits (a table of conditions)")
        if form is not None and form[0] == "tanh":
            return refuse("Q0333", f"layer `{layer.name}` computes tanh(z/a) with a = {form[1]:g} "
                          f"in its `{nm.ndef.name}` angles: integer real-time arithmetic cannot "
                          "compute tanh exactly", layer.span, help=tail,
                          notes=("real-time angles are exact for a clip squash with weights on "
                                 "the grid a/2^M, and for sign (a = 0)",))
        return refuse("Q0333", f"layer `{layer.name}`: the angles of neuron `{nm.ndef.name}` are "
                      "not all of the form c0 + c1 f(z/a) + c2 last with one squash f and one a, "
                      "which real-time arithmetic computes", layer.span, help=tail)

    def _compute(self) -> list[Op]:
        layer, li, i = self.layer, self.li, self.i
        form = realtime_squash(layer.neuron)
        if form is None or form[0] not in ("clip", "sign"):
            raise self._refuse_form()
        qz = layer.quantised
        if qz is None and self.opts.weight_bits is not None:
            raise refuse("Q0306", f"layer `{layer.name}` has no integer weights although "
                         f"weight bits {self.opts.weight_bits} were asked for",
                         layer.span, help="resolve the network with the same `weight_bits` "
                         "(`compile_network(..., weight_bits=M)` does)")
        if qz is None:  # exact in integers, but the weights are not on a grid
            raise _table_refusal(layer, self.prev, self.prev.size, _limit(self.opts, self.caps),
                                 "dynamic", "table of conditions", self.caps)
        k = qz.weight_int[i].astype(object)  # Python integers: no overflow
        kb = int(qz.bias_int[i])
        clip = qz.squash == "clip"
        half = 2 ** qz.bits if clip else 0  # A
        spread = int(sum(abs(v) for v in k))
        z_min, z_max = kb - spread, kb + spread
        offset = max(0, -(z_min + half))
        start = kb + int(sum(k)) + half + offset
        adds = [(2 * -int(v), self.prev_clbits[j]) for j, v in enumerate(k) if v < 0]
        subs = [(2 * int(v), self.prev_clbits[j]) for j, v in enumerate(k) if v > 0]
        top = max(kb + spread + half + offset, offset + 2 * half, 1)
        width = top.bit_length()
        if width > self.caps.max_register_width:
            raise refuse("Q0334", f"layer `{layer.name}`, neuron {i}: the real-time sum reaches "
                         f"{top}, a {width}-bit register; `{self.caps.backend}` allows "
                         f"{self.caps.max_register_width} bits", layer.span,
                         help="use fewer `--weight-bits`")
        b = self.b
        reg = b.creg(f"{layer.name}_rt{i}", width)
        t = RegVal(reg)

        def assign(expr, targets=reg, condition=None) -> Op:
            return Op("assign", (), condition=condition, role="classical", layer=li, expr=expr,
                      targets=targets)

        ops = []
        chunks = [adds[s:s + REALTIME_CHUNK] for s in range(0, len(adds), REALTIME_CHUNK)] or [[]]
        ops.append(assign(weighted_sum(chunks[0], Lit(start))))
        ops += [assign(weighted_sum(c, t)) for c in chunks[1:]]
        for s in range(0, len(subs), REALTIME_CHUNK):
            ops.append(assign(Arith("-", t, weighted_sum(subs[s:s + REALTIME_CHUNK]))))
        if not clip:
            flag = b.creg(f"{layer.name}_rt{i}_sign", 1)
            ops.append(assign(Arith(">=", t, Lit(offset)), flag))
            self.value = flag
            return ops
        flags = b.creg(f"{layer.name}_rt{i}_clamp", 2)
        if z_min < -half:  # T < O: Z below -A
            ops.append(assign(Arith("<", t, Lit(offset)), (flags[0],)))
            ops.append(assign(Lit(offset), condition=Condition((flags[0],), 1)))
        if z_max > half:  # T > O + 2A: Z above A
            ops.append(assign(Arith(">", t, Lit(offset + 2 * half)), (flags[1],)))
            ops.append(assign(Lit(offset + 2 * half), condition=Condition((flags[1],), 1)))
        if offset:
            ops.append(assign(Arith("-", t, Lit(offset))))
        self.value = reg[:qz.bits + 2]  # V in [0, 2A] = [0, 2^(bits+1)]
        return ops

    def rotation(self, gate: str, q: int, gate_index: int) -> list[Op]:
        layer, li = self.layer, self.li
        form = layer.neuron.squash_form(gate_index)
        if form is None:
            raise self._refuse_form()
        # the register is computed once per neuron, before its first use
        ops = self._compute() if (form.kind is not None and self.value is None) else []
        qz = layer.quantised
        base = form.c0 + form.c2
        conditioned: list[tuple[float, int]] = []
        if layer.carried:  # last = 1 - 2 b_i of the previous layer's same neuron
            conditioned.append((-2 * form.c2, self.prev_clbits[self.i]))
        if form.kind == "clip":
            half = 2 ** qz.bits
            base -= form.c1
            conditioned += [(form.c1 * 2 ** k / half, c) for k, c in enumerate(self.value)]
        elif form.kind == "sign":
            base -= form.c1
            conditioned.append((2 * form.c1, self.value[0]))
        ops.append(Op(gate, (q,), float(base), layer=li))
        for angle, clbit in conditioned:
            if abs(_wrap(angle)) > _TOL:
                ops.append(Op(gate, (q,), float(angle), condition=Condition((clbit,), 1),
                              role="realtime", layer=li))
        return ops


def _qubit_refusal(spec: NetworkSpec, caps: Capabilities, need: int, strategy: str) -> Exception:
    return refuse(
        "Q0305",
        f"the `{strategy}` circuit for network `{spec.name}` needs {need} qubits; backend "
        f"`{caps.backend}` of target `{caps.target}` has {caps.max_qubits}",
        spec.span,
        help="use `--strategy layered`, which splits wide layers into chunks that fit"
        if strategy != "layered" else "use a larger backend",
    )


# --------------------------------------------------------------------------- deferred


def lower_deferred(spec: NetworkSpec, caps: Capabilities, opts: Options) -> Lowered:
    b = _Builder(spec.name)
    limit = _limit(opts, caps)
    lowered = Lowered("deferred", [])
    prev_out: list[int] = []  # outcome qubits of the previous layer's emits
    prev_qubit: list[Optional[int]] = []
    for li, layer in enumerate(spec.hidden):
        prev = spec.hidden[li - 1] if li else None
        emit_bits = b.creg(layer.name, layer.size)
        nm = layer.neuron
        n_scratch = len(nm.measures) - 1
        scratch = b.creg(f"{layer.name}_aux", n_scratch * layer.size) if n_scratch else ()
        if prev is None:
            angles = _layer_angles(layer, None, spec.x)
        else:
            if prev.size > ENUMERABLE_WIDTH:
                raise _table_refusal(layer, prev, prev.size, limit, "deferred", "multiplexed rotation")
            _, d = _patterns(prev.size)
            angles = _layer_angles(layer, d, spec.x)
        next_carries = li + 1 < len(spec.hidden) and spec.hidden[li + 1].carried
        outs, out_q, qubit_of = [], [], []
        realisation = "constant" if prev is None else "controlled"
        for i in range(layer.size):
            regs = {}
            for reg in nm.ndef.registers:
                regs[reg.name] = prev_qubit[i] if (reg.carried and layer.carried) else b.qubit()
            later = _later_uses(nm.ndef.ops)
            segs: list[Segment] = []
            gi = mi = 0
            emit_q = None
            for k, op in enumerate(nm.ndef.ops):
                if isinstance(op, ir.GateOp):
                    qs = tuple(regs[t] for t in op.targets)
                    if op.angle is None:
                        segs.append(("gate", [Op(op.gate, qs, layer=li)], None))
                    else:
                        ops, kind = _deferred_rotation(op.gate, qs[0], angles[i][gi], prev, prev_out,
                                                       li, layer, limit)
                        if kind == "multiplexed":
                            realisation = "multiplexed"
                        segs.append(("rotation", ops, qs[0]))
                    gi += 1
                elif isinstance(op, ir.MeasureOp):
                    q = regs[op.target]
                    carried_on = next_carries and op.target == nm.qubit_reg
                    ops = []
                    if op.target in later[k] or carried_on:
                        # the qubit lives on: measure a CX copy of it instead
                        c = b.qubit()
                        ops.append(Op("cx", (q, c), role="copy", layer=li))
                        q = c
                    cl = emit_bits[i] if op.emit else scratch[i * n_scratch + _aux_index(nm, mi)]
                    b.outcomes.append(Outcome(cl, li, i, 0, mi, op.emit))
                    b.final.append(Op("measure", (q,), clbit=cl, layer=li))
                    if op.emit:
                        emit_q = q
                    segs.append(("measure", ops, q))
                    mi += 1
                elif isinstance(op, ir.ResetOp):
                    regs[op.target] = b.qubit()  # a fresh |0> replaces the discarded one
            primary = regs.get(nm.qubit_reg) if nm.qubit_reg else regs[nm.registers[0]]
            outs.append(_NeuronOut(segs, primary))
            out_q.append(emit_q)
            qubit_of.append(regs.get(nm.qubit_reg) if nm.qubit_reg else None)
        _assemble_layer(b, outs, li, opts)
        lowered.layer_realisation[layer.name] = realisation
        prev_out, prev_qubit = out_q, qubit_of
    b.final.sort(key=lambda o: o.clbit)
    if b.n_qubits > caps.max_qubits:
        raise refuse(
            "Q0305",
            f"the `deferred` circuit for network `{spec.name}` needs {b.n_qubits} qubits (no "
            f"qubit is reused without mid-circuit measurement); backend `{caps.backend}` of "
            f"target `{caps.target}` has {caps.max_qubits}",
            spec.span, help="use `--strategy layered`, which runs one layer per circuit")
    lowered.circuits.append(b.build(tuple(range(len(spec.hidden)))))
    return lowered


def _later_uses(ops) -> list[set[str]]:
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




def _deferred_rotation(gate: str, q: int, table: np.ndarray, prev: Optional[HiddenLayer],
                       controls: list[int], li: int, layer: HiddenLayer,
                       limit: int) -> tuple[list[Op], str]:
    if prev is None or np.ptp(table) < _TOL:
        return [Op(gate, (q,), float(table[0]), layer=li)], "constant"
    w = prev.size
    v = np.arange(table.size)
    deps = [j for j in range(w) if np.max(np.abs(table - table[v ^ (1 << j)])) > _TOL]
    k = len(deps)
    if k > limit:
        raise _table_refusal(layer, prev, k, limit, "deferred", "multiplexed rotation")
    # the table restricted to the controls it depends on
    sub = np.array([table[sum(((u >> m) & 1) << deps[m] for m in range(k))] for u in range(2 ** k)])
    cg = sign_flip_control(gate)
    delta = _affine(sub, k)
    if delta is not None and 2 * k < 2 ** k:
        ops = [Op(gate, (q,), float(sub[0]), layer=li)]
        for m in range(k):
            c = controls[deps[m]]
            half = float(delta[m]) / 2
            ops += [Op(gate, (q,), half, role="multiplex", layer=li),
                    Op(cg, (c, q), role="multiplex", layer=li),
                    Op(gate, (q,), -half, role="multiplex", layer=li),
                    Op(cg, (c, q), role="multiplex", layer=li)]
        return ops, "controlled"
    # Uniformly controlled rotation (Gray-code order): before step i the target has been
    # flipped by the controls in gray(i), so theta(u) = sum_i (-1)^{|u & gray(i)|} alpha_i.
    n = 2 ** k
    gray = [i ^ (i >> 1) for i in range(n)]
    signs = np.array([[(-1) ** bin(u & g).count("1") for g in gray] for u in range(n)])
    alpha = signs.T @ sub / n
    ops = []
    for i in range(n):
        if abs(alpha[i]) > _TOL:
            ops.append(Op(gate, (q,), float(alpha[i]), role="multiplex", layer=li))
        flip = gray[i] ^ gray[(i + 1) % n]
        ops.append(Op(cg, (controls[deps[flip.bit_length() - 1]], q), role="multiplex", layer=li))
    return ops, "multiplexed"


# --------------------------------------------------------------------------- layered


def _neuron_qubits(nm) -> int:
    """Qubits one neuron takes in a layered circuit (registers, CX copies, resets)."""
    later = _later_uses(nm.ndef.ops)
    n = nm.num_registers
    for k, op in enumerate(nm.ndef.ops):
        if isinstance(op, ir.MeasureOp) and op.target in later[k]:
            n += 1
        elif isinstance(op, ir.ResetOp):
            n += 1
    return n


def lower_layered(spec: NetworkSpec, caps: Capabilities, opts: Options) -> Lowered:
    lowered = Lowered("layered", [])
    if opts.copies is not None and opts.copies < 1:
        raise refuse("Q0308", f"copies must be at least 1, not {opts.copies}")
    for li, layer in enumerate(spec.hidden):
        nm = layer.neuron
        qpn = _neuron_qubits(nm)
        if qpn > caps.max_qubits:
            raise refuse("Q0305", f"one `{nm.ndef.name}` neuron needs {qpn} qubits; backend "
                         f"`{caps.backend}` has {caps.max_qubits}", layer.span)
        per = caps.max_qubits // qpn
        n_chunks = -(-layer.size // per)
        bounds = np.linspace(0, layer.size, n_chunks + 1).round().astype(int)
        for c in range(n_chunks):
            idx = tuple(range(bounds[c], bounds[c + 1]))
            fit = caps.max_qubits // (qpn * len(idx))
            copies = fit if opts.copies is None else opts.copies
            if copies > fit:
                raise refuse("Q0305", f"{copies} copies of layer `{layer.name}` "
                             f"({len(idx)} neurons, {qpn * len(idx)} qubits each) need "
                             f"{copies * qpn * len(idx)} qubits; backend `{caps.backend}` has "
                             f"{caps.max_qubits}", layer.span,
                             help=f"use at most {fit} copies")
            lowered.chunks.append(_layered_chunk(spec, li, idx, copies, c, n_chunks, opts))
        lowered.layer_realisation[layer.name] = (
            f"{n_chunks} chunk{'s' if n_chunks > 1 else ''}, host-bound angles")
    lowered.circuits = [ch.circuit for ch in lowered.chunks]
    if any(h.carried for h in spec.hidden[1:]):
        lowered.notes.append("carried qubits are re-prepared each layer from the host's record "
                             "of their measured branch")
    return lowered


def _fenced(op: Op) -> list[Op]:
    """A host-bound rotation between barriers. Compilers would otherwise fuse it with its
    neighbours into one symbolic gate; pytket's fused formulas (acos of a sum of
    products) leave their domain by rounding at angles such as 0 and pi, and binding
    the values then fails."""
    fence = Op("barrier", op.qubits, role="fence", layer=op.layer)
    return [fence, op, fence]


def _layered_chunk(spec: NetworkSpec, li: int, idx: tuple[int, ...], copies: int, c: int,
                   n_chunks: int, opts: Options) -> ChunkPlan:
    layer = spec.hidden[li]
    nm = layer.neuron
    name = layer.name if n_chunks == 1 else f"{layer.name}.{c}"
    b = _Builder(name)
    n_gates, n_meas = len(nm.gates), len(nm.measures)
    angle_params = -np.ones((copies, len(idx), n_gates), dtype=np.int64)
    prep_params = -np.ones((copies, len(idx), 2), dtype=np.int64)
    clbits = -np.ones((copies, len(idx), n_meas), dtype=np.int64)
    later = _later_uses(nm.ndef.ops)
    for cp in range(copies):
        bits = b.creg(f"{layer.name}_c{cp}" if copies > 1 else layer.name, len(idx) * n_meas)
        outs = []
        for j, i in enumerate(idx):
            regs = {reg.name: b.qubit() for reg in nm.ndef.registers}
            segs: list[Segment] = []
            if nm.carried_reg is not None:
                q = regs[nm.carried_reg]
                py = b.param(f"{layer.name}_c{cp}_n{i}_prep_y")
                pz = b.param(f"{layer.name}_c{cp}_n{i}_prep_z")
                prep_params[cp, j] = (py.index, pz.index)
                segs.append(("gate", _fenced(Op("ry", (q,), py, role="prep", layer=li))
                             + _fenced(Op("rz", (q,), pz, role="prep", layer=li)), None))
            gi = mi = 0
            for k, op in enumerate(nm.ndef.ops):
                if isinstance(op, ir.GateOp):
                    qs = tuple(regs[t] for t in op.targets)
                    if op.angle is None:
                        segs.append(("gate", [Op(op.gate, qs, layer=li)], None))
                    elif not nm.varies(gi):
                        # the same angle in every shot: no parameter needed
                        fixed = float(nm.angles(0.0, 1.0)[gi])
                        segs.append(("rotation", [Op(op.gate, qs, fixed, layer=li)], qs[0]))
                    else:
                        p = b.param(f"{layer.name}_c{cp}_n{i}_g{gi}")
                        angle_params[cp, j, gi] = p.index
                        segs.append(("rotation", _fenced(Op(op.gate, qs, p, layer=li)), qs[0]))
                    gi += 1
                elif isinstance(op, ir.MeasureOp):
                    q = regs[op.target]
                    ops = []
                    if op.target in later[k]:
                        cq = b.qubit()
                        ops.append(Op("cx", (q, cq), role="copy", layer=li))
                        q = cq
                    cl = bits[j * n_meas + mi]
                    clbits[cp, j, mi] = cl
                    b.outcomes.append(Outcome(cl, li, i, cp, mi, op.emit))
                    b.final.append(Op("measure", (q,), clbit=cl, layer=li))
                    segs.append(("measure", ops, q))
                    mi += 1
                elif isinstance(op, ir.ResetOp):
                    regs[op.target] = b.qubit()
            primary = regs.get(nm.qubit_reg) if nm.qubit_reg else regs[nm.registers[0]]
            outs.append(_NeuronOut(segs, primary))
        _assemble_layer(b, outs, li, opts)
    b.final.sort(key=lambda o: o.clbit)
    return ChunkPlan(b.build((li,)), li, idx, copies, angle_params, prep_params, clbits)


# --------------------------------------------------------------------------- registry

PASSES: dict[str, Callable[[NetworkSpec, Capabilities, Options], Lowered]] = {
    "dynamic": lower_dynamic,
    "layered": lower_layered,
    "deferred": lower_deferred,
}


def lower(strategy: str, spec: NetworkSpec, caps: Capabilities, opts: Options) -> Lowered:
    if opts.noise_pairs is not None:
        if opts.noise_pairs < 0:
            raise refuse("Q0308", f"noise pairs must be 0 or more, not {opts.noise_pairs}")
        check_noise_kind(opts.noise_kind, caps)
    return PASSES[strategy](spec, caps, opts)
