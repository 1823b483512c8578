"""Transition temperature T_c: of the random layered model, and of one instance.

    analytic_tc(sizes, gains)   T_c of the random layered SK model, sqrt(λ_max(S))
    plefka_tc(J)                sqrt(λ_max(J∘J)): the instance's analytic T_c
    hessian_tc(J)               T_c of an instance from λ_min(A(β)), A = I − βJ + β² diag(d)

`hessian_tc` tracks A(β) over β with `_HessianFamily` (Lanczos anchors plus
Rayleigh–Ritz between them) and returns a `TcResult`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import scipy.linalg as sla
import scipy.optimize as sopt
import scipy.sparse.linalg as spla

from qnnc.compiler.diagnostics import error
from qnnc.runtime.tap.couplings import (EDGE_UNITS, SMALL_SPINS, Couplings, _couplings, _Couplings,
                                        _json_number, _top_eigenpair, finite_size_tolerance)
from qnnc.runtime.tap.spectrum import _bulk_edge, outlier_tc

# Warm-started LOBPCG refines this many lowest pairs; not converged in LOBPCG_MAXITER
# block steps, the solve falls back to Lanczos.
LOBPCG_BLOCK = 3
LOBPCG_MAXITER = 80


# =========================================================================== analytic T_c


def analytic_tc(sizes: Sequence[int], gains: Union[float, Sequence[float]]) -> float:
    """T_c of the random layered SK model: T_c² = λ_max(S), S the (L+1)×(L+1)
    tridiagonal matrix with S_{k−1,k} = C_k sqrt(N_k / N_{k−1}).

    `sizes` are N_0..N_L (input first); `gains` the C_1..C_L (weight variance times
    fan-in), or one number for all. Identical layers give [2C cos(π/(L+2))]^{1/2}."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise error("Q0616", f"analytic_tc needs at least two layers, got sizes {sizes}")
    if any((not isinstance(n, (int, np.integer))) or n <= 0 for n in sizes):
        raise error("Q0616", f"layer sizes must be positive integers, got {sizes}")
    L = len(sizes) - 1
    if np.ndim(gains) == 0:
        gains = [float(gains)] * L
    gains = [float(c) for c in gains]
    if len(gains) != L:
        raise error("Q0616", f"{len(gains)} gains for {L} weight layers", help="one C_k per layer after the input")
    if any(not math.isfinite(c) or c < 0 for c in gains):
        raise error("Q0616", f"gains must be finite and non-negative, got {gains}")
    S = np.zeros((L + 1, L + 1))
    for k in range(1, L + 1):
        S[k - 1, k] = S[k, k - 1] = gains[k - 1] * math.sqrt(sizes[k] / sizes[k - 1])
    return float(math.sqrt(max(np.linalg.eigvalsh(S)[-1], 0.0)))


def plefka_tc(J: Couplings, layer_sizes: Optional[Sequence[int]] = None) -> float:
    """sqrt(λ_max(J∘J)): where the paramagnet violates Plefka's condition
    β² λ_max(J∘J) < 1. For random weights J∘J ≈ the variance matrix, so this is the
    instance's analytic T_c (block variances measured instead of assumed)."""
    return _plefka_tc(_couplings(J, layer_sizes))


def _plefka_tc(c: _Couplings) -> float:
    if c.empty:
        return 0.0
    # J∘J is entrywise non-negative: its top eigenvalue is the Perron root, well
    # separated from the rest, so Lanczos converges in a few tens of products.
    lam, _ = _top_eigenpair(c.squared, c.n, v0=np.ones(c.n))
    return float(math.sqrt(max(lam, 0.0)))


# =========================================================================== Hessian T_c


class _HessianFamily:
    """A(β) = I − βJ + β² diag(d) for all β at once.

    Exact low eigenpairs at a few β come from ARPACK (Lanczos). Every eigenvector found
    is kept in an orthonormal basis Q; the low eigenvectors of A(β) move smoothly with
    β, so Rayleigh–Ritz in span(Q) (a k×k problem, k ≲ 100) gives λ_min(A(β)) at any β
    for microseconds, exactly at the anchors, with a residual ‖A x − θ x‖ that brackets
    the truth: λ_min ∈ [θ − ‖r‖, θ] (θ is a Ritz value, so an upper bound)."""

    def __init__(self, c: _Couplings, n_vectors: int):
        self.c = c
        self.k = min(n_vectors, max(c.n - 2, 1))
        self.Q = np.zeros((c.n, 0))
        self.JQ = np.zeros((c.n, 0))
        self.n_solves = 0
        self.exact_points: list[tuple[float, float]] = []
        self._exact_lower: list[tuple[float, float]] = []  # (β, λ − residual): certified
        self.d_max = float(c.d.max())

    # -- exact
    def _operator(self, beta: float):
        c = self.c
        d2 = beta * beta * c.d

        def mv(x):
            if x.ndim == 1:
                return x - beta * c.matvec(x) + d2 * x
            return x - beta * c.matvec(x) + d2[:, None] * x

        return spla.LinearOperator((c.n, c.n), matvec=mv, matmat=mv, dtype=np.float64)

    def exact(self, beta: float) -> float:
        """λ_min(A(β)) to machine precision; its low eigenvectors join the basis."""
        c = self.c
        self.n_solves += 1
        if c.n <= SMALL_SPINS:
            A = np.eye(c.n) - beta * c.array() + np.diag(beta * beta * c.d)
            w, V = sla.eigh(A, subset_by_index=[0, min(self.k, c.n) - 1])
        else:
            w = V = None
            if self.Q.shape[1] >= self.k:
                # Warm start: the Ritz vectors at this β are already close, so the block
                # method LOBPCG needs a few tens of block products (GEMMs) where Lanczos,
                # resolving the crowded edge from scratch, needs hundreds of matvecs.
                # LOBPCG stalls near ‖r‖ ~ 1e-6; ‖r‖ ≤ 1e-5 on the lowest pair suffices:
                # the eigenvalue error is then ~‖r‖²/gap ≲ 1e-7, far below any decision here.
                X = self.ritz_vectors(beta, LOBPCG_BLOCK)
                op = self._operator(beta)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence is checked below
                    w, V = spla.lobpcg(op, X, largest=False, tol=1e-6, maxiter=LOBPCG_MAXITER)
                i0 = int(np.argmin(w))
                if not np.linalg.norm(op @ V[:, i0] - w[i0] * V[:, i0]) <= 1e-5:
                    w = V = None
            if w is None:
                v0 = self.ritz_vector(beta) if self.Q.shape[1] else None
                w, V = spla.eigsh(self._operator(beta), k=self.k, which="SA", v0=v0, tol=1e-10,
                                  ncv=min(c.n, max(2 * self.k + 1, 40)))
        self._add(V)
        i0 = int(np.argmin(w))
        v = V[:, i0]
        resid = float(np.linalg.norm(v - beta * c.matvec(v) + beta * beta * c.d * v - w[i0] * v))
        lam = float(w[i0])
        self.exact_points.append((beta, lam))
        self._exact_lower.append((beta, lam - resid))
        return lam

    def chord_bound(self, betas: np.ndarray) -> np.ndarray:
        """A certified lower bound on λ_min(A(β)) between exact solves.

        For a unit vector x, f(β) = xᵀA(β)x = 1 − β xᵀJx + β² xᵀDx is a quadratic with
        leading coefficient xᵀDx ≤ d_max, so f(β) = chord(β) − xᵀDx (β − a)(b − β) on
        [a, b]; with f(a) ≥ λ_min(A(a)), f(b) ≥ λ_min(A(b)) and minimising over x:
        λ_min(A(β)) ≥ chord of the λ_min values − d_max (β − a)(b − β). β = 0 (A = I,
        λ_min = 1) is the first point. −inf beyond the last solve."""
        pts = sorted([(0.0, 1.0)] + self._exact_lower)
        xs = np.array([p[0] for p in pts])
        ys = np.array([p[1] for p in pts])
        out = np.full(np.shape(betas), -np.inf)
        j = np.searchsorted(xs, betas, side="right") - 1
        inside = (j >= 0) & (j < xs.size - 1)
        a, b = xs[j[inside]], xs[j[inside] + 1]
        ya, yb = ys[j[inside]], ys[j[inside] + 1]
        x = np.asarray(betas)[inside]
        out[inside] = ya + (yb - ya) * (x - a) / (b - a) - self.d_max * (x - a) * (b - x)
        on_point = np.isin(np.asarray(betas), xs)
        out[on_point] = np.interp(np.asarray(betas)[on_point], xs, ys)
        return out

    def _add(self, V: np.ndarray) -> None:
        # Two passes of classical Gram–Schmidt against Q, then an orthonormal basis of
        # what is new; directions already in span(Q) (norm < 1e-8) are dropped.
        for _ in range(2):
            V = V - self.Q @ (self.Q.T @ V)
        U, s, _ = np.linalg.svd(V, full_matrices=False)
        new = U[:, s > 1e-8 * max(1.0, s.max(initial=0.0))]
        if new.shape[1]:
            self.Q = np.hstack([self.Q, new])
            self.JQ = np.hstack([self.JQ, self.c.matvec(new)])
            self._proj = None

    # -- Rayleigh–Ritz
    def _projected(self):
        if getattr(self, "_proj", None) is None:
            Q = self.Q
            Jp = Q.T @ self.JQ
            Dp = (Q * self.c.d[:, None]).T @ Q
            self._proj = (0.5 * (Jp + Jp.T), 0.5 * (Dp + Dp.T))
        return self._proj

    def ritz(self, beta: float) -> tuple[float, float]:
        """(θ, ‖r‖): smallest Ritz value of A(β) in span(Q) and its residual norm."""
        Jp, Dp = self._projected()
        M = np.eye(Jp.shape[0]) - beta * Jp + beta * beta * Dp
        w, y = sla.eigh(M, subset_by_index=[0, 0])
        x, Jx = self.Q @ y[:, 0], self.JQ @ y[:, 0]
        r = x - beta * Jx + beta * beta * self.c.d * x - w[0] * x
        return float(w[0]), float(np.linalg.norm(r))

    def ritz_value(self, beta: float) -> float:
        Jp, Dp = self._projected()
        M = np.eye(Jp.shape[0]) - beta * Jp + beta * beta * Dp
        return float(sla.eigh(M, subset_by_index=[0, 0], eigvals_only=True)[0])

    def ritz_vectors(self, beta: float, k: int) -> np.ndarray:
        Jp, Dp = self._projected()
        M = np.eye(Jp.shape[0]) - beta * Jp + beta * beta * Dp
        _, Y = sla.eigh(M, subset_by_index=[0, min(k, Jp.shape[0]) - 1])
        return self.Q @ Y

    def ritz_vector(self, beta: float) -> np.ndarray:
        Jp, Dp = self._projected()
        M = np.eye(Jp.shape[0]) - beta * Jp + beta * beta * Dp
        _, y = sla.eigh(M, subset_by_index=[0, 0])
        return self.Q @ y[:, 0]

    def ritz_top_of_J(self) -> tuple[float, np.ndarray]:
        """Largest Ritz value of J in span(Q) and its vector (a lower bound on λ_max)."""
        Jp, _ = self._projected()
        w, y = sla.eigh(Jp, subset_by_index=[Jp.shape[0] - 1, Jp.shape[0] - 1])
        return float(w[0]), self.Q @ y[:, 0]

    # -- stability ratio φ(β) = β μ_max(J, I + β²D)
    def ritz_phi(self, beta: float) -> tuple[float, np.ndarray]:
        """φ(β) = β μ_max of the pencil (J, B), B = I + β² diag(d), in span(Q): a lower
        bound. A(β) = B − βJ is PSD exactly when φ(β) ≤ 1 (Sylvester's inertia)."""
        Jp, Dp = self._projected()
        B = np.eye(Jp.shape[0]) + beta * beta * Dp
        w, y = sla.eigh(Jp, B, subset_by_index=[Jp.shape[0] - 1, Jp.shape[0] - 1])
        return float(beta * w[0]), self.Q @ y[:, 0]

    def exact_phi(self, beta: float, x0: Optional[np.ndarray]) -> float:
        """φ(β) from the top eigenvalue of B^{−1/2} J B^{−1/2}; its vector joins the basis."""
        c = self.c
        self.n_solves += 1
        scale = 1.0 / np.sqrt(1.0 + beta * beta * c.d)
        if c.n <= SMALL_SPINS:
            K = scale[:, None] * c.array() * scale[None, :]
            w, y = sla.eigh(K, subset_by_index=[c.n - 1, c.n - 1])
            mu, y = float(w[0]), y[:, 0]
        else:
            op = spla.LinearOperator((c.n, c.n), matvec=lambda v: scale * c.matvec(scale * v), dtype=np.float64)
            v0 = None if x0 is None else x0 / scale
            w, Y = spla.eigsh(op, k=1, which="LA", v0=v0, tol=1e-10)
            mu, y = float(w[0]), Y[:, 0]
        self._add((scale * y)[:, None])
        return beta * mu


@dataclass(frozen=True)
class TcResult:
    """Transition temperature of one instance from the TAP Hessian at m = 0.

    kind: "cross" — λ_min(A(β)) goes below −touch_tol: an ordered (hidden-order) phase,
          tc is 1/β at the first zero of λ_min;
          "touch" — λ_min only comes down to zero within the finite-size band: a glass,
          tc from the minimum (estimator "stability": maximum of the stability ratio
          φ(β), default; or "argmin": minimum of λ_min(β), the spec's rule);
          "none" — no bonds: paramagnet at every T (tc = 0)."""

    tc: float
    kind: str
    estimator: str
    tc_argmin: float  # 1/β at the minimum of λ_min(A(β))
    tc_stability: float  # 1/β at the maximum of φ(β) = β μ_max(J, I + β²D)
    lam_min_min: float  # min over β of λ_min(A(β)) (exact)
    phi_max: float  # max over β of φ(β) (exact); > 1 exactly when λ_min crosses zero
    touch_tol: float
    betas: np.ndarray  # the curve: β grid
    lam_min: np.ndarray  # λ_min(A(β)) on the grid (Ritz values: upper bounds)
    lam_min_lower: np.ndarray  # certified lower bounds θ − ‖r‖
    exact_points: tuple  # (β, λ_min) pairs computed by Lanczos
    top_eigenvalue: float  # λ_max(J), Rayleigh–Ritz estimate (a lower bound)
    plefka_tc: float  # sqrt(λ_max(J∘J))
    n_spins: int
    n_eigensolves: int
    converged: bool  # False if max_solves ran out before the critical point settled
    seconds: float

    @property
    def temperatures(self) -> np.ndarray:
        return 1.0 / self.betas

    def phase_at(self, T: float) -> str:
        """"paramagnet" above tc; below it "hidden order" (kind cross) or "spin glass"."""
        if not (T > 0 and math.isfinite(T)):
            raise error("Q0610", f"temperature {T}: must be positive and finite")
        if self.kind == "none" or T >= self.tc:
            return "paramagnet"
        return "hidden order" if self.kind == "cross" else "spin glass"

    def to_json_dict(self, curve: bool = True) -> dict:
        num = _json_number
        out = {
            "tc": num(self.tc), "kind": self.kind, "estimator": self.estimator,
            "tc_argmin": num(self.tc_argmin), "tc_stability": num(self.tc_stability),
            "lam_min_min": num(self.lam_min_min), "phi_max": num(self.phi_max), "touch_tol": self.touch_tol,
            "top_eigenvalue": num(self.top_eigenvalue), "plefka_tc": num(self.plefka_tc),
            "n_spins": self.n_spins, "n_eigensolves": self.n_eigensolves, "converged": self.converged,
            "seconds": self.seconds,
            "exact_points": [[b, l] for b, l in self.exact_points],
        }
        if curve:
            out["curve"] = {"beta": self.betas.tolist(), "lam_min": self.lam_min.tolist(),
                            "lam_min_lower": self.lam_min_lower.tolist()}
        return out


def hessian_tc(J: Couplings, *, layer_sizes: Optional[Sequence[int]] = None,
               estimator: str = "stability", touch_tol: Optional[float] = None,
               edge_units: float = EDGE_UNITS, n_curve: int = 81, n_vectors: int = 10,
               max_solves: int = 16) -> TcResult:
    """T_c of an instance: the β at which λ_min(A(β)), A = I − βJ + β² diag(d), reaches
    zero as β grows (the paramagnet m = 0 stops being a minimum of the TAP free energy).

    Cross vs touch (spec, pitfalls): a random instance's λ_min only touches zero, and may
    dip slightly below it; a dip smaller than `touch_tol` (default κ n^(−2/3), κ =
    `edge_units`) counts as touching. Then the first-root rule is meaningless and tc
    comes from the minimum: `estimator="stability"` (default) takes the maximum of
    φ(β) = β μ_max(J, I + β²D), which is unbiased by the finite-size gap; `"argmin"` the
    minimum of λ_min(β), which lands about (gap/2) higher (docs/spin-analysis.md).

    The curve is sampled on `n_curve` points of β ∈ [0.9/λ_max(J), 1.3/T_plefka] by
    Rayleigh–Ritz in a subspace of exact Lanczos eigenvectors (`_HessianFamily`);
    the minimum, the root and φ's maximum are refined and checked by exact solves.
    Fields, if the model has any, play no part: the criterion is about m = 0."""
    t_start = time.perf_counter()
    if estimator not in ("stability", "argmin"):
        raise error("Q0611", f"estimator `{estimator}`: expected `stability` or `argmin`")
    if n_curve < 8 or n_vectors < 1 or max_solves < 2:
        raise error("Q0611", "n_curve ≥ 8, n_vectors ≥ 1 and max_solves ≥ 2 are needed")
    if not (edge_units > 0 and math.isfinite(edge_units)):
        raise error("Q0611", f"edge_units = {edge_units}: must be positive")
    c = _couplings(J, layer_sizes)
    tol = finite_size_tolerance(c.n, edge_units) if touch_tol is None else float(touch_tol)
    if not (tol >= 0 and math.isfinite(tol)):
        raise error("Q0611", f"touch_tol = {touch_tol}: must be finite and ≥ 0")

    if c.empty:
        return TcResult(0.0, "none", estimator, 0.0, 0.0, 1.0, 0.0, tol, np.zeros(0), np.zeros(0),
                        np.zeros(0), (), 0.0, 0.0, c.n, 0, True, time.perf_counter() - t_start)

    t_plefka = _plefka_tc(c)
    fam = _HessianFamily(c, n_vectors)

    # Where to look. A random instance turns near β = 1/T_plefka: solve there first. The
    # low eigenvectors of A(β) found there are dominated by the top of J's spectrum, so
    # Rayleigh–Ritz of J in them gives λ_max(J) and its vector (a separate Lanczos run on
    # J, whose edge is crowded, would cost as much as a solve of A). An outlier (Λ, d̄)
    # crosses near 1/outlier_tc(Λ, d̄): solve there too. λ_min(A) ≥ 1 − βλ_max(J) > 0
    # below β = 1/λ_max: the curve starts a little before.
    fam.exact(1.0 / t_plefka)
    lam_top, v_top = fam.ritz_top_of_J()
    beta_lo = 0.9 * min(1.0 / lam_top, 1.0 / t_plefka)
    edge = _bulk_edge(c)
    is_outlier = lam_top > edge * (1.0 + 0.5 * finite_size_tolerance(c.n, edge_units))
    t_out = outlier_tc(lam_top, float(v_top * v_top @ c.d)) if is_outlier else float("nan")
    if not math.isnan(t_out) and abs(t_plefka / t_out - 1.0) > 0.05:
        fam.exact(1.0 / t_out)
    beta_hi = 1.3 / t_plefka

    def curve():
        # λ_min ∈ [lower, θ]: θ the Ritz value (an upper bound); lower the better of two
        # certified bounds, θ − ‖residual‖ and the chord bound between exact solves.
        betas = np.linspace(beta_lo, beta_hi, n_curve)
        vals = np.array([fam.ritz(b) for b in betas])
        lower = np.maximum(vals[:, 0] - vals[:, 1], fam.chord_bound(betas))
        return betas, vals[:, 0], np.minimum(lower, vals[:, 0])

    def ritz_argmin(betas, theta) -> tuple[int, float]:
        """The grid index of the Ritz curve's minimum, and the minimiser refined
        between its neighbours."""
        i = int(np.argmin(theta))
        a, b = betas[max(i - 1, 0)], betas[min(i + 1, n_curve - 1)]
        return i, float(sopt.minimize_scalar(fam.ritz_value, bounds=(a, b), method="bounded",
                                             options={"xatol": 1e-9 * b}).x)

    # ---- locate the critical point. Each pass finds it on the Ritz curve, then solves
    # exactly there (which makes the Ritz curve exact at that β); it is settled when the
    # next pass lands where an exact solve has already been done.
    # Settled to 1e-4 in β: the Ritz curve is then exact to second order around beta_c,
    # so the final minimiser / root on it is far more accurate than that.
    def solved_near(beta: float) -> bool:
        return any(abs(b - beta) <= 1e-4 * beta for b, _ in fam.exact_points)

    converged = False
    while True:
        betas, theta, lower = curve()
        i, beta_m = ritz_argmin(betas, theta)
        theta_m = fam.ritz_value(beta_m)
        if min(theta.min(), theta_m) < -tol:  # certainly below −tol (θ is an upper bound): cross
            kind = "cross"
            below = np.flatnonzero(theta < 0)
            hi = float(betas[below[0]]) if below.size else beta_m
            if hi <= beta_lo * (1 + 1e-12) and fam.n_solves < max_solves:  # root left of the grid
                beta_lo *= 0.5
                fam.exact(beta_lo)
                continue
            lo = float(betas[betas < hi].max())
            beta_c = float(sopt.brentq(fam.ritz_value, lo, hi, xtol=1e-12 * hi))
        else:
            if i == n_curve - 1 and fam.n_solves < max_solves:  # still falling at the top end
                beta_hi *= 1.5
                fam.exact(beta_hi)
                continue
            kind, beta_c = "touch", beta_m
        # Grid points whose certified lower bound leaves the decision open, except where
        # an exact solve has been done already: for touch, below −tol anywhere (a
        # crossing the Ritz curve misses); for cross, below 0 before the root.
        if kind == "cross":
            open_ = (betas < beta_c) & (lower < 0)
        else:
            open_ = lower < -tol
        open_ &= theta - lower > 1e-6
        open_ &= ~np.array([solved_near(float(x)) for x in betas])
        if fam.n_solves >= max_solves:
            break
        if open_.any():
            fam.exact(float(betas[open_][np.argmin(lower[open_])]))
            continue
        if solved_near(beta_c):
            converged = True
            break
        fam.exact(beta_c)
    exact_at = fam.ritz_value(beta_c)  # exact to second order: a solve within 1e-4 of beta_c is in the basis

    # ---- minimum of λ_min(β) (in the touch case it is beta_c itself).
    if kind == "cross":
        betas, theta, _ = curve()
        _, beta_argmin = ritz_argmin(betas, theta)
        lam_min_min = fam.exact(beta_argmin)
        tc = 1.0 / beta_c
    else:
        beta_argmin = float(beta_c)
        lam_min_min = exact_at
    tc_argmin = 1.0 / beta_argmin

    # ---- stability ratio φ(β): maximise in the subspace, confirm exactly.
    beta_phi = beta_argmin
    phi_max = float("nan")
    for _ in range(max_solves):
        res = sopt.minimize_scalar(lambda b: -fam.ritz_phi(b)[0],
                                   bounds=(0.8 * beta_phi, 1.25 * beta_phi), method="bounded",
                                   options={"xatol": 1e-9 * beta_phi})
        phi_ritz, x = fam.ritz_phi(res.x)
        settled = phi_max == phi_max and abs(res.x - beta_phi) <= 1e-4 * beta_phi
        if settled:
            beta_phi = float(res.x)
            break
        beta_phi, phi_max = float(res.x), fam.exact_phi(res.x, x)
    tc_stability = 1.0 / beta_phi

    if kind == "touch":
        tc = tc_stability if estimator == "stability" else tc_argmin
        used = estimator
    else:
        used = "root"
    betas, theta, lower = curve()
    return TcResult(float(tc), kind, used, float(tc_argmin), float(tc_stability), float(lam_min_min),
                    float(phi_max), tol, betas, theta, lower, tuple(fam.exact_points), float(lam_top),
                    float(t_plefka), c.n, fam.n_solves, converged, time.perf_counter() - t_start)
