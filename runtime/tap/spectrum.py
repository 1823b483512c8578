"""The spectrum of J against the random bulk: bulk edge, outliers and their T_c.

    bulk_edge(J)           upper edge of a random matrix with J's block variance profile
    spectral_outliers(J)   top eigenvalues of J against that edge (a `SpectrumReport`)
    outlier_tc(Λ, d̄)       [Λ + sqrt(Λ² − 4 d̄)] / 2: the T_c an outlier Λ brings
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import scipy.linalg as sla
import scipy.optimize as sopt
import scipy.sparse.linalg as spla

from qnnc.compiler.diagnostics import error
from qnnc.runtime.tap.couplings import (EDGE_UNITS, SMALL_SPINS, Couplings, _couplings, _Couplings,
                                        _json_number, finite_size_tolerance)


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
