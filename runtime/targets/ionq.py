"""IonQ through amazon-braket-sdk: native GPi / GPi2 / MS gates in a verbatim box, by
our own lowering with virtual Z (not a generic rebase); OpenQASM 3 out; runs on
Braket's LocalSimulator; submitted through Amazon Braket (`IonQCloud`). IonQ runs no
feed-forward, so only measure-at-the-end circuits (`deferred`, `layered`) come here.
Every braket import is lazy.

Lowering: R(theta, phi) = Rz(phi) Rx(theta) Rz(-phi) is a rotation about an axis in the
XY plane; GPi2(phi) = R(pi/2, phi) and GPi(phi) = i R(pi, phi). A Z rotation is never
applied: it is kept in a per-qubit frame f, and each later gate's phase is shifted,
GPi2(phi) -> GPi2(phi - f), MS(phi0, phi1) -> MS(phi0 - f0, phi1 - f1). The frame left at
the end is a Z rotation before a Z measurement, and is dropped.
R_y(t) = GPi2(0), Rz(t), GPi2(pi) in time order, i.e. GPi2(0) then GPi2(pi - t) with the
frame t left over (toolchain.md). CNOT: Ry(pi/2)_c, MS(0, 0), Rx(-pi/2)_c, Rx(-pi/2)_t,
Ry(-pi/2)_c (IonQ's recipe). Each decomposition is checked against the gate's matrix in
the tests.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler.gates import GATES, zyz_angles
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.circuit import Circuit, Param
from qnnc.runtime.targets.cloud import (Device, GuardedClient, SubmissionClient, check_local_width,
                                        describe_jobs_per_parameter_set, environment_sources,
                                        file_source, home, jobs_per_parameter_set)
from qnnc.runtime.targets.errors import missing_extra, refuse
from qnnc.runtime.targets.lowering import Lowered
from qnnc.runtime.targets.target import Target

# IonQ devices cannot be queried offline (AwsDevice needs credentials); these are the
# published qubit counts. Neither runs feed-forward or mid-circuit measurement.
IONQ_BACKENDS: dict[str, int] = {"forte-1": 36, "aria-1": 25, "aria-2": 25}
DEFAULT_BACKEND = "forte-1"
# The same devices on Amazon Braket (all in us-east-1).
IONQ_ARNS = {
    "forte-1": "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1",
    "aria-1": "arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1",
    "aria-2": "arn:aws:braket:us-east-1::device/qpu/ionq/Aria-2",
}
# The AWS standard credential chain's environment variables.
_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
PRIMARY_FORMAT = "openqasm3"  # what `-o FILE` writes for a non-JSON FILE
SIMULATORS = ("ideal", "braket_sv", "braket_dm", "noisy")
# Qubits a local simulator runs in about a second here (state vector 2^n, density
# matrix 4^n amplitudes; every qubit is simulated, even in a product state).
LOCAL_LIMITS = {"braket_sv": 22, "braket_dm": 11}
# Illustrative noise for "noisy" (no IonQ device data offline): depolarising after each
# one- and two-qubit native gate, and read-out bit flips. Our numbers, not IonQ's.
ILLUSTRATIVE_NOISE = {"gate_1q": 5e-4, "gate_2q": 5e-3, "readout": 3e-3}

HALF_PI = math.pi / 2
PI = math.pi


def _braket():
    try:
        import braket.circuits  # noqa: F401
        import braket.devices  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("amazon-braket-sdk", "ionq", exc)


def ionq_capabilities(backend: Optional[str]) -> Capabilities:
    name = backend or DEFAULT_BACKEND
    if name not in IONQ_BACKENDS:
        raise refuse("Q0304", f"unknown IonQ backend `{name}`",
                     help="IonQ backends: " + ", ".join(f"`{b}`" for b in IONQ_BACKENDS))
    return Capabilities(
        target="ionq", backend=name, max_qubits=IONQ_BACKENDS[name],
        supports_mid_circuit_measurement=False, supports_feed_forward=False,
        supports_register_conditions=False, supports_reset=False,
        supports_realtime_arithmetic=False, native_gates=("gpi", "gpi2", "ms"),
        noise_kinds=("sx", "ms"), strategies=("deferred", "layered"),
    )


# --------------------------------------------------------------------------- natives


def _is(a, value: float) -> bool:
    return isinstance(a, (int, float)) and abs(_wrap(a - value)) < 1e-12


def _wrap(a):
    if isinstance(a, (int, float)):
        return (a + PI) % (2 * PI) - PI
    return a


def natives(name: str, qubits: tuple[int, ...], angle=None) -> list[tuple]:
    """A neutral gate as primitives ("rz", q, t) | ("gpi2", q, phi) | ("gpi", q, phi) |
    ("ms", q0, q1, phi0, phi1), in time order, equal to the gate up to global phase."""
    q = qubits[0]
    if name == "rz":
        return [("rz", q, angle)]
    if name == "ry":
        if _is(angle, HALF_PI):
            return [("gpi2", q, HALF_PI)]
        if _is(angle, -HALF_PI):
            return [("gpi2", q, -HALF_PI)]
        if _is(angle, PI):
            return [("gpi", q, HALF_PI)]
        return [("gpi2", q, 0.0), ("rz", q, angle), ("gpi2", q, PI)]
    if name == "rx":
        if _is(angle, HALF_PI):
            return [("gpi2", q, 0.0)]
        if _is(angle, -HALF_PI):
            return [("gpi2", q, PI)]
        if _is(angle, PI):
            return [("gpi", q, 0.0)]
        return [("rz", q, HALF_PI)] + natives("ry", qubits, angle) + [("rz", q, -HALF_PI)]
    if name == "x":
        return [("gpi", q, 0.0)]
    if name == "h":
        return [("gpi2", q, HALF_PI), ("gpi", q, 0.0)]
    if name == "sx":
        return [("gpi2", q, 0.0)]
    if name == "sxdg":
        return [("gpi2", q, PI)]
    if name == "cx":
        c, t = qubits
        return [("gpi2", c, HALF_PI), ("ms", c, t, 0.0, 0.0), ("gpi2", c, PI), ("gpi2", t, PI),
                ("gpi2", c, -HALF_PI)]
    if name == "cz":
        a, b = qubits
        return natives("h", (b,)) + natives("cx", (a, b)) + natives("h", (b,))
    if name == "ms":
        return [("ms", qubits[0], qubits[1], 0.0, 0.0)]
    if name == "msdg":
        return [("ms", qubits[0], qubits[1], PI, 0.0)]
    gate = GATES.get(name)
    if gate is not None and gate.qubits == 1 and not gate.takes_angle:
        # Any other fixed one-qubit gate of the table, by its Z-Y-Z Euler angles.
        phi, theta, lam = zyz_angles(name)
        return natives("rz", qubits, lam) + natives("ry", qubits, theta) + natives("rz", qubits, phi)
    raise refuse("Q0332", f"no IonQ native lowering for `{name}`")


def virtual_z(prims: list[tuple]) -> tuple[list[tuple], dict]:
    """Drop Z rotations into per-qubit frames; returns native gates and the final frames."""
    frame: dict[int, object] = {}
    out = []
    for p in prims:
        kind = p[0]
        if kind == "rz":
            frame[p[1]] = frame.get(p[1], 0.0) + p[2]
        elif kind in ("gpi", "gpi2"):
            out.append((kind, p[1], _wrap(p[2] - frame.get(p[1], 0.0))))
        else:
            _, a, b, f0, f1 = p
            out.append(("ms", a, b, _wrap(f0 - frame.get(a, 0.0)), _wrap(f1 - frame.get(b, 0.0))))
    return out, frame


def native_gates(circ: Circuit, angle_of=lambda a: a) -> tuple[list[tuple], list[tuple[int, int]]]:
    """The circuit's unitary part as IonQ natives, and its (qubit, clbit) measurements."""
    prims: list[tuple] = []
    measures: list[tuple[int, int]] = []
    for op in circ.ops:
        if op.condition is not None:
            raise refuse("Q0303", "IonQ runs no gate conditioned on a measurement",
                         help="use `--strategy deferred` or `layered`")
        if op.name == "barrier":
            continue  # the verbatim box already keeps every gate as written
        if op.name == "measure":
            measures.append((op.qubits[0], op.clbit))
            continue
        if op.name == "reset":
            raise refuse("Q0303", "IonQ has no mid-circuit reset")
        if any(q in {m[0] for m in measures} for q in op.qubits):
            raise refuse("Q0303", "IonQ runs no gate after a measurement")
        angle = angle_of(op.angle) if op.angle is not None else None
        prims += natives(op.name, op.qubits, angle)
    gates, _ = virtual_z(prims)
    return gates, sorted(measures, key=lambda m: m[1])


# --------------------------------------------------------------------------- emission


@dataclass
class IonqProgram:
    backend: str
    circuits: list  # braket Circuit per neutral circuit (FreeParameters for Params)
    measured: list  # per circuit: clbit order of the measured qubits
    neutral: list


def to_braket(circ: Circuit):
    _braket()
    from braket.circuits import Circuit as BCircuit, FreeParameter

    params = [FreeParameter(n) for n in circ.params]
    gates, measures = native_gates(circ, lambda a: params[a.index] if isinstance(a, Param) else a)
    inner = BCircuit()
    for g in gates:
        if g[0] == "gpi":
            inner.gpi(g[1], g[2])
        elif g[0] == "gpi2":
            inner.gpi2(g[1], g[2])
        else:
            inner.ms(g[1], g[2], g[3], g[4], HALF_PI)
    bc = BCircuit()
    if len(inner.instructions):
        bc.add_verbatim_box(inner)
    for q, _ in measures:
        bc.measure(q)
    return bc, [c for _, c in measures]


def emit(lowered: Lowered, caps: Capabilities, seed: int = 0) -> IonqProgram:
    circs, measured = [], []
    for c in lowered.circuits:
        bc, cl = to_braket(c)
        circs.append(bc)
        measured.append(cl)
    return IonqProgram(caps.backend, circs, measured, list(lowered.circuits))


def openqasm(bc) -> str:
    from braket.circuits.serialization import IRType

    lines = bc.to_ir(ir_type=IRType.OPENQASM).source.split("\n")
    # braket lists inputs in set order, which varies between processes: sort them
    inputs = sorted(l for l in lines if l.startswith("input "))
    rest = [l for l in lines if not l.startswith("input ")]
    return "\n".join(rest[:1] + inputs + rest[1:]) + "\n"


def texts(prog: IonqProgram) -> dict[str, list[str]]:
    return {"openqasm3": [openqasm(c) for c in prog.circuits]}


def stats(bc) -> dict:
    counts: dict[str, int] = {}
    qubits: set[int] = set()
    for inst in bc.instructions:
        name = inst.operator.name.lower()
        if name in ("startverbatimbox", "endverbatimbox"):
            continue
        counts[name] = counts.get(name, 0) + 1
        qubits.update(int(q) for q in inst.target)
    two_q = counts.get("ms", 0)
    meas = counts.get("measure", 0)
    gates = sum(v for k, v in counts.items() if k != "measure")
    return {"qubits": len(qubits), "depth": _depth(bc), "two_qubit_gates": two_q,
            "measurements": meas, "conditionals": 0, "resets": 0, "gates": gates,
            "ops": dict(sorted(counts.items()))}


def _depth(bc) -> int:
    level: dict[int, int] = {}
    best = 0
    for inst in bc.instructions:
        name = inst.operator.name.lower()
        if name in ("startverbatimbox", "endverbatimbox"):
            continue
        qs = [int(q) for q in inst.target]
        d = max(level.get(q, 0) for q in qs) + 1
        for q in qs:
            level[q] = d
        best = max(best, d)
    return best


# --------------------------------------------------------------------------- execution


class IonqExecutor:
    def __init__(self, prog: IonqProgram, simulator: str = "ideal", seed: Optional[int] = None):
        _braket()
        from braket.devices import LocalSimulator

        if simulator not in SIMULATORS:
            raise refuse("Q0317", f"unknown simulator `{simulator}` for target `ionq`",
                         help="simulators: " + ", ".join(f"`{s}`" for s in SIMULATORS))
        self.kind = "braket_sv" if simulator in ("ideal", "braket_sv") else "braket_dm"
        self.noisy = simulator == "noisy"
        self.prog = prog
        self.device = LocalSimulator(self.kind)
        # Braket's local simulators draw from an unseeded generator: runs are not
        # reproducible; `seed` is accepted for a common interface.
        self.seed = seed
        for bc in prog.circuits:
            n = stats(bc)["qubits"]
            if n > LOCAL_LIMITS[self.kind]:
                raise refuse("Q0316", f"a circuit of {n} qubits is too wide for `{self.kind}` "
                             f"(at most {LOCAL_LIMITS[self.kind]} here)",
                             help="compile with fewer copies (`--copies 1`), or narrower layers")

    def _circuit(self, index: int):
        bc = self.prog.circuits[index]
        if not self.noisy:
            return bc
        from braket.circuits import noises

        bc = bc.copy()
        bc.apply_gate_noise(noises.Depolarizing(ILLUSTRATIVE_NOISE["gate_1q"]),
                            target_gates=[_gate("GPi"), _gate("GPi2")])
        bc.apply_gate_noise(noises.TwoQubitDepolarizing(ILLUSTRATIVE_NOISE["gate_2q"]),
                            target_gates=[_gate("MS")])
        bc.apply_readout_noise(noises.BitFlip(ILLUSTRATIVE_NOISE["readout"]))
        return bc

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        bc = self._circuit(index)
        neutral = self.prog.neutral[index]
        clbits = self.prog.measured[index]
        out = []
        for j, s in enumerate(shots):
            inputs = {n: float(values[j, k]) for k, n in enumerate(neutral.params)} \
                if values is not None else None
            res = self.device.run(bc, shots=int(s), inputs=inputs).result()
            m = np.asarray(res.measurements, dtype=np.uint8)  # columns: measured_qubits order
            order = {int(q): k for k, q in enumerate(res.measured_qubits)}
            bits = np.zeros((m.shape[0], neutral.num_clbits), dtype=np.uint8)
            for (q, cl) in zip(_measured_qubits(neutral), clbits):
                bits[:, cl] = m[:, order[q]]
            out.append(bits)
        return out


def _gate(name: str):
    from braket.circuits import gates

    return getattr(gates, name)


def _measured_qubits(circ: Circuit) -> list[int]:
    return [op.qubits[0] for op in sorted((o for o in circ.ops if o.name == "measure"),
                                          key=lambda o: o.clbit)]


# --------------------------------------------------------------------------- cloud (Amazon Braket)


class BraketSubmitExecutor:
    """`device.run(circuit, shots=s)` on an `AwsDevice` or a `LocalSimulator`."""

    def __init__(self, prog: IonqProgram, device, client: GuardedClient):
        self.prog = prog
        self.device = device
        self.client = client

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        bc = self.prog.circuits[index]
        neutral = self.prog.neutral[index]
        tasks = []
        for j, s in enumerate(shots):  # submit the round's tasks, then wait for them
            circ = bc
            if values is not None and neutral.params:
                circ = bc.make_bound_circuit({n: float(values[j, k])
                                              for k, n in enumerate(neutral.params)})
            task = self.client.call("submitting a quantum task", self.device.run, circ, shots=int(s))
            self.client.record({"id": str(task.id), "circuit": neutral.name, "shots": int(s)})
            tasks.append(task)
        qubits = _measured_qubits(neutral)
        clbits = self.prog.measured[index]
        out = []
        for task in tasks:
            res = self.client.call(f"waiting for task {task.id}", task.result)
            if res is None:  # AwsQuantumTask.result() of a failed or cancelled task
                state = self.client.call(f"reading the state of task {task.id}", task.state)
                raise self.client.error(f"task {task.id} ended without a result (state {state})")
            m = np.asarray(res.measurements, dtype=np.uint8)  # columns: measured_qubits order
            order = {int(q): k for k, q in enumerate(res.measured_qubits)}
            bits = np.zeros((m.shape[0], neutral.num_clbits), dtype=np.uint8)
            for q, cl in zip(qubits, clbits):
                bits[:, cl] = m[:, order[q]]
            out.append(bits)
        return out


class IonQCloud(SubmissionClient):
    """Amazon Braket's `AwsDevice` (the AWS standard credential chain); offline, Braket's
    `LocalSimulator` through the same `device.run`."""

    target = "ionq"
    local_qubits = LOCAL_LIMITS["braket_sv"]
    secret_env = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "AWS_SECURITY_TOKEN")
    credentials_of = "Amazon Braket (AWS)"
    setup_help = ("configure AWS credentials with `aws configure` (or `aws configure sso`), or set "
                  "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `--local` runs the "
                  "same Braket call on its LocalSimulator, with no account")
    client_help = ("check the AWS credentials (`aws sts get-caller-identity`), that the account "
                   "has Amazon Braket enabled in us-east-1, the device, and the network")

    def device(self, backend: Optional[str]) -> Device:
        name = (backend or DEFAULT_BACKEND).strip().lower()
        if name not in IONQ_ARNS:
            raise refuse("Q0304", f"unknown IonQ device `{backend}`",
                         help="IonQ devices: " + ", ".join(f"`{b}`" for b in IONQ_ARNS))
        return Device("ionq", IONQ_ARNS[name], name, "Amazon Braket AwsDevice",
                      "Amazon Braket LocalSimulator (`braket_sv`) through the same device.run")

    def credential_sources(self) -> tuple[list[str], list[str]]:
        """What botocore's own credential chain finds (`boto3.Session().get_credentials()`:
        environment, shared files, SSO, web identity, container and instance roles), by
        the name of its provider, never a value. `looked` names the usual places."""
        found: list[str] = []
        looked: list[str] = []
        environment_sources(_AWS_ENV, [], looked)
        for var, default in (("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
                             ("AWS_CONFIG_FILE", ".aws/config")):
            file_source(os.path.expanduser(os.environ.get(var) or os.path.join(home(), default)),
                        [], looked)
        looked.append("botocore's credential chain (also SSO, container and instance roles)")
        try:
            import boto3

            creds = boto3.Session().get_credentials()
        except Exception as exc:  # a broken profile: say so, as Braket would
            looked.append(f"botocore: {type(exc).__name__}")
            creds = None
        if creds is not None:
            found.append(f"botocore credential chain ({getattr(creds, 'method', 'unknown provider')})")
        return found, looked

    def executor(self, compiled, device: Device, log: list, *, local: bool, ideal: bool,
                 seed: Optional[int], progress=None) -> BraketSubmitExecutor:
        _braket()  # Q0310 when the extra is missing
        if local:
            from braket.devices import LocalSimulator

            check_local_width(compiled.native.circuits, stats, self.local_qubits,
                              "Braket's local simulator")
            client = GuardedClient("Amazon Braket (LocalSimulator)", log, progress,
                                   help=self.client_help)
            return BraketSubmitExecutor(compiled.native, client.call(
                "starting the local simulator", LocalSimulator, "braket_sv"), client)
        from braket.aws import AwsDevice

        client = GuardedClient("Amazon Braket", log, progress, help=self.client_help)
        dev = client.call(f"looking up the device `{device.name}`", AwsDevice, device.name)
        return BraketSubmitExecutor(compiled.native, dev, client)

    def jobs(self, compiled, parameter_sets: int) -> dict:
        return jobs_per_parameter_set(compiled, parameter_sets, "Braket quantum tasks")

    def describe_jobs(self, jobs: dict, rounds: int) -> str:
        return describe_jobs_per_parameter_set(jobs)


# --------------------------------------------------------------------------- the target


class IonQTarget(Target):
    name = "ionq"
    primary_format = PRIMARY_FORMAT
    simulators = SIMULATORS
    local_seeded = False  # Braket's local simulators draw from an unseeded generator

    def capabilities(self, backend: Optional[str] = None) -> Capabilities:
        return ionq_capabilities(backend)

    def emit(self, lowered: Lowered, caps: Capabilities, seed: int = 0) -> IonqProgram:
        return emit(lowered, caps, seed)

    def bundle_circuit(self, native: IonqProgram, index: int):
        """OpenQASM 3 with `input float` parameters (Braket's `Program(source, inputs)`),
        and which measured qubit is which clbit."""
        from qnnc.runtime.targets.bundle import BundleCircuit

        neutral = native.neutral[index]
        measured = [[int(q), int(cl)] for q, cl in zip(_measured_qubits(neutral), native.measured[index])]
        return BundleCircuit(f"{neutral.name}.qasm", openqasm(native.circuits[index]).encode(),
                             sorted(neutral.params), {"measured_qubits": measured})

    def texts(self, native: IonqProgram) -> dict[str, list[str]]:
        return texts(native)

    def statistics(self, native: IonqProgram) -> list[dict]:
        return [stats(c) for c in native.circuits]

    def local_executor(self, native: IonqProgram, lowered: Lowered, simulator: str = "ideal",
                       seed: Optional[int] = None) -> IonqExecutor:
        return IonqExecutor(native, simulator, seed)

    def local_qubit_limit(self, simulator: str) -> Optional[int]:
        kind = "braket_sv" if simulator in ("ideal", "braket_sv") else "braket_dm"
        return LOCAL_LIMITS[kind]

    def submission_client(self) -> IonQCloud:
        return IonQCloud()
