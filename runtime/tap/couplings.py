"""J in the forms the TAP algorithms need, checked once, and what they share.

`_couplings(J)` turns an `IsingModel`, a dense symmetric array or a scipy sparse matrix
into a `_Couplings` (dense up to DENSE_MAX_SPINS spins, CSR above), raising Q0607,
Q0608, Q0609 or Q0619 on a bad J. `finite_size_tolerance(n)` is the edge-fluctuation
scale κ n^(−2/3) behind every "is it zero?" decision of the package. The other modules
also share `_top_eigenpair` (the top of a symmetric operator's spectrum) and
`_json_number`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

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


def _top_eigenpair(op, n: int, v0: Optional[np.ndarray] = None, tol: float = 1e-10):
    """Largest algebraic eigenvalue and its vector of a symmetric operator."""
    if n <= SMALL_SPINS:
        dense = op.toarray() if sp.issparse(op) else np.asarray(op)
        w, v = sla.eigh(dense, subset_by_index=[n - 1, n - 1])
        return float(w[0]), v[:, 0]
    w, v = spla.eigsh(op, k=1, which="LA", v0=v0, tol=tol)
    return float(w[0]), v[:, 0]
