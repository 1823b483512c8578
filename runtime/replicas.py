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
        self.sizes = [int(s) for s in sizes]
        self.n = sum(self.sizes)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.blocks = [torch.as_tensor(np.asarray(b), dtype=dtype, device=device) for b in blocks]
        self.h = None if h is None else torch.as_tensor(np.asarray(h), dtype=dtype, device=device)
        self.layers_of = [list(range(0, len(self.sizes), 2)), list(range(1, len(self.sizes), 2))]
        self.groups = [torch.cat([torch.arange(self.offsets[k], self.offsets[k + 1], device=device)
                                  for k in layers]) if layers else torch.zeros(0, dtype=torch.long)
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
        self.J = torch.as_tensor(J, dtype=dtype, device=device)
        self.h = None if h is None else torch.as_tensor(np.asarray(h), dtype=dtype, device=device)
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


class _BlockSampler:
    """The block heat-bath in torch (any device): each group of mutually uncoupled spins
    drawn at once from the products of its neighbouring blocks."""

    kind = "block"

    def __init__(self, couplings, beta, gen, sigma):
        self.c, self.beta, self.gen = couplings, beta, gen
        self.carried = ()

    def sweep(self, sigma):
        c, (T, R, _) = self.c, sigma.shape
        for g in range(len(c.groups)):
            u = torch.rand((T, R, c.groups[g].numel()), generator=self.gen, device=sigma.device, dtype=sigma.dtype)
            bonds = heat_bath(sigma, c, g, self.beta, u)
        return c.energy_after_sweep(sigma, bonds) if isinstance(c, LayeredCouplings) else c.energy(sigma)


class _SequentialSampler:
    """Single-spin heat-bath in index order with incremental local fields (numba, CPU),
    for a dense J: the fields travel with their configurations through the exchanges,
    and are recomputed from scratch every `REFRESH` sweeps (no drift of the sums)."""

    kind = "sequential"
    REFRESH = 256

    def __init__(self, couplings, beta, seed, sigma):
        if sigma.device.type != "cpu":
            raise error(BAD_SETTING, "the sequential update runs on the CPU only", help="use update='block'")
        T, R, N = sigma.shape
        self.c, self.count = couplings, 0
        self.h = torch.zeros(N, dtype=torch.float64) if couplings.h is None else couplings.h.double().cpu()
        self.J = couplings.J_host
        self.beta = np.repeat(beta.double().cpu().numpy(), R)
        self.state = np.random.SeedSequence([int(seed), 0x5EC]).generate_state(T * R, np.uint64)
        self.order = np.arange(N, dtype=np.int64)
        self.fields = torch.zeros((T, R, N), dtype=torch.float64)
        self.carried = (self.fields,)

    def _refresh(self, sigma):
        self.fields.copy_(sigma.double() @ torch.from_numpy(self.J) + self.h)

    def sweep(self, sigma):
        from qnnc.runtime.replicas_kernel import sequential_sweeps

        if self.count % self.REFRESH == 0:
            self._refresh(sigma)
        self.count += 1
        T, R, N = sigma.shape
        x = sigma if sigma.dtype == torch.float64 else sigma.double()
        sequential_sweeps(x.view(T * R, N).numpy(), self.fields.view(T * R, N).numpy(), self.beta, self.J,
                          self.state, self.order, 1)
        if x is not sigma:
            sigma.copy_(x)
        return (-0.5 * (x * (self.fields + self.h)).sum(-1)).to(sigma.dtype)


def _sampler(couplings, update, beta, gen, seed, sigma):
    if update not in UPDATES:
        raise error(BAD_SETTING, f"update = {update!r}: choose one of {', '.join(UPDATES)}")
    dense = isinstance(couplings, DenseCouplings)
    if update == "auto":
        update = "sequential" if dense and sigma.device.type == "cpu" else "block"
    if update == "sequential":
        if not dense:
            raise error(BAD_SETTING, "the sequential update needs dense couplings (DenseCouplings)")
        return _SequentialSampler(couplings, beta, seed, sigma)
    return _BlockSampler(couplings, beta, gen, sigma)


def run_replicas(couplings: Couplings, temperatures: Sequence[float], *, replicas: int = 2, sweeps: int = 1000,
                 burn_in: Optional[int] = None, seed: int = 0, directions: Optional[np.ndarray] = None,
                 q_bins: int = 51, progress: Optional[Callable[[int], None]] = None,
                 update: str = "auto") -> ReplicaResult:
    """Parallel tempering; measurements every sweep after `burn_in` (default: half).
    `update`: "block" (torch, any device: layers as matrix products, or one spin at a
    time for a dense J), "sequential" (dense J, CPU: single-spin heat-bath with
    incremental fields, compiled) or "auto" (sequential for a dense J on the CPU)."""
    burn_in = sweeps // 2 if burn_in is None else int(burn_in)
    temps = _validate(temperatures, int(replicas), int(sweeps), burn_in)
    device = couplings.groups[0].device
    dtype = couplings.blocks[0].dtype if isinstance(couplings, LayeredCouplings) else couplings.J.dtype
    gen = torch.Generator(device=device).manual_seed(int(seed))
    T, R, N = temps.size, int(replicas), couplings.n
    beta = torch.as_tensor(1.0 / temps, dtype=dtype, device=device)
    sigma = torch.where(torch.rand((T, R, N), generator=gen, device=device, dtype=dtype) < 0.5, 1.0, -1.0).to(dtype)
    sampler = _sampler(couplings, update, beta, gen, seed, sigma)
    dirs = None if directions is None else torch.as_tensor(np.atleast_2d(directions), dtype=dtype, device=device)
    if dirs is not None:
        dirs = dirs / torch.linalg.vector_norm(dirs, dim=-1, keepdim=True)
    acc_sum = torch.zeros(max(T - 1, 0), dtype=dtype, device=device)
    acc_n = torch.zeros(max(T - 1, 0), dtype=dtype, device=device)
    stats = _Accumulator(T, R, N, int(sweeps) - burn_in, q_bins, 0 if dirs is None else dirs.shape[0], device)
    pairs = stats.pairs
    a_idx = torch.tensor([p[0] for p in pairs], dtype=torch.long, device=device)
    b_idx = torch.tensor([p[1] for p in pairs], dtype=torch.long, device=device)
    for s in range(int(sweeps)):
        energy = sampler.sweep(sigma)
        if T > 1:
            parity = s % 2
            u = torch.rand((T, R), generator=gen, device=device, dtype=dtype)
            accepted = exchange(sigma, energy, beta, parity, u, sampler.carried)
            idx = torch.arange(parity, T - 1, 2, device=device)
            acc_sum[idx] += accepted.to(dtype).mean(-1)
            acc_n[idx] += 1
        if s >= burn_in:
            q = (sigma[:, a_idx] * sigma[:, b_idx]).mean(-1) if pairs else None
            v = (sigma @ dirs.T).abs() / math.sqrt(N) if dirs is not None else None
            stats.add(s - burn_in, energy / N, sigma.mean(-1).abs(), q, v)
        if progress is not None:
            progress(s)
    acc = (acc_sum / torch.clamp(acc_n, min=1)).double().cpu().numpy().tolist()
    res = stats.result(temps, R, int(sweeps), burn_in, acc)
    res.update = sampler.kind
    return res


class _Accumulator:
    """Running sums of what is measured, in 40 blocks of the measured sweeps: memory does
    not grow with the number of sweeps. The blocks give the batch-mean errors and the two
    log-binning windows of the equilibration check ([S/4, S/2) = blocks 10-19, [S/2, S) =
    blocks 20-39)."""

    BLOCKS = 40

    def __init__(self, T, R, N, S, q_bins, D, device):
        f64 = dict(dtype=torch.float64, device=device)
        self.N, self.S = N, S
        self.pairs = [(a, b) for a in range(R) for b in range(a + 1, R)]
        self.disjoint = torch.tensor(_disjoint_pairs(R), dtype=torch.long, device=device)
        P, Pd, B = len(self.pairs), self.disjoint.numel(), self.BLOCKS
        self.count = torch.zeros(B, **f64)
        self.e_blocks = torch.zeros(B, T, R, **f64)
        self.m_sum = torch.zeros(T, R, **f64)
        self.q_abs, self.q2, self.q4 = (torch.zeros(T, P, **f64) for _ in range(3))
        self.q2_blocks = torch.zeros(B, T, Pd, **f64)
        self.edges = torch.linspace(-1.0, 1.0, q_bins + 1, **f64)
        self.hist = torch.zeros(T, q_bins, **f64)
        self.v_sum = torch.zeros(T, D, **f64)

    def add(self, i, e, m, q, v):
        b = i * self.BLOCKS // self.S
        self.count[b] += 1
        self.e_blocks[b] += e.double()
        self.m_sum += m.double()
        if q is not None:
            q = q.double()
            q2 = q * q
            self.q_abs += q.abs()
            self.q2 += q2
            self.q4 += q2 * q2
            self.q2_blocks[b] += q2[:, self.disjoint]
            # np.histogram's bins: [e_k, e_k+1), the last one closed
            k = torch.bucketize(q, self.edges[1:-1], right=True)
            self.hist.scatter_add_(1, k, torch.ones_like(q))
        if v is not None:
            self.v_sum += v.double().mean(1)

    def result(self, temps, R, sweeps, burn_in, acceptance) -> "ReplicaResult":
        S, N, T = self.S, self.N, temps.size
        cnt = self.count.cpu().numpy()
        e_blocks = self.e_blocks.cpu().numpy()
        e_rep = e_blocks.sum(0) / S  # [T, R]: each replica's mean
        e_err = e_rep.std(-1, ddof=1) / math.sqrt(R) if R > 1 else _block_error(e_blocks[..., 0], cnt)
        q2_blocks = None
        if self.pairs:
            q2p = self.q2.cpu().numpy() / S
            q2, q4 = q2p.mean(-1), (self.q4.cpu().numpy() / S).mean(-1)
            qa = (self.q_abs.cpu().numpy() / S).mean(-1)
            q2_blocks = self.q2_blocks.cpu().numpy()
            d = self.disjoint.cpu().numpy()
            # Pairs share replicas, so errors come from the disjoint pairs (0,1), (2,3), ...
            q2_err = q2p[:, d].std(-1, ddof=1) / math.sqrt(d.size) if d.size > 1 else \
                _block_error(q2_blocks[..., 0], cnt)
            with np.errstate(invalid="ignore", divide="ignore"):
                binder = 0.5 * (3.0 - q4 / q2 ** 2)
            widths = np.diff(self.edges.cpu().numpy())
            hist = self.hist.cpu().numpy()
            pq = (hist / (hist.sum(-1, keepdims=True) * widths)).tolist()
        else:
            q2 = q4 = qa = q2_err = binder = np.full(T, np.nan)
            pq = [[] for _ in range(T)]
        v = (self.v_sum.cpu().numpy() / S).tolist() if self.v_sum.shape[1] else [[] for _ in range(T)]
        eq, detail = _equilibration(e_blocks, q2_blocks, cnt)
        return ReplicaResult(
            temperatures=temps.tolist(), replicas=R, sweeps=sweeps, burn_in=burn_in, n_spins=N,
            energy=e_rep.mean(-1).tolist(), energy_err=np.asarray(e_err).tolist(),
            magnetisation=(self.m_sum.cpu().numpy() / S).mean(-1).tolist(),
            q_abs=np.asarray(qa).tolist(), q2=np.asarray(q2).tolist(), q2_err=np.asarray(q2_err).tolist(),
            q4=np.asarray(q4).tolist(), binder=np.asarray(binder).tolist(), chi_sg=(N * np.asarray(q2)).tolist(),
            p_q=pq, q_bins=self.edges.cpu().numpy().tolist(), direction_overlaps=v,
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
