"""Quantinuum Helios through Guppy: the whole network as one Guppy program (HUGR), run
locally on the Selene emulator.

A target of its own (`--target helios`), not a backend of `quantinuum`: what it emits
is a program, not a pytket circuit; its compiler is guppylang (to HUGR), not pytket's
passes; its emulator is Selene, not pytket's Aer or pecos backends; and it has a
capability the circuit targets lack, real-time *float* arithmetic, which its one
strategy (`program`) requires. Keeping it apart keeps `quantinuum` (H2: pytket, hqslib1
QASM, QIR, integer ClExpr registers) unchanged and lets the strategy choice compare
capabilities only (`capabilities.REQUIREMENTS`).

- lowering (`lowering.lower_program`): the Guppy source (`guppy_source`) plus a neutral
  skeleton circuit of one forward pass (its qubits, gates and measurements, for the
  summary and the outcome layout; its angles are computed at run time);
- emit: the source compiled to a HUGR package by guppylang (`selene.compile_source`);
- texts: `guppy` (the .py module, primary) and `hugr` (the package as text); `-o F.py`
  writes F.py and F.hugr;
- local execution: Selene's Quest state-vector simulator (`selene.SeleneExecutor`).

Helios's limits are data (`DEVICES`); guppylang and selene-sim are the `helios` extra,
imported lazily.
"""

from __future__ import annotations

from typing import Any, Optional

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets.capabilities import Capabilities
from qnnc.runtime.targets.cloud import Device, SubmissionClient
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.target import Target

DEFAULT_BACKEND = "Helios-1"
SIMULATORS = ("ideal",)
# Selene's Quest simulator holds a state vector of 2^n amplitudes (16 n bytes): 2^24 is
# 256 MiB, held here comfortably.
LOCAL_MAX_QUBITS = 24

# What each device runs, as data. Helios (Quantinuum, announced November 2025): 98
# barium-ion qubits, all-to-all, mid-circuit measurement and reset, qubit reuse, and a
# real-time classical runtime that executes Guppy/HUGR programs (floats, loops,
# branches on measurement results). Native gates as in Guppy's qsystem module.
DEVICES: dict[str, dict[str, Any]] = {
    "Helios-1": {"max_qubits": 98, "native_gates": ("PhasedX", "Rz", "ZZPhase"),
                 "emulator": "Selene (Quest state vector)"},
}


def capabilities(backend: Optional[str] = None) -> Capabilities:
    name = backend or DEFAULT_BACKEND
    if name not in DEVICES:
        raise refuse("Q0304", f"unknown Helios backend `{name}`",
                     help="backends: " + ", ".join(f"`{d}`" for d in DEVICES))
    d = DEVICES[name]
    return Capabilities(
        target="helios", backend=name, max_qubits=d["max_qubits"],
        supports_mid_circuit_measurement=True, supports_feed_forward=True,
        supports_register_conditions=True, supports_reset=True,
        supports_realtime_arithmetic=True, supports_realtime_float=True,
        native_gates=d["native_gates"], noise_kinds=(), strategies=("program",))


class HeliosCloud(SubmissionClient):
    """Helios takes jobs through Quantinuum Nexus (`qnexus`, an account); qnnc does not
    drive it. `qnnc compile --target helios -o net.py` writes what to upload."""

    target = "helios"
    local_qubits = None  # no offline substitute of Quantinuum's client here

    def device(self, backend_name: Optional[str]) -> Device:
        name = backend_name or DEFAULT_BACKEND
        capabilities(name)
        return Device("helios", name, name, f"Quantinuum Nexus (qnexus) for `{name}`",
                      "Selene (selene-sim), the local emulator")

    def refusal(self, device: Device, local: bool) -> Optional[QnncError]:
        if local:
            return refuse("Q0352", f"Quantinuum's client has no offline substitute for "
                          f"`{device.name}` here (Nexus runs Helios programs and their emulators "
                          "in the cloud)", help="`qnnc run --target helios` samples the program on "
                          "the Selene emulator")
        return refuse("Q0352", f"qnnc cannot submit to Quantinuum `{device.name}`: Helios takes "
                      "Guppy/HUGR programs through Quantinuum Nexus (the `qnexus` package, an "
                      "account)", help="write the program with `qnnc compile --target helios -o "
                      "net.py` (it writes net.py and net.hugr) and upload it with qnexus; "
                      "`qnnc run --target helios` runs it on the Selene emulator")

    def plan_refusal(self, local: bool) -> Optional[str]:
        return "qnnc cannot submit to Helios (Quantinuum Nexus); `qnnc run` emulates it with Selene"

    def executor(self, compiled, device, log, *, local, ideal, seed, progress=None):  # pragma: no cover
        raise self.refusal(device, local)

    def jobs(self, compiled, parameter_sets: int) -> dict:
        return {"programs": 1, "shots per program": "--shots"}

    def describe_jobs(self, jobs: dict, rounds: int) -> str:
        return "one program per image; every shot is one forward pass"


class HeliosTarget(Target):
    name = "helios"
    primary_format = "guppy"
    simulators = SIMULATORS

    def capabilities(self, backend: Optional[str] = None) -> Capabilities:
        return capabilities(backend)

    def lower(self, spec, caps: Capabilities, opts, strategy: Optional[str] = None):
        """Only `program`: this target writes Guppy programs, not circuits (a circuit
        strategy would need an emitter from neutral circuits to Guppy, which it lacks)."""
        if strategy is not None and strategy != "program":
            from qnnc.runtime.targets.capabilities import check_strategy

            check_strategy(strategy, caps)  # Q0302 for an unknown name
            raise refuse("Q0303", f"target `helios` (backend `{caps.backend}`) cannot run the "
                         f"`{strategy}` strategy", notes=["it emits one Guppy program per "
                         "forward pass, not circuits"], help="strategies it can run: `program`")
        return super().lower(spec, caps, opts, strategy)

    def emit(self, lowered, caps: Capabilities, seed: int = 0):
        from qnnc.runtime.targets.helios.selene import HeliosProgram, compile_source

        return HeliosProgram(caps.backend, lowered.source, compile_source(lowered.source.text),
                             lowered.circuits[0])

    def texts(self, native) -> dict[str, list[str]]:
        return {"guppy": [native.source.text], "hugr": [native.package.to_str()]}

    def companions(self, native) -> dict[str, bytes]:
        return {".hugr": native.package.to_bytes()}

    def statistics(self, native) -> list[dict]:
        from qnnc.runtime.targets.helios.selene import statistics

        return [statistics(native)]

    def local_executor(self, native, lowered, simulator: str = "ideal",
                       seed: Optional[int] = None):
        from qnnc.runtime.targets.helios.selene import SeleneExecutor

        if simulator not in SIMULATORS:
            raise refuse("Q0317", f"unknown simulator `{simulator}` for target `helios`",
                         help="simulators: `ideal` (Selene's Quest state vector)")
        need = native.source.max_live_qubits
        if need > LOCAL_MAX_QUBITS:
            raise refuse("Q0316", f"the program holds {need} qubits at once; Selene's state vector "
                         f"holds at most {LOCAL_MAX_QUBITS} here",
                         help="narrower carried (model B) layers; model A layers need one qubit "
                              "at a time")
        return SeleneExecutor(native, seed)

    def local_qubit_limit(self, simulator: str) -> Optional[int]:
        return LOCAL_MAX_QUBITS

    def submission_client(self) -> HeliosCloud:
        return HeliosCloud()
