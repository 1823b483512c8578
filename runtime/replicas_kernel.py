"""The compiled inner loops of `qnnc.runtime.replicas` (numba; CPU only).

* `sequential_sweeps`: single-spin heat-bath in a fixed order, with incremental local
  fields, for a dense J (the Sherrington–Kirkpatrick glass). Each chain keeps its fields
  f_i = Σ_j J_ij σ_j + h_i; a spin is redrawn from its conditional distribution
  P(σ_i = +1) = 1 / (1 + exp(−2β f_i)) and, only when it flips, its row of J is added to
  the fields (2σ_i J_i·): a sweep costs N decisions plus N per flip, not N².
* `block_heat_bath`: the layered network's block update fused in one pass: from the
  integer products of the fixed-point weight digits (`FixedPointBlocks`), the fields,
  the draw and the new spins, for every spin of a group and every chain.

Random numbers: SplitMix64 (Steele, Lea, Flood 2014; passes BigCrush). The sequential
kernel gives every chain its own stream (a state per chain, advanced by the golden
gamma), the block kernel evaluates the same generator at the counter
(sweep, group, spin, chain), so results do not depend on the number of threads.
Uniforms have 53 (sequential) or 24 (block, float32 fields) bits and are never 0.
"""

from __future__ import annotations

import numba as nb
import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@nb.njit(inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True)
def sequential_sweeps(sigma, fields, beta, J, state, order, sweeps):  # pragma: no cover - compiled
    """`sweeps` sweeps over the spins in `order` for every chain (rows of sigma/fields
    [C, N], float64), chain c at inverse temperature beta[c]; state[c]: its generator.
    Returns the number of flips per chain."""
    C, N = sigma.shape
    flips = np.zeros(C, dtype=np.int64)
    for c in range(C):
        s = state[c]
        b2 = 2.0 * beta[c]
        x = sigma[c]
        f = fields[c]
        n = 0
        for _ in range(sweeps):
            for k in range(order.size):
                i = order[k]
                s += GAMMA
                u = ((_mix(s) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)
                # σ = +1 exactly when u < 1 / (1 + exp(−2βf)); exp overflow gives inf: σ = −1.
                new = 1.0 if u * (1.0 + np.exp(-b2 * f[i])) < 1.0 else -1.0
                if new != x[i]:
                    x[i] = new
                    d = 2.0 * new
                    row = J[i]
                    for j in range(N):
                        f[j] += d * row[j]
                    n += 1
        state[c] = s
        flips[c] = n
    return flips
