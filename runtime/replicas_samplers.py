"""The update kinds of `qnnc.runtime.replicas.run_replicas`: one parallel-tempering
engine, three samplers with one protocol.

* `TorchBlockSampler` (update "block", engine "torch"): the block heat-bath as torch
  matrix products on any device (`heat_bath`, `exchange` in replicas.py).
* `FixedPointBlockSampler` (update "block", engine "compiled", CPU): the same block
  heat-bath, with the couplings in 24-bit fixed point (three int8 base-256 digits, so
  each group's fields are three exact int8 × int8 → int32 products, which torch runs
  on the CPU's integer matrix units) and the draw fused in one compiled pass.
* `SequentialSampler` (update "sequential", engine "compiled", CPU): single-spin
  heat-bath with incremental local fields for a dense J (float32 fields and rows of J,
  the fields recomputed in float64 every REFRESH sweeps).

Protocol: `sweep()` updates every chain once and leaves the energies in `energy`
(float64 [C], chain c = t R + r); `exchange(parity, accepted)` performs the exchange
move; `measure(m, v, q)` adds the sums of the current configurations (Σσ per chain,
σ·v_d per chain and direction, σ_a·σ_b per temperature and replica pair).
"""

from __future__ import annotations

import numpy as np
import torch

from qnnc.compiler.diagnostics import error
from qnnc.runtime.devices import from_host, host_array

BAD_SETTING = "Q0611"
DIGITS = 3  # base-256 digits of the fixed-point couplings: 24 bits, as float32's mantissa
FIXED_POINT_MAX = 8_000_000  # |n| <= 127 (65536 + 256 + 1) = 8,355,711


def _pairs(R):
    a = np.array([a for a in range(R) for b in range(a + 1, R)], dtype=np.int64)
    b = np.array([b for a in range(R) for b in range(a + 1, R)], dtype=np.int64)
    return a, b


def _keys(seed, count):
    return np.random.SeedSequence([int(seed), 0x5EC]).generate_state(count, np.uint64)


class TorchBlockSampler:
    update, engine = "block", "torch"

    def __init__(self, couplings, temps, R, seed, dirs, dtype, device):
        from qnnc.runtime.replicas import LayeredCouplings

        self.c, self.T, self.R, self.N = couplings, temps.size, R, couplings.n
        # (the meta device, for tests, has shapes and no values: no generator either)
        self.gen = torch.Generator(device=device).manual_seed(int(seed)) if torch.device(device).type != "meta" else None
        self.beta = from_host(1.0 / temps, device, dtype)
        self.sigma = torch.where(torch.rand((self.T, R, self.N), generator=self.gen, device=device, dtype=dtype)
                                 < 0.5, 1.0, -1.0).to(dtype)
        self.dirs = None if dirs is None else from_host(np.asarray(dirs), device, dtype)
        self.pa, self.pb = (from_host(x, device) for x in _pairs(R))
        self.layered = isinstance(couplings, LayeredCouplings)
        self.energy_t = couplings.energy(self.sigma)

    def sweep(self):
        from qnnc.runtime.replicas import heat_bath

        c, sigma = self.c, self.sigma
        for g in range(len(c.groups)):
            u = torch.rand((self.T, self.R, c.groups[g].numel()), generator=self.gen, device=sigma.device,
                           dtype=sigma.dtype)
            bonds = heat_bath(sigma, c, g, self.beta, u)
        self.energy_t = c.energy_after_sweep(sigma, bonds) if self.layered else c.energy(sigma)

    @property
    def energy(self):
        return host_array(self.energy_t.reshape(-1))

    def exchange(self, parity, accepted):
        from qnnc.runtime.replicas import exchange

        u = torch.rand((self.T, self.R), generator=self.gen, device=self.sigma.device, dtype=self.sigma.dtype)
        acc = exchange(self.sigma, self.energy_t, self.beta, parity, u)
        accepted[parity::2] += host_array(acc.sum(-1)).astype(np.int64)

    def measure(self, m, v, q):
        s = self.sigma
        m += host_array(s.sum(-1).reshape(-1))
        if self.dirs is not None:
            v += host_array((s @ self.dirs.T).reshape(len(m), -1))
        if self.pa.numel():
            q += host_array((s[:, self.pa] * s[:, self.pb]).sum(-1))


class _Compiled:
    """What the compiled samplers share: chains' inverse temperatures, pair indices,
    the exchange stream."""

    update, engine = "", "compiled"

    def __init__(self, temps, R, seed):
        self.T, self.R, self.C = temps.size, R, temps.size * R
        self.beta_t = 1.0 / temps
        self.beta = np.repeat(self.beta_t, R)
        self.pa, self.pb = _pairs(R)
        self.keys = _keys(seed, 2)
        self.xcounter = 0
        self.energy = np.zeros(self.C)

    def _exchange(self, a, b, parity, accepted):
        from qnnc.runtime.replicas_kernel import exchange_rows

        exchange_rows(a, b, self.energy, self.beta_t, self.R, parity, self.keys[1], np.uint64(self.xcounter),
                      accepted)
        self.xcounter += self.C


class SequentialSampler(_Compiled):
    update = "sequential"
    REFRESH = 256  # sweeps between recomputations of the fields from scratch

    def __init__(self, couplings, temps, R, seed, dirs):
        super().__init__(temps, R, seed)
        N = self.N = couplings.n
        self.J = couplings.J_host  # float64, for the refresh of the fields
        self.J32 = np.ascontiguousarray(self.J, dtype=np.float32)  # the kernel's rows
        self.h = np.zeros(N) if couplings.h is None else couplings.h.double().cpu().numpy()
        rng = np.random.default_rng([int(seed), 0x5EC])
        self.sigma = np.where(rng.random((self.C, N)) < 0.5, 1.0, -1.0)
        self.fields = np.empty((self.C, N), dtype=np.float32)
        self.state = _keys(seed, self.C + 2)[2:]
        self.dirs = np.zeros((0, N)) if dirs is None else np.ascontiguousarray(dirs, dtype=np.float64)
        self.count = 0

    def sweep(self):
        from qnnc.runtime.replicas_kernel import sequential_sweep

        if self.count % self.REFRESH == 0:
            self.fields[:] = self.sigma @ self.J + self.h
        self.count += 1
        sequential_sweep(self.sigma, self.fields, self.h, self.beta, self.J32, self.state, self.energy, 0, self.N)

    def exchange(self, parity, accepted):
        self._exchange(self.sigma, self.fields, parity, accepted)

    def measure(self, m, v, q):
        from qnnc.runtime.replicas_kernel import row_sums

        row_sums(self.sigma, self.dirs, self.R, self.pa, self.pb, m, v, q)


def fixed_point_digits(J: np.ndarray, scale=None):
    """J ≈ scale × n, n integer with |n| <= 8,000,000 (24 bits), n = 65536 a₀ + 256 a₁ + a₂
    with int8 digits a_k ∈ [−128, 127]. Returns (scale, digits [3, *J.shape] int8); the
    rounding error is at most scale / 2 = max|J| / 16,000,000 per coupling. `scale`
    defaults to max|J| / 8,000,000."""
    J = np.asarray(J, dtype=np.float64)
    if scale is None:
        top = float(np.abs(J).max()) if J.size else 0.0
        scale = top / FIXED_POINT_MAX if top > 0 else 1.0
    n = np.rint(J / scale).astype(np.int64)
    if n.size and np.abs(n).max() > FIXED_POINT_MAX:
        raise error(BAD_SETTING, "couplings outside the fixed-point range of their scale")
    digits = np.empty((DIGITS,) + J.shape, dtype=np.int8)
    for k in range(DIGITS - 1, -1, -1):
        d = (n + 128) % 256 - 128
        digits[k] = d
        n = (n - d) // 256
    return scale, digits


def _int_products(src: torch.Tensor, A: torch.Tensor) -> np.ndarray:
    """src [C, K] int8 @ A [K, M] int8, exactly: int32 on the integer matrix units where
    torch has them, else float64 (exact below 2^53)."""
    if src.shape[1] == 0:
        return np.zeros((src.shape[0], A.shape[1]), dtype=np.int32)
    if hasattr(torch, "_int_mm"):
        try:
            return torch._int_mm(src, A).numpy()
        except RuntimeError:  # pragma: no cover - a build without the int8 kernel
            pass
    return (src.double() @ A.double()).numpy()  # pragma: no cover


class FixedPointBlockSampler(_Compiled):
    """The layered block heat-bath on the CPU: the even layers' spins and the odd
    layers' as two int8 arrays [C, n_g], each group's fields one integer product with
    the digits of J[group, other group]."""

    update = "block"

    def __init__(self, couplings, temps, R, seed, dirs):
        super().__init__(temps, R, seed)
        c = couplings
        self.N = c.n
        idx = [c.groups[g].cpu().numpy() for g in (0, 1)]
        J = np.zeros((c.n, c.n))
        for k, b in enumerate(c.blocks):
            b = b.double().cpu().numpy()
            J[c.offsets[k]:c.offsets[k + 1], c.offsets[k + 1]:c.offsets[k + 2]] = b
        J = J + J.T
        self.scale, _ = fixed_point_digits(J)
        h = np.zeros(c.n) if c.h is None else c.h.double().cpu().numpy()
        self.idx, self.h, self.A = idx, [np.ascontiguousarray(h[i]) for i in idx], []
        for g in (0, 1):
            _, digits = fixed_point_digits(J[np.ix_(idx[g], idx[1 - g])], self.scale)
            # [n_src, 3 n_g]: σ_src [C, n_src] @ this = [C, 3 n_g], digit-major columns
            self.A.append(torch.from_numpy(np.ascontiguousarray(digits.reshape(-1, idx[1 - g].size).T)))
        rng = np.random.default_rng([int(seed), 0x5EC])
        self.sigma = [np.where(rng.random((self.C, i.size)) < 0.5, 1, -1).astype(np.int8) for i in idx]
        self.torch_sigma = [torch.from_numpy(s) for s in self.sigma]
        self.dirs = [np.zeros((0, i.size)) if dirs is None else np.ascontiguousarray(dirs[:, i], dtype=np.float64)
                     for i in idx]
        self.counter = 0
        self._bonds = np.zeros(self.C)
        self._fields = [np.zeros(self.C), np.zeros(self.C)]

    def update_group(self, g):
        """Redraw group g (0: even layers, 1: odd layers) of every chain; returns
        (Σ σ_i bond_i, Σ σ_i h_i) over the group, per chain."""
        from qnnc.runtime.replicas_kernel import block_heat_bath

        r = _int_products(self.torch_sigma[1 - g], self.A[g])
        block_heat_bath(r, self.scale, self.h[g], self.beta, self.keys[0], np.uint64(self.counter),
                        self.sigma[g], self._bonds, self._fields[g])
        self.counter += self.sigma[g].size
        return self._bonds, self._fields[g]

    def sweep(self):
        for g in (0, 1):
            self.update_group(g)
        # every bond joins the two groups: the last group's Σ σ_i bond_i counts each once
        np.subtract(-self._bonds, self._fields[0] + self._fields[1], out=self.energy)

    def exchange(self, parity, accepted):
        self._exchange(self.sigma[0], self.sigma[1], parity, accepted)

    def measure(self, m, v, q):
        from qnnc.runtime.replicas_kernel import row_sums

        for g in (0, 1):
            row_sums(self.sigma[g], self.dirs[g], self.R, self.pa, self.pb, m, v, q)
