"""Quantinuum through pytket: neutral circuits -> pytket `Circuit` with conditional
gates, compiled offline by `QuantinuumBackend("H2-1")`'s default pass (PhasedX, Rz,
ZZPhase; conditionals kept); `hqslib1` QASM and pytket JSON out; runs on pytket-qiskit's
`AerBackend`. `qnnc submit` runs only on the local emulator (`QuantinuumCloud`): hardware
takes jobs through Quantinuum Nexus, which qnnc does not drive. Every pytket import is
lazy.

Real-time arithmetic (neutral `assign` ops) becomes pytket `ClExpr` operations on whole
registers (a single measured bit j of register R is read as `(R >> j) & 1`, since
hqslib1 QASM accepts only register-aligned expressions). Aer cannot execute those; a
circuit that has them runs on the local emulator `<device>LE` (pytket-pecos, the
`quantinuum-emulator` extra), exactly and with a seed.

pytket angles are in half-turns; a `Param` becomes a sympy symbol standing for the
angle in radians (the gate takes symbol / pi), substituted per execution."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler.gates import GATES
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.circuit import Arith, BitVal, Circuit, Lit, Param, RegVal
from qnnc.runtime.targets.cloud import (Device, GuardedClient, SubmissionClient, check_local_width,
                                        describe_jobs_per_parameter_set, jobs_per_parameter_set)
from qnnc.runtime.targets.errors import missing_extra, refuse
from qnnc.runtime.targets.host import fresh_seed
from qnnc.runtime.targets.lowering import Lowered
from qnnc.runtime.targets.target import Target

DEFAULT_BACKEND = "H2-1"
PRIMARY_FORMAT = "hqslib1"  # what `-o FILE` writes for a non-JSON FILE
SIMULATORS = ("ideal", "noisy")
STATEVECTOR_MAX = 16
# The widest circuit with real-time arithmetic run on the local emulator: pytket-pecos
# simulates each shot's state vector, about 1.5 s per shot at 20 qubits here (0.05 s at 16).
EMULATOR_MAX_QUBITS = 20
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

    name = name or DEFAULT_BACKEND
    if name not in _BACKENDS:
        from pytket.extensions.quantinuum.backends.quantinuum import DeviceNotAvailable

        try:
            be = QuantinuumBackend(name)
            info = be.backend_info  # offline device data; raises for an unknown name
        except DeviceNotAvailable:
            info = None
        if info is None:
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
        (backend_name or DEFAULT_BACKEND),
        max_qubits=int(info.n_nodes),
        supports_mid_circuit_measurement=True, supports_feed_forward=True,
        supports_register_conditions=True, supports_reset=OpType.Reset in gs,
        supports_realtime_arithmetic=OpType.ClExpr in gs,
        native_gates=tuple(sorted(str(g).removeprefix("OpType.") for g in gs if g in (
            OpType.PhasedX, OpType.Rz, OpType.ZZPhase, OpType.ZZMax, OpType.TK2))),
        noise_kinds=("sx", "cz", "ms"), strategies=("dynamic", "layered", "deferred"),
        max_register_width=int(info.misc.get("max_classical_register_width", 32))
        if OpType.ClExpr in gs else 0,
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

    reg_of = {cl: reg for reg in circ.cregs for cl in reg.clbits}
    for op in circ.ops:
        n = op.name
        if n == "measure":
            c.Measure(Qubit(op.qubits[0]), bits[op.clbit])
        elif n == "reset":
            c.Reset(Qubit(op.qubits[0]))
        elif n == "barrier":
            c.add_barrier([Qubit(q) for q in op.qubits])
        elif n == "assign":
            _add_assign(c, op, bits, reg_of)
        elif n in GATES:  # the gate table's pytket spelling (angles in half-turns)
            sp = GATES[n].spelling("pytket")
            params = list(sp.fixed) + ([half_turns(op.angle)] if GATES[n].takes_angle else [])
            kw = {}
            if op.condition is not None:
                kw = dict(condition_bits=[bits[b] for b in op.condition.clbits],
                          condition_value=op.condition.value)
            c.add_gate(OpType[sp.name], params, [Qubit(q) for q in op.qubits], **kw)
        else:  # pragma: no cover
            raise refuse("Q0332", f"no pytket lowering for `{n}`")
    return c, syms


_CLOPS = {"+": "RegAdd", "-": "RegSub", "*": "RegMul", ">=": "RegGeq", "<": "RegLt",
          ">": "RegGt", "==": "RegEq"}


def _add_assign(c, op, bits: list, reg_of: dict) -> None:
    """A neutral `assign` as one pytket ClExpr over whole registers."""
    from pytket.circuit import ClExpr, ClOp, ClRegVar, WiredClExpr

    args: list = []  # the op's bits: input registers, then outputs not among them
    reg_var: dict[str, int] = {}
    reg_posn: dict[int, list[int]] = {}

    def register(reg) -> ClRegVar:
        if reg.name not in reg_var:
            k = len(reg_var)
            reg_var[reg.name] = k
            reg_posn[k] = list(range(len(args), len(args) + len(reg.clbits)))
            args.extend(bits[cl] for cl in reg.clbits)
        return ClRegVar(reg_var[reg.name])

    def lower(e):
        if isinstance(e, Lit):
            return int(e.value)
        if isinstance(e, BitVal):
            reg = reg_of[e.clbit]
            k = reg.clbits.index(e.clbit)
            v = register(reg)
            shifted = ClExpr(ClOp.RegRsh, [v, k]) if k else v
            return ClExpr(ClOp.RegAnd, [shifted, 1])
        if isinstance(e, RegVal):
            reg = reg_of[e.clbits[0]]
            if tuple(reg.clbits) != tuple(e.clbits):
                raise refuse("Q0332", "real-time arithmetic reads part of a register; hqslib1 "
                             "needs whole registers")
            return register(reg)
        assert isinstance(e, Arith)
        return ClExpr(getattr(ClOp, _CLOPS[e.op]), [lower(e.lhs), lower(e.rhs)])

    expr = lower(op.expr)
    if isinstance(expr, int):  # a constant: x + 0, as pytket wants an expression
        expr = ClExpr(ClOp.RegAdd, [expr, 0])
    out_reg = reg_of[op.targets[0]]
    if len(op.targets) > 1 and tuple(out_reg.clbits) != tuple(op.targets):
        raise refuse("Q0332", "real-time arithmetic writes part of a register; hqslib1 needs "
                     "whole registers")
    if len(op.targets) > 1 and out_reg.name in reg_var:
        output_posn = reg_posn[reg_var[out_reg.name]]  # in place: R := f(R, ...)
    else:
        output_posn = list(range(len(args), len(args) + len(op.targets)))
        args.extend(bits[cl] for cl in op.targets)
    wired = WiredClExpr(expr, reg_posn=reg_posn, output_posn=output_posn)
    kw = {}
    if op.condition is not None:
        kw = dict(condition_bits=[bits[b] for b in op.condition.clbits],
                  condition_value=op.condition.value)
    c.add_clexpr(wired, args, **kw)


def has_realtime_arithmetic(circ: Circuit) -> bool:
    return any(o.name == "assign" for o in circ.ops)


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

    # maxwidth: real-time registers may be as wide as the device allows (63 bits on H2)
    return {"hqslib1": [circuit_to_qasm_str(c, header="hqslib1", maxwidth=64) for c in prog.compiled],
            "pytket_json": [json.dumps(c.to_dict(), sort_keys=True) + "\n" for c in prog.compiled]}


def qir_texts(prog: QuantinuumProgram) -> list[str]:
    """The compiled circuits as QIR (adaptive profile, LLVM text) through pytket-qir: what
    H2 accepts besides hqslib1. Made on demand (`-o FILE.ll`). A layered circuit's angles
    are symbols the host binds per shot; QIR needs numbers (Q0325)."""
    try:
        from pytket.qir import QIRFormat, QIRProfile, pytket_to_qir
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("pytket-qir", "qir", exc)
    out = []
    for c, neutral in zip(prog.compiled, prog.neutral):
        if c.free_symbols():
            raise refuse("Q0325", f"circuit `{neutral.name}` has angles the host binds per shot "
                         f"({len(c.free_symbols())} symbols); QIR needs numbers",
                         help="compile with `--strategy dynamic` (one circuit, angles fixed or "
                              "computed during the shot)")
        try:
            text = pytket_to_qir(c, name=neutral.name, qir_format=QIRFormat.STRING,
                                 profile=QIRProfile.ADAPTIVE)
        except Exception as exc:  # pytket-qir raises several types; report them as one
            raise refuse("Q0325", f"pytket-qir could not convert circuit `{neutral.name}`: {exc}")
        out.append(text if text.endswith("\n") else text + "\n")
    return out


def stats(c) -> dict:
    from pytket import OpType

    counts: dict[str, int] = {}
    cond = meas = resets = two_q = gates = classical = 0
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
        elif t == OpType.ClExpr:
            classical += 1
        elif t == OpType.Reset:
            resets += 1
        else:
            gates += 1
            if len(cmd.qubits) == 2:
                two_q += 1
    return {"qubits": len(qubits), "depth": c.depth(), "two_qubit_gates": two_q,
            "measurements": meas, "conditionals": cond, "resets": resets, "gates": gates,
            "classical": classical,
            "ops": dict(sorted(counts.items()))}


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
        self._emulator_backend = None

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
        return fresh_seed(self.seeds)

    def _emulator(self):
        """`<device>LE`, pytket-quantinuum's local emulator (pytket-pecos): it executes
        ClExpr operations, which Aer does not."""
        if self.noisy:
            raise refuse("Q0316", "the `noisy` simulator cannot run real-time classical "
                         "arithmetic (Aer does not execute pytket ClExpr operations)",
                         help="use `--simulator ideal` (the local emulator)")
        if self._emulator_backend is None:
            try:
                import pytket_pecos  # noqa: F401
            except ImportError as exc:
                raise refuse("Q0310", "a circuit with real-time classical arithmetic runs locally "
                             f"on the emulator `{self.prog.backend}LE`, which needs `pytket-pecos`; "
                             "it is not installed", help="install it with "
                             "`pip install 'qnnc[quantinuum-emulator]'`",
                             notes=(f"import failed: {exc}",))
            self._emulator_backend = backend(self.prog.backend + "LE")
        return self._emulator_backend

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        from pytket import Bit

        cc = self.prog.compiled[index]
        neutral = self.prog.neutral[index]
        cbits = [None] * neutral.num_clbits
        for reg in neutral.cregs:
            for k, cl in enumerate(reg.clbits):
                cbits[cl] = Bit(reg.name, k)
        if has_realtime_arithmetic(neutral):
            return self._run_emulator(cc, cbits, values, shots)
        wide = stats(cc)["qubits"] > STATEVECTOR_MAX
        aer = self._backend(wide)
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


    def _run_emulator(self, cc, cbits: list, values, shots: Sequence[int]) -> list[np.ndarray]:
        if values is not None:  # pragma: no cover - only `dynamic` computes in real time
            raise refuse("Q0316", "host-bound parameters and real-time arithmetic in one circuit")
        if cc.n_qubits > EMULATOR_MAX_QUBITS:
            raise refuse("Q0316", f"the circuit has {cc.n_qubits} qubits; the local emulator "
                         f"(state vector) holds at most {EMULATOR_MAX_QUBITS} here",
                         help="compile a narrower network, or use `--strategy layered`")
        emu = self._emulator()
        out = []
        for n in shots:
            h = emu.process_circuit(cc, n_shots=int(n), seed=self._seed())
            out.append(np.asarray(emu.get_result(h).get_shots(cbits=cbits), dtype=np.uint8))
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


# --------------------------------------------------------------------------- cloud (local emulator only)


def have_local_emulator() -> bool:
    """Whether pytket-quantinuum's local emulator (its optional `pytket-pecos`) is here."""
    try:
        from pytket.extensions.quantinuum import have_pecos
    except ImportError:  # pragma: no cover - depends on the install
        return False
    return bool(have_pecos())


class PytketSubmitExecutor:
    """`backend.process_circuits` / `get_results` of a `QuantinuumBackend`."""

    def __init__(self, prog: QuantinuumProgram, backend, client: GuardedClient, seed: Optional[int] = None):
        self.prog = prog
        self.backend = backend
        self.client = client
        self.seeds = np.random.SeedSequence(seed)

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        from pytket import Bit

        cc = self.prog.compiled[index]
        neutral = self.prog.neutral[index]
        cbits: list = [None] * neutral.num_clbits
        for reg in neutral.cregs:
            for k, cl in enumerate(reg.clbits):
                cbits[cl] = Bit(reg.name, k)
        circuits = []
        for j in range(len(shots)):
            c = cc
            if values is not None and self.prog.symbols[index]:
                c = cc.copy()
                c.symbol_substitution({s: float(values[j, k])
                                       for k, s in enumerate(self.prog.symbols[index])})
            circuits.append(c)
        seed = fresh_seed(self.seeds)
        handles = self.client.call("submitting circuits", self.backend.process_circuits, circuits,
                                   n_shots=[int(s) for s in shots], seed=seed)
        for h, s in zip(handles, shots):
            self.client.record({"id": str(self.backend.get_jobid(h)), "circuit": neutral.name,
                                "shots": int(s)})
        results = self.client.call("waiting for results", self.backend.get_results, handles)
        return [np.asarray(r.get_shots(cbits=cbits), dtype=np.uint8) for r in results]


class QuantinuumCloud(SubmissionClient):
    """No cloud client: pytket-quantinuum compiles and emulates offline only (since
    0.56). `local` runs `QuantinuumBackend("<device>LE")`, its local emulator."""

    target = "quantinuum"
    local_qubits = EMULATOR_MAX_QUBITS  # pecos's state vector

    def device(self, backend_name: Optional[str]) -> Device:
        name = backend_name or DEFAULT_BACKEND
        backend(name)  # its offline device data (Q0304 for an unknown name)
        return Device("quantinuum", name, name, f"Quantinuum Nexus (qnexus) for `{name}`",
                      f"pytket-quantinuum QuantinuumBackend(`{name}LE`), its local emulator")

    def refusal(self, device: Device, local: bool) -> Optional[QnncError]:
        if local and have_local_emulator():
            return None
        try:
            from pytket.extensions.quantinuum._metadata import __extension_version__ as version
        except ImportError:  # pragma: no cover - depends on the install
            version = "(not installed)"
        if local:
            return refuse("Q0352", f"compiled for `{device.name}` offline, but Quantinuum's client "
                          f"has no offline execution here: pytket-quantinuum {version} runs "
                          f"circuits only on its local emulator `{device.name}LE`, which needs "
                          f"`pytket-pecos` (not installed: `pip install 'pytket-quantinuum[pecos]'`)",
                          help="`qnnc run --target quantinuum` samples the compiled circuits on "
                               "pytket-qiskit's AerBackend (a simulator, not Quantinuum's client)")
        return refuse("Q0352", f"qnnc cannot submit to Quantinuum `{device.name}`: pytket-quantinuum "
                      f"{version} compiles and emulates offline only (since 0.56); Quantinuum "
                      f"hardware takes jobs through Quantinuum Nexus (the `qnexus` package)",
                      help="write the compiled circuits with `qnnc compile --target quantinuum "
                           "-o circuits.json` and upload their pytket JSON with qnexus after "
                           "`qnx.login()`")

    def plan_refusal(self, local: bool) -> Optional[str]:
        if local and have_local_emulator():
            return None
        return ("no offline execution through Quantinuum's client (its local emulator needs "
                "pytket-pecos)" if local else
                "qnnc cannot submit to Quantinuum (pytket-quantinuum compiles offline only)")

    def executor(self, compiled, device: Device, log: list, *, local: bool, ideal: bool,
                 seed: Optional[int], progress=None) -> PytketSubmitExecutor:
        _pytket()  # Q0310 when the extra is missing
        from pytket.extensions.quantinuum import QuantinuumBackend

        check_local_width(compiled.native.compiled, stats, self.local_qubits, "the local emulator")
        client = GuardedClient("pytket-quantinuum (local emulator)", log, progress)
        emulator = client.call(f"starting the local emulator `{device.name}LE`", QuantinuumBackend,
                               f"{device.name}LE")
        return PytketSubmitExecutor(compiled.native, emulator, client, seed)

    def jobs(self, compiled, parameter_sets: int) -> dict:
        return jobs_per_parameter_set(compiled, parameter_sets, "circuit executions")

    def describe_jobs(self, jobs: dict, rounds: int) -> str:
        return describe_jobs_per_parameter_set(jobs)


# --------------------------------------------------------------------------- the target


class QuantinuumTarget(Target):
    name = "quantinuum"
    primary_format = PRIMARY_FORMAT
    simulators = SIMULATORS

    def capabilities(self, backend: Optional[str] = None) -> Capabilities:
        return capabilities(backend)

    def emit(self, lowered: Lowered, caps: Capabilities, seed: int = 0) -> QuantinuumProgram:
        return emit(lowered, caps, seed)

    def bundle_circuit(self, native: QuantinuumProgram, index: int):
        """pytket JSON of the compiled circuit; bindings: symbol -> angle in radians
        (the circuit's gates take symbol / pi half-turns)."""
        from qnnc.runtime.targets.bundle import BundleCircuit

        neutral = native.neutral[index]
        text = json.dumps(native.compiled[index].to_dict(), sort_keys=True) + "\n"
        return BundleCircuit(f"{neutral.name}.json", text.encode(),
                             [str(s) for s in native.symbols[index]])

    def texts(self, native: QuantinuumProgram) -> dict[str, list[str]]:
        return texts(native)

    def suffix_formats(self) -> dict[str, str]:
        return {".ll": "qir"}

    def text(self, native: QuantinuumProgram, fmt: str) -> list[str]:
        return qir_texts(native) if fmt == "qir" else texts(native)[fmt]

    def statistics(self, native: QuantinuumProgram) -> list[dict]:
        return [stats(c) for c in native.compiled]

    def local_executor(self, native: QuantinuumProgram, lowered: Lowered, simulator: str = "ideal",
                       seed: Optional[int] = None) -> QuantinuumExecutor:
        return executor(native, lowered, simulator, seed)

    # local_qubit_limit: none fixed. pytket's AerBackend switches to matrix product
    # states; circuits with real-time arithmetic go to the emulator, which refuses
    # beyond EMULATOR_MAX_QUBITS itself.

    def submission_client(self) -> QuantinuumCloud:
        return QuantinuumCloud()
