"""Strategies: named lowerings from a `NetworkSpec` to neutral circuits, one module
each, registered by name in `STRATEGIES` (`registry`):

- `dynamic` (`dynamic.py`): one circuit per forward pass; each layer's angles are
  realised by gates conditioned on the previous layer's measured bits (per bit when
  affine, a table of conditions, or real-time arithmetic); qubits reused through reset.
- `layered` (`layered.py`): one parametrised circuit per layer (chunks, packed copies);
  the host binds each shot's angles from the previous layer's bits.
- `deferred` (`deferred.py`): no mid-circuit measurement; angles become rotations
  multiplexed on the previous layer's outcome qubits, every measurement at the end.

`common.py` holds what they share (`Lowered`, `Options`, the builder, noise probes, angle
tables). What each strategy needs from a target is `capabilities.REQUIREMENTS`.
"""

from __future__ import annotations

from typing import Callable

from qnnc.runtime.targets.capabilities import Capabilities, check_noise_kind
from qnnc.runtime.targets.errors import refuse
from qnnc.runtime.targets.lowering.common import ChunkPlan, Lowered, Options
from qnnc.runtime.targets.network import NetworkSpec
from qnnc.runtime.targets.registry import STRATEGIES

# A strategy: spec, the target's capabilities, options -> the neutral circuits.
Lowering = Callable[[NetworkSpec, Capabilities, Options], Lowered]

__all__ = ["ChunkPlan", "Lowered", "Lowering", "Options", "STRATEGIES", "lower"]


def lower(strategy: str, spec: NetworkSpec, caps: Capabilities, opts: Options) -> Lowered:
    """Run the registered strategy `strategy` (checked against `caps` by the caller:
    `capabilities.check_strategy`)."""
    if opts.noise_pairs is not None:
        if opts.noise_pairs < 0:
            raise refuse("Q0308", f"noise pairs must be 0 or more, not {opts.noise_pairs}")
        check_noise_kind(opts.noise_kind, caps)
    lowering: Lowering = STRATEGIES[strategy]
    return lowering(spec, caps, opts)
