"""The `deferred` strategy: no mid-circuit measurement. Angles become rotations
multiplexed on the previous layer's outcome qubits (or controlled rotations when
affine); every measurement happens at the end, on a CX copy where the qubit lives on."""

from __future__ import annotations

from typing import Optional

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.gates import sign_flip_control
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.circuit import Op, Outcome
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.lowering.common import (ENUMERABLE_WIDTH, TOLERANCE, Builder, Lowered,
                                                  NeuronOut, Options, Segment, affine_increments,
                                                  assemble_layer, aux_index, later_uses,
                                                  layer_angles, patterns, table_refusal,
                                                  table_width_limit)
from qnnc.runtime.targets.network import HiddenLayer, NetworkSpec

def lower_deferred(spec: NetworkSpec, caps: Capabilities, opts: Options) -> Lowered:
    b = Builder(spec.name)
    limit = table_width_limit(opts, caps)
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
            angles = layer_angles(layer, None, spec.x)
        else:
            if prev.size > ENUMERABLE_WIDTH:
                raise table_refusal(layer, prev, prev.size, limit, "deferred", "multiplexed rotation")
            _, d = patterns(prev.size)
            angles = layer_angles(layer, d, spec.x)
        next_carries = li + 1 < len(spec.hidden) and spec.hidden[li + 1].carried
        outs, out_q, qubit_of = [], [], []
        realisation = "constant" if prev is None else "controlled"
        for i in range(layer.size):
            regs = {}
            for reg in nm.ndef.registers:
                regs[reg.name] = prev_qubit[i] if (reg.carried and layer.carried) else b.qubit()
            later = later_uses(nm.ndef.ops)
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
                    cl = emit_bits[i] if op.emit else scratch[i * n_scratch + aux_index(nm, mi)]
                    b.outcomes.append(Outcome(cl, li, i, 0, mi, op.emit))
                    b.final.append(Op("measure", (q,), clbit=cl, layer=li))
                    if op.emit:
                        emit_q = q
                    segs.append(("measure", ops, q))
                    mi += 1
                elif isinstance(op, ir.ResetOp):
                    regs[op.target] = b.qubit()  # a fresh |0> replaces the discarded one
            primary = regs.get(nm.qubit_reg) if nm.qubit_reg else regs[nm.registers[0]]
            outs.append(NeuronOut(segs, primary))
            out_q.append(emit_q)
            qubit_of.append(regs.get(nm.qubit_reg) if nm.qubit_reg else None)
        assemble_layer(b, outs, li, opts)
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


def _deferred_rotation(gate: str, q: int, table: np.ndarray, prev: Optional[HiddenLayer],
                       controls: list[int], li: int, layer: HiddenLayer,
                       limit: int) -> tuple[list[Op], str]:
    if prev is None or np.ptp(table) < TOLERANCE:
        return [Op(gate, (q,), float(table[0]), layer=li)], "constant"
    w = prev.size
    v = np.arange(table.size)
    deps = [j for j in range(w) if np.max(np.abs(table - table[v ^ (1 << j)])) > TOLERANCE]
    k = len(deps)
    if k > limit:
        raise table_refusal(layer, prev, k, limit, "deferred", "multiplexed rotation")
    # the table restricted to the controls it depends on
    sub = np.array([table[sum(((u >> m) & 1) << deps[m] for m in range(k))] for u in range(2 ** k)])
    cg = sign_flip_control(gate)
    delta = affine_increments(sub, k)
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
        if abs(alpha[i]) > TOLERANCE:
            ops.append(Op(gate, (q,), float(alpha[i]), role="multiplex", layer=li))
        flip = gray[i] ^ gray[(i + 1) % n]
        ops.append(Op(cg, (controls[deps[flip.bit_length() - 1]], q), role="multiplex", layer=li))
    return ops, "multiplexed"
