"""TAP solutions at a fixed temperature: `solve_tap(J, T)` finds all the distinct
solutions reachable from random starts and returns a `TapResult`.

`_TapSystem` holds the TAP equations of one (J, β, h) (fields, residual, Hessian,
Newton, free energy); `_cluster` groups magnetisations that are one solution.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import xlogy

from qnnc.compiler.diagnostics import error
from qnnc.runtime.tap.couplings import (EDGE_UNITS, SMALL_SPINS, Couplings, _couplings, _Couplings,
                                        _top_eigenpair, finite_size_tolerance)

# The batched TAP iteration judges each column's progress over windows of this many
# steps, from PREDICT_WARMUP steps on (after the initial transient).
PREDICT_WINDOW = 25
PREDICT_WARMUP = 100


def _entropy_term(m: np.ndarray) -> np.ndarray:
    """Σ_i [(1+m)/2 ln((1+m)/2) + (1−m)/2 ln((1−m)/2)] per column (0·ln 0 = 0)."""
    p, q = 0.5 * (1.0 + m), 0.5 * (1.0 - m)
    return (xlogy(p, p) + xlogy(q, q)).sum(axis=0)


@dataclass(frozen=True)
class TapResult:
    """Distinct TAP solutions at temperature T, sorted by free energy per spin.

    Solutions are identified up to the global sign (without fields) when their
    normalised overlap |q_ab| / sqrt(q_aa q_bb) exceeds `overlap_threshold`; the
    paramagnet m = 0 (max |m_i| < sqrt(tol)) is one solution. Every start ends in
    exactly one of: an accepted solution (`basin_counts`), a solution rejected because
    its TAP Hessian is not PSD within the finite-size band, one rejected by Plefka's
    condition, or no convergence."""

    T: float
    beta: float
    layer_names: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    solutions: np.ndarray  # (n_solutions, N) magnetisations
    basin_counts: np.ndarray  # starts that ended in each solution
    free_energy: np.ndarray  # F(m)/N
    q_ea: np.ndarray  # (1/N) Σ m_i²
    q_layers: np.ndarray  # (n_solutions, n_layers): Edwards–Anderson q_k per layer
    overlaps: np.ndarray  # (n_solutions, n_solutions) normalised overlaps q_ab / sqrt(q_aa q_bb)
    top_overlap: np.ndarray  # |m·v| / ‖m‖, v the top eigenvector of J (0 for m = 0)
    plefka: np.ndarray  # β² (1/N) Σ (1 − m_i²)² (spec; SK normalisation J_ij² ≈ 1/N)
    plefka_general: np.ndarray  # β² λ_max(diag(1 − m²) J∘J diag(1 − m²)) (any J; < 1 is stable)
    residual: np.ndarray  # max_i |m_i − tanh(β h_i^TAP)|
    paramagnetic: np.ndarray  # bool: the m = 0 solution
    n_starts: int
    n_not_converged: int
    n_rejected_hessian: int
    n_rejected_plefka: int
    iterations: int  # iterations of the batched phase actually run
    psd_tol: float
    seconds: float

    @property
    def n_solutions(self) -> int:
        return int(self.solutions.shape[0])

    @property
    def n_converged(self) -> int:
        return self.n_starts - self.n_not_converged

    def to_json_dict(self, include_solutions: bool = False) -> dict:
        out = {
            "T": self.T, "beta": self.beta, "n_solutions": self.n_solutions, "n_starts": self.n_starts,
            "n_not_converged": self.n_not_converged, "n_rejected_hessian": self.n_rejected_hessian,
            "n_rejected_plefka": self.n_rejected_plefka, "iterations": self.iterations,
            "psd_tol": self.psd_tol, "seconds": self.seconds,
            "layers": list(self.layer_names),
            "solutions": [
                {"basin": int(self.basin_counts[a]), "free_energy": float(self.free_energy[a]),
                 "q_ea": float(self.q_ea[a]),
                 "q_layers": {n: float(q) for n, q in zip(self.layer_names, self.q_layers[a])},
                 "top_overlap": float(self.top_overlap[a]), "plefka": float(self.plefka[a]),
                 "plefka_general": float(self.plefka_general[a]), "residual": float(self.residual[a]),
                 "paramagnetic": bool(self.paramagnetic[a])}
                for a in range(self.n_solutions)],
            "overlaps": self.overlaps.tolist(),
        }
        if include_solutions:
            out["magnetisations"] = self.solutions.tolist()
        return out


class _TapSystem:
    """The TAP equations of one (J, β, h), in float64, for single vectors or batches."""

    def __init__(self, c: _Couplings, beta: float, h: Optional[np.ndarray]):
        self.c, self.beta, self.h = c, beta, h
        self.J, self.J2 = c.op, c.squared

    def local_field(self, m: np.ndarray, m_onsager: np.ndarray) -> np.ndarray:
        """β (Jm)_i − β² m'_i Σ_j J_ij² (1 − m_j²) + β h_i; m' = m_onsager (AMP: the previous iterate)."""
        b = self.beta
        f = b * (self.J @ m) - (b * b) * m_onsager * (self.J2 @ (1.0 - m * m))
        if self.h is not None:
            f += b * (self.h if m.ndim == 1 else self.h[:, None])
        return f

    def residual(self, m: np.ndarray) -> np.ndarray:
        return np.abs(np.tanh(self.local_field(m, m)) - m).max(axis=0)

    def hessian(self, m: np.ndarray):
        """β ∂²F/∂m∂m = −βJ − 2β² diag(m) J∘J diag(m) + diag(β² (J∘J)(1 − m²) + 1/(1 − m²)).
        Equals A(β) at m = 0."""
        b = self.beta
        u = np.maximum(1.0 - m * m, np.finfo(float).eps)
        diag = b * b * (self.J2 @ u) + 1.0 / u
        if self.c.dense is not None:
            H = -b * self.J - 2.0 * b * b * (m[:, None] * self.J2 * m[None, :])
            H[np.diag_indices_from(H)] += diag
            return H
        dm = sp.diags(m)
        return (-b * self.c.sparse - 2.0 * b * b * (dm @ self.J2 @ dm) + sp.diags(diag)).tocsc()

    def gradient(self, m: np.ndarray) -> np.ndarray:
        """β ∂F/∂m = −β Jm + β² m ∘ (J∘J)(1 − m²) + atanh(m) − βh."""
        b = self.beta
        g = -b * (self.J @ m) + b * b * m * (self.J2 @ (1.0 - m * m)) + np.arctanh(m)
        if self.h is not None:
            g -= b * self.h
        return g

    def newton(self, m: np.ndarray, tol: float, steps: int) -> np.ndarray:
        """Newton's method on ∇F = 0 from a nearly converged m, with step halving."""
        lim = 1.0 - 1e-15
        m = np.clip(m, -lim, lim)
        r = float(self.residual(m))
        for _ in range(steps):
            if r < tol:
                break
            H = self.hessian(m)
            g = self.gradient(m)
            try:
                if sp.issparse(H):
                    delta = spla.spsolve(H, -g)
                else:
                    delta = sla.solve(H, -g, assume_a="sym", check_finite=False)
            except (sla.LinAlgError, RuntimeError):
                break
            if not np.all(np.isfinite(delta)):
                break
            for _half in range(8):
                trial = np.clip(m + delta, -lim, lim)
                r_trial = float(self.residual(trial))
                if r_trial < r:
                    m, r = trial, r_trial
                    break
                delta *= 0.5
            else:
                break
        return m

    def min_eig_at_least(self, m: np.ndarray, bound: float) -> bool:
        """Whether λ_min(β Hessian) ≥ bound (Cholesky of H − bound·I when dense)."""
        H = self.hessian(m)
        if sp.issparse(H):
            w = spla.eigsh(H, k=1, which="SA", tol=1e-8, return_eigenvectors=False)
            return bool(w[0] >= bound)
        H[np.diag_indices_from(H)] -= bound
        try:
            sla.cholesky(H, lower=True, check_finite=False, overwrite_a=True)
            return True
        except sla.LinAlgError:
            return False

    def plefka_general(self, m: np.ndarray) -> float:
        u = 1.0 - m * m
        if not np.any(u > 0):
            return 0.0
        J2 = self.J2
        op = spla.LinearOperator((self.c.n, self.c.n), matvec=lambda x: u * (J2 @ (u * x)), dtype=np.float64)
        if self.c.n <= SMALL_SPINS:
            K = u[:, None] * (J2.toarray() if sp.issparse(J2) else J2) * u[None, :]
            lam = float(sla.eigh(K, eigvals_only=True, subset_by_index=[self.c.n - 1, self.c.n - 1])[0])
        else:
            lam = float(spla.eigsh(op, k=1, which="LA", v0=u + 1e-12, tol=1e-8, return_eigenvectors=False)[0])
        return self.beta ** 2 * lam

    def free_energy(self, m: np.ndarray) -> float:
        """F(m) of the spec (plus −h·m with fields)."""
        b = self.beta
        u = 1.0 - m * m
        F = -0.5 * m @ (self.J @ m) - 0.25 * b * u @ (self.J2 @ u) + _entropy_term(m[:, None])[0] / b
        if self.h is not None:
            F -= self.h @ m
        return float(F)


def _cluster(vectors: np.ndarray, order: np.ndarray, threshold: float, signed: bool,
             zero: np.ndarray) -> list[list[int]]:
    """Greedy clustering of columns by normalised overlap; `order` gives the preferred
    representatives first; all `zero` columns form one cluster. Returns index lists,
    representative first."""
    norms = np.linalg.norm(vectors, axis=0)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    G = unit.T @ unit
    if not signed:
        G = np.abs(G)
    assigned = np.zeros(vectors.shape[1], dtype=bool)
    clusters = []
    zero_members = [int(i) for i in order if zero[i]]
    if zero_members:
        clusters.append(zero_members)
        assigned[zero] = True
    for a in order:
        if assigned[a]:
            continue
        members = [int(a)] + [int(b) for b in order if not assigned[b] and b != a and G[a, b] > threshold]
        assigned[members] = True
        clusters.append(members)
    return clusters


class _HostColumns:
    """Step 1's iterates on the host (numpy, float32): m ← (1−γ) m + γ tanh(h^TAP) for
    the active columns; returns their max |step|."""

    def __init__(self, M, J32, J2_32, bh, b32, bb32, g32, device=None):
        self.M, self.M_prev = M, M.copy()
        self.J32, self.J2_32, self.bh, self.b32, self.bb32, self.g32 = J32, J2_32, bh, b32, bb32, g32

    def step(self, active: np.ndarray) -> np.ndarray:
        M, M_prev = self.M, self.M_prev
        Ma, Mp = M[:, active], M_prev[:, active]
        field_ = self.b32 * (self.J32 @ Ma) - self.bb32 * Mp * (self.J2_32 @ (1.0 - Ma * Ma))
        if self.bh is not None:
            field_ += self.bh
        step = np.tanh(field_) - Ma
        M_prev[:, active] = Ma
        M[:, active] = Ma + self.g32 * step
        return np.abs(step).max(axis=0)

    def columns(self, idx: np.ndarray) -> np.ndarray:
        return self.M[:, idx].astype(np.float64)


class _TorchColumns(_HostColumns):
    """The same on a torch device: the iterates and both operators live there; each step
    sends the active columns' indices and reads back their max |step| (S numbers)."""

    def __init__(self, M, J32, J2_32, bh, b32, bb32, g32, device=None):
        import torch

        from qnnc.runtime.devices import from_host

        dev = torch.device(device) if device is not None else torch.device("cpu")
        dense = lambda A: A.toarray() if sp.issparse(A) else np.asarray(A)
        self.torch, self.device = torch, dev
        self.M = from_host(M, dev)
        self.M_prev = self.M.clone()
        self.J32, self.J2_32 = from_host(dense(J32), dev), from_host(dense(J2_32), dev)
        self.bh = None if bh is None else from_host(bh, dev)
        self.b32, self.bb32, self.g32 = float(b32), float(bb32), float(g32)

    def step(self, active: np.ndarray) -> np.ndarray:
        torch = self.torch
        a = torch.from_numpy(np.ascontiguousarray(active)).to(self.device)
        Ma, Mp = self.M[:, a], self.M_prev[:, a]
        field_ = self.b32 * (self.J32 @ Ma) - self.bb32 * Mp * (self.J2_32 @ (1.0 - Ma * Ma))
        if self.bh is not None:
            field_ += self.bh
        step = torch.tanh(field_) - Ma
        self.M_prev[:, a] = Ma
        self.M[:, a] = Ma + self.g32 * step
        return step.abs().amax(0).cpu().numpy()  # host: the bookkeeping decides on these

    def columns(self, idx: np.ndarray) -> np.ndarray:
        i = self.torch.from_numpy(np.ascontiguousarray(idx)).to(self.device)
        return self.M[:, i].cpu().numpy().astype(np.float64)


def _use_torch(device) -> bool:
    """Step 1 with torch: on any device but the CPU (where numpy's path is the tested one)."""
    return device is not None and str(device) != "cpu"


def solve_tap(J: Couplings, T: float, starts: int = 256, fields: Union[None, bool, np.ndarray] = None,
              damping: float = 0.5, tol: float = 1e-8, max_iter: int = 400, seed: int = 0, *,
              layer_sizes: Optional[Sequence[int]] = None, overlap_threshold: float = 0.99,
              edge_units: float = EDGE_UNITS, reject_plefka: bool = True, polish_iter: int = 50,
              newton_steps: int = 8, top_vector: Optional[np.ndarray] = None,
              merge_every: int = 10, merge_threshold: float = 0.999, device=None) -> TapResult:
    """Solve m_i = tanh(β Σ_j J_ij m_j − β² m_i Σ_j J_ij² (1 − m_j²) + β h_i) from `starts`
    random points m ~ U(−1, 1)^N.

    1. All starts iterate together, one (N × starts) product per operator per step, in
       float32: m ← (1−γ) m + γ tanh(h^TAP(m^t, m^{t−1})), the Onsager term taken at the
       previous iterate (Bolthausen's time indexing, as in AMP), γ = `damping`, until
       max|Δm|/γ < max(tol, 1e-5) (float32 resolves no better) or `max_iter` steps.
    2. Starts within 1e-3 of a fixed point are grouped by overlap; one representative per
       group is polished in float64 (iteration, then Newton on ∇F = 0) to residual `tol`.
    3. A polished solution is kept if it satisfies Plefka's condition (generalised,
       ≤ 1 + psd_tol; skip with reject_plefka=False) and its TAP Hessian has
       λ_min ≥ −psd_tol (psd_tol = κ N^(−2/3), the same band as `hessian_tc`).
    `fields`: None = the model's own fields (if it was built with fields), False = none,
    or an array h. `device` (a torch device; default cpu): where step 1's products run
    (on the CPU with numpy; elsewhere with torch, each step's column maxima read back to
    the host for the bookkeeping); steps 2-4 run on the host."""
    t_start = time.perf_counter()
    try:
        T = float(T)
    except (TypeError, ValueError):
        raise error("Q0610", f"temperature {T!r}: not a number") from None
    if not (math.isfinite(T) and T > 0):
        raise error("Q0610", f"temperature {T}: must be positive and finite")
    if int(starts) < 1:
        raise error("Q0611", f"starts = {starts}: at least one start is needed")
    if not (0 < damping <= 1):
        raise error("Q0611", f"damping = {damping}: must be in (0, 1]",
                    help="m ← (1−γ) m + γ F(m); 0.5 is a safe default")
    if not (tol > 0 and math.isfinite(tol)) or int(max_iter) < 1 or int(polish_iter) < 0 or int(newton_steps) < 0:
        raise error("Q0611", "tol > 0, max_iter ≥ 1, polish_iter ≥ 0 and newton_steps ≥ 0 are needed")
    if not (0 < overlap_threshold < 1):
        raise error("Q0611", f"overlap_threshold = {overlap_threshold}: must be in (0, 1)")
    c = _couplings(J, layer_sizes)
    n, S, beta = c.n, int(starts), 1.0 / float(T)
    if fields is None:
        h = c.h
    elif fields is False:
        h = None
    elif fields is True:
        if c.h is None:
            raise error("Q0612", "fields=True but the model has no fields",
                        help="build the model with IsingModel.from_weights(..., fields=True), or pass an array")
        h = c.h
    else:
        h = np.asarray(fields, dtype=np.float64)
        if h.shape != (n,) or not np.all(np.isfinite(h)):
            raise error("Q0612", f"fields of shape {h.shape}: expected {n} finite numbers")
    if h is not None and not np.any(h):
        h = None
    psd_tol = finite_size_tolerance(n, edge_units)
    system = _TapSystem(c, beta, h)

    # ---- 1. batched iteration in float32 (BLAS sgemm is twice dgemm's speed).
    rng = np.random.default_rng(seed)
    M = rng.uniform(-1.0, 1.0, size=(n, S)).astype(np.float32)
    J32 = c.op.astype(np.float32)
    J2_32 = c.squared.astype(np.float32)
    bh = None if h is None else (beta * h).astype(np.float32)[:, None]
    b32, bb32, g32 = np.float32(beta), np.float32(beta * beta), np.float32(damping)
    arrays = (_TorchColumns if _use_torch(device) else _HostColumns)(M, J32, J2_32, bh, b32, bb32, g32, device)
    coarse_tol = max(tol, 1e-5)
    near_tol = 1e-3  # "close to a fixed point": Newton's basin, and directions are meaningful
    step_size = np.full(S, np.inf)
    weight = np.ones(S, dtype=np.int64)  # starts each column stands for (merging adds them up)
    active = np.arange(S)
    alive = np.ones(S, dtype=bool)
    window_max = np.zeros(S)
    previous_max = np.full(S, np.inf)
    iterations = 0
    for iterations in range(1, int(max_iter) + 1):
        step_size[active] = arrays.step(active)
        active = active[step_size[active] >= coarse_tol]
        window_max[active] = np.maximum(window_max[active], step_size[active])
        if iterations % PREDICT_WINDOW == 0:
            # Stop columns that cannot finish in the iterations left: extrapolating the
            # geometric decay seen over the last window (AMP converges linearly near a
            # fixed point), a column that will still be ≥ near_tol at max_iter never gets
            # close (chaotic glass columns: no decay at all); one already < near_tol but
            # not reaching coarse_tol goes to Newton now rather than later. Only after
            # PREDICT_WARMUP iterations, when the initial transient is over.
            if iterations >= PREDICT_WARMUP:
                rate = np.minimum(window_max[active] / previous_max[active], 1.0)
                left = (int(max_iter) - iterations) / PREDICT_WINDOW
                predicted = step_size[active] * rate ** left
                stop = (predicted >= near_tol) | ((step_size[active] < near_tol) & (predicted >= coarse_tol))
                active = active[~stop]
            previous_max[active] = window_max[active]
            window_max[active] = 0.0
        if iterations % merge_every == 0:
            # Columns already near the same fixed point (overlap > merge_threshold, or all
            # near zero) will end in it: keep iterating one of them only.
            idx = np.flatnonzero(alive & (step_size < near_tol))
            if idx.size > 1:
                Mi = arrays.columns(idx)
                zero_i = (np.sqrt((Mi * Mi).mean(axis=0)) < near_tol) if h is None else np.zeros(idx.size, dtype=bool)
                order = np.argsort(step_size[idx], kind="stable")
                for g in _cluster(Mi, order, merge_threshold, h is not None, zero_i):
                    rep, rest = idx[g[0]], idx[g[1:]]
                    weight[rep] += weight[rest].sum()
                    weight[rest] = 0
                    alive[rest] = False
                active = active[alive[active]]
        if active.size == 0:
            break

    # ---- 2. group the near-fixed points, polish one per group in float64.
    near = np.flatnonzero(alive & (step_size < near_tol))
    n_not_converged = int(weight[alive & (step_size >= near_tol)].sum())
    cand = arrays.columns(near)
    # Near-zero columns have meaningless directions: group them as the paramagnet
    # (without fields only: with fields m = 0 is no solution).
    zero = np.sqrt((cand * cand).mean(axis=0)) < near_tol if h is None else np.zeros(near.size, dtype=bool)
    groups = _cluster(cand, np.argsort(step_size[near], kind="stable"), overlap_threshold, h is not None, zero)
    group_weight = [int(weight[near[g]].sum()) for g in groups]
    reps = np.stack([cand[:, g[0]] for g in groups], axis=1) if groups else np.zeros((n, 0))
    reps_prev = reps.copy()
    res = system.residual(reps) if reps.shape[1] else np.zeros(0)
    act = np.flatnonzero(res >= tol)
    for _ in range(int(polish_iter)):
        if act.size == 0:
            break
        Ra, Rp = reps[:, act], reps_prev[:, act]
        step = np.tanh(system.local_field(Ra, Rp)) - Ra
        reps_prev[:, act] = Ra
        reps[:, act] = Ra + damping * step
        act = act[np.abs(step).max(axis=0) >= tol]
    polished, basins = [], []
    n_rej_hess = n_rej_plefka = 0
    for gi, g in enumerate(groups):
        m = reps[:, gi]
        if system.residual(m) >= tol:
            m = system.newton(m, tol, int(newton_steps))
        r = float(system.residual(m))
        if not r < tol:
            n_not_converged += group_weight[gi]
            continue
        if h is None and np.abs(m).max() < math.sqrt(tol):
            m = np.zeros(n)  # the paramagnet (exactly a solution without fields)
        if reject_plefka and system.plefka_general(m) > 1.0 + psd_tol:
            n_rej_plefka += group_weight[gi]
            continue
        if not system.min_eig_at_least(m, -psd_tol):
            n_rej_hess += group_weight[gi]
            continue
        polished.append(m)
        basins.append(group_weight[gi])

    # ---- 3. polishing may have merged groups: cluster the finished solutions again.
    if polished:
        P = np.stack(polished, axis=1)
        zero_p = np.abs(P).max(axis=0) == 0.0
        fe = np.array([system.free_energy(P[:, a]) for a in range(P.shape[1])])
        final = _cluster(P, np.argsort(fe, kind="stable"), overlap_threshold, h is not None, zero_p)
        sols = np.stack([P[:, g[0]] for g in final], axis=0)
        counts = np.array([sum(basins[i] for i in g) for g in final])
        fe = fe[[g[0] for g in final]]
        order = np.argsort(fe, kind="stable")
        sols, counts, fe = sols[order], counts[order], fe[order]
    else:
        sols, counts, fe = np.zeros((0, n)), np.zeros(0, dtype=int), np.zeros(0)

    # ---- 4. measurements.
    k = sols.shape[0]
    off = c.offsets
    q_ea = (sols * sols).mean(axis=1) if k else np.zeros(0)
    q_layers = np.array([[float((s[off[j]:off[j + 1]] ** 2).mean()) for j in range(len(c.layer_sizes))]
                         for s in sols]).reshape(k, len(c.layer_sizes))
    norms = np.linalg.norm(sols, axis=1)
    unit = sols / np.where(norms > 0, norms, 1.0)[:, None]
    overlaps = unit @ unit.T
    overlaps[np.diag_indices_from(overlaps)] = 1.0
    if k and np.any(norms > 0):
        if top_vector is None:
            _, top_vector = _top_eigenpair(c.op, n)
        v = np.asarray(top_vector, dtype=np.float64)
        top_overlap = np.abs(unit @ (v / np.linalg.norm(v)))
    else:
        top_overlap = np.zeros(k)
    u = 1.0 - sols * sols
    plefka = beta * beta * (u * u).mean(axis=1) if k else np.zeros(0)
    plefka_gen = np.array([system.plefka_general(s) for s in sols])
    residual = np.array([float(system.residual(s)) for s in sols])
    para = norms == 0
    return TapResult(float(T), beta, c.layer_names, c.layer_sizes, sols, counts, fe / n, q_ea, q_layers,
                     overlaps, top_overlap, plefka, plefka_gen, residual, para, S, int(n_not_converged),
                     int(n_rej_hess), int(n_rej_plefka), int(iterations), psd_tol, time.perf_counter() - t_start)
