"""IBM's cloud client for `qnnc submit`: `QiskitRuntimeService()` (the saved account),
`service.backend(name)`, the circuits transpiled to its ISA as `ibm.emit` does, run by
`SamplerV2(mode=backend)`; offline, the same sampler on the fake backend (local
testing mode). Every qiskit import is inside a function."""

from __future__ import annotations

import math
import os
import re
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets.cloud import (Device, GuardedClient, SubmissionClient, check_local_width,
                                        environment_sources, file_source, home, job_kind)
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.host import fresh_seed

# Widest circuit the local testing mode runs here (every active qubit is simulated).
LOCAL_QUBITS = 20


class IBMCloud(SubmissionClient):
    target = "ibm"
    local_qubits = LOCAL_QUBITS
    secret_env = ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE")
    credentials_of = "IBM Quantum (qiskit-ibm-runtime)"
    setup_help = ("save an IBM Quantum account once with `QiskitRuntimeService.save_account("
                  "token=..., instance=..., set_as_default=True)` (it writes "
                  "~/.qiskit/qiskit-ibm.json), or set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE; "
                  "`--local` runs the same client on its offline fake backend, with no account")
    client_help = ("check the saved account (`QiskitRuntimeService.saved_accounts()`), the device "
                   "name (`service.backends()`) and the network")

    def device(self, backend: Optional[str]) -> Device:
        """IBM names map to their offline snapshot: `ibm_torino` is compiled against
        `fake_torino`, and back."""
        from qnnc.runtime.targets.ibm import DEFAULT_BACKEND, fake_backend

        name = (backend or DEFAULT_BACKEND).strip().lower()
        city = name.removeprefix("fake_").removeprefix("ibm_")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", city):
            raise refuse("Q0304", f"`{backend}` is not an IBM device name",
                         help="e.g. `ibm_torino` (compiled against the fake backend `fake_torino`)")
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

    def credential_sources(self) -> tuple[list[str], list[str]]:
        found: list[str] = []
        looked: list[str] = []
        environment_sources(("QISKIT_IBM_TOKEN",), found, looked)
        file_source(os.path.join(home(), ".qiskit", "qiskit-ibm.json"), found, looked)
        return found, looked

    def executor(self, compiled, device: Device, log: list, *, local: bool, ideal: bool,
                 seed: Optional[int], progress=None) -> "IbmSubmitExecutor":
        from qnnc.runtime.targets import ibm

        ibm._qiskit()  # Q0310 when the extra is missing
        names = [list(c.params) for c in compiled.circuits]
        circuit_names = [c.name for c in compiled.circuits]
        if local:
            client = GuardedClient("qiskit-ibm-runtime (local testing mode)", log, progress,
                                   help=self.client_help)
            backend = ibm.fake_backend(device.compile_backend)
            isa = compiled.native.isa  # ibm.emit's own transpilation for this fake backend
            check_local_width(isa, ibm.stats, LOCAL_QUBITS, "the local testing mode")
            return IbmSubmitExecutor(names, circuit_names, isa, backend, client, local=True,
                                     ideal=ideal, seed=seed)
        from qiskit_ibm_runtime import QiskitRuntimeService

        client = GuardedClient("qiskit-ibm-runtime", log, progress, help=self.client_help)
        service = client.call("connecting with the saved account", QiskitRuntimeService)
        backend = client.call(f"looking up the device `{device.name}`", service.backend, device.name)
        # the same transpilation as `ibm.emit` (noise probes placed after routing)
        isa = client.call(f"transpiling for `{device.name}`", ibm.transpile_circuits,
                          compiled.lowered.circuits, backend, compiled.native.seed)
        return IbmSubmitExecutor(names, circuit_names, isa, backend, client, local=False, seed=seed)

    def jobs(self, compiled, parameter_sets: int) -> dict:
        layered = compiled.lowered.strategy == "layered"
        return {"kind": "SamplerV2 jobs", "count": len(compiled.lowered.chunks) if layered else 1,
                "exact": True, "parameter_sets_max": parameter_sets}

    def describe_jobs(self, jobs: dict, rounds: int) -> str:
        if rounds > 1:
            return (f"{jobs['count']} {job_kind(jobs)} (one per circuit and round, one pub each; "
                    f"at most {jobs['parameter_sets_max']} parameter sets in all)")
        return f"{jobs['count']} {job_kind(jobs)} (one pub)"


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
                 client: GuardedClient, *, local: bool, ideal: bool = False, seed: Optional[int] = None):
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
        return fresh_seed(self.seeds)

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
