"""The compiled inner loops of `qnnc.runtime.replicas` (numba; CPU only, one thread).

State layout: one row per chain, [C, N] with C = T × R (chain c = t R + r: replica r at
temperature t).

* `sequential_sweep`: single-spin heat-bath in index order with incremental local
  fields, for a dense J (the Sherrington–Kirkpatrick glass). Each chain keeps its fields
  f_i = Σ_j J_ij σ_j + h_i (float32, recomputed from scratch in float64 every 256
  sweeps by the sampler); a spin is redrawn from its conditional distribution
  P(σ_i = +1) = 1 / (1 + exp(−2β f_i)) and, only when it flips, its row of J is added to
  the fields (2σ_i J_i·): a sweep costs N decisions plus N per flip, not N².
* `block_heat_bath`: one group (or a range of its columns) of the layered network's
  block update from the integer products of the fixed-point weight digits (all three,
  or the top two and the third computed for the close calls;
  `FixedPointBlockSampler` in replicas_samplers.py): the bond fields, the draw, the new
  spins, and the sums the energy needs, in a vectorised pass and an exact second pass
  over the close calls.
* `block_exchange`: the block sampler's exchange (a relabelling of which row holds
  which chain); `exchange_rows`: the sequential sampler's (rows swap). One acceptance
  test (`_swap_accepted`) serves both.
* `measure_sums`: the measurements' sums (magnetisation, overlaps, direction overlaps),
  for both samplers.

Random numbers: SplitMix64 (Steele, Lea, Flood 2014; passes BigCrush). The sequential
kernel gives every chain its own stream (a state per chain); the block and exchange
kernels evaluate the generator at a running counter (the n-th output of the stream
seeded with their key), so nothing depends on the order of the loops. Uniforms have 53
bits and are never 0. exp(−x) in the block kernel is a polynomial after range
reduction (degree 10, relative error below 1e-12; degree 6, below 1e-6, in the first
pass), so the loop vectorises.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types
from numba.extending import intrinsic

# SplitMix64 as the sampler's counter streams compute it (`counter_rng`, in numba)
from qnnc.runtime.fused_kernels import _G as GAMMA, _draw, _mix64

@intrinsic
def _prefer_full_vectors(typingctx):
    """Mark the calling compiled function "prefer-vector-width"="512": LLVM's default tuning
    for AVX-512 CPUs vectorises with 256-bit registers; on the block draw's loop the full
    width runs ~1.3x faster. (No effect where the CPU has narrower vectors.)"""

    def codegen(context, builder, sig, args):
        # llvmlite's AttributeSet accepts only its list of names; a string attribute
        # "key"="value" is written as given
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.void(), codegen


_S11 = np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_POW2 = np.array([math.ldexp(1.0, k) for k in range(-1022, 1024)])  # 2^k at k + 1022


@nb.njit(inline="always")
def _uniform_at(key, n):
    """The n-th (from 0) uniform of the SplitMix64 stream seeded with `key`, in (0, 1)."""
    return ((_draw(key, n) >> _S11) + 0.5) * _TO_UNIT


@nb.njit(inline="always")
def _exp_neg_split(x):
    """exp(−x) = e^r 2^k with |r| <= ln2 / 2: (r, k + 1022, the index of 2^k in _POW2),
    x clamped so that 2^k stays within [2^-1020, 2^1020]."""
    y = -x * _LOG2E
    y = min(max(y, -1020.0), 1020.0)
    k = np.floor(y + 0.5)
    return (y - k) * _LN2, np.int64(k) + 1022


@nb.njit(inline="always")
def _exp_neg(x, pow2):
    """exp(−x) for finite x, relative error < 1e-12, clamped to [2^-1020, 2^1020]."""
    r, k = _exp_neg_split(x)
    p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800))))))))))
    return p * pow2[k]


_FAST_EXP_ERROR = 1e-6  # bound on the relative error of `_exp_neg_fast` (its Taylor remainder is < 2.5e-7)


@nb.njit(inline="always")
def _exp_neg_fast(x, pow2):
    """exp(−x) to a relative error below _FAST_EXP_ERROR (degree 6 after the same range
    reduction): the block kernels' first pass, whose close calls are redone with `_exp_neg`."""
    r, k = _exp_neg_split(x)
    p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720))))))
    return p * pow2[k]


@nb.njit(inline="always")
def _swap_accepted(beta_t, t, e_t, e_next, key, n):
    """The exchange test of chains at temperatures t and t+1 with energies e_t, e_next:
    accepted with probability min(1, exp((β_t − β_{t+1})(e_t − e_next))), uniform n of the
    stream `key` deciding."""
    d = (beta_t[t] - beta_t[t + 1]) * (e_t - e_next)
    return d >= 0.0 or _uniform_at(key, n) < np.exp(d)


@nb.njit(cache=True)
def sequential_sweep(sigma, fields, h, beta, J, state, energy, lo, hi):  # pragma: no cover - compiled
    """One sweep over the spins lo..hi−1 (a whole sweep: 0..N) of every chain (rows of
    sigma [C, N]; fields [C, N] float32, including h), chain c at inverse temperature
    beta[c], generator state[c]; J float32 [N, N]. Writes each chain's energy
    −½ Σ σ_i (f_i + h_i) into energy[c].

    The loop over spins is outside the loop over chains: row i of J is read once per
    sweep and stays in L1 while every chain that flips spin i adds it to its fields
    (the fields of all chains, C N float32, sit in L2). Each chain still draws from its
    own stream in spin order, so the chains are what they would be one by one."""
    C, N = sigma.shape
    for i in range(lo, hi):
        row = J[i]
        for c in range(C):
            s = state[c] + GAMMA
            state[c] = s
            u = ((_mix64(s) >> _S11) + 0.5) * _TO_UNIT
            # σ = +1 exactly when u < 1 / (1 + exp(−2βf)); exp overflow gives inf: σ = −1.
            new = 1.0 if u * (1.0 + np.exp(-2.0 * beta[c] * fields[c, i])) < 1.0 else -1.0
            if new != sigma[c, i]:
                sigma[c, i] = new
                d = np.float32(2.0 * new)
                f = fields[c]
                for j in range(N):
                    f[j] += d * row[j]
    for c in range(C):
        e = 0.0
        for i in range(N):
            e += sigma[c, i] * (fields[c, i] + h[i])
        energy[c] = -0.5 * e


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp", "nsz"})
def block_heat_bath(r, digits, scale, slack, a2, src, h, kh, beta, key, counter, lo, out, bond_sum, field_sum,
                    flags):  # pragma: no cover - compiled
    """Redraw columns lo..lo+m−1 of one group of every chain (row); returns the number of
    draws that needed the second pass.

    r [C, digits m] (int32, or float32 holding integers): the products of the rows' other
    group (src [C, K] int8) with the top `digits` (2 or 3) base-256 digits of those
    columns' fixed-point couplings; the bond field of spin i is scale n_i with
    n = 65536 r₀ + 256 r₁ + r₂, r₂ = a2[i]·src[c] (a2 [n, K] int8: the last digits).
    h [n]: the group's fields, h = (the fields' scale) × kh with kh integers (float64);
    beta [C]: each row's inverse temperature; out: int8 [C, n], the group's spins, of
    which the m columns are rewritten. Uniform number counter + c n + (lo + i) of the
    stream `key` decides spin lo + i of row c: σ = +1 exactly when
    u (1 + exp(−x)) < 1, x = 2β(scale n + h) (P(σ = +1) = 1 / (1 + e^{−x})), so splitting
    the columns between workers changes no draw.

    Two passes, the same spins as the exact rule, bit for bit. The first, vectorised,
    takes exp to a relative error of 1e-6 and, with two digits, the field without r₂,
    which |r₂| <= Σ_j |a₂[i, j]| = slack_i / scale bounds: x is then known within
    2β slack_i, and P (slope <= 1/4) within β slack_i / 2. Where u is further than that
    plus 1e-6 from P, its decision is the exact one; the close calls (a fraction of
    about β slack + 1e-6 of the draws) are redone exactly, r₂ computed, in the second.

    With three digits, bond_sum[c] = Σ σ_i n_i over the m columns (with two, the energy
    counts every bond in the other group's pass and bond_sum is left alone), and always
    field_sum[c] = Σ σ_i kh_i: integers, summed exactly (below 2^53), so the energies do
    not depend on how the columns were split either. flags: uint8 scratch of at least
    m + 8 bytes. Holds no GIL."""
    _prefer_full_vectors()
    C, n = out.shape
    m = r.shape[1] // digits
    three = digits == 3
    K = src.shape[1]
    pow2 = _POW2
    # (row slices, indexed from 0: with offsets in the indices the loop runs ~1.7x slower)
    hs = h[lo:lo + m]
    ks = kh[lo:lo + m]
    sl = slack[lo:lo + m]
    words = (m + 7) // 8
    flags[m:words * 8] = 0
    flag_words = flags[:words * 8].view(np.uint64)
    tol = _FAST_EXP_ERROR + 1e-9
    refined = 0
    for c in range(C):
        b2 = 2.0 * beta[c]
        half = 0.5 * beta[c]
        base = counter + np.uint64(c * n + lo)
        r0 = r[c, 0:m]
        r1 = r[c, m:2 * m]
        r2 = r[c, 2 * m:3 * m] if three else r[c, 0:m]
        o = out[c, lo:lo + m]
        bs = 0.0
        fs = 0.0
        for i in range(m):
            nb = 65536.0 * r0[i] + 256.0 * r1[i] + (r2[i] if three else 0.0)
            u = _uniform_at(key, base + np.uint64(i))
            # |u − P| <= δ as |u (1 + e) − 1| <= δ (1 + e): a division would stop the loop
            # from vectorising
            q = 1.0 + _exp_neg_fast(b2 * (scale * nb + hs[i]), pow2)
            d = u * q - 1.0
            s = 1.0 if d < 0.0 else -1.0
            o[i] = np.int8(s)
            bs += s * nb
            fs += s * ks[i]
            flags[i] = np.uint8(abs(d) <= (half * sl[i] + tol) * q)
        for w in range(words):
            if flag_words[w] == 0:
                continue
            for i in range(8 * w, min(8 * w + 8, m)):
                if flags[i] == 0:
                    continue
                refined += 1
                nb = 65536.0 * r0[i] + 256.0 * r1[i]
                if three:
                    nb += r2[i]
                else:
                    row = a2[lo + i]
                    sc = src[c]
                    k2 = 0
                    for j in range(K):
                        k2 += np.int32(row[j]) * np.int32(sc[j])
                    nb += k2
                u = _uniform_at(key, base + np.uint64(i))
                s = 1.0 if u * (1.0 + _exp_neg(b2 * (scale * nb + hs[i]), pow2)) < 1.0 else -1.0
                if s != o[i]:
                    o[i] = np.int8(s)
                    bs += 2.0 * s * nb
                    fs += 2.0 * s * ks[i]
        if three:
            bond_sum[c] = bs
        field_sum[c] = fs
    return refined


@nb.njit(cache=True, nogil=True)
def block_exchange(row_of, beta_row, energy_row, beta_t, R, parity, key, counter, accepted):  # pragma: no cover
    """The exchange move of the block sampler, as a relabelling: chain c = t R + r lives in
    row row_of[c] (rows never move; beta_row[row] is its inverse temperature). For the
    pairs (t, t+1), t ≡ parity mod 2, every replica r, the chains swap temperatures with
    probability min(1, exp((β_t − β_{t+1})(E_t − E_{t+1}))); uniform counter + t R + r
    decides (the numbers `exchange_rows` uses). accepted[t] counts the swaps."""
    T = beta_t.size
    for t in range(parity, T - 1, 2):
        for r in range(R):
            c1 = t * R + r
            c2 = c1 + R
            a = row_of[c1]
            b = row_of[c2]
            if _swap_accepted(beta_t, t, energy_row[a], energy_row[b], key, counter + np.uint64(c1)):
                row_of[c1] = b
                row_of[c2] = a
                beta_row[a] = beta_t[t + 1]
                beta_row[b] = beta_t[t]
                accepted[t] += 1


@nb.njit(cache=True, nogil=True)
def block_end_of_sweep(bonds, fields, scale, h_scale, energy_row, row_of, beta_row, beta_t, R, parity, key, counter,
                       accepted, energy_out):  # pragma: no cover - compiled
    """After a sweep of the block sampler: each row's energy −scale Σ_w bonds[w] −
    h_scale Σ fields (the workers' integer sums: the odd group's bond sums count every
    bond once), then (parity >= 0) `block_exchange`, then (energy_out not empty) each
    chain's energy into energy_out."""
    W, C = bonds.shape
    for c in range(C):
        b = 0.0
        f = 0.0
        for w in range(W):
            b += bonds[w, c]
            f += fields[0, w, c] + fields[1, w, c]
        energy_row[c] = -scale * b - h_scale * f
    if parity >= 0:
        block_exchange(row_of, beta_row, energy_row, beta_t, R, parity, key, counter, accepted)
    if energy_out.size:
        for c in range(C):
            energy_out[c] = energy_row[row_of[c]]


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp", "nsz"})
def measure_sums(x, dirs, row_of, R, pair_a, pair_b, m, v, q):  # pragma: no cover - compiled
    """The measurements' sums of x [rows, n] (±1 spins, int8 or float), chain c in row
    row_of[c]: add to m[c] the sum of its row, to v[c, d] its product with dirs[d] [D, n],
    to q[t, p] the product of chains t R + pair_a[p] and t R + pair_b[p] (integer sums:
    exact)."""
    C = row_of.size
    D = dirs.shape[0]
    n = x.shape[1]
    for c in range(C):
        xr = x[row_of[c]]
        k = 0
        for i in range(n):
            k += np.int32(xr[i])
        m[c] += k
        for d in range(D):
            dr = dirs[d]
            s = 0.0
            for i in range(n):
                s += xr[i] * dr[i]
            v[c, d] += s
    T = C // R
    for t in range(T):
        for p in range(pair_a.size):
            xa = x[row_of[t * R + pair_a[p]]]
            xb = x[row_of[t * R + pair_b[p]]]
            k = 0
            for i in range(n):
                k += np.int32(xa[i]) * np.int32(xb[i])
            q[t, p] += k


@nb.njit(cache=True)
def exchange_rows(a, b, energy, beta_t, R, parity, key, counter, accepted):  # pragma: no cover - compiled
    """The exchange move for the pairs (t, t+1), t ≡ parity mod 2, every replica r: the
    rows of a and b (configurations, or what travels with them) and the energies of
    chains t R + r and (t+1) R + r swap with probability min(1, exp((β_t − β_{t+1})
    (E_t − E_{t+1}))); uniform counter + t R + r decides. accepted[t] counts the swaps."""
    T = beta_t.size
    for t in range(parity, T - 1, 2):
        for r in range(R):
            c1 = t * R + r
            c2 = c1 + R
            if _swap_accepted(beta_t, t, energy[c1], energy[c2], key, counter + np.uint64(c1)):
                for j in range(a.shape[1]):
                    a[c1, j], a[c2, j] = a[c2, j], a[c1, j]
                for j in range(b.shape[1]):
                    b[c1, j], b[c2, j] = b[c2, j], b[c1, j]
                energy[c1], energy[c2] = energy[c2], energy[c1]
                accepted[t] += 1
