"""TAP analysis of an Ising model: transition temperature, spectrum, TAP solutions, fits.

Physics: design/spin-models.md (the spec); algorithms and choices: docs/spin-analysis.md.

    analytic_tc(sizes, gains)         T_c of the random layered SK model, sqrt(λ_max(S))
    hessian_tc(J)                     T_c of an instance from λ_min(A(β)), A = I − βJ + β² diag(d)
    spectral_outliers(J)              top eigenvalues of J against the random-bulk edge
    outlier_tc(Λ, d̄)                  [Λ + sqrt(Λ² − 4 d̄)] / 2
    solve_tap(J, T)                   all TAP solutions reachable from random starts
    fit_power_law(t, tc)              T_c(t) = A t^α over a (chosen or automatic) window
    finite_size_tolerance(n)          κ n^(−2/3): the edge-fluctuation scale behind every
                                      "is it zero?" decision here

`J` is an `IsingModel`, a dense symmetric array, or a scipy sparse matrix.

Error codes (each raised as a `QnncError` via `qnnc.compiler.diagnostics.error`):
  Q0601  weight list and layer-name list do not match (ising.py)
  Q0602  a weight matrix has the wrong shape or type (ising.py)
  Q0603  a weight (bond) is NaN or infinite (ising.py)
  Q0604  a bias has the wrong shape or is not finite (ising.py)
  Q0605  fields requested without biases (ising.py)
  Q0606  empty or duplicate layer name (ising.py)
  Q0607  the bond matrix is not square and symmetric
  Q0608  the bond matrix has a nonzero diagonal (self-couplings)
  Q0609  the bond matrix has NaN or infinite entries
  Q0610  temperature not positive and finite
  Q0611  a solver or scan setting is out of range
  Q0612  fields of the wrong shape or not finite
  Q0613  power-law data: mismatched lengths, too few points, non-positive values
  Q0614  power-law window: too few points inside, or no window fits
  Q0615  an .npz file is missing, damaged or not a qnnc Ising model (ising.py)
  Q0616  analytic_tc: bad sizes or gains
  Q0617  a spin configuration has the wrong shape (ising.py)
  Q0618  outlier_tc: negative or non-finite input
  Q0619  layer sizes do not add up to the number of spins
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
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import xlogy

from qnnc.compiler.diagnostics import error
from qnnc.runtime.ising import IsingModel

# Default width of the finite-size band, in units of the spectral-edge fluctuation
# n^(-2/3) (Tracy–Widom scaling). Three units put a random instance's minimum of λ_min
# (2.4 ± 1.2 units, lowest −0.9 in 36 instances: docs/spin-analysis.md) inside the band,
# while an outlier three fluctuation widths above the bulk edge already counts as order.
EDGE_UNITS = 3.0

# Up to this many spins J is held dense: BLAS matrix-vector products use every core,
# scipy's CSR product one, and network layers are dense anyway. 4096² doubles = 134 MB.
DENSE_MAX_SPINS = 4096

# Below this many spins ARPACK's overhead exceeds a full dense eigendecomposition.
SMALL_SPINS = 300

# The batched TAP iteration judges each column's progress over windows of this many
# steps, from PREDICT_WARMUP steps on (after the initial transient).
PREDICT_WINDOW = 25
PREDICT_WARMUP = 100

# Warm-started LOBPCG refines this many lowest pairs; not converged in LOBPCG_MAXITER
# block steps, the solve falls back to Lanczos.
LOBPCG_BLOCK = 3
LOBPCG_MAXITER = 80

Couplings = Union[IsingModel, np.ndarray, sp.spmatrix]


def _json_number(x: float) -> Optional[float]:
    """A float for JSON: NaN and infinities (not JSON) become null."""
    x = float(x)
    return x if math.isfinite(x) else None


def finite_size_tolerance(n_spins: int, edge_units: float = EDGE_UNITS) -> float:
    """κ n^(−2/3): how far below zero λ_min(A) of a purely random instance may dip.

    For SK-normalised couplings λ_max(J) = 2 + n^(−2/3)·TW₁, and at its minimum over β
    λ_min(A) ≈ 1 − λ_max²/4 ≈ −(λ_max − 2): the dip is a Tracy–Widom variable of scale
    n^(−2/3). (Measured on 36 random layered networks of 10³–1.8·10³ spins: 2.4 ± 1.2
    units, lowest −0.9.)"""
    return float(edge_units) * float(n_spins) ** (-2.0 / 3.0)


# =========================================================================== couplings


@dataclass
class _Couplings:
    """J in the forms the algorithms need, checked once. Up to DENSE_MAX_SPINS spins
    `dense` holds J and the CSR form is made only on demand."""

    n: int
    dense: Optional[np.ndarray]
    _sparse: Optional[sp.csr_matrix]
    d: np.ndarray  # d_i = Σ_j J_ij²
    layer_sizes: tuple[int, ...]
    layer_names: tuple[str, ...]
    h: Optional[np.ndarray]
    _squared: Optional[Union[np.ndarray, sp.csr_matrix]] = None

    @property
    def sparse(self) -> sp.csr_matrix:
        if self._sparse is None:
            self._sparse = sp.csr_matrix(self.dense)
        return self._sparse

    @property
    def op(self):
        return self.dense if self.dense is not None else self._sparse

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self.op @ x

    def array(self) -> np.ndarray:
        return self.dense if self.dense is not None else self._sparse.toarray()

    @property
    def empty(self) -> bool:
        return not bool(self.d.any())

    @property
    def squared(self):
        """J∘J (elementwise), in the same storage as J."""
        if self._squared is None:
            if self.dense is not None:
                self._squared = self.dense * self.dense
            else:
                self._squared = self._sparse.multiply(self._sparse).tocsr()
        return self._squared

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    def block_variance(self) -> np.ndarray:
        """s_kl: mean of J_ij² over the block of layers k, l (the random-bulk profile)."""
        off = self.offsets
        K = len(self.layer_sizes)
        sq = self.squared
        s = np.zeros((K, K))
        for a in range(K):
            rows = sq[off[a]:off[a + 1]]
            for b in range(K):
                s[a, b] = rows[:, off[b]:off[b + 1]].sum() / (self.layer_sizes[a] * self.layer_sizes[b])
        return s


def _couplings(J: Couplings, layer_sizes: Optional[Sequence[int]] = None) -> _Couplings:
    dense = sparse = None
    if isinstance(J, IsingModel):
        sparse = J.sparse().astype(np.float64)
        names, sizes, h = J.layer_names, J.layer_sizes, J.h
        if layer_sizes is not None and tuple(layer_sizes) != tuple(sizes):
            raise error("Q0619", f"layer_sizes {list(layer_sizes)} differ from the model's {list(sizes)}",
                        help="leave layer_sizes out when passing an IsingModel")
    else:
        h = None
        if sp.issparse(J):
            sparse = sp.csr_matrix(J, dtype=np.float64)
            shape = sparse.shape
        else:
            dense = np.asarray(J)
            if dense.ndim != 2:
                raise error("Q0607", f"bond matrix of shape {dense.shape}: expected a square 2-D matrix")
            if not np.issubdtype(dense.dtype, np.number) or np.iscomplexobj(dense):
                raise error("Q0607", f"bond matrix of dtype {dense.dtype}: expected real numbers")
            dense = dense.astype(np.float64, copy=False)
            shape = dense.shape
        if layer_sizes is None:
            sizes = (shape[0],)
        else:
            sizes = tuple(int(s) for s in layer_sizes)
            if any(s <= 0 for s in sizes) or sum(sizes) != shape[0]:
                raise error("Q0619", f"layer sizes {list(sizes)} do not add up to the {shape[0]} spins of J")
        names = tuple(f"layer{k}" for k in range(len(sizes)))
    M = dense if dense is not None else sparse
    n = M.shape[0]
    if M.shape[0] != M.shape[1] or n == 0:
        raise error("Q0607", f"bond matrix of shape {M.shape}: expected a nonempty square matrix")
    values = dense if dense is not None else sparse.data
    if not np.all(np.isfinite(values)):
        raise error("Q0609", f"bond matrix has {int((~np.isfinite(values)).sum())} non-finite entries",
                    help="the weights diverged or the file is damaged")
    scale = float(np.abs(values).max()) if values.size else 0.0
    if dense is not None:
        asym = float(np.abs(dense - dense.T).max())
        diag = float(np.abs(np.diagonal(dense)).max())
    else:
        diff = sparse - sparse.T
        asym = float(np.abs(diff.data).max()) if diff.nnz else 0.0
        diag = float(np.abs(sparse.diagonal()).max())
    if asym > 1e-10 * max(scale, 1e-300):
        raise error("Q0607", "bond matrix is not symmetric (J_ij ≠ J_ji)",
                    help="pass the full symmetric J; for a layered network build an IsingModel from the weights")
    if diag > 0.0:
        raise error("Q0608", "bond matrix has a nonzero diagonal",
                    help="self-couplings only add a constant to the energy of ±1 spins: set the diagonal to zero")
    if dense is None and n <= DENSE_MAX_SPINS:
        dense, sparse = sparse.toarray(), sparse
    elif dense is not None and n > DENSE_MAX_SPINS:
        dense, sparse = None, sp.csr_matrix(dense)
    c = _Couplings(n, dense, sparse, np.zeros(n), tuple(sizes), tuple(names), h)
    c.d = np.asarray(c.squared.sum(axis=1)).ravel()
    return c


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


def _top_eigenpair(op, n: int, v0: Optional[np.ndarray] = None, tol: float = 1e-10):
    """Largest algebraic eigenvalue and its vector of a symmetric operator."""
    if n <= SMALL_SPINS:
        dense = op.toarray() if sp.issparse(op) else np.asarray(op)
        w, v = sla.eigh(dense, subset_by_index=[n - 1, n - 1])
        return float(w[0]), v[:, 0]
    w, v = spla.eigsh(op, k=1, which="LA", v0=v0, tol=tol)
    return float(w[0]), v[:, 0]


def _plefka_tc(c: _Couplings) -> float:
    if c.empty:
        return 0.0
    # J∘J is entrywise non-negative: its top eigenvalue is the Perron root, well
    # separated from the rest, so Lanczos converges in a few tens of products.
    lam, _ = _top_eigenpair(c.squared, c.n, v0=np.ones(c.n))
    return float(math.sqrt(max(lam, 0.0)))


# =========================================================================== spectrum


def outlier_tc(Lambda: float, dbar: float) -> float:
    """T_c = [Λ + sqrt(Λ² − 4 d̄)] / 2 for an eigenvalue Λ of J outside the random bulk
    whose eigenvector v has d̄ = Σ v_i² d_i. NaN when Λ² < 4 d̄: that eigenvalue alone
    never makes λ_min(A) cross zero (inside the bulk: no ordering transition)."""
    Lambda, dbar = float(Lambda), float(dbar)
    if not (math.isfinite(Lambda) and math.isfinite(dbar)) or dbar < 0:
        raise error("Q0618", f"outlier_tc needs finite Λ and d̄ ≥ 0, got Λ = {Lambda}, d̄ = {dbar}")
    disc = Lambda * Lambda - 4.0 * dbar
    if Lambda <= 0 or disc < 0:
        return float("nan")
    return 0.5 * (Lambda + math.sqrt(disc))


def bulk_edge(J: Couplings, layer_sizes: Optional[Sequence[int]] = None) -> float:
    """Upper edge of the spectrum of a random symmetric matrix with the block variance
    profile of J (blocks = layers). See `_bulk_edge` for the method."""
    return _bulk_edge(_couplings(J, layer_sizes))


def _bulk_edge(c: _Couplings) -> float:
    """The resolvent of a random matrix whose entries have block variances s_kl obeys
    −1/m_k(z) = z + Σ_l S'_kl m_l(z), S'_kl = N_l s_kl (the vector Dyson equation).
    Above the spectrum m_k = −u_k < 0 is real, and a positive solution of
    F_k(u) = 1/u_k + (S'u)_k = z exists exactly when z ≥ edge. Since the iteration
    u ← 1/(z − S'u) from u = 0 is monotone, a supersolution (F(u) ≤ z) implies a
    solution, so edge = min_{u>0} max_k F_k(u): a convex problem in K = L+1 unknowns.
    SK: 2 sqrt(d̄); a single rectangular block: the Marchenko–Pastur edge."""
    s = c.block_variance()
    Sp = s * np.asarray(c.layer_sizes, dtype=np.float64)[None, :]
    if not np.any(Sp > 0):
        return 0.0
    if Sp.shape == (1, 1):
        return 2.0 * math.sqrt(Sp[0, 0])
    # Layers with no bonds (S' row zero) have no bulk; drop them.
    keep = Sp.sum(axis=1) > 0
    Sp = Sp[np.ix_(keep, keep)]

    def F(x):
        u = np.exp(x)  # u = e^x keeps u > 0
        return 1.0 / u + Sp @ u

    x0 = -0.5 * np.log(Sp.sum(axis=1))  # u_k = 1/sqrt(d_k): the SK optimum per block
    z0 = F(x0).max()
    res = sopt.minimize(lambda y: y[-1], np.r_[x0, z0], method="SLSQP",
                        constraints=[{"type": "ineq", "fun": lambda y: y[-1] - F(y[:-1])}],
                        options={"ftol": 1e-14, "maxiter": 500})
    # Any u gives an upper bound max_k F_k(u); take the better of the start and the optimum.
    return float(min(F(res.x[:-1]).max(), z0))


@dataclass(frozen=True)
class Outlier:
    eigenvalue: float  # Λ
    dbar: float  # Σ v_i² d_i
    tc: float  # outlier_tc(Λ, d̄)
    layer_weights: dict  # Σ_{i in layer} v_i², per layer

    def to_json_dict(self) -> dict:
        return {"eigenvalue": self.eigenvalue, "dbar": self.dbar, "tc": _json_number(self.tc),
                "layer_weights": self.layer_weights}


@dataclass(frozen=True)
class SpectrumReport:
    eigenvalues: np.ndarray  # top k eigenvalues of J, descending
    bulk_edge: float  # random-bulk edge for J's block variances
    threshold: float  # edge + κ · edge-fluctuation: above it an eigenvalue is an outlier
    outliers: tuple[Outlier, ...]
    top_vector: np.ndarray  # eigenvector of eigenvalues[0]

    @property
    def has_outlier(self) -> bool:
        return len(self.outliers) > 0

    def to_json_dict(self) -> dict:
        return {"eigenvalues": [float(x) for x in self.eigenvalues], "bulk_edge": self.bulk_edge,
                "threshold": self.threshold, "outliers": [o.to_json_dict() for o in self.outliers]}


def spectral_outliers(J: Couplings, k: int = 6, *, layer_sizes: Optional[Sequence[int]] = None,
                      edge_units: float = EDGE_UNITS) -> SpectrumReport:
    """The top `k` eigenvalues of J compared with the random-bulk edge of J's block
    variance profile (`bulk_edge`). An eigenvalue above edge·(1 + κ n^(−2/3)/2) is an
    outlier (SK normalisation: λ_max = 2 + n^(−2/3)·TW₁, a relative fluctuation of
    n^(−2/3)/2); each comes with d̄ and its `outlier_tc`."""
    c = _couplings(J, layer_sizes)
    return _spectral_outliers(c, k, edge_units)


def _spectral_outliers(c: _Couplings, k: int, edge_units: float) -> SpectrumReport:
    if k < 1:
        raise error("Q0611", f"k = {k}: ask for at least one eigenvalue")
    k = min(k, c.n)
    if c.n <= SMALL_SPINS or k >= c.n - 1:
        w, V = sla.eigh(c.array(), subset_by_index=[c.n - k, c.n - 1])
    else:
        w, V = spla.eigsh(c.op, k=k, which="LA", tol=1e-10)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    edge = _bulk_edge(c)
    threshold = edge * (1.0 + 0.5 * finite_size_tolerance(c.n, edge_units))
    off = c.offsets
    outs = []
    for lam, v in zip(w, V.T):
        if lam <= threshold:
            break
        dbar = float(v * v @ c.d)
        weights = {name: float(v[off[j]:off[j + 1]] @ v[off[j]:off[j + 1]]) for j, name in enumerate(c.layer_names)}
        outs.append(Outlier(float(lam), dbar, outlier_tc(lam, dbar), weights))
    return SpectrumReport(w, edge, threshold, tuple(outs), V[:, 0].copy())


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


# =========================================================================== TAP solver


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


def solve_tap(J: Couplings, T: float, starts: int = 256, fields: Union[None, bool, np.ndarray] = None,
              damping: float = 0.5, tol: float = 1e-8, max_iter: int = 400, seed: int = 0, *,
              layer_sizes: Optional[Sequence[int]] = None, overlap_threshold: float = 0.99,
              edge_units: float = EDGE_UNITS, reject_plefka: bool = True, polish_iter: int = 50,
              newton_steps: int = 8, top_vector: Optional[np.ndarray] = None,
              merge_every: int = 10, merge_threshold: float = 0.999) -> TapResult:
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
    or an array h."""
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
    M_prev = M.copy()
    J32 = c.op.astype(np.float32)
    J2_32 = c.squared.astype(np.float32)
    bh = None if h is None else (beta * h).astype(np.float32)[:, None]
    b32, bb32, g32 = np.float32(beta), np.float32(beta * beta), np.float32(damping)
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
        Ma, Mp = M[:, active], M_prev[:, active]
        field_ = b32 * (J32 @ Ma) - bb32 * Mp * (J2_32 @ (1.0 - Ma * Ma))
        if bh is not None:
            field_ += bh
        step = np.tanh(field_) - Ma
        M_prev[:, active] = Ma
        M[:, active] = Ma + g32 * step
        step_size[active] = np.abs(step).max(axis=0)
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
                Mi = M[:, idx].astype(np.float64)
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
    cand = M[:, near].astype(np.float64)
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


# =========================================================================== power law


@dataclass(frozen=True)
class PowerLawFit:
    """T_c(t) − offset = A t^α fitted by least squares on log–log axes over `window`.

    Standard errors come from the covariance of that fit, σ²(XᵀX)⁻¹ with σ² the
    residual variance (n − 2 degrees of freedom). `curvature` is the quadratic
    coefficient of a log–log fit over the same window, with its standard error: a
    significant curvature means the power law does not hold there (e.g. saturation)."""

    exponent: float
    exponent_stderr: float
    amplitude: float
    amplitude_stderr: float
    window: tuple[float, float]  # (t_first, t_last) of the points used
    indices: tuple[int, ...]  # positions of those points in the input
    n_points: int
    rms_log_residual: float
    curvature: float
    curvature_stderr: float
    offset: float
    automatic: bool  # window chosen by `fit_power_law`

    def predict(self, t) -> np.ndarray:
        return self.offset + self.amplitude * np.asarray(t, dtype=np.float64) ** self.exponent

    def to_json_dict(self) -> dict:
        num = _json_number
        return {"exponent": num(self.exponent), "exponent_stderr": num(self.exponent_stderr),
                "amplitude": num(self.amplitude), "amplitude_stderr": num(self.amplitude_stderr),
                "window": list(self.window), "n_points": self.n_points,
                "rms_log_residual": num(self.rms_log_residual), "curvature": num(self.curvature),
                "curvature_stderr": num(self.curvature_stderr), "offset": self.offset, "automatic": self.automatic}


def _loglog_fit(x: np.ndarray, y: np.ndarray, degree: int):
    """Least squares y ≈ Σ c_k x^k; returns (coefficients low→high, their covariance, rms)."""
    X = np.vander(x, degree + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = x.size - (degree + 1)
    sigma2 = float(resid @ resid) / dof if dof > 0 else float("nan")
    cov = sigma2 * np.linalg.inv(X.T @ X)
    return coef, cov, float(np.sqrt(np.mean(resid * resid)))


# Curvature below this (in ln T per (ln t)², over the whole window) is numerically zero.
_CURVATURE_FLOOR = 1e-9


def fit_power_law(t: Sequence[float], tc: Sequence[float], window: Optional[tuple[float, float]] = None, *,
                  offset: float = 0.0, min_points: int = 5, significance: float = 2.0) -> PowerLawFit:
    """Fit tc(t) − offset = A t^α. Points with t ≤ 0 (e.g. step 0) are left out.

    `window=(t_lo, t_hi)` fits the points with t_lo ≤ t ≤ t_hi (at least 3). Without it
    the window is chosen: among all runs of ≥ `min_points` consecutive points, those
    whose log–log curvature is not significant (|c₂| < `significance` × its standard
    error) are power-law windows; the longest wins, ties going to the smaller standard
    error of α. (A saturating tail or an early transient adds significant curvature.)"""
    t_arr = np.asarray(t, dtype=np.float64).reshape(-1)
    y_arr = np.asarray(tc, dtype=np.float64).reshape(-1)
    if t_arr.shape != y_arr.shape:
        raise error("Q0613", f"{t_arr.size} times but {y_arr.size} T_c values")
    if not (np.all(np.isfinite(t_arr)) and np.all(np.isfinite(y_arr)) and math.isfinite(offset)):
        raise error("Q0613", "times and T_c values must be finite")
    order = np.argsort(t_arr, kind="stable")
    keep = order[t_arr[order] > 0]
    x_all, y_all = t_arr[keep], y_arr[keep] - offset
    if np.any(y_all <= 0):
        raise error("Q0613", "T_c − offset must be positive at every t > 0 to fit a power law",
                    help="lower the offset (the baseline subtracted from T_c)")
    if x_all.size < 3 or np.unique(x_all).size < 2:
        raise error("Q0613", f"{x_all.size} points with t > 0: a power-law fit needs at least 3 at distinct times")
    lx, ly = np.log(x_all), np.log(y_all)

    def fit(sel: np.ndarray, automatic: bool) -> PowerLawFit:
        coef, cov, rms = _loglog_fit(lx[sel], ly[sel], 1)
        if sel.size >= 4:
            c2, cov2, _ = _loglog_fit(lx[sel] - lx[sel].mean(), ly[sel], 2)
            curv, curv_se = float(c2[2]), float(math.sqrt(max(cov2[2, 2], 0.0)))
        else:
            curv, curv_se = float("nan"), float("nan")
        amp = float(np.exp(coef[0]))
        return PowerLawFit(float(coef[1]), float(math.sqrt(max(cov[1, 1], 0.0))), amp,
                           amp * float(math.sqrt(max(cov[0, 0], 0.0))),
                           (float(x_all[sel[0]]), float(x_all[sel[-1]])), tuple(int(keep[i]) for i in sel),
                           int(sel.size), rms, curv, curv_se, float(offset), automatic)

    if window is not None:
        lo, hi = float(window[0]), float(window[1])
        sel = np.flatnonzero((x_all >= lo) & (x_all <= hi))
        if sel.size < 3 or np.unique(x_all[sel]).size < 2:
            raise error("Q0614", f"window [{lo:g}, {hi:g}] holds {sel.size} usable points; at least 3 are needed")
        return fit(sel, False)

    if min_points < 4:
        raise error("Q0611", f"min_points = {min_points}: a curvature test needs at least 4 points")
    n = x_all.size
    if n < min_points:
        raise error("Q0614", f"{n} points with t > 0, fewer than min_points = {min_points}",
                    help="pass window=(t_lo, t_hi) to fit a chosen range")
    best, best_key = None, None
    for i in range(n):
        for j in range(i + min_points, n + 1):
            sel = np.arange(i, j)
            if np.unique(x_all[sel]).size < 4:
                continue
            span = float(lx[sel[-1]] - lx[sel[0]])
            c2, cov2, _ = _loglog_fit(lx[sel] - lx[sel].mean(), ly[sel], 2)
            se = math.sqrt(max(cov2[2, 2], 0.0))
            straight = abs(c2[2]) <= significance * se or abs(c2[2]) * span * span < _CURVATURE_FLOOR
            if not straight:
                continue
            f = fit(sel, True)
            key = (f.n_points, -f.exponent_stderr)
            if best_key is None or key > best_key:
                best, best_key = f, key
    if best is None:
        raise error("Q0614", f"no run of ≥ {min_points} consecutive points follows a power law "
                    f"(log–log curvature significant at {significance}σ everywhere)",
                    help="pass window=(t_lo, t_hi) to force a range, or lower min_points")
    return best
