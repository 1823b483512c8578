"""The protocol every circuit target implements, in the shape of pytket's `Backend`:
what the device can do (`capabilities`, pytket's `required_predicates`), the default
compilation (`default_strategies`, `lower`: pytket's `default_compilation_pass`), the
vendor program (`emit`, `texts`, `statistics`), running it here (`local_executor`)
and through the vendor's cloud (`submission_client`, pytket's `process_circuits`).

A target is registered by name in `registry.TARGETS` and looked up with `get_target`;
nothing outside a target's own class branches on its name. docs/targets.md ("Writing a
target") has a skeleton."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets.capabilities import Capabilities, check_strategy
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.registry import TARGETS

if TYPE_CHECKING:  # only for annotations: importing them here would be circular
    from qnnc.runtime.targets.bundle import BundleCircuit
    from qnnc.runtime.targets.cloud import SubmissionClient
    from qnnc.runtime.targets.host import Executor
    from qnnc.runtime.targets.lowering import Lowered, Options
    from qnnc.runtime.targets.network import NetworkSpec

# Refusals that make the default strategy choice move on to the next strategy: limits
# of the device (qubits, table width, register width), not faults of the network.
LIMIT_CODES = ("Q0303", "Q0305", "Q0306", "Q0333", "Q0334")


class Target(ABC):
    """One vendor. Subclasses set the class attributes and implement the abstract
    methods; every vendor SDK is imported inside a method, never at module level."""

    name: ClassVar[str]  # the registry name, `--target`
    primary_format: ClassVar[str]  # the key of `texts` that `-o FILE` writes
    simulators: ClassVar[tuple[str, ...]]  # what `local_executor` accepts
    bundle_binding: ClassVar[str] = "json"
    local_seeded: ClassVar[bool] = True  # whether `local_executor` honours its seed  # the file type of a bundle's bindings (npy, json)

    # ------------------------------------------------------------------ the device

    @abstractmethod
    def capabilities(self, backend: Optional[str] = None) -> Capabilities:
        """What `backend` (None: the target's default device) can run, as data. Q0304
        for an unknown backend."""

    def default_strategies(self, caps: Capabilities) -> tuple[str, ...]:
        """The strategies tried, in order, when none is named: the ones the device
        declares, best first."""
        return caps.strategies

    def lower(self, spec: "NetworkSpec", caps: Capabilities, opts: "Options",
              strategy: Optional[str] = None) -> tuple["Lowered", list[str]]:
        """The default compilation: the named strategy (refused when the device cannot
        run it, never replaced), or the first default strategy that fits. Returns the
        neutral circuits and the strategies passed over, with why."""
        from qnnc.runtime.targets.lowering import lower

        if strategy is not None:
            check_strategy(strategy, caps)
            return lower(strategy, spec, caps, opts), []
        refused: list[str] = []
        for s in self.default_strategies(caps):
            try:
                check_strategy(s, caps)
                return lower(s, spec, caps, opts), refused
            except QnncError as exc:
                if exc.diagnostics[0].code not in LIMIT_CODES:
                    raise
                refused.append(f"`{s}`: [{exc.diagnostics[0].code}] {exc.diagnostics[0].message}")
        raise refuse("Q0315", f"no strategy that target `{self.name}` runs fits network "
                     f"`{spec.name}`", spec.span, notes=refused,
                     help="a larger backend, or narrower layers")

    # ------------------------------------------------------------------ the program

    @abstractmethod
    def emit(self, lowered: "Lowered", caps: Capabilities, seed: int = 0) -> Any:
        """The neutral circuits as the vendor's program (circuits in its SDK's types,
        compiled for `caps.backend`). Q0320 when the vendor's compiler fails."""

    @abstractmethod
    def texts(self, native: Any) -> dict[str, list[str]]:
        """Output format -> one text per circuit (QASM dialects, JSON)."""

    def companions(self, native: Any) -> dict[str, bytes]:
        """Files written beside `-o FILE` (suffix -> bytes): e.g. the compiled HUGR package
        beside a Guppy source. None by default."""
        return {}

    def suffix_formats(self) -> dict[str, str]:
        """Output suffixes that select a text format other than `primary_format` (`-o
        FILE.ll` -> QIR); formats made on demand by `text`."""
        return {}

    def text(self, native: Any, fmt: str) -> list[str]:
        """One format's texts (those of `texts`, or one made only on demand)."""
        return self.texts(native)[fmt]

    @abstractmethod
    def statistics(self, native: Any) -> list[dict]:
        """Per circuit, after the vendor's compiler: `qubits`, `depth`,
        `two_qubit_gates`, `measurements`, `conditionals`, `resets`, `gates`, `ops`."""

    def bundle_circuit(self, native: Any, index: int) -> "BundleCircuit":
        """Circuit `index` as a hardware bundle holds it (`bundle.py`): the vendor's own
        file form and the parameter order of its bindings."""
        raise refuse("Q0343", f"target `{self.name}` writes no hardware bundles")

    # ------------------------------------------------------------------ execution

    @abstractmethod
    def local_executor(self, native: Any, lowered: "Lowered", simulator: str = "ideal",
                       seed: Optional[int] = None) -> "Executor":
        """A `host.Executor` sampling the program on a local simulator. Q0317 for a
        simulator not in `simulators`, Q0316 for a circuit too wide for it."""

    def local_qubit_limit(self, simulator: str) -> Optional[int]:
        """The widest circuit `simulator` holds here (None: no fixed limit)."""
        return None

    @abstractmethod
    def submission_client(self) -> "SubmissionClient":
        """The vendor's cloud client (and its offline substitute) for `qnnc submit`."""


def get_target(name: str) -> Target:
    """The registered target `name`; Q0301 for an unknown one."""
    if name not in TARGETS:
        raise refuse("Q0301", f"unknown target `{name}`",
                     help="targets: " + ", ".join(f"`{t}`" for t in TARGETS))
    return TARGETS[name]
