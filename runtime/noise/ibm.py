"""IBM noise models from a qiskit fake backend's `Target` (FakeBrisbane, FakeTorino, ...):
T1, T2, readout assignment errors, each native gate's error and duration, exactly the
numbers `AerSimulator.from_backend` builds its noise model from; and how qiskit's
transpiler runs each neuron gate on that backend (`natives`, read from transpiled one-
and two-gate circuits). `layout_from_compiled` reads the neurons' physical qubits from a
compiled network's transpiled circuits."""

from __future__ import annotations

from typing import Optional

from qnnc.compiler.diagnostics import error
from qnnc.compiler.gates import GATES
from qnnc.runtime.noise.model import Decomposition, GateNoise, NativeStep, NoiseModel, QubitNoise, with_layout

_NATIVE_NAMES = ("sx", "x", "ecr", "cz", "rz", "id")  # 'id' kept: a native that costs time


def from_fake_backend(name: Optional[str] = None) -> NoiseModel:
    from qnnc.runtime.targets.ibm import fake_backend

    be = fake_backend(name)
    target = be.target
    meas = target["measure"] if "measure" in target.operation_names else {}
    qubits = []
    for q in range(target.num_qubits):
        props = target.qubit_properties[q] if target.qubit_properties else None
        m = meas.get((q,)) if meas else None
        p01 = getattr(m, "prob_meas1_prep0", None) if m is not None else None
        p10 = getattr(m, "prob_meas0_prep1", None) if m is not None else None
        e = (m.error or 0.0) if m is not None else 0.0
        qubits.append(QubitNoise(q, getattr(props, "t1", None), getattr(props, "t2", None),
                                 float(e if p01 is None else p01), float(e if p10 is None else p10)))
    gates = []
    for op in _NATIVE_NAMES:
        if op not in target.operation_names:
            continue
        for qs, prop in target[op].items():
            if prop is None or qs is None:
                continue
            gates.append(GateNoise(op, tuple(int(q) for q in qs), float(prop.error or 0.0), float(prop.duration or 0.0)))
    natives = _transpiled_natives(be)
    return NoiseModel(
        name=f"ibm:{be.name}", source=f"qiskit_ibm_runtime.fake_provider {type(be).__name__} Target "
        "(calibration snapshot shipped with qiskit-ibm-runtime)", illustrative=False,
        qubits=tuple(qubits), gates=tuple(gates), natives=natives,
        notes=("channels as qiskit-aer's NoiseModel.from_backend: depolarizing + thermal relaxation "
               "after each native gate, readout assignment errors on each measurement",
               "idle: 0 s, as Aer on unscheduled circuits (no delays, so no idle relaxation)"))


def _steps_of(isa, wires_of: dict, theta) -> tuple[NativeStep, ...]:
    steps = []
    for inst in isa.data:
        name = inst.operation.name
        if name in ("barrier", "measure"):
            continue
        wires = tuple(wires_of[isa.find_bit(q).index] for q in inst.qubits)
        scale = offset = 0.0
        if inst.operation.params:
            p = inst.operation.params[0]
            if hasattr(p, "parameters") and p.parameters:
                offset = float(p.bind({theta: 0.0}))
                scale = float(p.bind({theta: 1.0})) - offset
            else:
                offset = float(p)
        steps.append(NativeStep(name, wires, scale, offset))
    return tuple(steps)


def _transpiled_natives(be) -> tuple[Decomposition, ...]:
    """How the preset level-1 pass manager runs each language gate on `be`: a rotation
    with a free angle θ (what a host-bound rotation compiles to), fixed gates as
    themselves; two-qubit gates on a coupled pair in both orientations."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter
    from qiskit.transpiler import generate_preset_pass_manager

    theta = Parameter("θ")
    target = be.target
    two = next(op for op in ("ecr", "cz", "cx") if op in target.operation_names)
    pair = next(iter(qs for qs, p in target[two].items() if p is not None))
    out = []
    for name, g in GATES.items():
        if not g.language:
            continue
        qc = QuantumCircuit(g.qubits)
        sp = g.spelling("qiskit")
        args = sp.fixed + ((theta,) if g.takes_angle else ())
        getattr(qc, sp.name)(*args, *range(g.qubits))
        layouts = [([pair[0]], None)] if g.qubits == 1 else [(list(pair), True), (list(pair[::-1]), False)]
        for lay, oriented in layouts:
            pm = generate_preset_pass_manager(optimization_level=1, backend=be, initial_layout=lay,
                                              seed_transpiler=0, routing_method="none" if g.qubits == 2 else None)
            isa = pm.run(qc)
            wires_of = {p: i for i, p in enumerate(lay)}
            out.append(Decomposition(name, _steps_of(isa, wires_of, theta), oriented))
    return tuple(out)


def layout_from_compiled(compiled) -> list[list[tuple[int, ...]]]:
    """Per hidden layer, per neuron: the physical qubits of its registers (the kernel's
    order: the neuron's `qubit`, then ancillas), read from the compiled circuits: the
    qubit of each emitted measurement and, for a neuron with a `qubit` and an ancilla,
    the partner of its last two-qubit gate before it; mapped to physical qubits by each
    transpiled circuit's initial layout (copy 0 of each layer)."""
    spec = compiled.spec
    layout: list[list[Optional[tuple[int, ...]]]] = [[None] * h.size for h in spec.hidden]
    for ci, circ in enumerate(compiled.circuits):
        isa = compiled.native.isa[ci]
        phys = isa.layout.initial_index_layout(filter_ancillas=True) if isa.layout is not None else None
        where = {op.clbit: (k, op) for k, op in enumerate(circ.ops) if op.name == "measure"}
        for o in circ.outcomes:
            if not o.emit or o.copy != 0 or layout[o.layer][o.neuron] is not None:
                continue
            k, mop = where[o.clbit]
            m = mop.qubits[0]
            nm = spec.hidden[o.layer].neuron
            regs = [r for r in nm.ndef.registers if r.role == "qubit"] + \
                   [r for r in nm.ndef.registers if r.role == "ancilla"]
            emit_reg = next(op.target for op in nm.ndef.ops if getattr(op, "emit", False))
            found: dict[str, int] = {emit_reg: m}
            if len(regs) == 2:
                other = next(r.name for r in regs if r.name != emit_reg)
                partner = None
                for op in reversed(circ.ops[:k]):
                    if len(op.qubits) == 2 and m in op.qubits and op.layer == o.layer and op.role in ("neuron", "copy"):
                        partner = op.qubits[0] if op.qubits[1] == m else op.qubits[1]
                        break
                if partner is None:
                    raise error("Q0708", f"cannot read the qubits of neuron {o.neuron} of layer "
                                f"`{spec.hidden[o.layer].name}` from the compiled circuit")
                found[other] = partner
            elif len(regs) > 2:
                raise error("Q0708", f"neuron `{nm.ndef.name}` has {len(regs)} registers; the noise "
                            "layout reader handles one or two")
            q = tuple(found[r.name] for r in regs)
            layout[o.layer][o.neuron] = tuple(int(phys[x]) if phys is not None else int(x) for x in q)
    for li, layer in enumerate(layout):
        if any(n is None for n in layer):
            raise error("Q0708", f"the compiled circuits do not place every neuron of layer "
                        f"`{spec.hidden[li].name}`")
    return layout  # type: ignore[return-value]


def bind_network(model: NoiseModel, program, network=None, backend: Optional[str] = None,
                 strategy: str = "layered") -> NoiseModel:
    """The model with the layout of the network compiled for IBM (`strategy`, one copy;
    the layout does not depend on the weights, so the declared initialisation and a zero
    input are used)."""
    import numpy as np

    from qnnc.runtime.targets import compile_network
    from qnnc.runtime.weights import initial_weights

    net = program.network(network) if not hasattr(network, "layers") else network
    w = {k: np.asarray(v, dtype=float) for k, v in initial_weights(net, 0).items()}
    for layer in net.layers:
        if layer.dense.bias:
            w[layer.name + ".bias"] = np.zeros(layer.size)
    x = np.zeros(net.input.features)
    backend = backend or model.name.split(":", 1)[1]
    compiled = compile_network(net, program.neurons, w, x, target="ibm", backend=backend, strategy=strategy,
                               copies=1 if strategy == "layered" else None)
    return with_layout(model, layout_from_compiled(compiled),
                       f"qubits of the `{strategy}` circuits compiled for {compiled.backend}"
                       + (" (one copy)" if strategy == "layered" else ""), strategy)
