"""Quantinuum through pytket: neutral circuits -> pytket `Circuit` with conditional
gates, compiled offline by `QuantinuumBackend("H2-1")`'s default pass (PhasedX, Rz,
ZZPhase; conditionals kept); `hqslib1` QASM and pytket JSON out; runs on pytket-qiskit's
`AerBackend`. Every pytket import is lazy.

pytket angles are in half-turns; a `Param` becomes a sympy symbol standing for the
angle in radians (the gate takes symbol / pi), substituted per execution."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from qnnc.runtime.targets.capabilities import QUANTINUUM_DEFAULT, Capabilities
from qnnc.runtime.targets.circuit import Circuit, Param
from qnnc.runtime.targets.errors import missing_extra, refuse
from qnnc.runtime.targets.lowering import Lowered

PRIMARY_FORMAT = "hqslib1"  # what `-o FILE` writes for a non-JSON FILE
SIMULATORS = ("ideal", "noisy")
STATEVECTOR_MAX = 16
# pytket optimisation level 3 removes barriers (and with them the noise pairs); 2 keeps them.
OPTIMISATION_LEVEL = 2
CONDITIONALS_FOR_LEVEL_0 = 64
# Illustrative depolarising noise for "noisy" (pytket-quantinuum has no offline noise
# model): our numbers, of the order of published H-series error rates.
ILLUSTRATIVE_NOISE = {"gate_1q": 3e-5, "gate_2q": 1e-3, "readout": 1e-3}

_BACKENDS: dict = {}


def _pytket():
    try:
        import pytket  # noqa: F401
        import pytket.extensions.quantinuum  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("pytket and pytket-quantinuum", "quantinuum", exc)


def backend(name: Optional[str] = None):
    _pytket()
    from pytket.extensions.quantinuum import QuantinuumBackend

    name = name or QUANTINUUM_DEFAULT
    if name not in _BACKENDS:
        be = QuantinuumBackend(name)
        if be.backend_info is None:
            raise refuse("Q0304", f"unknown Quantinuum backend `{name}`",
                         help="offline device data exists for `H2-1`, `H2-2`, `H1-1`")
        _BACKENDS[name] = be
    return _BACKENDS[name]


def capabilities(backend_name: Optional[str] = None) -> Capabilities:
    from pytket import OpType

    be = backend(backend_name)
    info = be.backend_info
    gs = info.gate_set
    return Capabilities(
        target="quantinuum", backend=be._device_name if hasattr(be, "_device_name") else
        (backend_name or QUANTINUUM_DEFAULT),
        max_qubits=int(info.n_nodes),
        supports_mid_circuit_measurement=True, supports_feed_forward=True,
        supports_register_conditions=True, supports_reset=OpType.Reset in gs,
        supports_realtime_arithmetic=OpType.ClExpr in gs,
        native_gates=tuple(sorted(str(g).removeprefix("OpType.") for g in gs if g in (
            OpType.PhasedX, OpType.Rz, OpType.ZZPhase, OpType.ZZMax, OpType.TK2))),
        noise_kinds=("sx", "cz", "ms"), strategies=("dynamic", "layered", "deferred"),
    )


# --------------------------------------------------------------------------- emission


def to_pytket(circ: Circuit):
    _pytket()
    import sympy
    from pytket import Bit, Circuit as TkCircuit, OpType, Qubit

    c = TkCircuit(circ.num_qubits, name=circ.name)
    bits: list = [None] * circ.num_clbits
    for reg in circ.cregs:
        c.add_c_register(reg.name, len(reg.clbits))
        for k, cl in enumerate(reg.clbits):
            bits[cl] = Bit(reg.name, k)
    syms = [sympy.Symbol(n) for n in circ.params]

    def half_turns(a):
        return syms[a.index] / sympy.pi if isinstance(a, Param) else float(a) / math.pi

    kinds = {"ry": OpType.Ry, "rx": OpType.Rx, "rz": OpType.Rz, "x": OpType.X, "h": OpType.H,
             "sx": OpType.SX, "sxdg": OpType.SXdg, "cx": OpType.CX, "cz": OpType.CZ,
             "ms": OpType.XXPhase, "msdg": OpType.XXPhase}
    for op in circ.ops:
        n = op.name
        if n == "measure":
            c.Measure(Qubit(op.qubits[0]), bits[op.clbit])
        elif n == "reset":
            c.Reset(Qubit(op.qubits[0]))
        elif n == "barrier":
            c.add_barrier([Qubit(q) for q in op.qubits])
        elif n in kinds:
            params = []
            if n in ("ry", "rx", "rz"):
                params = [half_turns(op.angle)]
            elif n == "ms":
                params = [0.5]  # XXPhase(1/2) = exp(-i pi/4 XX)
            elif n == "msdg":
                params = [-0.5]
            kw = {}
            if op.condition is not None:
                kw = dict(condition_bits=[bits[b] for b in op.condition.clbits],
                          condition_value=op.condition.value)
            c.add_gate(kinds[n], params, [Qubit(q) for q in op.qubits], **kw)
        else:  # pragma: no cover
            raise refuse("Q0332", f"no pytket lowering for `{n}`")
    return c, syms


@dataclass
class QuantinuumProgram:
    backend: str
    logical: list
    compiled: list
    symbols: list  # per circuit: sympy symbols in the neutral param order
    neutral: list


def emit(lowered: Lowered, caps: Capabilities, seed: int = 0) -> QuantinuumProgram:
    be = backend(caps.backend)
    logical, compiled, symbols = [], [], []
    for circ in lowered.circuits:
        c, syms = to_pytket(circ)
        # Level 2's resynthesis is slow on symbolic angles (about a minute for a packed
        # 56-qubit layer) and on large tables of conditionals (30 s for 756); levels 1
        # and 0 gave the same gate counts on both.
        n_cond = sum(1 for o in circ.ops if o.condition is not None)
        level = 0 if n_cond > CONDITIONALS_FOR_LEVEL_0 else 1 if circ.params else OPTIMISATION_LEVEL
        try:
            cc = be.get_compiled_circuit(c, optimisation_level=level)
        except Exception as exc:  # pytket raises several types; report them as one
            raise refuse("Q0320", f"pytket could not compile for `{caps.backend}`: {exc}")
        logical.append(c)
        compiled.append(cc)
        symbols.append(syms)
    return QuantinuumProgram(caps.backend, logical, compiled, symbols, list(lowered.circuits))


def texts(prog: QuantinuumProgram) -> dict[str, list[str]]:
    from pytket.qasm import circuit_to_qasm_str

    return {"hqslib1": [circuit_to_qasm_str(c, header="hqslib1") for c in prog.compiled],
            "pytket_json": [json.dumps(c.to_dict(), sort_keys=True) + "\n" for c in prog.compiled]}


def stats(c) -> dict:
    from pytket import OpType

    counts: dict[str, int] = {}
    cond = meas = resets = two_q = gates = 0
    qubits: set = set()
    for cmd in c.get_commands():
        op = cmd.op
        t = op.type
        if t == OpType.Conditional:
            cond += 1
            t = op.op.type
        if t == OpType.Barrier:
            continue
        name = str(t).removeprefix("OpType.")
        counts[name] = counts.get(name, 0) + 1
        qubits.update(cmd.qubits)
        if t == OpType.Measure:
            meas += 1
        elif t == OpType.Reset:
            resets += 1
        else:
            gates += 1
            if len(cmd.qubits) == 2:
                two_q += 1
    return {"qubits": len(qubits), "depth": c.depth(), "two_qubit_gates": two_q,
            "measurements": meas, "conditionals": cond, "resets": resets, "gates": gates,
            "ops": dict(sorted(counts.items()))}


def native_stats(prog: QuantinuumProgram) -> list[dict]:
    return [stats(c) for c in prog.compiled]


# --------------------------------------------------------------------------- execution


class QuantinuumExecutor:
    def __init__(self, prog: QuantinuumProgram, simulator: str = "ideal", seed: Optional[int] = None):
        _pytket()
        if simulator not in SIMULATORS:
            raise refuse("Q0317", f"unknown simulator `{simulator}` for target `quantinuum`",
                         help="simulators: " + ", ".join(f"`{s}`" for s in SIMULATORS))
        self.prog = prog
        self.noisy = simulator == "noisy"
        self.seeds = np.random.SeedSequence(seed)
        self._aer: dict = {}

    def _backend(self, wide: bool):
        from pytket.extensions.qiskit import AerBackend

        if wide not in self._aer:
            kw = {"simulation_method": "matrix_product_state"} if wide else {}
            kw["n_qubits"] = max(40, max(c.n_qubits for c in self.prog.compiled))
            if self.noisy:
                kw["noise_model"] = _noise_model()
            self._aer[wide] = AerBackend(**kw)
        return self._aer[wide]

    def _seed(self) -> int:
        return int(self.seeds.spawn(1)[0].generate_state(1)[0] & 0x7FFFFFFF)

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        from pytket import Bit

        cc = self.prog.compiled[index]
        neutral = self.prog.neutral[index]
        wide = stats(cc)["qubits"] > STATEVECTOR_MAX
        aer = self._backend(wide)
        cbits = [None] * neutral.num_clbits
        for reg in neutral.cregs:
            for k, cl in enumerate(reg.clbits):
                cbits[cl] = Bit(reg.name, k)
        circuits = []
        for j in range(len(shots)):
            c = cc
            if values is not None:
                c = cc.copy()
                c.symbol_substitution({s: float(values[j, k])
                                       for k, s in enumerate(self.prog.symbols[index])})
            circuits.append(aer.get_compiled_circuit(c, optimisation_level=0))
        # one call for the batch; a fresh seed per call (fixed seeds repeat draws)
        handles = aer.process_circuits(circuits, n_shots=[int(s) for s in shots], seed=self._seed())
        out = []
        for h in handles:
            r = aer.get_result(h)
            out.append(np.asarray(r.get_shots(cbits=cbits), dtype=np.uint8))
        return out


def _noise_model():
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    nm = NoiseModel()
    p = ILLUSTRATIVE_NOISE
    nm.add_all_qubit_quantum_error(depolarizing_error(p["gate_1q"], 1), ["u", "u1", "u2", "u3",
                                                                          "rz", "rx", "ry", "sx", "x"])
    nm.add_all_qubit_quantum_error(depolarizing_error(p["gate_2q"], 2), ["cx", "cz", "ecr", "rzz"])
    r = p["readout"]
    nm.add_all_qubit_readout_error(ReadoutError([[1 - r, r], [r, 1 - r]]))
    return nm


def executor(prog: QuantinuumProgram, lowered: Lowered, simulator: str = "ideal",
             seed: Optional[int] = None) -> QuantinuumExecutor:
    return QuantinuumExecutor(prog, simulator, seed)


def local_qubit_limit(simulator: str) -> Optional[int]:
    """The widest circuit the local simulator holds here (None: no fixed limit)."""
    return None  # pytket's AerBackend switches to matrix product states
