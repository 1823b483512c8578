"""The `layered` strategy: one parametrised circuit per layer (chunks of a wide layer,
several copies packed side by side); the host binds each shot's angles from the
previous layer's measured bits (`host.run_layered`)."""

from __future__ import annotations

import numpy as np

from qnnc.compiler import ir
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.circuit import Op, Outcome
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.lowering.common import (Builder, ChunkPlan, Lowered, NeuronOut, Options,
                                                  Segment, assemble_layer, later_uses)
from qnnc.runtime.targets.network import NetworkSpec

def _neuron_qubits(nm) -> int:
    """Qubits one neuron takes in a layered circuit (registers, CX copies, resets)."""
    later = later_uses(nm.ndef.ops)
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
    b = Builder(name)
    n_gates, n_meas = len(nm.gates), len(nm.measures)
    angle_params = -np.ones((copies, len(idx), n_gates), dtype=np.int64)
    prep_params = -np.ones((copies, len(idx), 2), dtype=np.int64)
    clbits = -np.ones((copies, len(idx), n_meas), dtype=np.int64)
    later = later_uses(nm.ndef.ops)
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
            outs.append(NeuronOut(segs, primary))
        assemble_layer(b, outs, li, opts)
    b.final.sort(key=lambda o: o.clbit)
    return ChunkPlan(b.build((li,)), li, idx, copies, angle_params, prep_params, clbits)
