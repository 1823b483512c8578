"""The `program` strategy: the network as one Guppy program per shot, its angles
computed at run time in floats (`guppy_source`). Besides the source, a neutral skeleton
circuit of one forward pass: the qubits the program holds (freed qubits reused, as the
runtime does), its gates, measurements and resets in order, and which measured bit is
which neuron's outcome. The skeleton carries no angles (they exist only at run time);
it gives the summary its counts and the host its outcome layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from qnnc.compiler import ir
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.circuit import Op, Outcome
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.helios.guppy_source import GuppySource, guppy_source
from qnnc.runtime.targets.lowering.common import Builder, Lowered, Options, aux_index
from qnnc.runtime.targets.network import NetworkSpec


@dataclass
class ProgramLowered(Lowered):
    source: Optional[GuppySource] = None


def live_qubits(spec: NetworkSpec) -> list[tuple[int, int]]:
    """Per hidden layer: (qubits carried through it, fresh qubits per neuron)."""
    out = []
    for li, layer in enumerate(spec.hidden):
        nm = layer.neuron
        keeps = li + 1 < len(spec.hidden) and spec.hidden[li + 1].carried
        carried = nm.carried_reg is not None and (keeps or layer.carried)
        out.append((layer.size if carried else 0, nm.num_registers - (1 if carried else 0)))
    return out


def check_fits(spec: NetworkSpec, caps: Capabilities) -> None:
    """Q0321 when the program would hold more qubits at once than the device has."""
    for layer, (carried, fresh) in zip(spec.hidden, live_qubits(spec)):
        if carried + fresh > caps.max_qubits:
            fit = caps.max_qubits - fresh
            raise refuse("Q0321", f"layer `{layer.name}` holds {carried + fresh} qubits at once "
                         f"({carried} carried + {fresh} per neuron); `{caps.backend}` has "
                         f"{caps.max_qubits}", layer.span,
                         help=f"carried layers of at most {max(fit, 0)} neurons fit `{caps.backend}` "
                              "(layers whose neurons carry no qubit need only "
                              f"{fresh} at a time, whatever their width)")


def skeleton(spec: NetworkSpec) -> tuple:
    """The neutral circuit of one forward pass (see the module docstring)."""
    b = Builder(spec.name)
    free: list[int] = []
    used: set[int] = set()
    carried_q: list[int] = []
    for li, (layer, (n_carried, _)) in enumerate(zip(spec.hidden, live_qubits(spec))):
        nm = layer.neuron
        emit_bits = b.creg(layer.name, layer.size)
        n_aux = len(nm.measures) - 1
        aux = b.creg(f"{layer.name}_aux", n_aux * layer.size) if n_aux else ()

        def take() -> int:
            q = free.pop(0) if free else b.qubit()
            if q in used:
                b.ops.append(Op("reset", (q,), role="reset", layer=li))
            used.add(q)
            return q

        if n_carried and not layer.carried:
            carried_q = [take() for _ in range(layer.size)]
        for i in range(layer.size):
            regs: dict[str, int] = {}
            local = []
            for r in nm.ndef.registers:
                if n_carried and r.name == nm.carried_reg:
                    regs[r.name] = carried_q[i]
                else:
                    regs[r.name] = take()
                    local.append(regs[r.name])
            mi = 0
            for op in nm.ndef.ops:
                if isinstance(op, ir.GateOp):
                    b.ops.append(Op(op.gate, tuple(regs[t] for t in op.targets), layer=li))
                elif isinstance(op, ir.MeasureOp):
                    cl = emit_bits[i] if op.emit else aux[i * n_aux + aux_index(nm, mi)]
                    b.outcomes.append(Outcome(cl, li, i, 0, mi, op.emit))
                    b.ops.append(Op("measure", (regs[op.target],), clbit=cl, layer=li))
                    mi += 1
                elif isinstance(op, ir.ResetOp):
                    b.ops.append(Op("reset", (regs[op.target],), layer=li))
            free.extend(local)  # discarded: the runtime reuses them
        if n_carried and not (li + 1 < len(spec.hidden) and spec.hidden[li + 1].carried):
            free.extend(carried_q)  # the chain ends: discarded
            carried_q = []
    return b.build(tuple(range(len(spec.hidden))))


def lower_program(spec: NetworkSpec, caps: Capabilities, opts: Options) -> ProgramLowered:
    if opts.weight_bits is not None:
        raise refuse("Q0308", "--weight-bits rounds weights for integer real-time arithmetic; "
                     "the Helios program computes in floats and rounds nothing",
                     help="leave out --weight-bits")
    check_fits(spec, caps)
    source = guppy_source(spec, [spec.x])
    notes = [f"one Guppy program per shot: weights unrounded (float64), angles computed at "
             f"run time; at most {source.max_live_qubits} qubit(s) held at once"]
    if source.approximated:
        from qnnc.runtime.targets.helios.guppy_source import TANH_MAX_ERROR

        notes.append(f"tanh is computed by `tanh_approx` (Guppy has no tanh): |error| <= "
                     f"{TANH_MAX_ERROR:g}")
    realisation = {h.name: ("host z (input)" if li == 0 else "run-time float sum")
                   for li, h in enumerate(spec.hidden)}
    return ProgramLowered("program", [skeleton(spec)], notes=notes,
                          layer_realisation=realisation, source=source)
