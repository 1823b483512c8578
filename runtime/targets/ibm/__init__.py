"""IBM through qiskit: neutral circuits -> `QuantumCircuit` with `if_test` feed-forward,
transpiled to the ISA of a (fake) backend; OpenQASM 3 out; runs on Qiskit Aer, ideal
or with the fake backend's noise model; submitted through qiskit-ibm-runtime (`cloud`).
Every qiskit import is lazy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler.gates import GATES
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.circuit import Circuit, Param
from qnnc.runtime.targets.errors import missing_extra, refuse
from qnnc.runtime.targets.host import fresh_seed
from qnnc.runtime.targets.lowering import Lowered
from qnnc.runtime.targets.target import Target

DEFAULT_BACKEND = "fake_brisbane"
PRIMARY_FORMAT = "qasm3"  # what `-o FILE` writes for a non-JSON FILE
SIMULATORS = ("ideal", "noisy")
# Wider circuits use matrix product states: ours are product states or nearly (every
# neuron is one qubit and its ancilla), where MPS is fast and a state vector is not.
STATEVECTOR_MAX = 16

_BACKENDS: dict = {}
_NOISY: dict = {}
_NOISY_ON: dict = {}


def _qiskit():
    try:
        import qiskit  # noqa: F401
        import qiskit_aer  # noqa: F401
        import qiskit_ibm_runtime  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("qiskit, qiskit-aer and qiskit-ibm-runtime", "ibm", exc)


def fake_backend(name: Optional[str] = None):
    """A fake backend by name (`fake_brisbane`, `brisbane`), cached per process."""
    _qiskit()
    import qiskit_ibm_runtime.fake_provider as fp

    name = (name or DEFAULT_BACKEND).lower()
    if not name.startswith("fake_"):
        name = "fake_" + name
    if name not in _BACKENDS:
        camel = "Fake" + "".join(p.capitalize() for p in name[5:].split("_"))
        cls = getattr(fp, camel, None) or getattr(fp, camel + "V2", None)
        if cls is None:
            known = sorted("fake_" + n[4:].removesuffix("V2").lower() for n in dir(fp)
                           if n.startswith("Fake") and n not in ("FakeProviderForBackendV2",
                                                                 "FakeFractionalBackend"))
            raise refuse("Q0304", f"unknown IBM backend `{name}`",
                         help="fake backends: " + ", ".join(f"`{k}`" for k in known[:12]) + ", …")
        _BACKENDS[name] = cls()
    return _BACKENDS[name]


def noisy_simulator(backend_name: Optional[str] = None):
    """`AerSimulator.from_backend`, built once per backend (it takes ~1.6 s)."""
    from qiskit_aer import AerSimulator

    be = fake_backend(backend_name)
    if be.name not in _NOISY:
        _NOISY[be.name] = AerSimulator.from_backend(be)
    return _NOISY[be.name]


def noisy_simulator_on(backend_name: Optional[str], qubits) -> object:
    """`noisy_simulator(backend_name)` with its noise model cut to the errors whose qubits
    all lie in `qubits` (the physical qubits a circuit acts on), cached per set.

    A circuit on those qubits meets exactly the same channels (an error on other qubits
    is never applied to it), but Aer converts the noise model to its C++ form on every
    `run` call and per experiment: FakeBrisbane's 127-qubit model cost ~2 s per call and
    ~30 ms per experiment, which dominated a layered run. Falls back to the whole model
    if this qiskit-aer's `NoiseModel` lays out its errors differently."""
    import copy

    full = noisy_simulator(backend_name)
    qs = frozenset(int(q) for q in qubits)
    key = (full.name, qs)
    if key not in _NOISY_ON:
        nm = full.options.noise_model
        try:
            cut = copy.copy(nm)
            cut._local_quantum_errors = {g: {q: e for q, e in d.items() if set(q) <= qs}
                                         for g, d in nm._local_quantum_errors.items()}
            cut._local_readout_errors = {q: e for q, e in nm._local_readout_errors.items() if set(q) <= qs}
            cut._noise_qubits = set(q for q in nm._noise_qubits if q in qs)
            # Default (all-qubit) errors apply everywhere and stay; custom passes (relaxation
            # over delays) are kept as they are and act on the circuit itself.
            from qiskit_aer import AerSimulator

            sim = AerSimulator(noise_model=cut)
        except AttributeError:
            sim = full
        _NOISY_ON[key] = sim
    return _NOISY_ON[key]


def active_qubits(circ) -> list[int]:
    """Indices of the qubits a circuit's operations touch (inside control flow too;
    barriers and delays do not count)."""
    out: set[int] = set()

    def visit(c, where: list[int]) -> None:
        index = {q: where[k] for k, q in enumerate(c.qubits)}
        for inst in c.data:
            name = inst.operation.name
            if name in ("if_else", "for_loop", "while_loop", "switch_case"):
                outer = [index[q] for q in inst.qubits]
                for block in inst.operation.blocks:
                    visit(block, outer)
            elif name not in ("barrier", "delay"):
                out.update(index[q] for q in inst.qubits)

    visit(circ, list(range(circ.num_qubits)))
    return sorted(out)


def capabilities(backend: Optional[str] = None) -> Capabilities:
    be = fake_backend(backend)
    ops = set(be.target.operation_names)
    ff = "if_else" in ops
    return Capabilities(
        target="ibm", backend=be.name, max_qubits=int(be.num_qubits),
        supports_mid_circuit_measurement=ff, supports_feed_forward=ff,
        supports_register_conditions=ff, supports_reset="reset" in ops,
        supports_realtime_arithmetic=False,  # IBM runs no arithmetic in dynamic circuits
        native_gates=tuple(sorted(o for o in ops if o not in (
            "if_else", "for_loop", "switch_case", "while_loop", "measure", "reset", "delay"))),
        noise_kinds=("sx", "cz"), strategies=("dynamic", "layered", "deferred"),
        connectivity="coupling map",
    )


# --------------------------------------------------------------------------- emission


def to_qiskit(circ: Circuit, probes: Optional[dict] = None, tag: str = ""):
    """The neutral circuit as a logical `QuantumCircuit` (Params become `Parameter`s).

    With `probes` (a dict to fill), each noise-probe block is collapsed to a labelled
    placeholder (a barrier; for two-qubit pairs also one labelled CZ, so that routing
    makes the pair's qubits neighbours) and `probes[label]` records the block's gates;
    `ExpandNoiseProbes` puts them back after routing."""
    _qiskit()
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import Parameter

    qr = QuantumRegister(circ.num_qubits, "q")
    cregs = [ClassicalRegister(len(r.clbits), r.name) for r in circ.cregs]
    qc = QuantumCircuit(qr, *cregs, name=circ.name)
    by_bits = {tuple(r.clbits): c for r, c in zip(circ.cregs, cregs)}
    params = [Parameter(n) for n in circ.params]

    def angle(a):
        return params[a.index] if isinstance(a, Param) else float(a)

    def apply(target, op):
        q = op.qubits
        n = op.name
        if n in GATES:  # the gate table's qiskit spelling
            sp = GATES[n].spelling("qiskit")
            params = sp.fixed + ((angle(op.angle),) if GATES[n].takes_angle else ())
            getattr(target, sp.name)(*params, *q)
        elif n == "measure":
            target.measure(q[0], op.clbit)
        elif n == "reset":
            target.reset(q[0])
        elif n == "barrier":
            target.barrier(*q)
        else:  # pragma: no cover - the neutral IR has no other ops
            raise refuse("Q0332", f"no qiskit lowering for `{n}`")

    ops = list(circ.ops)
    i = 0
    while i < len(ops):
        op = ops[i]
        if probes is not None and op.role == "probe":
            j = i + 1
            while j < len(ops) and ops[j].role in ("noise", "fence") and ops[j].qubits == op.qubits:
                j += 1
            label = f"qnnc_probe{tag}_{len(probes)}"
            probes[label] = [o.name for o in ops[i + 1:j] if o.role == "noise"]
            _placeholder(qc, op.qubits, label)
            i = j
            continue
        if op.condition is None:
            apply(qc, op)
            i += 1
            continue
        j = i
        while j < len(ops) and ops[j].condition == op.condition:
            j += 1
        cond = op.condition
        if cond.clbits in by_bits:
            test = (by_bits[cond.clbits], cond.value)
        elif len(cond.clbits) == 1:
            test = (qc.clbits[cond.clbits[0]], cond.value)
        else:  # pragma: no cover - lowerings condition on a register or one bit
            raise refuse("Q0332", "a condition on bits that are not a register")
        with qc.if_test(test):
            for o in ops[i:j]:
                apply(qc, o)
        i = j
    return qc


def _placeholder(qc, qubits, label: str) -> None:
    from qiskit.circuit.library import Barrier, CZGate

    qc.append(Barrier(len(qubits), label=label), list(qubits))
    if len(qubits) == 2:
        qc.append(CZGate(label=label), list(qubits))
        qc.barrier(*qubits)


def _noise_gate(name: str):
    """A noise pair's gate as a qiskit gate object, by the gate table's qiskit spelling."""
    from qiskit.circuit.library import get_standard_gate_name_mapping

    sp = GATES[name].spelling("qiskit")
    return type(get_standard_gate_name_mapping()[sp.name])(*sp.fixed)


def expand_noise_probes_pass(probes: dict):
    """A transpiler pass (run after routing) that replaces each probe placeholder with
    its noise pairs, every gate between barriers, on the physical qubits routing chose.
    Routing sees the same circuit for every K, so it adds the same SWAPs, and the
    translated gate counts differ by exactly the pairs."""
    from qiskit import QuantumCircuit
    from qiskit.converters import circuit_to_dag
    from qiskit.transpiler.basepasses import TransformationPass

    class ExpandNoiseProbes(TransformationPass):
        def run(self, dag):
            for node in dag.op_nodes():
                label = getattr(node.op, "label", None)
                if label not in probes:
                    continue
                gates = probes[label]
                n = len(node.qargs)
                if node.op.name == "barrier" and n == 2:
                    continue  # the two-qubit block's pairs replace its placeholder CZ
                mini = QuantumCircuit(n)
                if node.op.name == "barrier":
                    mini.barrier(*range(n))
                for g in gates:
                    mini.append(_noise_gate(g), list(range(n)))
                    mini.barrier(*range(n))
                if node.op.name != "barrier" and not gates:
                    dag.remove_op_node(node)
                else:
                    dag.substitute_node_with_dag(node, circuit_to_dag(mini))
            return dag

    return ExpandNoiseProbes()


@dataclass
class IbmProgram:
    backend_name: str
    logical: list  # QuantumCircuit per neutral circuit
    isa: list  # transpiled
    seed: int
    texts: dict = field(default_factory=dict)


def emit(lowered: Lowered, caps: Capabilities, seed: int = 0, optimization_level: int = 1) -> IbmProgram:
    _qiskit()
    be = fake_backend(caps.backend)
    logical = [to_qiskit(c) for c in lowered.circuits]
    isa = transpile_circuits(lowered.circuits, be, seed, optimization_level, logical)
    return IbmProgram(be.name, logical, isa, seed)


def transpile_circuits(circuits: Sequence[Circuit], backend, seed: int = 0,
                       optimization_level: int = 1, logical: Optional[list] = None) -> list:
    """Neutral circuits in the ISA of `backend` (a fake backend, or a device of the
    runtime service for `qnnc submit`). `logical`: their `to_qiskit` circuits, reused
    where a circuit has no noise probe."""
    from qiskit.transpiler import PassManager, generate_preset_pass_manager
    from qiskit.transpiler.exceptions import TranspilerError

    probes: dict = {}
    routed_in = [to_qiskit(c, probes, f"_{k}")
                 if logical is None or any(op.role == "probe" for op in c.ops) else logical[k]
                 for k, c in enumerate(circuits)]
    try:
        # Noise pairs join after routing (placeholders route them), between barriers
        # that level 1's single-qubit optimiser does not cross: the pairs survive, and
        # a probe with K pairs compiles to the K = 0 circuit plus exactly the pairs.
        pm = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend,
                                          seed_transpiler=seed)
        if probes:
            pm.post_routing = PassManager([expand_noise_probes_pass(probes)])
        isa = pm.run(routed_in)
    except TranspilerError as exc:
        raise refuse("Q0320", f"qiskit could not transpile for `{backend.name}`: {exc}",
                     help="try `--strategy layered`, which needs no feed-forward")
    return isa if isinstance(isa, list) else [isa]


def qasm3(circuit) -> str:
    from qiskit import qasm3 as q3

    return q3.dumps(circuit)


def texts(prog: IbmProgram) -> dict[str, list[str]]:
    """OpenQASM 3 of the transpiled (ISA) and logical circuits."""
    return {"qasm3": [qasm3(c) for c in prog.isa],
            "qasm3_logical": [qasm3(c) for c in prog.logical]}


def _walk(circ):
    """Every instruction, inside control-flow blocks too, with its nesting flag."""
    for inst in circ.data:
        yield inst, False
        if inst.operation.name in ("if_else", "for_loop", "while_loop", "switch_case"):
            for block in inst.operation.blocks:
                for sub, _ in _walk(block):
                    yield sub, True


def stats(circ) -> dict:
    two_q = meas = cond = resets = gates = 0
    counts: dict[str, int] = {}
    for inst, _ in _walk(circ):
        name = inst.operation.name
        if name == "if_else":
            cond += 1
        if name in ("barrier", "if_else", "for_loop", "while_loop", "switch_case", "delay"):
            continue
        counts[name] = counts.get(name, 0) + 1
        if name == "measure":
            meas += 1
        elif name == "reset":
            resets += 1
        else:
            gates += 1
            if len(inst.qubits) == 2:
                two_q += 1
    return {"qubits": len(active_qubits(circ)), "depth": circ.depth(), "two_qubit_gates": two_q,
            "measurements": meas, "conditionals": cond, "resets": resets, "gates": gates,
            "ops": dict(sorted(counts.items()))}


# --------------------------------------------------------------------------- execution


class IbmExecutor:
    """Runs the ISA circuits on Aer: `noisy` with the fake backend's noise model cut to the
    qubits each circuit acts on (`noisy_simulator_on`, the same channels), `ideal` without.

    Method: `layered` circuits (one or two qubits per neuron, no entanglement between
    neurons: product states) run as matrix product states at every width, since a state
    vector of 16 qubits costs ~20x more per noisy shot there (measured, docs/
    hardware-in-the-loop.md "Speed"); other circuits as before (Aer's choice up to
    `STATEVECTOR_MAX` active qubits, matrix product states beyond). Both are exact
    trajectory simulations of the same noise. The jobs of one call (parameter rows) run
    in one Aer call with runtime parameter binding."""

    def __init__(self, prog: IbmProgram, names: list[list[str]], simulator: str = "ideal",
                 seed: Optional[int] = None, device: str = "CPU", strategy: Optional[str] = None):
        _qiskit()
        from qiskit_aer import AerSimulator

        if simulator not in SIMULATORS:
            raise refuse("Q0317", f"unknown simulator `{simulator}` for target `ibm`",
                         help="simulators: " + ", ".join(f"`{s}`" for s in SIMULATORS))
        self.prog = prog
        self.names = names  # the neutral circuits' parameter order
        self.noisy = simulator == "noisy"
        self.ideal = AerSimulator() if not self.noisy else None
        self.seeds = np.random.SeedSequence(seed)
        self.device = device  # Aer's: "CPU", or "GPU" (statevector circuits; MPS stays on the CPU)
        self.strategy = strategy
        self.calls = 0  # Aer run calls made
        self._per_circuit: dict = {}

    def _seed(self) -> int:
        return fresh_seed(self.seeds)

    def _setup(self, index: int):
        """(simulator, method) for circuit `index`, worked out once."""
        if index not in self._per_circuit:
            circ = self.prog.isa[index]
            qubits = active_qubits(circ)
            if self.strategy == "layered" and self.device == "CPU":
                method = "matrix_product_state"
            else:
                method = "automatic" if len(qubits) <= STATEVECTOR_MAX else "matrix_product_state"
            sim = noisy_simulator_on(self.prog.backend_name, qubits) if self.noisy else self.ideal
            self._per_circuit[index] = (sim, method)
        return self._per_circuit[index]

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        circ = self.prog.isa[index]
        n_clbits = circ.num_clbits
        sim, method = self._setup(index)
        out: list[Optional[np.ndarray]] = [None] * len(shots)
        params = list(circ.parameters)
        by_shots: dict[int, list[int]] = {}
        for j, s in enumerate(shots):
            by_shots.setdefault(int(s), []).append(j)
        for s, jobs in by_shots.items():
            kw = dict(shots=s, memory=True, seed_simulator=self._seed(), method=method)
            if self.device != "CPU" and method == "automatic":
                kw["device"] = self.device
            self.calls += 1
            if params:
                # qiskit sorts circuit.parameters by name; look each up by name
                order = {name: k for k, name in enumerate(self.names[index])}
                binds = {p: values[jobs, order[p.name]].tolist() for p in params}
                res = sim.run(circ, parameter_binds=[binds], runtime_parameter_bind_enable=len(jobs) > 1,
                              **kw).result()
                mems = [res.get_memory(k) for k in range(len(jobs))]
            else:
                res = sim.run(circ, **kw).result()
                mems = [res.get_memory(0)] * len(jobs)
            for j, mem in zip(jobs, mems):
                out[j] = _bits(mem, n_clbits)
        return out  # type: ignore[return-value]


def _bits(memory: list[str], n: int) -> np.ndarray:
    """Aer memory strings (clbit 0 rightmost, registers space-separated) to [shots, n]."""
    if not memory:
        return np.zeros((0, n), dtype=np.uint8)
    raw = "".join(m.replace(" ", "") for m in memory).encode("ascii")
    arr = (np.frombuffer(raw, dtype=np.uint8) - ord("0")).reshape(len(memory), -1)
    return arr[:, ::-1][:, :n].copy()


# --------------------------------------------------------------------------- the target


class IBMTarget(Target):
    name = "ibm"
    primary_format = PRIMARY_FORMAT
    simulators = SIMULATORS

    def capabilities(self, backend: Optional[str] = None) -> Capabilities:
        return capabilities(backend)

    def emit(self, lowered: Lowered, caps: Capabilities, seed: int = 0) -> IbmProgram:
        return emit(lowered, caps, seed)

    bundle_binding = "npy"

    def bundle_circuit(self, native: IbmProgram, index: int):
        """QPY of the ISA circuit; bindings in `circuit.parameters` order (a SamplerV2 pub)."""
        import io

        from qiskit import qpy

        from qnnc.runtime.targets.bundle import BundleCircuit

        circ = native.isa[index]
        buf = io.BytesIO()
        qpy.dump(circ, buf)
        return BundleCircuit(f"{circ.name}.qpy", buf.getvalue(), [p.name for p in circ.parameters])

    def texts(self, native: IbmProgram) -> dict[str, list[str]]:
        return texts(native)

    def statistics(self, native: IbmProgram) -> list[dict]:
        return [stats(c) for c in native.isa]

    def local_executor(self, native: IbmProgram, lowered: Lowered, simulator: str = "ideal",
                       seed: Optional[int] = None, device: str = "CPU") -> IbmExecutor:
        return IbmExecutor(native, [list(c.params) for c in lowered.circuits], simulator, seed, device,
                           strategy=lowered.strategy)

    # local_qubit_limit: none fixed; Aer switches to matrix product states for wide circuits

    def submission_client(self):
        from qnnc.runtime.targets.ibm.cloud import IBMCloud

        return IBMCloud()
