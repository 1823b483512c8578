"""Submission: run a compiled network through each vendor's own cloud client.

One remote `Executor` (the protocol of `host`) per vendor; `host` does the rest (a
`layered` program's feed-forward between layers, one round of jobs per layer). Every
vendor import is inside a function: importing this module loads no vendor SDK.

- IBM: `qiskit_ibm_runtime.QiskitRuntimeService()` with no arguments (the saved account
  `~/.qiskit/qiskit-ibm.json` or the `QISKIT_IBM_*` environment variables),
  `service.backend(name)`, the logical circuits transpiled to that backend's ISA with
  the settings of `ibm.emit`, run by `SamplerV2(mode=backend)`: one job per executor
  call holding one pub `(circuit, parameter sets, shots)`.
- IonQ: `braket.aws.AwsDevice(arn)` (the AWS standard credential chain) running the
  braket circuits of `ionq.emit`, their `FreeParameter`s bound on the host (not every
  Braket device takes `inputs`), `device.run(circuit, shots=s)`: one quantum task per
  parameter set.
- Quantinuum: none. pytket-quantinuum compiles and emulates offline only (since 0.56);
  Quantinuum hardware takes jobs through Quantinuum Nexus (`qnexus`): refused (Q0352).

`local=True` is the vendor's client with its offline substitute, through the same
calls: IBM `SamplerV2(mode=<fake backend>)` (qiskit-ibm-runtime's local testing mode, on
Aer with the snapshot's noise model, or none with `ideal=True`), IonQ Braket's
`LocalSimulator()` through the same `device.run`, Quantinuum `QuantinuumBackend("H2-1LE")`
(pytket-quantinuum's local emulator, noiseless; it needs the optional `pytket-pecos`,
and is refused with Q0352 without it). No credentials, no network.

Before any client is constructed, `check_credentials` looks for the vendor's standard
credential sources (names and paths only; no value is read into a message), and
refuses with Q0350 when there is none. Errors of a vendor client become one-line Q0351
diagnostics, with credential values from the environment masked.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets import host
from qnnc.runtime.targets.errors import refuse

# Widest circuit the local stand-ins run here (every active qubit is simulated).
IBM_LOCAL_QUBITS = 20
IONQ_LOCAL_QUBITS = 22  # Braket's state vector, as `ionq.LOCAL_LIMITS["braket_sv"]`
QUANTINUUM_LOCAL_QUBITS = 20  # pecos's state vector
# IonQ devices on Amazon Braket (all in us-east-1).
IONQ_ARNS = {
    "forte-1": "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1",
    "aria-1": "arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1",
    "aria-2": "arn:aws:braket:us-east-1::device/qpu/ionq/Aria-2",
}
# Environment variables whose values are masked in any message a vendor client returns.
_SECRET_ENV = ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
_SAMPLER_DEPRECATION = r".*SamplerV2 class is deprecated.*"


@dataclass(frozen=True)
class Device:
    """A vendor device: what the vendor calls it, and what qnnc compiles against offline."""

    target: str
    name: str  # ibm_brisbane; an Amazon Braket ARN; H2-1
    compile_backend: str  # fake_brisbane; forte-1; H2-1
    client: str  # the vendor client, in words
    local_client: str  # its offline substitute, in words


def resolve_device(target: str, backend: Optional[str]) -> Device:
    """The device `--backend` names on `target`; IBM names map to their offline
    snapshot (`ibm_torino` is compiled against `fake_torino`, and back)."""
    if target == "ibm":
        from qnnc.runtime.targets.ibm import DEFAULT_BACKEND

        name = (backend or DEFAULT_BACKEND).strip().lower()
        city = name.removeprefix("fake_").removeprefix("ibm_")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", city):
            raise refuse("Q0304", f"`{backend}` is not an IBM device name",
                         help="e.g. `ibm_torino` (compiled against the fake backend `fake_torino`)")
        from qnnc.runtime.targets.ibm import fake_backend

        try:
            fake_backend(f"fake_{city}")
        except QnncError as exc:
            d = exc.diagnostics[0]
            if d.code != "Q0304":
                raise
            raise refuse("Q0304", f"no offline snapshot of the IBM device `ibm_{city}` to compile "
                         f"against (qiskit-ibm-runtime has no fake backend `fake_{city}`)",
                         help=d.help) from None
        return Device("ibm", f"ibm_{city}", f"fake_{city}",
                      "qiskit-ibm-runtime SamplerV2 through QiskitRuntimeService",
                      f"qiskit-ibm-runtime SamplerV2 in local testing mode on `fake_{city}` "
                      f"(Aer, with the snapshot's noise model)")
    if target == "ionq":
        from qnnc.runtime.targets.capabilities import IONQ_DEFAULT

        name = (backend or IONQ_DEFAULT).strip().lower()
        if name not in IONQ_ARNS:
            raise refuse("Q0304", f"unknown IonQ device `{backend}`",
                         help="IonQ devices: " + ", ".join(f"`{b}`" for b in IONQ_ARNS))
        return Device("ionq", IONQ_ARNS[name], name, "Amazon Braket AwsDevice",
                      "Amazon Braket LocalSimulator (`braket_sv`) through the same device.run")
    if target == "quantinuum":
        from qnnc.runtime.targets.capabilities import QUANTINUUM_DEFAULT

        from qnnc.runtime.targets import quantinuum

        name = backend or QUANTINUUM_DEFAULT
        quantinuum.backend(name)  # its offline device data (Q0304 for an unknown name)
        return Device("quantinuum", name, name, f"Quantinuum Nexus (qnexus) for `{name}`",
                      f"pytket-quantinuum QuantinuumBackend(`{name}LE`), its local emulator")
    raise refuse("Q0301", f"unknown target `{target}`")


def local_qubit_limit(target: str) -> Optional[int]:
    """The widest circuit `local=True` runs for `target` (None: no fixed limit)."""
    return {"ibm": IBM_LOCAL_QUBITS, "ionq": IONQ_LOCAL_QUBITS,
            "quantinuum": QUANTINUUM_LOCAL_QUBITS}.get(target)


# --------------------------------------------------------------------------- credentials


def _home() -> str:
    return os.path.expanduser("~")  # read now: tests and users point HOME elsewhere


def credential_sources(target: str) -> tuple[list[str], list[str]]:
    """(sources found, sources looked for) of the vendor's standard credentials: names of
    environment variables and paths of files, never their values."""
    env = os.environ
    found: list[str] = []
    looked: list[str] = []
    if target == "ibm":
        looked.append("QISKIT_IBM_TOKEN (environment)")
        if env.get("QISKIT_IBM_TOKEN"):
            found.append("QISKIT_IBM_TOKEN (environment)")
        path = os.path.join(_home(), ".qiskit", "qiskit-ibm.json")
        looked.append(path)
        if os.path.isfile(path):
            found.append(path)
    elif target == "ionq":
        for var in _AWS_ENV:
            looked.append(f"{var} (environment)")
            if env.get(var):
                found.append(f"{var} (environment)")
        for var, default in (("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
                             ("AWS_CONFIG_FILE", ".aws/config")):
            path = os.path.expanduser(env.get(var) or os.path.join(_home(), default))
            looked.append(path)
            if os.path.isfile(path):
                found.append(path)
    return found, looked


_SETUP_HELP = {
    "ibm": "save an IBM Quantum account once with `QiskitRuntimeService.save_account(token=..., "
           "instance=..., set_as_default=True)` (it writes ~/.qiskit/qiskit-ibm.json), or set "
           "QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE; `--local` runs the same client on its "
           "offline fake backend, with no account",
    "ionq": "configure AWS credentials with `aws configure` (or `aws configure sso`), or set "
            "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `--local` runs the same "
            "Braket call on its LocalSimulator, with no account",
}


def check_credentials(target: str) -> list[str]:
    """The credential sources found for `target`; Q0350 when there is none. Run before
    any client is constructed."""
    found, looked = credential_sources(target)
    if not found:
        who = {"ibm": "IBM Quantum (qiskit-ibm-runtime)", "ionq": "Amazon Braket (AWS)"}[target]
        raise refuse("Q0350", f"no {who} credentials found; nothing was submitted",
                     notes=["looked for: " + "; ".join(looked)], help=_SETUP_HELP[target])
    return found


# --------------------------------------------------------------------------- vendor errors


def mask(text: str) -> str:
    """`text` with credential values of the environment and `key=value` secrets masked."""
    for var in _SECRET_ENV:
        value = os.environ.get(var)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    text = re.sub(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+", r"\1 ***", text)
    return re.sub(r"(?i)\b(token|api[_-]?key|apikey|secret|password|authorization)(\W{0,3}[:=]\W{0,2})"
                  r"(?!\*\*\*)[^\s\"',;}]+", r"\1\2***", text)


def _describe(exc: BaseException) -> str:
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    text = mask(text)
    return text if len(text) <= 300 else text[:297] + "..."


_CLIENT_HELP = {
    "ibm": "check the saved account (`QiskitRuntimeService.saved_accounts()`), the device name "
           "(`service.backends()`) and the network",
    "ionq": "check the AWS credentials (`aws sts get-caller-identity`), that the account has "
            "Amazon Braket enabled in us-east-1, the device, and the network",
}


class _Client:
    """Calls into a vendor client; any error becomes one Q0351 line."""

    def __init__(self, target: str, label: str, log: list,
                 progress: Optional[Callable[[dict], None]] = None):
        self.target = target
        self.label = label
        self.log = log  # the jobs submitted so far: {"id", ...}
        self.progress = progress

    def record(self, job: dict) -> None:
        self.log.append(job)
        if self.progress is not None:
            self.progress(job)

    def call(self, what: str, fn: Callable, *args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_SAMPLER_DEPRECATION,
                                        category=DeprecationWarning)
                return fn(*args, **kwargs)
        except (QnncError, KeyboardInterrupt):
            raise
        except Exception as exc:  # every vendor error type, reported in one line
            raise self.error(f"failed while {what}: {_describe(exc)}") from None

    def error(self, message: str) -> QnncError:
        notes = []
        if self.log:
            notes.append("submitted before the failure: " +
                         ", ".join(str(j["id"]) for j in self.log))
        return refuse("Q0351", f"{self.label} {message}", notes=notes,
                      help=_CLIENT_HELP.get(self.target))


# --------------------------------------------------------------------------- IBM


def _check_local_width(circuits, stats: Callable, limit: int, what: str) -> None:
    """Q0316 for a circuit wider than an offline substitute simulates here."""
    for c in circuits:
        n = stats(c)["qubits"]
        if n > limit:
            raise refuse("Q0316", f"a circuit of {n} qubits is too wide for {what} here "
                         f"(at most {limit})",
                         help="compile with fewer copies (`--copies 1`), or narrower layers")


def _clbit_locations(circ) -> list[tuple[str, int]]:
    """(register name, index) of each clbit of a qiskit circuit, in clbit order."""
    out = []
    for bit in circ.clbits:
        regs = circ.find_bit(bit).registers
        if not regs:  # pragma: no cover - to_qiskit puts every clbit in a register
            raise refuse("Q0351", "a measured bit outside every classical register cannot be "
                         "read back from SamplerV2")
        reg, i = regs[0]
        out.append((reg.name, i))
    return out


class IbmSubmitExecutor:
    """`SamplerV2(mode=backend)`: a device of the runtime service, or a fake backend."""

    def __init__(self, names: list[list[str]], circuit_names: list[str], isa: list, backend,
                 client: _Client, *, local: bool, ideal: bool = False, seed: Optional[int] = None):
        from qiskit_ibm_runtime import SamplerV2

        self.names = names  # the neutral circuits' parameter order
        self.circuit_names = circuit_names
        self.isa = isa
        self.client = client
        self.local = local
        self.seeds = np.random.SeedSequence(seed)
        self.clbits = [_clbit_locations(c) for c in isa]
        self.sampler = client.call("creating the sampler", SamplerV2, mode=backend)
        if local and ideal:
            from qiskit_aer.noise import NoiseModel

            self.sampler.options.simulator.noise_model = NoiseModel()  # no noise

    def _seed(self) -> int:
        # a fresh seed per job: a fixed seed repeats the same draws in every job
        return int(self.seeds.spawn(1)[0].generate_state(1)[0] & 0x7FFFFFFF)

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        """One SamplerV2 job holding one pub of a uniform shot count g (the gcd of the
        jobs' counts): job j's parameter set is repeated shots[j] / g times, so each job
        gets exactly its shots and no shot is spent twice. (Pubs of different shot counts
        in one job are deprecated since qiskit-ibm-runtime 0.48.)"""
        circ = self.isa[index]
        shots = [int(s) for s in shots]
        g = math.gcd(*shots)
        reps = [s // g for s in shots]
        params = list(circ.parameters)
        if params and values is not None:
            order = {name: k for k, name in enumerate(self.names[index])}
            cols = [order[p.name] for p in params]  # SamplerV2 binds in circuit.parameters order
            rows = np.repeat(np.asarray(values, dtype=float)[:, cols], reps, axis=0)
            pub = (circ, rows, g)
        else:
            pub = (circ, None, sum(shots))
        if self.local:
            self.sampler.options.simulator.seed_simulator = self._seed()
        job = self.client.call("submitting a job", self.sampler.run, [pub])
        job_id = str(self.client.call("reading the job id", job.job_id))
        self.client.record({"id": job_id, "circuit": self.circuit_names[index],
                            "parameter_sets": len(shots), "shots": sum(shots)})
        result = self.client.call(f"waiting for job {job_id}", job.result)
        bits = self.client.call(f"reading the results of job {job_id}", self._bits,
                                result[0].data, index)
        bits = bits.reshape(-1, bits.shape[-1])  # rows in job order, g shots per row
        out = []
        start = 0
        for s in shots:
            out.append(bits[start:start + s])
            start += s
        return out

    def _bits(self, data, index: int) -> np.ndarray:
        """[..., shots, clbits] (1 is |1>) from a pub's registers, in our clbit order."""
        regs: dict[str, np.ndarray] = {}
        locs = self.clbits[index]
        for name, _ in locs:
            if name not in regs:
                regs[name] = getattr(data, name).to_bool_array(order="little")
        first = next(iter(regs.values()))
        bits = np.zeros(first.shape[:-1] + (len(locs),), dtype=np.uint8)
        for k, (name, i) in enumerate(locs):
            bits[..., k] = regs[name][..., i]
        return bits


def _ibm_executor(compiled, device: Device, log: list, *, local: bool, ideal: bool,
                  seed: Optional[int], progress=None) -> IbmSubmitExecutor:
    from qnnc.runtime.targets import ibm

    ibm._qiskit()  # Q0310 when the extra is missing
    names = [list(c.params) for c in compiled.circuits]
    circuit_names = [c.name for c in compiled.circuits]
    if local:
        client = _Client("ibm", "qiskit-ibm-runtime (local testing mode)", log, progress)
        backend = ibm.fake_backend(device.compile_backend)
        isa = compiled.native.isa  # ibm.emit's own transpilation for this fake backend
        _check_local_width(isa, ibm.stats, IBM_LOCAL_QUBITS, "the local testing mode")
        return IbmSubmitExecutor(names, circuit_names, isa, backend, client, local=True,
                                 ideal=ideal, seed=seed)
    from qiskit_ibm_runtime import QiskitRuntimeService

    client = _Client("ibm", "qiskit-ibm-runtime", log, progress)
    service = client.call("connecting with the saved account", QiskitRuntimeService)
    backend = client.call(f"looking up the device `{device.name}`", service.backend, device.name)
    # the same transpilation as `ibm.emit` (noise probes placed after routing)
    isa = client.call(f"transpiling for `{device.name}`", ibm.transpile_circuits,
                      compiled.lowered.circuits, backend, compiled.native.seed)
    return IbmSubmitExecutor(names, circuit_names, isa, backend, client, local=False, seed=seed)


# --------------------------------------------------------------------------- IonQ (Braket)


class BraketSubmitExecutor:
    """`device.run(circuit, shots=s)` on an `AwsDevice` or a `LocalSimulator`."""

    def __init__(self, prog, device, client: _Client):
        self.prog = prog  # ionq.IonqProgram
        self.device = device
        self.client = client

    def run(self, index: int, values: Optional[np.ndarray], shots: Sequence[int]) -> list[np.ndarray]:
        from qnnc.runtime.targets.ionq import _measured_qubits

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


def _ionq_executor(compiled, device: Device, log: list, *, local: bool,
                   progress=None) -> BraketSubmitExecutor:
    from qnnc.runtime.targets import ionq

    ionq._braket()  # Q0310 when the extra is missing
    if local:
        from braket.devices import LocalSimulator

        _check_local_width(compiled.native.circuits, ionq.stats, IONQ_LOCAL_QUBITS,
                           "Braket's local simulator")
        client = _Client("ionq", "Amazon Braket (LocalSimulator)", log, progress)
        return BraketSubmitExecutor(compiled.native, client.call(
            "starting the local simulator", LocalSimulator, "braket_sv"), client)
    from braket.aws import AwsDevice

    client = _Client("ionq", "Amazon Braket", log, progress)
    dev = client.call(f"looking up the device `{device.name}`", AwsDevice, device.name)
    return BraketSubmitExecutor(compiled.native, dev, client)


# --------------------------------------------------------------------------- Quantinuum


def have_local_emulator() -> bool:
    """Whether pytket-quantinuum's local emulator (its optional `pytket-pecos`) is here."""
    try:
        from pytket.extensions.quantinuum import have_pecos
    except ImportError:  # pragma: no cover - depends on the install
        return False
    return bool(have_pecos())


class PytketSubmitExecutor:
    """`backend.process_circuits` / `get_results` of a `QuantinuumBackend`."""

    def __init__(self, prog, backend, client: _Client, seed: Optional[int] = None):
        self.prog = prog  # quantinuum.QuantinuumProgram
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
        seed = int(self.seeds.spawn(1)[0].generate_state(1)[0] & 0x7FFFFFFF)
        handles = self.client.call("submitting circuits", self.backend.process_circuits, circuits,
                                   n_shots=[int(s) for s in shots], seed=seed)
        for h, s in zip(handles, shots):
            self.client.record({"id": str(self.backend.get_jobid(h)), "circuit": neutral.name,
                                "shots": int(s)})
        results = self.client.call("waiting for results", self.backend.get_results, handles)
        return [np.asarray(r.get_shots(cbits=cbits), dtype=np.uint8) for r in results]


def _quantinuum_executor(compiled, device: Device, log: list, *, seed: Optional[int],
                         progress=None) -> PytketSubmitExecutor:
    from qnnc.runtime.targets import quantinuum

    quantinuum._pytket()  # Q0310 when the extra is missing
    from pytket.extensions.quantinuum import QuantinuumBackend

    _check_local_width(compiled.native.compiled, quantinuum.stats, QUANTINUUM_LOCAL_QUBITS,
                       "the local emulator")
    client = _Client("quantinuum", "pytket-quantinuum (local emulator)", log, progress)
    backend = client.call(f"starting the local emulator `{device.name}LE`", QuantinuumBackend,
                          f"{device.name}LE")
    return PytketSubmitExecutor(compiled.native, backend, client, seed)


def _quantinuum_refusal(device: Device, local: bool) -> QnncError:
    try:
        from pytket.extensions.quantinuum._metadata import __extension_version__ as version
    except ImportError:  # pragma: no cover - depends on the install
        version = "(not installed)"
    if local:
        return refuse("Q0352", f"compiled for `{device.name}` offline, but Quantinuum's client has "
                      f"no offline execution here: pytket-quantinuum {version} runs circuits only "
                      f"on its local emulator `{device.name}LE`, which needs `pytket-pecos` "
                      f"(not installed: `pip install 'pytket-quantinuum[pecos]'`)",
                      help="`qnnc run --target quantinuum` samples the compiled circuits on "
                           "pytket-qiskit's AerBackend (a simulator, not Quantinuum's client)")
    return refuse("Q0352", f"qnnc cannot submit to Quantinuum `{device.name}`: pytket-quantinuum "
                  f"{version} compiles and emulates offline only (since 0.56); Quantinuum "
                  f"hardware takes jobs through Quantinuum Nexus (the `qnexus` package)",
                  help="write the compiled circuits with `qnnc compile --target quantinuum "
                       "-o circuits.json` and upload their pytket JSON with qnexus after "
                       "`qnx.login()`")


# --------------------------------------------------------------------------- top level


def executor(compiled, device: Optional[Device] = None, *, local: bool = False,
             ideal: bool = False, seed: Optional[int] = None, log: Optional[list] = None,
             progress: Optional[Callable[[dict], None]] = None) -> host.Executor:
    """The vendor executor for `compiled`. Without `local`, the credentials are checked
    (Q0350) before any client is constructed. `ideal` (local IBM only) drops the fake
    backend's noise model. `log` collects the submitted jobs; `progress` is called with
    each as it is submitted."""
    device = device or resolve_device(compiled.target, compiled.backend)
    log = [] if log is None else log
    if compiled.target == "quantinuum":
        if local and have_local_emulator():
            return _quantinuum_executor(compiled, device, log, seed=seed, progress=progress)
        raise _quantinuum_refusal(device, local)
    if not local:
        check_credentials(compiled.target)
    if compiled.target == "ibm":
        return _ibm_executor(compiled, device, log, local=local, ideal=ideal, seed=seed,
                             progress=progress)
    if compiled.target == "ionq":
        return _ionq_executor(compiled, device, log, local=local, progress=progress)
    raise refuse("Q0301", f"unknown target `{compiled.target}`")  # pragma: no cover


@dataclass
class Submission:
    outcomes: np.ndarray  # [shots, hidden neurons] of ±1
    device: Device
    local: bool
    seconds: float
    jobs: list = field(default_factory=list)  # {"id", "circuit", "shots", ...} in order


def submit(compiled, shots: int, *, local: bool = False, device: Optional[Device] = None,
           seed: Optional[int] = None, ideal: bool = False,
           progress: Optional[Callable[[dict], None]] = None) -> Submission:
    """Run `shots` forward passes through the vendor's client (or, with `local`, its
    offline substitute): rows of ±1 hidden outcomes, as `run_compiled`, and the jobs."""
    if shots < 1:
        raise refuse("Q0308", f"shots must be at least 1, not {shots}")
    device = device or resolve_device(compiled.target, compiled.backend)
    log: list = []
    ex = executor(compiled, device, local=local, ideal=ideal, seed=seed, log=log,
                  progress=progress)
    t0 = time.perf_counter()
    if compiled.lowered.strategy == "layered":
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        out = host.run_layered(compiled.lowered, compiled.spec, ex, shots, rng)
    else:
        out = host.run_single(compiled.lowered, compiled.spec, ex, shots)
    return Submission(out, device, local, time.perf_counter() - t0, log)


# --------------------------------------------------------------------------- plan


def _parameter_sets_max(compiled, shots: int) -> int:
    """At most how many parameter sets (IonQ: quantum tasks) a run of `shots` needs:
    a layered chunk binds one set per distinct row of angles (packed into its copies)."""
    lowered, spec = compiled.lowered, compiled.spec
    if lowered.strategy != "layered":
        return len(lowered.circuits)
    total = 0
    for ch in lowered.chunks:
        layer = spec.hidden[ch.layer]
        if ch.layer == 0:
            unique = 1
        elif layer.carried or spec.hidden[ch.layer - 1].size > 40:
            unique = shots
        else:
            unique = min(shots, 2 ** spec.hidden[ch.layer - 1].size)
        pool = min(shots, unique * (ch.copies - 1))
        total += min(shots, unique + math.ceil(pool / ch.copies))
    return total


def plan(compiled, shots: int, device: Optional[Device] = None, local: bool = False) -> dict:
    """What a submission would send: device, circuits, shots, rounds and jobs."""
    device = device or resolve_device(compiled.target, compiled.backend)
    s = compiled.summary
    layered = compiled.lowered.strategy == "layered"
    rounds = len(compiled.spec.hidden) if layered else 1
    sets = _parameter_sets_max(compiled, shots)
    if compiled.target == "ibm":
        jobs = {"kind": "SamplerV2 jobs", "count": len(compiled.lowered.chunks) if layered else 1,
                "exact": True, "parameter_sets_max": sets}
    else:
        kind = "Braket quantum tasks" if compiled.target == "ionq" else "circuit executions"
        jobs = {"kind": kind, "count": sets, "exact": not layered or sets == len(compiled.circuits)}
    p = {"network": s["network"], "target": compiled.target, "device": device.name,
         "compiled_for": compiled.backend, "mode": "local" if local else "cloud",
         "client": device.local_client if local else device.client,
         "strategy": compiled.strategy, "shots": shots, "rounds": rounds, "jobs": jobs,
         "circuits": [{"name": c["name"], "layers": c["layers"], "qubits": c["qubits"],
                       "copies": c["copies"], "params": c["params"]} for c in s["circuits"]],
         "input": s.get("input"), "weights": s.get("weights"), "notes": list(s.get("notes", []))}
    if compiled.target == "quantinuum" and not (local and have_local_emulator()):
        p["refused"] = ("no offline execution through Quantinuum's client (its local emulator "
                        "needs pytket-pecos)" if local else
                        "qnnc cannot submit to Quantinuum (pytket-quantinuum compiles offline only)")
    elif not local:
        found, looked = credential_sources(compiled.target)
        p["credentials"] = {"found": found, "looked_for": looked}
    return p


def render_plan(p: dict) -> str:
    out = [f"submission plan: network `{p['network']}` -> {p['target']} `{p['device']}` "
           f"({'local stand-in: ' if p['mode'] == 'local' else ''}{p['client']})"]
    qubits = max(c["qubits"] for c in p["circuits"])
    out.append(f"  strategy `{p['strategy']}`, compiled against `{p['compiled_for']}`: "
               f"{len(p['circuits'])} circuit(s), up to {qubits} qubits; {p['shots']} shots")
    if p["rounds"] > 1:
        out.append(f"  {p['rounds']} rounds, one per layer, each waiting for the previous "
                   f"layer's results (host feed-forward)")
    j = p["jobs"]
    kind = j["kind"] if j["count"] != 1 else j["kind"].removesuffix("s")
    if p["target"] == "ibm" and p["rounds"] > 1:
        out.append(f"  {j['count']} {kind} (one per circuit and round, one pub each; at most "
                   f"{j['parameter_sets_max']} parameter sets in all)")
    elif p["target"] == "ibm":
        out.append(f"  {j['count']} {kind} (one pub)")
    else:
        out.append(f"  {'' if j['exact'] else 'at most '}{j['count']} {kind} (one per "
                   f"circuit and parameter set)")
    out += [f"  note: {n}" for n in p.get("notes", [])]  # e.g. quantised weights
    if "credentials" in p:
        c = p["credentials"]
        out.append("  credentials: " + ("; ".join(c["found"]) if c["found"] else
                                        "none found (looked for " + "; ".join(c["looked_for"]) + ")"))
    if "refused" in p:
        out.append(f"  refused: {p['refused']}")
    return "\n".join(out) + "\n"
