"""The `dynamic` strategy: one circuit per forward pass. Each layer's angles, functions
of the previous layer's outcome bits, are realised exactly by gates conditioned on
those bits: one conditioned correction per bit when the angle is affine in the bits,
otherwise a table over the previous layer's outcome patterns (exponential: refused
above `max_table_width`), or, on a target with real-time arithmetic and with
quantised weights, an integer register computed during the shot (`_RealtimeAngles`).
Qubits are reused through reset."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from qnnc.compiler import ir
from qnnc.runtime.targets.capabilities import REALTIME_ANGLES, Capabilities, missing
from qnnc.runtime.targets.circuit import Arith, Condition, Lit, Op, Outcome, RegVal, weighted_sum
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.lowering.common import (ENUMERABLE_WIDTH, TOLERANCE, Builder, Lowered,
                                                  NeuronOut, Options, Segment, affine_increments,
                                                  assemble_layer, aux_index, layer_angles, patterns,
                                                  table_refusal, table_width_limit)
from qnnc.runtime.targets.network import HiddenLayer, NetworkSpec, realtime_squash

# Terms per real-time sum: one sum of hundreds of terms breaks vendor converters
# (pytket-qir crashed on 512), so long sums are accumulated in chunks.
REALTIME_CHUNK = 32


def _wrap(a):
    """Angles mod 2 pi into (-pi, pi]: a conditioned rotation's sign is a phase of its branch."""
    return (np.asarray(a) + math.pi) % (2 * math.pi) - math.pi


def lower_dynamic(spec: NetworkSpec, caps: Capabilities, opts: Options) -> Lowered:
    b = Builder(spec.name)
    limit = table_width_limit(opts, caps)
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
            angles = layer_angles(layer, None, spec.x)
            realisation = "constant"
        else:
            w = prev.size
            if w <= ENUMERABLE_WIDTH:
                _, d = patterns(w)
                angles = layer_angles(layer, d, spec.x)
            elif missing(REALTIME_ANGLES, caps):
                raise table_refusal(layer, prev, w, limit, "dynamic", "table of conditions", caps)
            realisation = "affine"
        next_carries = li + 1 < len(spec.hidden) and spec.hidden[li + 1].carried
        outs: list[NeuronOut] = []
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
                    cl = emit_bits[i] if op.emit else scratch[i * n_scratch + aux_index(nm, mi)]
                    b.outcomes.append(Outcome(cl, li, i, 0, mi, op.emit))
                    segs.append(("measure", [Op("measure", (q,), clbit=cl, layer=li)], q))
                    mi += 1
                elif isinstance(op, ir.ResetOp):
                    segs.append(("reset", [Op("reset", (regs[op.target],), layer=li)], None))
            primary = regs.get(nm.qubit_reg) if nm.qubit_reg else regs[nm.registers[0]]
            outs.append(NeuronOut(segs, primary))
            qubit_of.append(regs.get(nm.qubit_reg) if nm.qubit_reg else None)
            for name, q in regs.items():
                if not (next_carries and name == nm.qubit_reg):
                    release.append(q)
        assemble_layer(b, outs, li, opts)
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


def _dynamic_rotation(gate: str, q: int, table: Optional[np.ndarray], prev: Optional[HiddenLayer],
                      prev_clbits: tuple[int, ...], li: int, layer: HiddenLayer,
                      limit: int, realtime: Optional["_RealtimeAngles"] = None,
                      gate_index: int = 0) -> tuple[list[Op], str]:
    """A rotation whose angle is `table[v]` for outcome pattern v of the previous layer
    (None: too many patterns to enumerate): constant, affine in the bits, a table of
    conditions, or computed in real time when the table is refused."""
    if prev is None or (table is not None and np.ptp(table) < TOLERANCE):
        return [Op(gate, (q,), float(table[0]), layer=li)], "constant"
    w = prev.size
    delta = affine_increments(table, w) if table is not None else None
    if delta is not None:
        ops = [Op(gate, (q,), float(table[0]), layer=li)]
        for j in range(w):
            if abs(_wrap(delta[j])) > TOLERANCE:
                ops.append(Op(gate, (q,), float(delta[j]), condition=Condition((prev_clbits[j],), 1),
                              role="table", layer=li))
        return ops, "affine"
    if table is None or w > limit:
        if realtime is None or not realtime.available:
            raise table_refusal(layer, prev, w, limit, "dynamic", "table of conditions",
                                 realtime.caps if realtime else None)
        return realtime.rotation(gate, q, gate_index), "real-time"
    # Hoist the most common angle; condition only the patterns that differ from it.
    wrapped = np.round(_wrap(table), 9)
    vals, counts = np.unique(wrapped, return_counts=True)
    base_idx = int(np.flatnonzero(wrapped == vals[np.argmax(counts)])[0])
    base = float(table[base_idx])
    ops = [Op(gate, (q,), base, layer=li)] if abs(_wrap(base)) > TOLERANCE else []
    for v in range(table.size):
        diff = float(_wrap(table[v] - base))
        if abs(diff) > TOLERANCE:
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

    def __init__(self, b: Builder, layer: HiddenLayer, prev: HiddenLayer, li: int, i: int,
                 prev_clbits: tuple[int, ...], caps: Capabilities, opts: Options):
        self.b, self.layer, self.prev, self.li, self.i = b, layer, prev, li, i
        self.prev_clbits, self.caps, self.opts = prev_clbits, caps, opts
        self.available = not missing(REALTIME_ANGLES, caps)
        self.value: Optional[tuple[int, ...]] = None  # V's clbits (clip) or (s,) (sign)

    def _refuse_form(self) -> Exception:
        nm, layer = self.layer.neuron, self.layer
        form = realtime_squash(nm)
        tail = ("use `f = clip` (exact with `--weight-bits M`), `--strategy layered` (host "
                f"feed-forward), or a previous layer of at most {table_width_limit(self.opts, self.caps)} "
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
            raise table_refusal(layer, self.prev, self.prev.size, table_width_limit(self.opts, self.caps),
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
        form = layer.model(self.i).squash_form(gate_index)
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
            if abs(_wrap(angle)) > TOLERANCE:
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
