"""The fused small-batch paths of `QNNModel` (numba; `runtime/fused_kernels.py`).

`compile_angle` turns a neuron's closed-form angle (the one semantics: the forms of
`qnnc.compiler.angles.bind_neuron`) into a small stack program that the kernels
evaluate per element, value and derivative; nothing here knows a squash or a neuron.

`FusedSampler` runs a whole no-grad sampled pass of a chain whose first layer is a
neuron layer and whose neuron layers take the R_y fast path (`NeuronKernel.fast_ry`)
with a bounded angle: one torch matrix product for the first layer (once per image),
then one numba call that takes the rows in blocks of about 1,024 values (so its work
stays in the first-level cache) through every later layer: the
matrix product (pattern tables for ±1 inputs), the angle, the threshold, the
counter-based random value (`counter_rng`: the same field values at the same positions
as the general path) and the sample, in buffers owned by the sampler. float32 samples
after the first layer are decided with a float32 cosine where the random value is
clearly on one side of the threshold and with the exact threshold elsewhere
(`fused_kernels.decide_f32`: the same samples). The classical layers after the last
neuron layer (the logits) run in the same call: a linear readout of ±1 outcomes through
pattern tables, equal to torch's product up to the order of its sum.

`FusedDP` / `FusedDPFunction`: the exact dynamic programme over layers and its
written-out gradient in two numba kernels (`qnnc.runtime.exact_dp` is the torch one).

Used only when numba is enabled (`counter_rng.numba_enabled`); a noisy, shifted or
otherwise different model takes the general torch path.
"""

from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np
import torch

from qnnc.runtime import counter_rng

_UNARY = {"sin": 10, "cos": 11, "tan": 12, "asin": 13, "acos": 14, "atan": 15, "exp": 16, "log": 17,
          "sqrt": 18, "tanh": 19, "abs": 20, "clip1": 21}
_BIN = {"+": 3, "-": 4, "*": 5, "/": 6, "^": 7}
_MULTI = {"clip": (22, 3), "min": (23, 2), "max": (24, 2)}
_BIN_C = {"+": 25, "-": 26, "*": 27, "/": 28, "^": 29}  # x op c
_C_BIN = {"+": 25, "-": 30, "*": 27, "/": 31, "^": 32}  # c op x (c + x = x + c, c * x = x * c exactly)
_CONST_ARG = frozenset(range(25, 33))
_STACK = 32


# Rows from which the sampler builds pattern tables on a first call.
_TABLE_ROWS = 512
# Values per layer in one block of rows of the sampler's kernel (the rows go through all
# layers block by block).
_BLOCK_ELEMENTS = 1024
# Widest layer the fused sampler takes: its matrix products are plain loops (or tables),
# which lose to torch's BLAS on wide layers.
MAX_WIDTH = 64


def _real_const(n) -> bool:
    return n[0] == "c" and isinstance(n[1], (int, float)) and not isinstance(n[1], bool)


def compile_angle(form) -> Optional[tuple[list[tuple[int, int]], list[float]]]:
    """(program, constants) of a closed form: opcodes in postfix order (the kernels'
    `eval_angles`), or None when the form has a node the kernels do not evaluate
    (`limit`, a complex constant) or needs a deeper stack. `last` reads 1.0 (the value
    of a neuron without a carried qubit)."""
    prog: list[tuple[int, int]] = []
    consts: list[float] = []
    depth = [0, 0]  # current, maximum

    def push():
        depth[0] += 1
        depth[1] = max(depth[1], depth[0])

    def const(v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        prog.append((0, len(consts)))
        consts.append(float(v))
        push()
        return True

    def walk(n) -> bool:
        kind = n[0]
        if kind == "c":
            return const(n[1])
        if kind == "z":
            prog.append((1, 0))
            push()
            return True
        if kind == "last":
            return const(1.0)
        if kind == "neg":
            if not walk(n[1]):
                return False
            prog.append((2, 0))
            return True
        if kind == "sign":
            if not walk(n[1]):
                return False
            prog.append((8, 0))
            return True
        if kind == "bin":
            op, a, b = n[1], n[2], n[3]
            if op not in _BIN:
                return False
            # one operand a real constant: one op with the constant as its argument
            if _real_const(b) and not _real_const(a):
                if not walk(a):
                    return False
                prog.append((_BIN_C[op], len(consts)))
                consts.append(float(b[1]))
                return True
            if _real_const(a) and not _real_const(b):
                if not walk(b):
                    return False
                prog.append((_C_BIN[op], len(consts)))
                consts.append(float(a[1]))
                return True
            if not walk(a) or not walk(b):
                return False
            prog.append((_BIN[op], 0))
            depth[0] -= 1
            return True
        if kind == "fn":
            name, args = n[1], n[2]
            if name in _UNARY and len(args) == 1:
                if not walk(args[0]):
                    return False
                prog.append((_UNARY[name], 0))
                return True
            if name == "sign" and len(args) == 1:
                return walk(("sign", args[0]))
            if name in _MULTI and len(args) == _MULTI[name][1]:
                if not all(walk(a) for a in args):
                    return False
                prog.append((_MULTI[name][0], 0))
                depth[0] -= len(args) - 1
                return True
            return False
        return False

    if form is None or not walk(form) or depth[1] > _STACK:
        return None
    return prog, consts


def _depth(prog) -> int:
    """The stack depth a program needs."""
    d = m = 0
    for op, _ in prog:
        if op in (0, 1):
            d += 1
        elif 3 <= op <= 7 or op in (23, 24):
            d -= 1
        elif op == 22:
            d -= 2
        m = max(m, d)
    return m


_KINDS = {"neuron": 0, "sign": 1, "relu": 2, "tanh": 3, "linear": 4}


class FusedSampler:
    """The fused no-grad sampler of one model's plan (see the module docstring). Build
    with `FusedSampler.build(plans, dtype)`, which returns None when the chain does not
    have the shape (then the model uses its torch paths)."""

    # float32 samples of layers after the first are decided with a float32 cosine where
    # the random value is at least this far from the threshold (`fused_kernels.decide_f32`;
    # the same samples); 0 computes every threshold exactly (the tests compare both).
    margin = None

    def __init__(self, plans, dtype, progs):
        self.plans = plans
        self.dtype = dtype
        self.np_dtype = np.float32 if dtype == torch.float32 else np.float64
        L = len(plans)
        self.sizes = [p.size for p in plans]
        self.kinds = [_KINDS[p.kind] for p in plans]
        # params = [0.5, -1.5, constants of the programs, weights, biases, tables]
        prog, consts = [], []
        self.meta = np.full((L, 8), -1, dtype=np.int64)
        for l, (p, pc) in enumerate(zip(plans, progs)):
            self.meta[l, 0], self.meta[l, 1], self.meta[l, 7] = self.kinds[l], p.size, p.index
            self.meta[l, 5] = len(prog)
            if pc is not None:
                ops, cs = pc
                prog += [(o, a + 2 + len(consts) if (o == 0 or o in _CONST_ARG) else a) for o, a in ops]
                consts += cs
            self.meta[l, 6] = len(prog)
        self.prog = np.array(prog or [(0, 0)], dtype=np.int64).reshape(-1, 2)
        self.head = np.array([0.5, -1.5] + consts, dtype=self.np_dtype)
        self.depth = max([1] + [_depth(pc[0]) for pc in progs if pc is not None])
        self.max_width = max(self.sizes)
        self._groups = (self.max_width + 7) // 8  # 8-bit patterns per row of a layer's outcomes
        # rows per block of the kernel (even): its work buffers stay in the first-level caches
        self.block = max(2, (_BLOCK_ELEMENTS // self.max_width) & ~1)
        self.f32 = self.np_dtype == np.float32
        self._owned = None  # work buffers of one block
        self._thr = np.empty(0, self.np_dtype)  # the first layer's thresholds
        self._lock = threading.Lock()
        self._packed_key = None
        self._packed = None
        self._calls_same = 0
        if self.margin is None:
            from qnnc.runtime import fused_kernels as K
            self.margin = K.DECIDE_MARGIN

    @classmethod
    def build(cls, plans, dtype) -> Optional["FusedSampler"]:
        from qnnc.runtime.torch_angles import bounded

        if not counter_rng.numba_enabled() or not plans or plans[0].kind != "neuron":
            return None
        if max(p.size for p in plans) > MAX_WIDTH:
            return None
        # The kernel runs every layer, the readout (logits) included: a linear readout of
        # ±1 outcomes is four table adds per output instead of a torch product (its values
        # equal the product's up to the order of the sum: float rounding, no sample changes).
        progs = []
        for p in plans:
            if p.kind == "neuron":
                if not (p.kernel.ideal_ry and bounded(p.kernel.ops[0][3])):
                    return None
                pc = compile_angle(p.kernel.ops[0][3])
                if pc is None:
                    return None
                progs.append(pc)
            elif p.kind in _KINDS:
                progs.append(None)
            else:
                return None
        return cls(plans, dtype, progs)

    def _pack(self, weights, biases, tables: bool):
        """(meta, params): later layers' weights (transposed), biases and, with `tables`,
        the pattern tables of the layers whose inputs are ±1 (after a neuron or sign
        layer): one add per 4 inputs instead of 4 multiply-adds, 16 rows per group."""
        from qnnc.runtime import fused_kernels as K

        meta = self.meta.copy()
        parts, at = [self.head], self.head.size
        for l, p in enumerate(self.plans[1:], 1):
            w = weights[p.name].detach().t().contiguous().numpy().astype(self.np_dtype, copy=False).ravel()
            meta[l, 2] = at
            parts.append(w)
            at += w.size
            if p.name in biases:
                b = biases[p.name].detach().numpy().astype(self.np_dtype, copy=True).ravel()
                meta[l, 3] = at
                parts.append(b)
                at += b.size
        if tables:
            for l in range(1, len(self.plans)):
                # Neuron layers (their z only sets a threshold: a sum in another order flips
                # a sample only within an ulp of its random value) and linear readouts (the
                # logits, whose values then differ from torch's product by rounding only).
                if self.kinds[l - 1] in (0, 1) and self.kinds[l] in (0, _KINDS["linear"]):
                    meta[l, 4] = at
                    at += ((self.sizes[l - 1] + 3) // 4) * 16 * self.sizes[l]
            parts.append(np.zeros(at - sum(x.size for x in parts), dtype=self.np_dtype))
        params = np.concatenate(parts)
        if tables:
            for l in range(1, len(self.plans)):
                if meta[l, 4] >= 0:
                    K.build_tables(params, meta[l, 2], self.sizes[l - 1], self.sizes[l], params, meta[l, 4])
        return meta, params

    def _work(self):
        """Fresh work buffers of one block (`fused_kernels.sample_chain`)."""
        n = self.block * self.max_width
        return (np.empty(n, self.np_dtype), np.empty(n, self.np_dtype), np.empty((self.depth, n), self.np_dtype),
                np.empty(n + 2, self.np_dtype), np.empty(self.block * self._groups, np.uint64))

    def run(self, z1: torch.Tensor, shots: int, entropy, weights, biases, key=None) -> Optional[torch.Tensor]:
        """The values [B * shots, size] of the network's last layer (the logits) in one
        pass, from the first layer's pre-activation z1 [B, N0] and the pass's entropy
        (`RandomFields.entropy`, or `_entropy_words`); None when z1 is not finite.
        `key`: the parameters' (version, address) list, a new object when they change,
        to repack the weights only then."""
        B = z1.shape[0]
        rows = B * shots
        out = np.empty((rows, self.sizes[-1]), dtype=self.np_dtype)  # handed out: not reused
        nt = B * self.sizes[0]
        mine = self._lock.acquire(False)  # the owned buffers, unless another thread has them
        try:
            if mine:
                if key is None or key is not self._packed_key:
                    self._packed, self._packed_key, self._calls_same = None, key, 0
                packed = self._packed
                # The tables pay for themselves over a few hundred rows, or once the weights
                # have stayed the same for a second call.
                if packed is None or not packed[2]:
                    self._calls_same += 1
                    want_tables = rows >= _TABLE_ROWS or self._calls_same >= 2
                    if packed is None or want_tables:
                        packed = self._packed = self._pack(weights, biases, want_tables) + (want_tables,)
                work = self._owned
                if work is None:
                    work = self._owned = self._work()
                t = self._thr
                if t.size < nt:
                    t = self._thr = np.empty(nt, self.np_dtype)
            else:
                packed = self._pack(weights, biases, False)
                work = self._work()
                t = np.empty(nt, self.np_dtype)
            ok = (_K or _kernels()).sample_chain(
                z1.numpy(), shots, entropy if type(entropy) is np.ndarray else np.array(entropy, dtype=np.uint64),
                packed[0], packed[1], self.prog, self.f32,
                self.block, work[0], work[1], t, out, work[2], work[3], work[4], self.margin)
        finally:
            if mine:
                self._lock.release()
        if not ok:
            return None
        return torch.from_numpy(out)


class FusedDP:
    """The exact dynamic programme over a chain of R_y fast-path neuron layers (and an
    optional linear readout) in two numba kernels, forward and written-out backward
    (`fused_kernels.dp_forward` / `dp_backward`), float64 inside. Build with
    `FusedDP.build(chain, readout, dtype)` (None when a layer's angle does not compile);
    call through `FusedDPFunction.apply(x, fdp, *wb)`."""

    def __init__(self, chain, readout, dtype, progs):
        self.chain, self.readout, self.dtype = chain, readout, dtype
        prog, consts = [], []
        L = len(chain)
        self.L = L
        self.meta = np.full((L + 1, 10), -1, dtype=np.int64)
        for l, (p, (ops, cs)) in enumerate(zip(chain, progs)):
            self.meta[l, 0], self.meta[l, 1] = p.size, p.fan_in
            self.meta[l, 4] = len(prog)
            prog += [(o, a + 1 + len(consts) if (o == 0 or o in _CONST_ARG) else a) for o, a in ops]
            consts += cs
            self.meta[l, 5] = len(prog)
        if readout is not None:
            self.meta[L, 0], self.meta[L, 1] = readout.size, readout.fan_in
        self.prog = np.array(prog or [(0, 0)], dtype=np.int64).reshape(-1, 2)
        self.head = np.array([0.0] + consts, dtype=np.float64)  # params[0]: a zero of the dtype
        self._layout: dict = {}
        self._packed = None  # ((batch, parameter versions), meta, params, work size, scratch shape)

    @classmethod
    def build(cls, chain, readout, dtype) -> Optional["FusedDP"]:
        if not counter_rng.numba_enabled():
            return None
        progs = []
        for p in chain:
            if p.kind != "neuron" or not p.kernel.ideal_ry:
                return None
            pc = compile_angle(p.kernel.ops[0][3])
            if pc is None or _depth(pc[0]) > _STACK:
                return None
            progs.append(pc)
        return cls(chain, readout, dtype, progs)

    def layout(self, B: int):
        """(meta, work size, scratch shape) for a batch of B."""
        got = self._layout.get(B)
        if got is not None:
            return got
        meta = self.meta.copy()
        at = 0
        maxN = 0
        for l, p in enumerate(self.chain):
            N, M = p.size, 1 << p.size
            rows = B if l == 0 else 1 << self.chain[l - 1].size
            meta[l, 6], at = at, at + rows * N
            meta[l, 7], at = at, at + rows * N
            meta[l, 8], at = at, at + B * M
            if l > 0:
                meta[l, 9], at = at, at + rows * M
            maxN = max(maxN, N)
        if self.readout is not None:
            meta[self.L, 6], at = at, at + (1 << self.chain[-1].size) * self.readout.size
        Mx = 1 << maxN
        scratch = (4, max(B * Mx, Mx * Mx, 2 * maxN + 2))
        got = self._layout[B] = (meta, max(at, 1), scratch)
        return got

    def pack(self, meta, wb) -> np.ndarray:
        """params: [0, constants, W_1, b_1, ..., W_out, b_out] (float64), offsets into meta."""
        parts, at = [self.head], self.head.size
        for i in range(0, len(wb), 2):
            l = i // 2
            w = _f64(wb[i])
            meta[l, 2], at = at, at + w.size
            parts.append(w)
            if wb[i + 1] is not None:
                b = _f64(wb[i + 1])
                meta[l, 3], at = at, at + b.size
                parts.append(b)
            else:
                meta[l, 3] = -1
        return np.concatenate(parts)


def _f64(t: torch.Tensor) -> np.ndarray:
    t = t.detach().reshape(-1)
    return (t if t.dtype == torch.float64 else t.to(torch.float64)).numpy()


_K = None


def _kernels():
    global _K
    if _K is None:
        from qnnc.runtime import fused_kernels
        _K = fused_kernels
    return _K


class FusedDPFunction(torch.autograd.Function):
    """E [B, C] (with a readout) or P_L [B, 2^N_L] from x [B, F] and the layers' (W, b)."""

    @staticmethod
    def forward(ctx, x, fdp, *wb):
        K = _kernels()
        B = x.shape[0]
        key = (B, [(t._version, t.data_ptr()) for t in wb if t is not None])
        cached = fdp._packed
        if cached is not None and cached[0] == key:
            meta, params, size, scratch = cached[1:]
        else:  # (the arrays are never written after packing: a saved pass keeps its own)
            meta, size, scratch = fdp.layout(B)
            meta = meta.copy()
            params = fdp.pack(meta, wb)
            fdp._packed = (key, meta, params, size, scratch)
        xd = x.detach()
        x64 = (xd if xd.dtype == torch.float64 else xd.to(torch.float64)).contiguous().numpy()
        work = np.empty(size)
        C = fdp.readout.size if fdp.readout is not None else 0
        E = np.empty((B, C))
        if not K.dp_forward(x64, fdp.L, meta, params, fdp.prog, work, E, np.empty(_STACK), np.empty(_STACK)):
            from qnnc.runtime.exact_dp import NotFinite
            raise NotFinite
        ctx.fdp, ctx.saved = fdp, (x64, meta, params, work, scratch)
        ctx.shapes = [None if t is None else t.shape for t in wb]
        if C:
            out = E
        else:
            ML = 1 << fdp.chain[-1].size
            p0 = meta[fdp.L - 1, 8]
            out = work[p0:p0 + B * ML].reshape(B, ML).copy()
        out = torch.from_numpy(out)
        return out if x.dtype == torch.float64 else out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        K = _kernels()
        fdp = ctx.fdp
        x64, meta, params, work, scratch = ctx.saved
        g = (grad if grad.dtype == torch.float64 else grad.to(torch.float64)).contiguous().numpy()
        B = x64.shape[0]
        if fdp.readout is not None:
            dE, dPL = g, np.zeros((B, 0))
        else:
            dE, dPL = np.zeros((B, 0)), g
        # numpy buffers, handed to torch with from_numpy: a third of the cost of torch's
        # own zeros and slice views at these sizes (this path is per-call overhead)
        grads = np.zeros(params.size)
        needs = ctx.needs_input_grad
        need_dx = bool(needs[0])
        dx = np.zeros_like(x64) if need_dx else np.zeros((1, 1))
        K.dp_backward(x64, fdp.L, meta, params, work, dE, dPL, grads, dx, need_dx, np.zeros(scratch))
        out = []
        for i, shape in enumerate(ctx.shapes):
            if shape is None or not needs[2 + i]:
                out.append(None)
                continue
            o = int(meta[i // 2, 3 if i % 2 else 2])
            gt = torch.from_numpy(grads[o:o + math.prod(shape)].reshape(shape))
            out.append(gt if fdp.dtype == torch.float64 else gt.to(fdp.dtype))
        ctx.saved = None
        dxt = None
        if need_dx:
            dxt = torch.from_numpy(dx)
            dxt = dxt if grad.dtype == torch.float64 else dxt.to(grad.dtype)
        return (dxt, None, *out)
