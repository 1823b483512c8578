"""What each target can run, as data. Strategies are chosen by comparing their
`Requirements` with a target's `Capabilities`; no lowering looks at a target's name.
Each target's `capabilities(backend)` (`target.Target`) builds its `Capabilities`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from qnnc.runtime.targets.errors import refuse
# The registries by name (iterating them gives the names: the CLI's choices).
from qnnc.runtime.targets.registry import STRATEGIES, TARGETS  # noqa: F401 (API)

NOISE_KINDS = ("sx", "cz", "ms")

# Widest previous layer a table of conditions (or a multiplexed rotation) may span by
# default: 2^8 = 256 patterns per neuron rotation.
DEFAULT_TABLE_WIDTH = 8


@dataclass(frozen=True)
class Capabilities:
    target: str
    backend: str
    max_qubits: int
    supports_mid_circuit_measurement: bool
    supports_feed_forward: bool  # gates conditioned on measured bits in the same shot
    supports_register_conditions: bool  # a condition on a whole register's value
    supports_reset: bool
    supports_realtime_arithmetic: bool  # classical arithmetic during a shot
    native_gates: tuple[str, ...]
    noise_kinds: tuple[str, ...]
    strategies: tuple[str, ...]  # the strategies it runs, best first
    max_table_width: int = DEFAULT_TABLE_WIDTH
    connectivity: str = "all-to-all"  # or "coupling map"
    # widest classical register real-time arithmetic may write (0: no arithmetic)
    max_register_width: int = 0
    # floating-point arithmetic during a shot (a Guppy program's floats on Helios)
    supports_realtime_float: bool = False

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Requirements:
    """What a strategy needs from a target."""

    mid_circuit_measurement: bool = False
    feed_forward: bool = False
    register_conditions: bool = False
    realtime_arithmetic: bool = False
    realtime_float: bool = False


REQUIREMENTS: dict[str, Requirements] = {
    "dynamic": Requirements(mid_circuit_measurement=True, feed_forward=True,
                            register_conditions=True),
    "layered": Requirements(),
    "deferred": Requirements(),
    # the whole forward pass as one program with float arithmetic (helios/lowering.py)
    "program": Requirements(mid_circuit_measurement=True, feed_forward=True, realtime_float=True),
}

_CAPABILITY_OF = {  # requirement -> (capability field, words for a diagnostic)
    "mid_circuit_measurement": ("supports_mid_circuit_measurement", "mid-circuit measurement"),
    "feed_forward": ("supports_feed_forward", "feed-forward (gates conditioned on measured bits)"),
    "register_conditions": ("supports_register_conditions", "conditions on a register's value"),
    "realtime_arithmetic": ("supports_realtime_arithmetic",
                            "real-time classical arithmetic (integer registers computed during a shot)"),
    "realtime_float": ("supports_realtime_float",
                       "real-time floating-point arithmetic (a program computing in floats during a shot)"),
}

# What the `dynamic` strategy needs on top of its own requirements to compute a
# neuron's angle from the previous layer's bits during the shot (layers too wide for
# a table of conditions).
REALTIME_ANGLES = Requirements(mid_circuit_measurement=True, feed_forward=True,
                               realtime_arithmetic=True)


def missing(req: Requirements, caps: Capabilities) -> list[str]:
    """The capabilities (in words) that `req` asks for and `caps` lacks."""
    return [words for name, (cap, words) in _CAPABILITY_OF.items()
            if getattr(req, name) and not getattr(caps, cap)]


def check_strategy(strategy: str, caps: Capabilities) -> None:
    """Refuse a strategy the target cannot run (Q0302, Q0303)."""
    if strategy not in STRATEGIES:
        raise refuse("Q0302", f"unknown strategy `{strategy}`",
                     help="strategies: " + ", ".join(STRATEGIES))
    lacking = missing(REQUIREMENTS[strategy], caps)
    if lacking:
        raise refuse("Q0303", f"target `{caps.target}` (backend `{caps.backend}`) cannot run the "
                     f"`{strategy}` strategy", notes=[f"it has no {m}" for m in lacking],
                     help="strategies it can run: " + ", ".join(f"`{s}`" for s in caps.strategies))


def check_noise_kind(kind: str, caps: Capabilities) -> None:
    if kind not in NOISE_KINDS:
        raise refuse("Q0307", f"unknown noise kind `{kind}`",
                     help="noise kinds: " + ", ".join(NOISE_KINDS))
    if kind not in caps.noise_kinds:
        raise refuse("Q0307", f"target `{caps.target}` has no `{kind}` noise probe",
                     help="noise kinds it offers: " + ", ".join(f"`{k}`" for k in caps.noise_kinds))


def ionq_capabilities(backend: Optional[str]) -> Capabilities:
    """IonQ's capabilities (`ionq.IonQTarget.capabilities`)."""
    return TARGETS["ionq"].capabilities(backend)
