"""Replica-exchange Monte Carlo (parallel tempering) on a network's Ising Hamiltonian.

H(σ) = −½ σᵀ J σ − h·σ, the Hamiltonian of `qnnc.runtime.ising.IsingModel` (or any
symmetric J with zero diagonal). The state is a tensor σ[T, R, N]: R independent
replicas at each of T temperatures, updated together.

* The sweep is a block heat-bath. Spins of one group never couple to each other, so a
  whole group is drawn at once from its conditional distribution given the rest:
  σ_i = +1 with probability 1 / (1 + exp(−2β f_i)), f_i = Σ_j J_ij σ_j + h_i. In a layered
  network the groups are the even layers and the odd layers (two matrix products a
  sweep); for a dense J (Sherrington–Kirkpatrick) every spin is its own group.
* After each sweep, replicas at neighbouring temperatures exchange configurations with
  probability min(1, exp((β_t − β_{t+1})(E_t − E_{t+1}))), alternating even and odd pairs.
* Measured after the burn-in: energy, magnetisation, the overlaps q_ab = σ_a·σ_b / N of
  every pair of replicas at one temperature, their distribution P(q), ⟨|q|⟩, ⟨q²⟩, the
  Binder cumulant g = ½(3 − ⟨q⁴⟩/⟨q²⟩²), the spin-glass susceptibility N⟨q²⟩, overlaps
  |σ·v|/√N with given directions (TAP solutions, spectral outliers: the hidden order), and
  the exchange acceptance of every temperature pair.
* Equilibration is checked by logarithmic binning: the measurements of the last two
  doubling windows of sweeps must agree within their errors, for ⟨q²⟩ and the energy.

Both moves satisfy detailed balance with respect to exp(−βH) (tests/test_replicas.py
checks it, and checks every estimate against exact enumeration on up to 16 spins).
Random numbers come from a seeded torch generator; everything runs on `device`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from qnnc.runtime.devices import from_host

from qnnc.compiler.diagnostics import error

BAD_SETTING = "Q0611"  # a solver or scan setting is out of range (the spin analysis' code)


# --------------------------------------------------------------------------- couplings


class Couplings:
    """J and h as the sampler needs them: the groups of mutually uncoupled spins, each
    group's local fields, and the energy. Subclasses: `LayeredCouplings`, `DenseCouplings`."""

    n: int
    groups: list[torch.Tensor]

    def fields(self, sigma: torch.Tensor, g: int, with_h: bool = True) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def energy(self, sigma: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class LayeredCouplings(Couplings):
    """Bonds only between consecutive layers: the even layers form one group, the odd
    layers the other, and a group's fields are one product per neighbouring block."""

    def __init__(self, blocks: Sequence[np.ndarray], sizes: Sequence[int], h: Optional[np.ndarray] = None, *,
                 dtype=torch.float64, device="cpu"):
        if not blocks:  # one layer has no bonds: nothing to sample as a layered model
            raise error(BAD_SETTING, "layered couplings need at least two layers (one block of bonds)",
                        help="a network with one layer of spins has no couplings; use DenseCouplings for a bare field")
        self.sizes = [int(s) for s in sizes]
        self.n = sum(self.sizes)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.blocks = [from_host(np.asarray(b), device, dtype) for b in blocks]
        self.h = None if h is None else from_host(np.asarray(h), device, dtype)
        self.layers_of = [list(range(0, len(self.sizes), 2)), list(range(1, len(self.sizes), 2))]
        self.groups = [torch.cat([torch.arange(self.offsets[k], self.offsets[k + 1], device=device)
                                  for k in layers]) if layers else torch.zeros(0, dtype=torch.long, device=device)
                       for layers in self.layers_of]

    @staticmethod
    def from_model(model, *, dtype=torch.float64, device="cpu") -> "LayeredCouplings":
        """From an `IsingModel` (its blocks are J^(k) = W_kᵀ, shape [N_{k−1}, N_k])."""
        blocks = [b.toarray() for b in model.blocks]
        return LayeredCouplings(blocks, model.layer_sizes, model.h, dtype=dtype, device=device)

    def _layer(self, sigma, k):
        return sigma[..., self.offsets[k]:self.offsets[k + 1]]

    def fields(self, sigma: torch.Tensor, g: int, with_h: bool = True) -> torch.Tensor:
        parts = []
        for k in self.layers_of[g]:
            f = None
            if k > 0:
                f = self._layer(sigma, k - 1) @ self.blocks[k - 1]
            if k + 1 < len(self.sizes):
                up = self._layer(sigma, k + 1) @ self.blocks[k].T
                f = up if f is None else f.add_(up)
            if f is None:  # a network of one layer: no bonds
                f = torch.zeros(sigma.shape[:-1] + (self.sizes[k],), dtype=sigma.dtype, device=sigma.device)
            if with_h and self.h is not None:
                f = f + self.h[self.offsets[k]:self.offsets[k + 1]]
            parts.append(f)
        return torch.cat(parts, -1)

    def energy_after_sweep(self, sigma: torch.Tensor, last_fields: torch.Tensor) -> torch.Tensor:
        """The energy from the fields the sweep's last group was drawn with: every bond
        joins an even and an odd layer, so Σ over that group of σ_i × (its bond field)
        counts each bond once, and no product has to be computed again."""
        g = len(self.groups) - 1
        e = -(sigma[..., self.groups[g]] * last_fields).sum(-1)
        if self.h is not None:
            e = e - sigma @ self.h
        return e

    def energy(self, sigma: torch.Tensor) -> torch.Tensor:
        e = torch.zeros(sigma.shape[:-1], dtype=sigma.dtype, device=sigma.device)
        for k, b in enumerate(self.blocks):
            e = e - ((self._layer(sigma, k) @ b) * self._layer(sigma, k + 1)).sum(-1)
        if self.h is not None:
            e = e - sigma @ self.h
        return e


class DenseCouplings(Couplings):
    """A dense symmetric J (zero diagonal): every spin is its own group, updated in turn."""

    def __init__(self, J: np.ndarray, h: Optional[np.ndarray] = None, *, dtype=torch.float64, device="cpu"):
        J = np.asarray(J, dtype=float)
        if J.ndim != 2 or J.shape[0] != J.shape[1] or not np.allclose(J, J.T) or np.any(np.diag(J) != 0):
            raise error("Q0607", "the bond matrix must be square, symmetric and zero on the diagonal")
        self.n = J.shape[0]
        self.J = from_host(J, device, dtype)
        self.h = None if h is None else from_host(np.asarray(h), device, dtype)
        self.groups = [torch.tensor([i], device=device) for i in range(self.n)]
        self.J_host = np.ascontiguousarray(J, dtype=np.float64)  # the sequential kernel's copy

    def fields(self, sigma: torch.Tensor, g: int, with_h: bool = True) -> torch.Tensor:
        f = sigma @ self.J[:, g:g + 1]
        return f if self.h is None or not with_h else f + self.h[g]

    def energy(self, sigma: torch.Tensor) -> torch.Tensor:
        e = -0.5 * ((sigma @ self.J) * sigma).sum(-1)
        return e if self.h is None else e - sigma @ self.h


# --------------------------------------------------------------------------- the two moves


def heat_bath(sigma: torch.Tensor, couplings: Couplings, g: int, beta: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Redraw group g of every replica from its conditional distribution, in place.
    beta: [T] inverse temperatures; u: uniforms of the group's shape [T, R, |g|].
    Returns the group's bond fields (without h) it was drawn with."""
    bonds = couplings.fields(sigma, g, with_h=False)
    f = bonds if couplings.h is None else bonds + couplings.h[couplings.groups[g]]
    # σ = +1 exactly when u < sigmoid(2βf), i.e. when logit(u) < 2βf: one pass, no exp.
    two_beta = (2.0 * beta).view(-1, *([1] * (f.dim() - 1)))
    up = torch.logit(u) < two_beta * f
    new = up.to(sigma.dtype).mul_(2.0).sub_(1.0)
    if isinstance(couplings, LayeredCouplings):  # a group is whole layers: write slices
        at = 0
        for k in couplings.layers_of[g]:
            n = couplings.sizes[k]
            sigma[..., couplings.offsets[k]:couplings.offsets[k + 1]] = new[..., at:at + n]
            at += n
    else:
        sigma[..., couplings.groups[g]] = new
    return bonds


def exchange(sigma: torch.Tensor, energy: torch.Tensor, beta: torch.Tensor, parity: int,
             u: torch.Tensor, carried: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """Swap configurations between temperatures t and t+1 (t ≡ parity mod 2) for every
    replica index, with the Metropolis probability; sigma, energy and the `carried`
    tensors ([T, R, ...], e.g. a sampler's local fields) change in place.
    Returns the accepted mask [pairs, R] of the pairs t = parity, parity + 2, ..."""
    t = torch.arange(parity, beta.numel() - 1, 2, device=sigma.device)
    if t.numel() == 0:
        return torch.zeros((0, sigma.shape[1]), dtype=torch.bool, device=sigma.device)
    d = (beta[t] - beta[t + 1]).unsqueeze(-1) * (energy[t] - energy[t + 1])
    accept = u[: t.numel()] < torch.exp(torch.clamp(d, max=0.0))
    for x in (sigma, energy, *carried):
        lo, hi = x[t], x[t + 1]
        mask = accept.view(accept.shape + (1,) * (x.dim() - 2))
        x[t], x[t + 1] = torch.where(mask, hi, lo), torch.where(mask, lo, hi)
    return accept


# --------------------------------------------------------------------------- the run


@dataclass
class ReplicaResult:
    temperatures: list[float]
    replicas: int
    sweeps: int
    burn_in: int
    n_spins: int
    energy: list[float]  # per spin, ⟨E⟩/N per temperature
    energy_err: list[float]
    magnetisation: list[float]  # ⟨|m|⟩
    q_abs: list[float]
    q2: list[float]
    q2_err: list[float]
    q4: list[float]
    binder: list[float]
    chi_sg: list[float]
    p_q: list[list[float]]  # per temperature, over `q_bins`
    q_bins: list[float]  # bin edges
    direction_overlaps: list[list[float]]  # per temperature, per direction: ⟨|σ·v|⟩/√N
    exchange_acceptance: list[float]  # per neighbouring pair
    equilibrated: bool
    equilibration: dict = field(default_factory=dict)
    update: str = "block"  # the update kind that produced it: "block" or "sequential"
    engine: str = "torch"  # and the engine: "torch" or "compiled"

    def to_json_dict(self) -> dict:
        return {"format": "qnnc-replicas", "version": 1, **self.__dict__}


def _validate(temperatures, replicas, sweeps, burn_in):
    t = np.asarray(temperatures, dtype=float)
    if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise error(BAD_SETTING, "temperatures must be positive and finite", help="e.g. --temperatures 0.5 2 16")
    if not 1 <= replicas <= 4096:
        raise error(BAD_SETTING, f"replicas = {replicas}: give 1 to 4096")
    if not 1 <= sweeps <= 10 ** 8 or not 0 <= burn_in < sweeps:
        raise error(BAD_SETTING, f"sweeps = {sweeps}, burn-in = {burn_in}: need 0 <= burn-in < sweeps <= 1e8")
    return np.sort(t)


def temperature_ladder(t_min: float, t_max: float, count: int) -> list[float]:
    """A geometric ladder, the usual choice when the specific heat varies slowly."""
    if count == 1:
        return [float(t_min)]
    return [float(x) for x in np.geomspace(t_min, t_max, count)]


UPDATES = ("auto", "block", "sequential")
ENGINES = ("auto", "torch", "compiled")
CHUNK = 256  # sweeps whose measurements are added to the running sums at once


def _have_numba() -> bool:
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def _sampler(couplings, update, engine, temps, R, seed, dirs, dtype, device):
    from qnnc.runtime import replicas_samplers as samplers

    if update not in UPDATES:
        raise error(BAD_SETTING, f"update = {update!r}: choose one of {', '.join(UPDATES)}")
    if engine not in ENGINES:
        raise error(BAD_SETTING, f"engine = {engine!r}: choose one of {', '.join(ENGINES)}")
    dense, cpu = isinstance(couplings, DenseCouplings), device.type == "cpu"
    if update == "auto":
        update = "sequential" if dense and cpu and engine != "torch" else "block"
    if engine == "auto":
        engine = "compiled" if cpu and (update == "sequential" or not dense) and _have_numba() else "torch"
    if engine == "compiled" and not _have_numba():
        raise error(BAD_SETTING, "the compiled engine needs numba, which is not installed",
                    help="pip install 'qnnc[spin]', or use engine='torch' (update='block')")
    if engine == "compiled" and not cpu:
        raise error(BAD_SETTING, f"the compiled engine runs on the CPU, not {device}", help="use engine='torch'")
    if update == "sequential":
        if not dense or engine != "compiled":
            raise error(BAD_SETTING, "the sequential update needs dense couplings and the compiled engine")
        return samplers.SequentialSampler(couplings, temps, R, seed, dirs)
    if engine == "compiled":
        if dense:
            raise error(BAD_SETTING, "the compiled block update needs layered couplings",
                        help="a dense J: update='sequential'")
        return samplers.FixedPointBlockSampler(couplings, temps, R, seed, dirs)
    return samplers.TorchBlockSampler(couplings, temps, R, seed, dirs, dtype, device)


def run_replicas(couplings: Couplings, temperatures: Sequence[float], *, replicas: int = 2, sweeps: int = 1000,
                 burn_in: Optional[int] = None, seed: int = 0, directions: Optional[np.ndarray] = None,
                 q_bins: int = 51, progress: Optional[Callable[[int], None]] = None,
                 update: str = "auto", engine: str = "auto") -> ReplicaResult:
    """Parallel tempering; measurements every sweep after `burn_in` (default: half).

    `update`: "block" (a group of mutually uncoupled spins at a time: the layers of a
    layered network; one spin at a time for a dense J) or "sequential" (dense J:
    single-spin heat-bath with incremental fields); "auto": sequential for a dense J on
    the CPU. `engine`: "torch" (any device; the block update as matrix products) or
    "compiled" (CPU: numba, the layered block update in 24-bit fixed point with integer
    products); "auto": compiled on the CPU. `replicas_samplers.py` has the samplers."""
    burn_in = sweeps // 2 if burn_in is None else int(burn_in)
    temps = _validate(temperatures, int(replicas), int(sweeps), burn_in)
    device = couplings.groups[0].device
    dtype = couplings.blocks[0].dtype if isinstance(couplings, LayeredCouplings) else couplings.J.dtype
    T, R, N = temps.size, int(replicas), couplings.n
    dirs = None
    if directions is not None:
        dirs = np.atleast_2d(np.asarray(directions, dtype=np.float64))
        dirs = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)
    D = 0 if dirs is None else dirs.shape[0]
    sampler = _sampler(couplings, update, engine, temps, R, seed, dirs, dtype, device)
    S = int(sweeps) - burn_in
    stats = _Accumulator(T, R, N, S, q_bins, D)
    P = len(stats.pairs)
    accepted = np.zeros(max(T - 1, 0), dtype=np.int64)
    attempts = np.zeros(max(T - 1, 0), dtype=np.int64)
    try:
        s = 0
        while s < sweeps:
            measuring = s >= burn_in
            if measuring:
                i = s - burn_in
                block = i * stats.BLOCKS // S
                n = min(-(-(block + 1) * S // stats.BLOCKS) - i, CHUNK)
            else:
                n = min(burn_in - s, CHUNK)
            if measuring:
                E, M = np.zeros((n, T * R)), np.zeros((n, T * R))
                V, Q = np.zeros((n, T * R, D)), np.zeros((n, T, P))
            if hasattr(sampler, "run_chunk"):  # the sampler runs the chunk's sweeps itself (its workers)
                sampler.run_chunk(n, s % 2 if T > 1 else None, accepted, *((E, M, V, Q) if measuring else ()))
            for j in range(n):
                if not hasattr(sampler, "run_chunk"):
                    sampler.sweep()
                    if T > 1:
                        sampler.exchange((s + j) % 2, accepted)
                    if measuring:
                        E[j] = sampler.energy
                        sampler.measure(M[j], V[j], Q[j])
                if T > 1:
                    attempts[(s + j) % 2::2] += 1
                if progress is not None:
                    progress(s + j)
            if measuring:
                stats.add_chunk(block, E.reshape(n, T, R) / N, np.abs(M).reshape(n, T, R) / N, Q / N,
                                np.abs(V).reshape(n, T, R, D).mean(2) / math.sqrt(N))
            s += n
    finally:
        if hasattr(sampler, "close"):  # worker processes
            sampler.close()
    acc = (accepted / np.maximum(attempts * R, 1)).tolist()
    res = stats.result(temps, R, int(sweeps), burn_in, acc)
    res.update, res.engine = sampler.update, sampler.engine
    return res


class _Accumulator:
    """Running sums of what is measured, in 40 blocks of the measured sweeps: memory does
    not grow with the number of sweeps. The blocks give the batch-mean errors and the two
    log-binning windows of the equilibration check ([S/4, S/2) = blocks 10-19, [S/2, S) =
    blocks 20-39)."""

    BLOCKS = 40

    def __init__(self, T, R, N, S, q_bins, D):
        self.N, self.S, self.T = N, S, T
        self.pairs = [(a, b) for a in range(R) for b in range(a + 1, R)]
        self.disjoint = np.array(_disjoint_pairs(R), dtype=np.int64)
        P, Pd, B = len(self.pairs), self.disjoint.size, self.BLOCKS
        self.count = np.zeros(B)
        self.e_blocks = np.zeros((B, T, R))
        self.m_sum = np.zeros((T, R))
        self.q_abs, self.q2, self.q4 = (np.zeros((T, P)) for _ in range(3))
        self.q2_blocks = np.zeros((B, T, Pd))
        self.edges = np.linspace(-1.0, 1.0, q_bins + 1)
        self.hist = np.zeros((T, q_bins))
        self.v_sum = np.zeros((T, D))

    def add_chunk(self, b, e, m, q, v):
        """Add n sweeps of block b: e, m [n, T, R]; q [n, T, P]; v [n, T, D]."""
        n = e.shape[0]
        self.count[b] += n
        self.e_blocks[b] += e.sum(0)
        self.m_sum += m.sum(0)
        if self.pairs:
            q2 = q * q
            self.q_abs += np.abs(q).sum(0)
            self.q2 += q2.sum(0)
            self.q4 += (q2 * q2).sum(0)
            self.q2_blocks[b] += q2[:, :, self.disjoint].sum(0)
            # np.histogram's bins: [e_k, e_k+1), the last one closed
            k = np.searchsorted(self.edges[1:-1], q, side="right")  # [n, T, P]
            bins = self.hist.shape[1]
            flat = (np.arange(self.T)[None, :, None] * bins + k).ravel()
            self.hist += np.bincount(flat, minlength=self.T * bins).reshape(self.T, bins)
        self.v_sum += v.sum(0)

    def result(self, temps, R, sweeps, burn_in, acceptance) -> "ReplicaResult":
        S, N, T = self.S, self.N, temps.size
        cnt = self.count
        e_blocks = self.e_blocks
        e_rep = e_blocks.sum(0) / S  # [T, R]: each replica's mean
        e_err = e_rep.std(-1, ddof=1) / math.sqrt(R) if R > 1 else _block_error(e_blocks[..., 0], cnt)
        q2_blocks = None
        if self.pairs:
            q2p = self.q2 / S
            q2, q4 = q2p.mean(-1), (self.q4 / S).mean(-1)
            qa = (self.q_abs / S).mean(-1)
            q2_blocks = self.q2_blocks
            d = self.disjoint
            # Pairs share replicas, so errors come from the disjoint pairs (0,1), (2,3), ...
            q2_err = q2p[:, d].std(-1, ddof=1) / math.sqrt(d.size) if d.size > 1 else \
                _block_error(q2_blocks[..., 0], cnt)
            with np.errstate(invalid="ignore", divide="ignore"):
                binder = 0.5 * (3.0 - q4 / q2 ** 2)
            widths = np.diff(self.edges)
            pq = (self.hist / (self.hist.sum(-1, keepdims=True) * widths)).tolist()
        else:
            q2 = q4 = qa = q2_err = binder = np.full(T, np.nan)
            pq = [[] for _ in range(T)]
        v = (self.v_sum / S).tolist() if self.v_sum.shape[1] else [[] for _ in range(T)]
        eq, detail = _equilibration(e_blocks, q2_blocks, cnt)
        return ReplicaResult(
            temperatures=temps.tolist(), replicas=R, sweeps=sweeps, burn_in=burn_in, n_spins=N,
            energy=e_rep.mean(-1).tolist(), energy_err=np.asarray(e_err).tolist(),
            magnetisation=(self.m_sum / S).mean(-1).tolist(),
            q_abs=np.asarray(qa).tolist(), q2=np.asarray(q2).tolist(), q2_err=np.asarray(q2_err).tolist(),
            q4=np.asarray(q4).tolist(), binder=np.asarray(binder).tolist(), chi_sg=(N * np.asarray(q2)).tolist(),
            p_q=pq, q_bins=self.edges.tolist(), direction_overlaps=v,
            exchange_acceptance=acceptance, equilibrated=eq, equilibration=detail)


def _disjoint_pairs(R: int) -> list[int]:
    """Indices, in the list of all pairs a < b, of the pairs (0,1), (2,3), ...: independent."""
    pairs = [(a, b) for a in range(R) for b in range(a + 1, R)]
    return [pairs.index((a, a + 1)) for a in range(0, R - 1, 2)]


def _block_error(blocks: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Standard error of the mean from block sums [B, ...] (blocks without samples skipped)."""
    keep = count > 0
    if keep.sum() < 2:
        return np.full(blocks.shape[1:], np.nan)
    means = blocks[keep] / count[keep].reshape((-1,) + (1,) * (blocks.ndim - 1))
    return means.std(0, ddof=1) / math.sqrt(keep.sum())


def _equilibration(e_blocks: np.ndarray, q2_blocks: Optional[np.ndarray], count: np.ndarray) -> tuple[bool, dict]:
    """Logarithmic binning: the last doubling window [S/2, S) against the one before
    [S/4, S/2), for the energy and <q^2> at every temperature. Each replica (or disjoint
    replica pair) gives one paired difference of its two window means; their mean over
    replicas, in units of its standard error, is compared with Student's t quantile for
    a 1 % family-wise false alarm over all comparisons (Bonferroni), so a long ladder is
    not flagged by chance. With one replica, the windows' block means give the error."""
    from scipy.stats import t as student_t

    B = _Accumulator.BLOCKS
    w1, w2 = slice(B // 4, B // 2), slice(B // 2, B)
    n1, n2 = count[w1].sum(), count[w2].sum()
    if min((count[w1] > 0).sum(), (count[w2] > 0).sum()) < 2 or n1 + n2 < 8:
        return False, {"reason": "too few measured sweeps for the log-binning check"}
    series = [e_blocks] + ([q2_blocks] if q2_blocks is not None and q2_blocks.shape[2] > 0 else [])
    tests = []  # (z, degrees of freedom)
    for x in series:  # block sums [B, T, K]
        d = x[w1].sum(0) / n1 - x[w2].sum(0) / n2  # [T, K]: paired differences
        K = d.shape[1]
        if K > 1:
            err = d.std(-1, ddof=1) / math.sqrt(K)
            dof = K - 1
        else:
            err = np.sqrt(_block_error(x[w1][..., 0], count[w1]) ** 2 + _block_error(x[w2][..., 0], count[w2]) ** 2)
            dof = int((count[w1] > 0).sum()) - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.abs(d.mean(-1)) / np.maximum(err, 1e-300)
        tests += [(float(v), dof) for v in z]
    alpha = 0.01 / len(tests)
    p_min = min(2 * student_t.sf(z, dof) for z, dof in tests)
    worst = max(z for z, _ in tests)
    return bool(p_min >= alpha), {"method": "log binning: last two doubling windows, paired over replicas",
                                  "max_z": worst, "min_p": float(p_min), "alpha": alpha,
                                  "comparisons": len(tests)}
