"""The update kinds of `qnnc.runtime.replicas.run_replicas`: one parallel-tempering
engine, three samplers with one protocol.

* `TorchBlockSampler` (update "block", engine "torch"): the block heat-bath as torch
  matrix products on any device (`heat_bath`, `exchange` in replicas.py).
* `FixedPointBlockSampler` (update "block", engine "compiled", CPU): the same block
  heat-bath, with the couplings in 24-bit fixed point (three int8 base-256 digits, so
  each group's fields are exact int8 × int8 products, which oneDNN or torch run on the
  CPU's matrix units; the even group's with two digits and the third computed only for
  the close draws) and the draw fused in one compiled pass.
* `SequentialSampler` (update "sequential", engine "compiled", CPU): single-spin
  heat-bath with incremental local fields for a dense J (float32 fields and rows of J,
  the fields recomputed in float64 every REFRESH sweeps).

Protocol: `sweep()` updates every chain once and leaves the energies in `energy`
(float64 [C], chain c = t R + r); `exchange(parity, accepted)` performs the exchange
move; `measure(m, v, q)` adds the sums of the current configurations (Σσ per chain,
σ·v_d per chain and direction, σ_a·σ_b per temperature and replica pair). A sampler
may also offer `run_chunk(n, parity, accepted, E, M, V, Q)`: n sweeps, exchanges and
measurements at once (`run_replicas` then uses it: the block sampler's workers meet
inside a chunk, not once a sweep in Python).
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from qnnc.compiler.diagnostics import error
from qnnc.runtime.atomic_flags import Aborted, Meeting
from qnnc.runtime.devices import from_host, host_array
from qnnc.runtime.replicas_workers import WorkerProcesses, fork_available, shared_array

BAD_SETTING = "Q0611"
DIGITS = 3  # base-256 digits of the fixed-point couplings: 24 bits, as float32's mantissa
# the digits each group's products carry: the even group's top two (its draws compute the
# third's part where it matters), the odd group's all three (their bond sums give the energy)
GROUP_DIGITS = (DIGITS - 1, DIGITS)
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
    """What the compiled samplers share: the ladder's inverse temperatures, the replica
    pairs, the streams' keys (0: the updates, 1: the exchange) and the exchange counter."""

    update, engine = "", "compiled"

    def __init__(self, temps, R, seed):
        self.T, self.R, self.C = temps.size, R, temps.size * R
        self.beta_t = 1.0 / temps
        self.pa, self.pb = _pairs(R)
        self.keys = _keys(seed, 2)
        self.xcounter = 0


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
        self.beta = np.repeat(self.beta_t, R)  # chain c's, c = t R + r (rows swap on exchange)
        self.energy = np.zeros(self.C)
        self.rows = np.arange(self.C)  # chain c is row c

    def sweep(self):
        from qnnc.runtime.replicas_kernel import sequential_sweep

        if self.count % self.REFRESH == 0:
            self.fields[:] = self.sigma @ self.J + self.h
        self.count += 1
        sequential_sweep(self.sigma, self.fields, self.h, self.beta, self.J32, self.state, self.energy, 0, self.N)

    def exchange(self, parity, accepted):
        from qnnc.runtime.replicas_kernel import exchange_rows

        exchange_rows(self.sigma, self.fields, self.energy, self.beta_t, self.R, parity, self.keys[1],
                      np.uint64(self.xcounter), accepted)
        self.xcounter += self.C

    def measure(self, m, v, q):
        from qnnc.runtime.replicas_kernel import measure_sums

        measure_sums(self.sigma, self.dirs, self.rows, self.R, self.pa, self.pb, m, v, q)


def fixed_point_scale(J: np.ndarray) -> float:
    """max|J| / 8,000,000: the scale of `fixed_point_digits` (1 for J = 0)."""
    top = float(np.abs(J).max()) if np.size(J) else 0.0
    return top / FIXED_POINT_MAX if top > 0 else 1.0


def fixed_point_digits(J: np.ndarray, scale=None):
    """J ≈ scale × n, n integer with |n| <= 8,000,000 (24 bits), n = 65536 a₀ + 256 a₁ + a₂
    with int8 digits a_k ∈ [−128, 127]. Returns (scale, digits [3, *J.shape] int8); the
    rounding error is at most scale / 2 = max|J| / 16,000,000 per coupling. `scale`
    defaults to `fixed_point_scale(J)`."""
    J = np.asarray(J, dtype=np.float64)
    if scale is None:
        scale = fixed_point_scale(J)
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


PRODUCTS = ("auto", "onednn", "int_mm")
ONEDNN_MIN = 64  # "auto" takes oneDNN's product from this inner size on


class Int8Products:
    """σ [C, K] int8 @ A [K, M] int8 (A fixed), exactly, the fastest way torch offers.

    "onednn": oneDNN's int8 matrix product with A packed once for the CPU's matrix units
    (AMX or VNNI; `torch.ops.onednn.qlinear_pointwise`, scales 1, zero points 0), float32
    output: every sum is an integer of magnitude <= 128 K < 2^24, so float32 holds it
    exactly. "int_mm": `torch._int_mm` (int32 output; A repacked on every call). "auto":
    onednn where it is present, reproduces `_int_products` on a test product, and K >= 64
    (below, oneDNN runs a slow reference kernel), else int_mm."""

    def __init__(self, A: torch.Tensor, rows: int, kind: str = "auto"):
        if kind not in PRODUCTS:
            raise error(BAD_SETTING, f"products = {kind!r}: choose one of {', '.join(PRODUCTS)}")
        self.A, self.kind = A, "int_mm"
        K, M = A.shape
        if kind != "int_mm" and K and M and 128 * K < 2 ** 24 and hasattr(torch.ops, "onednn"):
            try:
                op = torch.ops.onednn.qlinear_pointwise.default
                packed = torch.ops.onednn.qlinear_prepack(A.t().contiguous(), [rows, K])
                self._args = (packed, torch.ones(M), torch.zeros(M, dtype=torch.long))
                self._op = op
                x = torch.from_numpy(np.random.default_rng(0).integers(0, 2, (rows, K), dtype=np.int8) * 2 - 1)
                # auto: only where oneDNN has its matrix-unit kernel (on shapes this small it
                # falls back to a slow reference kernel); both are exact: only the speed differs
                if np.array_equal(self._onednn(x), _int_products(x, A)) and (kind == "onednn" or K >= ONEDNN_MIN):
                    self.kind = "onednn"
            except (RuntimeError, AttributeError, TypeError):  # pragma: no cover - torch without the op
                pass
        if kind == "onednn" and self.kind != "onednn":
            raise error(BAD_SETTING, "the oneDNN int8 product is not available (or not exact) in this torch",
                        help="use products='int_mm'")

    def _onednn(self, src):
        packed, ones, zeros = self._args
        return self._op(src, 1.0, 0, packed, ones, zeros, None, 1.0, 0, torch.float32, "none", [], "").numpy()

    def __call__(self, src: torch.Tensor) -> np.ndarray:
        return self._onednn(src) if self.kind == "onednn" else _int_products(src, self.A)


class FixedPointBlockSampler(_Compiled):
    """The layered block heat-bath on the CPU: the even layers' spins and the odd
    layers' as two int8 arrays [C, n_g] (one row per chain), each group's fields one
    exact integer product with the digits of J[group, other group] (`Int8Products`),
    then one compiled pass (`block_heat_bath`) for fields, draws and spins. The odd
    group's product carries all three digits (its exact bond sums give the energy); the
    even group's only the top two: the bound on the third digit's part settles all but
    ~0.1 % of the draws, and the kernel computes that part for those, so the spins are
    the exact rule's all the same, with a sixth less product.

    Workers (`workers`; default torch's thread count on large sweeps, C n_even n_odd >=
    2^22, else 1): one worker runs the products on torch's threads (oneDNN splits each
    product between them) and the draws in one compiled pass. With more, each group's
    columns are split between the workers: worker 0 is the caller, the others forked
    processes sharing the spins, temperatures and sums (`replicas_workers.py`; POSIX and
    not in a daemonic process, elsewhere one worker). Each multiplies every chain's other group by its columns'
    digits (torch on one thread) and draws those columns, and a sweep has two meetings in
    shared memory (`atomic_flags.Meeting`): after the even group (the odd group's fields
    need all of it) and after the odd one, where worker 0 adds up the energies, performs
    the exchange and measures. The exchange is a relabelling: rows never move, chain
    t R + r lives in row `row_of[t R + r]`, and an accepted swap exchanges two rows'
    temperatures. Every draw depends only on (row, spin, sweep), so the chains do not
    depend on the number of workers. `close()` stops the worker processes."""

    update, engine = "block", "compiled"

    def __init__(self, couplings, temps, R, seed, dirs, workers=None, products="auto"):
        super().__init__(temps, R, seed)
        c = couplings
        self.N, self.counter = c.n, 0
        idx = [c.groups[g].cpu().numpy() for g in (0, 1)]
        # B = J[even spins, odd spins], block by block (every bond joins the two groups)
        at = [{}, {}]  # layer -> its first column within its group
        for g in (0, 1):
            pos = 0
            for k in c.layers_of[g]:
                at[g][k], pos = pos, pos + c.sizes[k]
        B = np.zeros((idx[0].size, idx[1].size))
        for k, b in enumerate(c.blocks):
            b = b.double().cpu().numpy()  # [N_k, N_k+1]
            if k % 2:  # layer k odd, k + 1 even
                b, e, o = b.T, k + 1, k
            else:
                e, o = k, k + 1
            B[at[0][e]:at[0][e] + c.sizes[e], at[1][o]:at[1][o] + c.sizes[o]] = b
        self.scale = fixed_point_scale(B)
        h = np.zeros(c.n) if c.h is None else c.h.double().cpu().numpy()
        # h in fixed point too, h_scale × kh with |kh| <= 2^31 (rounding <= max|h| / 2^32):
        # the energy's sums are then sums of integers, exact in any order while below 2^53
        if c.n > 2 ** 21 or FIXED_POINT_MAX * float(B.size) >= 2.0 ** 53:
            raise error(BAD_SETTING, f"{c.n} spins, {B.size} even-odd pairs: too large for the compiled block "
                        "update's exact integer sums (up to 2^21 spins and 10^9 pairs)", help="use engine='torch'")
        top = float(np.abs(h).max()) if h.size else 0.0
        self.h_scale = top / 2 ** 31 if top > 0 else 1.0
        kh = np.rint(h / self.h_scale)
        self.kh = [np.ascontiguousarray(kh[i]) for i in idx]
        self.h = [self.h_scale * k for k in self.kh]
        self.idx = idx
        _, digits = fixed_point_digits(B, self.scale)  # [3, n_0, n_1]
        # [n_src, 3 n_g]: σ_src [C, n_src] @ this = [C, 3 n_g], digit-major columns
        self.A = [torch.from_numpy(np.ascontiguousarray(digits.transpose(2, 0, 1).reshape(idx[1].size, -1))),
                  torch.from_numpy(np.ascontiguousarray(digits.transpose(1, 0, 2).reshape(idx[0].size, -1)))]
        if workers is None:
            workers = torch.get_num_threads() if self.C * idx[0].size * idx[1].size >= 2 ** 22 else 1
        W = max(1, min(int(workers), 64, *(i.size for i in idx)))
        if W > 1 and not fork_available():
            W = 1  # the workers are forked processes
        self.workers = W
        # what the workers write, or read after worker 0 wrote it: shared with forked ones
        new = shared_array if W > 1 else np.zeros
        rng = np.random.default_rng([int(seed), 0x5EC])
        self.sigma = []
        for i in idx:
            self.sigma.append(new((self.C, i.size), np.int8))
            self.sigma[-1][:] = np.where(rng.random((self.C, i.size)) < 0.5, 1, -1)
        self.torch_sigma = [torch.from_numpy(s) for s in self.sigma]
        self.dirs = [np.zeros((0, i.size)) if dirs is None else np.ascontiguousarray(dirs[:, i], dtype=np.float64)
                     for i in idx]
        self.row_of = np.arange(self.C, dtype=np.int64)  # chain -> row
        self.beta_row = new((self.C,), np.float64)  # row -> inverse temperature
        self.beta_row[:] = np.repeat(self.beta_t, R)
        self.energy_row = np.zeros(self.C)
        # worker w draws columns cols[g][w]..cols[g][w+1] of group g
        self.cols = [np.linspace(0, i.size, W + 1).astype(np.int64) for i in idx]
        # GROUP_DIGITS: the third digit's part of an even spin's field is bounded (slack:
        # scale Σ_j |a₂[i, j]|) and computed only for the few draws the bound leaves open
        # (`block_heat_bath`); the odd group's exact fields give the energy.
        self.a2 = np.ascontiguousarray(digits[2])  # [n_0, n_1]
        self.slack = [self.scale * np.abs(self.a2.astype(np.int64)).sum(1).astype(np.float64), np.zeros(idx[1].size)]
        self.products = []
        for w in range(W):
            per = []
            for g in (0, 1):
                n, lo, hi = idx[g].size, self.cols[g][w], self.cols[g][w + 1]
                take = np.concatenate([np.arange(lo, hi) + k * n for k in range(GROUP_DIGITS[g])])
                per.append(Int8Products(self.A[g][:, take].contiguous(), self.C, products))
            self.products.append(per)
        self._bonds = new((W, self.C), np.float64)
        self._fields = new((2, W, self.C), np.float64)
        self._refined = new((W,), np.int64)  # per worker: draws redone in the kernel's exact second pass
        self._flags = [np.zeros(max(i.size for i in idx) + 8, dtype=np.uint8) for _ in range(W)]
        self._pool, self._meetings = None, 0
        self._meeting = Meeting(np.zeros(Meeting.flags_for(1), dtype=np.int64), 1)

    @property
    def refined(self) -> int:
        """Draws redone in the kernel's exact second pass, so far."""
        return int(self._refined.sum())

    def _draw(self, g, r, lo, at, w):
        """Draw group g's columns lo.. of every row from the products r (two digits for
        group 0, three for group 1) into worker w's sums; returns the refined draws."""
        from qnnc.runtime.replicas_kernel import block_heat_bath

        return block_heat_bath(r, GROUP_DIGITS[g], self.scale, self.slack[g], self.a2, self.sigma[1], self.h[g],
                               self.kh[g], self.beta_row, self.keys[0], at, lo, self.sigma[g], self._bonds[w],
                               self._fields[g, w], self._flags[w])

    @property
    def beta(self):
        """Each row's inverse temperature."""
        return self.beta_row

    @property
    def energy(self):
        """Each chain's energy, chain c = t R + r."""
        return self.energy_row[self.row_of]

    def update_group(self, g):
        """Redraw group g (0: even layers, 1: odd layers) of every row, in this thread,
        with torch's int8 product; leaves the group's sums in worker 0's."""
        take = np.arange(self.A[g].shape[1] // DIGITS * GROUP_DIGITS[g])
        self._refined[0] += self._draw(g, _int_products(self.torch_sigma[1 - g], self.A[g][:, take].contiguous()), 0,
                                       np.uint64(self.counter), 0)
        self.counter += self.sigma[g].size

    def sweep(self):
        self.run_chunk(1)

    def exchange(self, parity, accepted):
        from qnnc.runtime.replicas_kernel import block_exchange

        block_exchange(self.row_of, self.beta_row, self.energy_row, self.beta_t, self.R, parity, self.keys[1],
                       np.uint64(self.xcounter), accepted)
        self.xcounter += self.C

    def measure(self, m, v, q):
        from qnnc.runtime.replicas_kernel import measure_sums

        for g in (0, 1):
            measure_sums(self.sigma[g], self.dirs[g], self.row_of, self.R, self.pa, self.pb, m, v, q)

    def _work(self, w, n, base, meetings, end_of_sweep=None):
        """Worker w's part of n sweeps from counter `base`: its columns' products and draws
        of each group, and the sweep's two meetings (`meetings` held so far), at the
        second of which worker 0 runs end_of_sweep(j)."""
        meeting = self._meeting
        prod, C, n0 = self.products[w], self.C, self.sigma[0].shape[1]
        lo0, lo1 = self.cols[0][w], self.cols[1][w]
        tsig = self.torch_sigma
        for j in range(n):
            at = np.uint64(base + j * C * self.N)
            refined = self._draw(0, prod[0](tsig[1]), lo0, at, w)
            meeting.wait(w, meetings + 2 * j + 1)
            refined += self._draw(1, prod[1](tsig[0]), lo1, at + np.uint64(C * n0), w)
            self._refined[w] += refined  # (before the meeting: the chunk ends for all at its last)
            meeting.wait(w, meetings + 2 * j + 2, None if end_of_sweep is None else lambda: end_of_sweep(j))

    def run_chunk(self, n, parity=None, accepted=None, E=None, M=None, V=None, Q=None):
        """n sweeps, each followed (parity not None) by the exchange of parity
        (parity + j) % 2 and (E not None) by the measurements: E[j] the chains'
        energies, and the sums of `measure` added to M[j], V[j], Q[j]."""
        from qnnc.runtime.replicas_kernel import block_end_of_sweep

        W, C = self.workers, self.C
        # the counters of sweep j: group 0 at base + j C N, group 1 after it; exchange at xbase + j C
        base, xbase = self.counter, self.xcounter
        measured = E is not None
        no_acc, no_energy = np.zeros(max(self.T - 1, 1), dtype=np.int64), np.zeros(0)

        def end_of_sweep(j):  # worker 0, while the others wait
            block_end_of_sweep(self._bonds, self._fields, self.scale, self.h_scale, self.energy_row, self.row_of,
                               self.beta_row, self.beta_t, self.R, -1 if parity is None else (parity + j) % 2,
                               self.keys[1], np.uint64(xbase + j * C), accepted if parity is not None else no_acc,
                               E[j] if measured else no_energy)
            if measured:
                self.measure(M[j], V[j], Q[j])

        threads_before = torch.get_num_threads()
        if W > 1 and threads_before != 1:
            torch.set_num_threads(1)  # several workers are the parallelism: one thread each
        try:
            if W > 1:
                if self._pool is None:  # (the children fork with the meeting in place)
                    self._meeting = Meeting(shared_array((Meeting.flags_for(W),), np.int64), W)
                    self._pool, self._meetings = WorkerProcesses(self._meeting, self._work), 0
                    self._finalizer = weakref.finalize(self, self._pool.close)
                self._pool.start(n, base, self._meetings)
            self._work(0, n, base, self._meetings, end_of_sweep)
        except BaseException as exc:
            if W > 1 and self._pool is not None:  # a failed chunk leaves the meeting aborted: start afresh
                self._meeting.abort()
                reported = self._pool.child_error()
                self.close()
                if isinstance(exc, Aborted) and reported:
                    raise RuntimeError(f"block Monte Carlo {reported}") from None
            raise
        finally:
            if W > 1 and threads_before != 1:
                torch.set_num_threads(threads_before)
        self._meetings += 2 * n
        self.counter += n * C * self.N
        if parity is not None:
            self.xcounter += n * C

    def close(self) -> None:
        """Stop the worker processes (a later chunk starts new ones)."""
        if self._pool is not None:
            self._finalizer.detach()
            self._pool.close()
            self._pool = None
