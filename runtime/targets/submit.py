"""Submission: run a compiled network through its vendor's own cloud client.

The flow is the same for every vendor; what differs is the target's
`SubmissionClient` (`Target.submission_client()`, protocol in `cloud`): the device a
`--backend` names, the credential sources, the remote `Executor` (the protocol of
`host`), and the jobs a run sends. `host` does the rest (a `layered` program's
feed-forward between layers, one round of jobs per layer). Importing this module loads
no vendor SDK.

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
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from qnnc.runtime.targets import host
from qnnc.runtime.targets.cloud import Device, SubmissionClient, mask  # noqa: F401 (API)
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.ionq import IONQ_ARNS  # noqa: F401 (API: the IonQ devices)
from qnnc.runtime.targets.quantinuum import have_local_emulator  # noqa: F401 (API)
from qnnc.runtime.targets.target import get_target


def client_of(target: str) -> SubmissionClient:
    return get_target(target).submission_client()


def resolve_device(target: str, backend: Optional[str]) -> Device:
    """The device `--backend` names on `target` (IBM names map to their offline
    snapshot: `ibm_torino` is compiled against `fake_torino`, and back)."""
    return client_of(target).device(backend)


def vendor_seeded(target: str) -> bool:
    """Whether the target's local simulators honour a seed."""
    from qnnc.runtime.targets.registry import TARGETS

    return bool(getattr(TARGETS[target], "local_seeded", True)) if target in TARGETS else True


def local_qubit_limit(target: str) -> Optional[int]:
    """The widest circuit `local=True` runs for `target` (None: no fixed limit)."""
    from qnnc.runtime.targets.registry import TARGETS

    return TARGETS[target].submission_client().local_qubits if target in TARGETS else None


# --------------------------------------------------------------------------- credentials


def credential_sources(target: str) -> tuple[list[str], list[str]]:
    """(sources found, sources looked for) of the vendor's standard credentials: names of
    environment variables and paths of files, never their values."""
    return client_of(target).credential_sources()


def check_credentials(target: str) -> list[str]:
    """The credential sources found for `target`; Q0350 when there is none. Run before
    any client is constructed."""
    client = client_of(target)
    found, looked = client.credential_sources()
    if not found:
        raise refuse("Q0350", f"no {client.credentials_of} credentials found; nothing was "
                     "submitted", notes=["looked for: " + "; ".join(looked)],
                     help=client.setup_help)
    return found


# --------------------------------------------------------------------------- top level


def executor(compiled, device: Optional[Device] = None, *, local: bool = False,
             ideal: bool = False, seed: Optional[int] = None, log: Optional[list] = None,
             progress: Optional[Callable[[dict], None]] = None) -> host.Executor:
    """The vendor executor for `compiled`. Without `local`, the credentials are checked
    (Q0350) before any client is constructed. `ideal` (local IBM only) drops the fake
    backend's noise model. `log` collects the submitted jobs; `progress` is called with
    each as it is submitted."""
    client = client_of(compiled.target)
    device = device or client.device(compiled.backend)
    log = [] if log is None else log
    refusal = client.refusal(device, local)
    if refusal is not None:
        raise refusal
    if not local:
        check_credentials(compiled.target)
    return client.executor(compiled, device, log, local=local, ideal=ideal, seed=seed,
                           progress=progress)


@dataclass
class Submission:
    outcomes: np.ndarray  # [shots, hidden neurons] of ±1
    device: Device
    local: bool
    seconds: float
    jobs: list = field(default_factory=list)  # {"id", "circuit", "shots", ...} in order


def submit(compiled, shots: int, *, local: bool = False, device: Optional[Device] = None,
           seed: Optional[int] = None, ideal: bool = False,
           progress: Optional[Callable[[dict], None]] = None,
           layer_progress: Optional[Callable[[str], None]] = None) -> Submission:
    """Run `shots` forward passes through the vendor's client (or, with `local`, its
    offline substitute): rows of ±1 hidden outcomes, as `run_compiled`, and the jobs.
    `progress(job)` is told of each job submitted, `layer_progress(text)` of each layer."""
    if shots < 1:
        raise refuse("Q0308", f"shots must be at least 1, not {shots}")
    device = device or resolve_device(compiled.target, compiled.backend)
    log: list = []
    ex = executor(compiled, device, local=local, ideal=ideal, seed=seed, log=log,
                  progress=progress)
    t0 = time.perf_counter()
    out = host.run(compiled.lowered, compiled.spec, ex, shots, seed, layer_progress)
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
    client = client_of(compiled.target)
    device = device or client.device(compiled.backend)
    s = compiled.summary
    layered = compiled.lowered.strategy == "layered"
    rounds = len(compiled.spec.hidden) if layered else 1
    jobs = client.jobs(compiled, _parameter_sets_max(compiled, shots))
    p = {"network": s["network"], "target": compiled.target, "device": device.name,
         "compiled_for": compiled.backend, "mode": "local" if local else "cloud",
         "client": device.local_client if local else device.client,
         "strategy": compiled.strategy, "shots": shots, "rounds": rounds, "jobs": jobs,
         "circuits": [{"name": c["name"], "layers": c["layers"], "qubits": c["qubits"],
                       "copies": c["copies"], "params": c["params"]} for c in s["circuits"]],
         "input": s.get("input"), "weights": s.get("weights"), "notes": list(s.get("notes", []))}
    refused = client.plan_refusal(local)
    if refused is not None:
        p["refused"] = refused
    elif not local:
        found, looked = client.credential_sources()
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
    out.append("  " + client_of(p["target"]).describe_jobs(p["jobs"], p["rounds"]))
    out += [f"  note: {n}" for n in p.get("notes", [])]  # e.g. quantised weights
    if "credentials" in p:
        c = p["credentials"]
        out.append("  credentials: " + ("; ".join(c["found"]) if c["found"] else
                                        "none found (looked for " + "; ".join(c["looked_for"]) + ")"))
    if "refused" in p:
        out.append(f"  refused: {p['refused']}")
    return "\n".join(out) + "\n"
