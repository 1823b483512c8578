"""The Ising model of a layered network: the lowering target of the spin analysis.

Every neuron, inputs included, is a spin σ = ±1 (docs/spin-analysis.md, and the physics
spec, design/spin-models.md). Only the weights enter the Hamiltonian:

    H(σ) = − Σ_k σ^(k−1)ᵀ J^(k) σ^(k) − h·σ = −½ σᵀ J σ − h·σ,

with J symmetric and block tridiagonal: zero diagonal blocks, and J^(k) = W_kᵀ between
layer k−1 (rows) and layer k (columns), where W_k is torch's Linear weight of shape
[N_k, N_{k−1}] (out, in). Layer 0 is the input. Fields h come from biases, off by default
(that keeps the σ → −σ symmetry).

Errors (a `QnncError`; the full Q06xx list is in docs/diagnostics.md):
  Q0601 layer list / weight list mismatch · Q0602 weight shape · Q0603 non-finite weight ·
  Q0604 bad bias · Q0605 fields without biases · Q0606 bad layer name ·
  Q0615 unreadable or foreign .npz file · Q0617 bad spin configuration.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp

from qnnc.compiler.diagnostics import error
from qnnc.compiler.fileio import atomic_write_bytes

NPZ_FORMAT = "qnnc-ising"
# Version 2 is scipy.sparse's own `save_npz` layout of the full symmetric J (keys
# `format` = "csr", `shape`, `data`, `indices`, `indptr`), so `scipy.sparse.load_npz`
# reads it; qnnc's own entries sit beside them under `qnnc_*` names. Version 1 (blocks
# under `block{k}_*`, `format` = "qnnc-ising") is still read.
NPZ_VERSION = 2

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True, eq=False)
class IsingModel:
    """Spins in layers, bonds only between consecutive layers.

    `blocks[k-1]` is J^(k) = W_kᵀ, a CSR matrix of shape (N_{k−1}, N_k). `h` is None when
    fields are off, else a vector of length `n_spins` (zero on the input layer)."""

    layer_names: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    blocks: tuple[sp.csr_matrix, ...]
    h: Optional[np.ndarray] = None
    # Where the model came from (free text, carried into summaries and .npz files).
    source: str = ""

    # ------------------------------------------------------------------ construction

    @staticmethod
    def from_weights(weights: Sequence[np.ndarray], layer_names: Sequence[str],
                     biases: Optional[Sequence[Optional[np.ndarray]]] = None,
                     fields: bool = False, source: str = "") -> "IsingModel":
        """Lower a layered network: `weights[k-1]` is W_k, shape [N_k, N_{k−1}] (torch's
        Linear: out, in); `layer_names` names layers 0..L (input first). With
        `fields=True`, biases b_k become fields h on layer k (a None bias: zero field)."""
        names = [str(n) for n in layer_names]
        if len(weights) == 0:
            raise error("Q0601", "no weight matrices: a spin model needs at least one layer of bonds",
                        help="pass one weight matrix per layer after the input")
        if len(names) != len(weights) + 1:
            raise error("Q0601", f"{len(weights)} weight matrices need {len(weights) + 1} layer names "
                        f"(input first), got {len(names)}",
                        help="layer_names lists every spin layer, the input included")
        for n in names:
            if not n:
                raise error("Q0606", "empty layer name", help="give every layer a name")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise error("Q0606", f"duplicate layer name(s): {', '.join(dup)}",
                        help="layer names label spins and must be unique")
        mats = []
        for k, w in enumerate(weights, start=1):
            w = np.asarray(w)
            if w.ndim != 2:
                raise error("Q0602", f"weight of layer `{names[k]}` has {w.ndim} dimension(s), expected 2",
                            help="W_k has shape [N_k, N_(k-1)] (out, in), as torch.nn.Linear stores it")
            if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
                raise error("Q0602", f"weight of layer `{names[k]}` is not a real number array (dtype {w.dtype})")
            if k > 1 and w.shape[1] != mats[-1].shape[0]:
                raise error("Q0602", f"weight of layer `{names[k]}` has shape {tuple(w.shape)}: its "
                            f"{w.shape[1]} inputs do not match the {mats[-1].shape[0]} outputs of "
                            f"layer `{names[k - 1]}`",
                            help="W_k has shape [N_k, N_(k-1)] (out, in); a transposed matrix gives this error")
            w = w.astype(np.float64, copy=False)
            bad = ~np.isfinite(w)
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise error("Q0603", f"weight of layer `{names[k]}` has {int(bad.sum())} non-finite "
                            f"value(s), first at {list(first)}",
                            help="the run diverged or the file is damaged; analyse an earlier checkpoint")
            mats.append(w)
        sizes = [mats[0].shape[1]] + [w.shape[0] for w in mats]
        if any(n == 0 for n in sizes):
            raise error("Q0602", f"a layer has no spins (sizes {sizes})")
        h = None
        if fields:
            if biases is None:
                raise error("Q0605", "fields were requested but no biases were given",
                            help="pass biases=[b_1, ..., b_L] (None for a layer without bias), or fields=False")
            if len(biases) != len(mats):
                raise error("Q0604", f"{len(biases)} biases for {len(mats)} weight layers",
                            help="one bias (or None) per layer after the input")
            parts = [np.zeros(sizes[0])]
            for k, b in enumerate(biases, start=1):
                if b is None:
                    parts.append(np.zeros(sizes[k]))
                    continue
                b = np.asarray(b, dtype=np.float64)
                if b.ndim != 1 or b.shape[0] != sizes[k]:
                    raise error("Q0604", f"bias of layer `{names[k]}` has shape {tuple(np.shape(b))}, "
                                f"expected ({sizes[k]},)")
                if not np.all(np.isfinite(b)):
                    raise error("Q0604", f"bias of layer `{names[k]}` has non-finite values",
                                help="the run diverged or the file is damaged")
                parts.append(b)
            h = np.concatenate(parts)
        blocks = tuple(sp.csr_matrix(w.T) for w in mats)
        return IsingModel(tuple(names), tuple(int(n) for n in sizes), blocks, h, source)

    # ------------------------------------------------------------------ shape

    @property
    def n_spins(self) -> int:
        return int(sum(self.layer_sizes))

    @property
    def n_layers(self) -> int:
        """Spin layers, the input included (L + 1)."""
        return len(self.layer_sizes)

    @property
    def spins_per_layer(self) -> dict[str, int]:
        return dict(zip(self.layer_names, self.layer_sizes))

    @property
    def offsets(self) -> np.ndarray:
        """offsets[k] is the index of layer k's first spin; offsets[-1] == n_spins."""
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    def layer_slice(self, layer: Union[int, str]) -> slice:
        k = self.layer_names.index(layer) if isinstance(layer, str) else int(layer)
        off = self.offsets
        return slice(int(off[k]), int(off[k + 1]))

    @cached_property
    def layer_index(self) -> np.ndarray:
        """layer_index[i] is the layer of spin i."""
        return np.repeat(np.arange(self.n_layers), self.layer_sizes)

    def label(self, i: int) -> tuple[str, int]:
        """(layer name, index within the layer) of spin i."""
        if not 0 <= i < self.n_spins:
            raise IndexError(f"spin {i} out of range 0..{self.n_spins - 1}")
        k = int(self.layer_index[i])
        return self.layer_names[k], int(i - self.offsets[k])

    @property
    def labels(self) -> list[tuple[str, int]]:
        return [(name, j) for name, n in zip(self.layer_names, self.layer_sizes) for j in range(n)]

    @property
    def has_fields(self) -> bool:
        return self.h is not None

    # ------------------------------------------------------------------ matrices

    @cached_property
    def _sparse(self) -> sp.csr_matrix:
        n = self.n_layers
        grid = [[None] * n for _ in range(n)]
        for k, block in enumerate(self.blocks, start=1):
            grid[k - 1][k] = block
            grid[k][k - 1] = block.T
        for k in range(n):  # keep the shape of layers that have no other block in their row
            if all(g is None for g in grid[k]):
                grid[k][k] = sp.csr_matrix((self.layer_sizes[k], self.layer_sizes[k]))
        full = sp.bmat(grid, format="csr")
        full.sort_indices()
        return full

    def sparse(self) -> sp.csr_matrix:
        """The N × N symmetric bond matrix J (CSR). Do not modify it: it is cached."""
        return self._sparse

    def dense(self) -> np.ndarray:
        """The N × N symmetric bond matrix J as a new numpy array."""
        return self._sparse.toarray()

    def fields(self) -> np.ndarray:
        """h, zeros when fields are off."""
        return np.zeros(self.n_spins) if self.h is None else self.h.copy()

    def degree_vector(self) -> np.ndarray:
        """d_i = Σ_j J_ij² (the diagonal of the Onsager term at m = 0)."""
        d = np.zeros(self.n_spins)
        off = self.offsets
        for k, block in enumerate(self.blocks, start=1):
            sq = block.multiply(block)
            d[off[k - 1]:off[k]] += np.asarray(sq.sum(axis=1)).ravel()
            d[off[k]:off[k + 1]] += np.asarray(sq.sum(axis=0)).ravel()
        return d

    def block_norms(self) -> dict[str, float]:
        """Frobenius norm of each bond block J^(k), keyed "prev->layer"."""
        return {f"{self.layer_names[k - 1]}->{self.layer_names[k]}": float(np.sqrt(b.multiply(b).sum()))
                for k, b in enumerate(self.blocks, start=1)}

    def gains(self) -> list[float]:
        """C_k = ‖J^(k)‖²_F / N_k: the variance-times-fan-in of each block (1 for weights of
        std 1/sqrt(fan_in)). On a random network this recovers the initialisation's C_k."""
        return [float(b.multiply(b).sum()) / self.layer_sizes[k] for k, b in enumerate(self.blocks, start=1)]

    # ------------------------------------------------------------------ energy

    def energy(self, sigma: np.ndarray) -> Union[float, np.ndarray]:
        """H(σ) = −½ σᵀJσ − h·σ for one configuration (shape [N]) or a batch ([B, N]).
        Spins may be any real numbers (magnetisations too); no check that they are ±1."""
        s = np.asarray(sigma, dtype=np.float64)
        single = s.ndim == 1
        if s.ndim not in (1, 2) or s.shape[-1] != self.n_spins:
            raise error("Q0617", f"configuration of shape {tuple(s.shape)}, expected ({self.n_spins},) "
                        f"or (batch, {self.n_spins})")
        s2 = s[None, :] if single else s
        off = self.offsets
        e = np.zeros(s2.shape[0])
        for k, block in enumerate(self.blocks, start=1):
            left = s2[:, off[k - 1]:off[k]]
            right = s2[:, off[k]:off[k + 1]]
            # σ^(k−1)ᵀ J^(k) σ^(k) for each row: (block @ rightᵀ)ᵀ · left
            e -= np.einsum("bi,bi->b", left, (block @ right.T).T)
        if self.h is not None:
            e -= s2 @ self.h
        return float(e[0]) if single else e

    # ------------------------------------------------------------------ files

    def _arrays(self) -> dict[str, np.ndarray]:
        j = self.sparse().tocsr()
        j.sort_indices()
        arrays: dict[str, np.ndarray] = {
            # scipy.sparse.save_npz's keys: `scipy.sparse.load_npz(path)` returns J
            "format": np.array("csr"),
            "shape": np.array(j.shape, dtype=np.int64),
            "data": j.data.astype(np.float64),
            "indices": j.indices.astype(np.int64),
            "indptr": j.indptr.astype(np.int64),
            # qnnc's: what the blocks are
            "qnnc_format": np.array(NPZ_FORMAT),
            "qnnc_version": np.array(NPZ_VERSION, dtype=np.int64),
            "layer_names": np.array(self.layer_names, dtype=np.str_),
            "layer_sizes": np.array(self.layer_sizes, dtype=np.int64),
            "source": np.array(self.source),
            "has_fields": np.array(self.h is not None),
        }
        if self.h is not None:
            arrays["h"] = self.h.astype(np.float64)
        return arrays

    def npz_bytes(self) -> bytes:
        """The model as an .npz (plain arrays only, loadable with allow_pickle=False):
        `scipy.sparse.load_npz` reads it as the symmetric coupling matrix J (N x N,
        spins in layer order, input first); `load_npz` here reads the whole model."""
        buf = io.BytesIO()
        np.savez(buf, **self._arrays())
        return buf.getvalue()

    def to_npz(self, path: PathLike) -> None:
        """Write `npz_bytes()` to `path`, atomically."""
        atomic_write_bytes(path, self.npz_bytes())

    @staticmethod
    def load_npz(path: PathLike) -> "IsingModel":
        return load_npz(path)

    def to_json_dict(self) -> dict:
        """A summary (no matrices): sizes, bond counts, block norms, gains, degrees."""
        d = self.degree_vector()
        off = self.offsets
        return {
            "format": NPZ_FORMAT,
            "version": NPZ_VERSION,
            "source": self.source,
            "layers": [{"name": n, "spins": s, "mean_degree": float(d[off[k]:off[k + 1]].mean())}
                       for k, (n, s) in enumerate(zip(self.layer_names, self.layer_sizes))],
            "n_spins": self.n_spins,
            "n_bonds": int(sum(b.nnz for b in self.blocks)),
            "block_norms": self.block_norms(),
            "gains": self.gains(),
            "fields": None if self.h is None else {"norm": float(np.linalg.norm(self.h)),
                                                   "max_abs": float(np.abs(self.h).max())},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), indent=2)


def from_weights(weights: Sequence[np.ndarray], layer_names: Sequence[str],
                 biases: Optional[Sequence[Optional[np.ndarray]]] = None,
                 fields: bool = False, source: str = "") -> IsingModel:
    """Module-level alias of `IsingModel.from_weights`."""
    return IsingModel.from_weights(weights, layer_names, biases, fields, source)


def load_npz(path: PathLike) -> IsingModel:
    """Read a file written by `IsingModel.to_npz` (never unpickles)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise error("Q0615", f"no such file: {path}") from None
    except (OSError, ValueError) as e:  # not a zip, truncated, or an object array
        raise error("Q0615", f"{path}: not a readable .npz file ({e})",
                    help="the file is damaged or was not written by qnnc") from None
    v2 = str(arrays.get("qnnc_format", "")) == NPZ_FORMAT
    if not v2 and str(arrays.get("format", "")) != NPZ_FORMAT:
        raise error("Q0615", f"{path}: not a qnnc Ising model (no `qnnc_format = {NPZ_FORMAT}` entry)")
    version = int(arrays.get("qnnc_version" if v2 else "version", -1))
    if version not in (1, NPZ_VERSION):
        raise error("Q0615", f"{path}: Ising file version {version}, this qnnc reads {NPZ_VERSION}",
                    help="re-export the model with this version of qnnc")
    try:
        names = tuple(str(n) for n in arrays["layer_names"])
        sizes = tuple(int(n) for n in arrays["layer_sizes"])
        blocks = []
        off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        if version >= 2:
            j = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                              shape=tuple(int(n) for n in arrays["shape"]))
            j.check_format(full_check=True)
            if j.shape != (off[-1], off[-1]):
                raise ValueError(f"J has shape {j.shape}, the layers {off[-1]} spins")
        for k in range(1, len(sizes)):
            shape = (sizes[k - 1], sizes[k])
            if version >= 2:
                b = sp.csr_matrix(j[off[k - 1]:off[k], off[k]:off[k + 1]])
            else:
                b = sp.csr_matrix((arrays[f"block{k}_data"], arrays[f"block{k}_indices"],
                                   arrays[f"block{k}_indptr"]), shape=shape)
            b.check_format(full_check=True)
            blocks.append(b)
        h = arrays["h"] if bool(arrays["has_fields"]) else None
        source = str(arrays.get("source", ""))
    except (KeyError, ValueError, IndexError) as e:
        raise error("Q0615", f"{path}: incomplete or inconsistent Ising file ({e})",
                    help="the file is damaged; re-export it") from None
    if len(names) != len(sizes) or (h is not None and h.shape != (sum(sizes),)):
        raise error("Q0615", f"{path}: inconsistent layer table or fields")
    for b in blocks:
        if not np.all(np.isfinite(b.data)):
            raise error("Q0603", f"{path}: non-finite bond values")
    return IsingModel(names, sizes, tuple(blocks), h, source)
