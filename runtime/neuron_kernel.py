"""Local simulation of one quantum neuron, vectorised over [images, shots, neurons].

A `NeuronKernel` is built from a `NeuronDef` and the bindings of one layer, bound by the
one neuron semantics (`qnnc.compiler.angles`) and read through the one gate table
(`qnnc.compiler.gates`). It knows nothing about the stdlib neurons: it evaluates the
neuron's closed-form angles (`qnnc.runtime.torch_angles`) and runs its op list on a tiny
state vector (2^k amplitudes, k registers) whose every amplitude is a tensor over the
batch. Two ways to run it:

* `sample`: one stochastic trajectory per element (measurements draw outcomes with the
  Born rule, collapse and renormalise). Used for the forward pass.
* `branch`: every measurement splits the state into both outcomes, kept unnormalised,
  so a branch's probability is its squared norm: a differentiable function of z. Used
  for exact expectations and exact outcome distributions.

Amplitudes are held as a list indexed by the basis state; an entry is `None` when it is
exactly zero (so |0...0> costs nothing and a measurement whose outcome is certain by
construction draws nothing). Register 0 is the most significant bit of the index; the
neuron's `qubit` (if any) is register 0, ancillas follow in declaration order. Random
numbers come from `qnnc.runtime.random_fields`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import torch

from qnnc.compiler import angles, ir
from qnnc.compiler.diagnostics import error
from qnnc.compiler.gates import GATES
from qnnc.runtime.devices import host_bool
from qnnc.runtime.random_fields import RandomFields, sample_pm1, scalar
from qnnc.runtime.torch_angles import Number, Value, _Evaluator, compile_inplace

# --------------------------------------------------------------------------- the kernel


@dataclass
class BranchResult:
    """A neuron's branches for every element: `probs[..., l]` is the probability of local
    branch l, `emit[l]` its emitted value (±1), `post` (carried neurons only) the
    neuron qubit's normalised state after branch l as (amp0, amp1), each [..., L]."""

    probs: torch.Tensor
    emit: tuple[int, ...]
    post: Optional[tuple[torch.Tensor, torch.Tensor]]


class NeuronKernel:
    """The local simulation of one layer's neurons: a `BoundNeuron` (one NeuronDef and its
    bindings, bound by `qnnc.compiler.angles`, the one neuron semantics) run on tensors."""

    def __init__(self, neuron: ir.NeuronDef, bindings: Mapping[str, Any] | Sequence[ir.Binding] = (),
                 *, span: Optional[ir.Span] = None, force_generic: bool = False):
        self.neuron = neuron
        self.span = span or neuron.span
        bound = angles.bind_neuron(neuron, bindings, span)
        self.bound = bound
        # Register 0 is the neuron's `qubit` (if any), ancillas follow in declaration order.
        qubits = [r for r in neuron.registers if r.role == "qubit"]
        self.registers = qubits + [r for r in neuron.registers if r.role == "ancilla"]
        self.reg_index = {r.name: i for i, r in enumerate(self.registers)}
        self.k = len(self.registers)
        self.carried = bool(qubits and qubits[0].carried)
        if self.k > 8:
            raise error("Q0623", f"neuron `{neuron.name}` has {self.k} registers; the local simulator "
                        "handles at most 8", neuron.span)
        self.ops: list[tuple] = []
        self.gate_spans: dict[int, ir.Span] = {}
        for op, form in zip(neuron.ops, bound.angles):
            if isinstance(op, ir.GateOp):
                self.gate_spans[len(self.ops)] = op.span
                self.ops.append(("gate", op.gate, tuple(self.reg_index[t] for t in op.targets), form))
            elif isinstance(op, ir.MeasureOp):
                self.ops.append(("measure", self.reg_index[op.target], op.emit))
            else:
                self.ops.append(("reset", self.reg_index[op.target]))
        self.uses_z = bound.uses_z
        self.uses_last = bound.uses_last
        self.is_complex = any(o[0] == "gate" and not GATES[o[1]].is_real for o in self.ops)
        # Whether the state must be collapsed after op i (anything later can observe it).
        n = len(self.ops)
        self._state_live_after = [self.carried or i < n - 1 for i in range(n)]
        # Device noise (`qnnc.runtime.noise.neuron.LayerNoise`), bound by the simulator; None: ideal.
        self.noise = None
        # Fast path, recognised by structure: one fresh qubit, R_y(θ), emit-measure.
        # P(+1) = cos²(θ/2): one cosine and one comparison per sample (see sample()).
        self.fast_ry = (not force_generic and len(self.registers) == 1 and not self.carried
                        and n == 2 and self.ops[0][:2] == ("gate", "ry") and self.ops[1][0] == "measure"
                        and self.ops[1][2])

    @property
    def ideal_ry(self) -> bool:
        """The fast R_y path without device noise: P(+1) = cos²(θ/2) exactly, what the
        compiled numba kernels (`runtime/fused.py`) and the written-out exact gradient
        (`runtime/exact_dp.py`) assume. A noisy kernel keeps the torch paths."""
        return self.fast_ry and self.noise is None

    # ----------------------------------------------------------------- gates

    def _angle(self, i: int, ev: "_Evaluator"):
        """The angle of op i; an angle that is not finite is the one semantics' Q0331."""
        theta = ev(self.ops[i][3])
        if isinstance(theta, torch.Tensor):
            if not host_bool(torch.isfinite(theta).all()):
                raise error(angles.NOT_FINITE, f"an angle of neuron `{self.neuron.name}` is not finite for "
                            "some inputs", self.gate_spans[i], help="check the angle's domain (log, sqrt, "
                            "asin, acos, division)")
        elif not math.isfinite(theta):
            raise error(angles.NOT_FINITE, f"an angle of neuron `{self.neuron.name}` is not finite",
                        self.gate_spans[i])
        return theta

    def _gate_step(self, i: int, ev: "_Evaluator", amps: list, basis: list, shift=None) -> None:
        """Op i, a gate: its angle evaluated (plus `shift[i]`, a per-neuron angle shift,
        when given), applied; its registers leave the basis."""
        op = self.ops[i]
        theta = self._angle(i, ev) if op[3] is not None else None
        if shift is not None and i in shift:
            theta = theta + shift[i]
        self._apply_gate(amps, op[1], op[2], theta)
        for r in op[2]:
            basis[r] = False

    def _apply_gate(self, amps: list, gate: str, idx: tuple, theta) -> None:
        """Apply a gate of the gate table to the amplitude list (None = exact zero)."""
        g = GATES[gate]
        if g.takes_angle:
            c, s = _cos(theta * 0.5), _sin(theta * 0.5)
            mat = [[_add(_mul(c, 1 if r == k else 0), _mul(s, x)) for k, x in enumerate(row)]
                   for r, row in enumerate(g.sine_part())]
        else:
            mat = g.matrix
        masks = [1 << (self.k - 1 - r) for r in idx]  # first listed qubit: most significant
        full = sum(masks)
        offsets = [sum(m for bit, m in zip(reversed(range(len(masks))), masks) if j >> bit & 1)
                   for j in range(1 << len(masks))]
        for base in range(1 << self.k):
            if base & full:
                continue
            slots = [base | o for o in offsets]
            old = [amps[i] for i in slots]
            if all(a is None for a in old):
                continue
            for i, row in zip(slots, mat):
                acc = None
                for m, a in zip(row, old):
                    acc = _add(acc, _mul(m, a))
                amps[i] = acc

    def _fresh_amps(self, state) -> list:
        amps: list = [None] * (1 << self.k)
        if state is None:
            amps[0] = 1.0
        else:
            amps[0], amps[1 << (self.k - 1)] = state
        return amps

    # ----------------------------------------------------------------- sampling

    def sample(self, z: torch.Tensor, last: Value, state, fields: RandomFields, key: tuple, start: int,
               shape: Sequence[int], *, inplace: bool = False, out: Optional[torch.Tensor] = None,
               threshold: Optional[torch.Tensor] = None, shift: Optional[Mapping[int, torch.Tensor]] = None):
        """One trajectory per element. z: pre-activations broadcastable to `shape`
        ([B, S, N] image-major, or [B, 1, N] when deterministic across shots); last: the
        previous outcomes (or 1.0); state: carried (amp0, amp1) or None for |0>. Returns
        (d, post) with d = ±1 of `shape` and post the carried qubit's state (or None).
        Runs without autograd; the caller attaches the straight-through gradient. `out`:
        an optional buffer for d; `threshold`: `fast_threshold(z)` computed beforehand
        (fast path only), e.g. once per image for all shots. `shift`: op index -> angle
        added to that gate's angle after it is computed, per neuron ([N], broadcast): the
        parameter-shift hook of `qnnc.runtime.gradients`."""
        with torch.no_grad():
            ev = _Evaluator(z, last, inplace, z_owned=self.uses_z == 1)
            if self.fast_ry:
                thr = (threshold if threshold is not None and not shift
                       else self._fast_threshold(ev, z.dtype, shift=(shift or {}).get(0)))
                f = fields.uniform_12(key + (1,), start, shape, out=out)
                f.add_(thr)
                return torch.copysign(scalar(1.0, f), f, out=f), None
            if self.noise is not None:
                u = lambda a: a.unsqueeze(-1) if isinstance(a, torch.Tensor) else a
                return self.noise.sample(self, _Evaluator(u(z), u(last), False, z_owned=False), state, fields,
                                         key, start, shape, z.dtype, shift)
            amps = self._fresh_amps(state)
            basis = [True] * self.k  # register known to be in a basis state
            d = None
            for i, op in enumerate(self.ops):
                if op[0] == "gate":
                    self._gate_step(i, ev, amps, basis, shift)
                else:
                    r = op[1]
                    reset = op[0] == "reset"
                    live = self._state_live_after[i] or reset
                    outcome = self._measure_sample(amps, r, fields, key + (i,), start, shape, live, z.dtype,
                                                   z.device)
                    if reset:
                        self._move_to_zero(amps, r)
                    basis[r] = True
                    if op[0] == "measure" and op[2]:
                        d = outcome
            post = None
            if self.carried:
                for r in range(1, self.k):  # trace out ancillas: measure and forget
                    if not basis[r]:
                        self._measure_sample(amps, r, fields, key + (len(self.ops) + r,), start, shape,
                                             True, z.dtype, z.device)
                post = self._qubit_state(amps, shape, z.dtype, z.device)
            return d, post

    def fast_threshold(self, z: torch.Tensor, *, inplace: bool = False, check: bool = True) -> torch.Tensor:
        """Fast path: the per-element threshold that `sample` compares with the random
        field (it depends on z only, so it can be computed once for all shots). `check`
        False skips the finiteness check (for angles known finite, `torch_angles.bounded`,
        of a z known not NaN)."""
        assert self.fast_ry
        with torch.no_grad():
            return self._fast_threshold(_Evaluator(z, 1.0, inplace, z_owned=self.uses_z == 1), z.dtype, check)

    def lean_threshold(self, z: torch.Tensor) -> torch.Tensor:
        """`fast_threshold(z, inplace=True, check=False)` through the angle compiled once
        into in-place steps (`torch_angles.compile_inplace`) when it has that shape; z is
        overwritten."""
        run = getattr(self, "_compiled_angle", False)
        if run is False:
            run = self._compiled_angle = compile_inplace(self.ops[0][3]) if self.uses_z == 1 else None
        if run is None:
            return self.fast_threshold(z, inplace=True, check=False)
        if self.noise is not None:
            return self.noise.threshold(run(z), True)
        c = run(z).cos_()
        return torch.add(scalar(-1.5, c), c, alpha=0.5, out=c)

    def _fast_threshold(self, ev: _Evaluator, dtype, check: bool = True, shift=None) -> torch.Tensor:
        theta, own = ev.ev(self.ops[0][3])
        if not isinstance(theta, torch.Tensor):
            theta = torch.full((), float(theta), dtype=dtype, device=ev.device)
        if shift is not None:
            theta, own = theta + shift, True
        if self.noise is not None:  # P(+1) = α + β cos θ + γ sin θ per neuron; thr = P(+1) - 2
            thr = self.noise.threshold(theta, own)
            if check and not bool(torch.isfinite(thr).all()):
                raise error(angles.NOT_FINITE, f"an angle of neuron `{self.neuron.name}` is not finite for "
                            "some inputs", self.gate_spans[0])
            return thr
        c = theta.cos_() if own else torch.cos(theta)
        # As sample_pm1 with t = p1 - p0 = -cos θ: -1 exactly when f < (3 - cos θ)/2, i.e.
        # when f + (cos θ / 2 - 3/2) < 0; that threshold is exact on f's grid.
        thr = torch.add(scalar(-1.5, c), c, alpha=0.5, out=c)  # c is ours either way
        if check and not host_bool(torch.isfinite(thr).all()):  # cos of an infinite or NaN angle
            raise error(angles.NOT_FINITE, f"an angle of neuron `{self.neuron.name}` is not finite for "
                        "some inputs", self.gate_spans[0], help="check the angle's domain (log, sqrt, "
                        "asin, acos, division)")
        return thr

    def _measure_sample(self, amps, r, fields, key, start, shape, live, dtype, device=None):
        m = 1 << (self.k - 1 - r)
        ones = [i for i in range(len(amps)) if i & m and amps[i] is not None]
        zeros = [i for i in range(len(amps)) if not i & m and amps[i] is not None]
        if not ones or not zeros:  # outcome fixed by construction: nothing to draw
            return torch.full(tuple(shape), 1.0 if not ones else -1.0, dtype=dtype, device=device)
        p1 = _sum(_abs2(amps[i]) for i in ones)
        p0 = _sum(_abs2(amps[i]) for i in zeros)
        d = sample_pm1(p1 - p0, fields.uniform_12(key, start, shape))
        if live:
            tiny = torch.finfo(dtype).tiny
            s1 = (1.0 - d) * 0.5 * torch.rsqrt(torch.clamp(torch.as_tensor(p1, dtype=dtype, device=device), min=tiny))
            s0 = (1.0 + d) * 0.5 * torch.rsqrt(torch.clamp(torch.as_tensor(p0, dtype=dtype, device=device), min=tiny))
            for i in ones:
                amps[i] = amps[i] * s1
            for i in zeros:
                amps[i] = amps[i] * s0
        return d

    def _move_to_zero(self, amps, r):
        m = 1 << (self.k - 1 - r)
        for i in range(len(amps)):
            if i & m:
                amps[i ^ m] = _add(amps[i ^ m], amps[i])
                amps[i] = None

    def _qubit_state(self, amps, shape, dtype, device=None):
        m = 1 << (self.k - 1)
        q0 = _sum(amps[i] for i in range(len(amps)) if not i & m and amps[i] is not None)
        q1 = _sum(amps[i] for i in range(len(amps)) if i & m and amps[i] is not None)
        full = lambda a: (torch.zeros(tuple(shape), dtype=dtype, device=device) if a is None else
                          (a if isinstance(a, torch.Tensor) else torch.full((), a, dtype=dtype, device=device))
                          .expand(tuple(shape)))
        return full(q0), full(q1)

    # ----------------------------------------------------------------- branching

    def branch(self, z: torch.Tensor, last: Value = 1.0, state=None) -> BranchResult:
        """All measurement branches, unnormalised, so probabilities are differentiable
        functions of z. z, last, state (amp0, amp1): tensors broadcastable to one shape
        [...] (or last = 1.0 / state = None for a fresh chain). Returns a BranchResult
        whose tensors have shape [..., L]; for a neuron without a carried qubit the
        branches are merged into L = 2: emitted +1, then -1."""
        dtype = z.dtype
        if self.fast_ry and state is None and isinstance(z, torch.Tensor) and not isinstance(last, torch.Tensor):
            # R_y(θ) on |0>, then measure: P(+1) = cos²(θ/2) = (1 + cos θ)/2, in four ops
            # (the generic path below builds and squares the amplitudes).
            theta = self._angle(0, _Evaluator(z, last, inplace=False, z_owned=False))
            if not isinstance(theta, torch.Tensor):
                theta = torch.full(z.shape, float(theta), dtype=dtype, device=z.device)
            if self.noise is not None:
                plus = self.noise.plus_probability(theta).unsqueeze(-1)
                return BranchResult(torch.cat([plus, 1 - plus], dim=-1), (1, -1), None)
            half_c = torch.cos(theta).mul(0.5).unsqueeze(-1)
            probs = torch.cat([0.5 + half_c, 0.5 - half_c], dim=-1)
            return BranchResult(probs, (1, -1), None)
        u = lambda a: a.unsqueeze(-1) if isinstance(a, torch.Tensor) else a
        ev = _Evaluator(u(z), u(last), inplace=False, z_owned=False)
        if self.noise is not None:
            return self._noisy_branch(z, last, state, ev)
        amps = self._fresh_amps(None if state is None else (u(state[0]), u(state[1])))
        basis = [True] * self.k
        emit_bits: list[int] = [0]  # per local branch: the emitted bit
        for i, op in enumerate(self.ops):
            if op[0] == "gate":
                self._gate_step(i, ev, amps, basis)
                continue
            r = op[1]
            is_emit = op[0] == "measure" and op[2]
            if self._measure_branch(amps, r, dtype, z.device):
                n = len(emit_bits)
                emit_bits = ([0] * n + [1] * n) if is_emit else emit_bits + emit_bits
            elif is_emit:  # certain outcome: no new branches
                emit_bits = [self._certain_bit(amps, r)] * len(emit_bits)
            if op[0] == "reset":
                self._move_to_zero(amps, r)
            basis[r] = True
        if self.carried:  # trace out the ancillas: branch on them and forget the outcome
            for r in range(1, self.k):
                if not basis[r] and self._measure_branch(amps, r, dtype, z.device):
                    emit_bits = emit_bits + emit_bits
        L = len(emit_bits)
        emit = tuple(1 - 2 * b for b in emit_bits)
        shapes = [x.shape if isinstance(x, torch.Tensor) else torch.Size() for x in (z, last) + tuple(state or ())]
        shape = torch.broadcast_shapes(*shapes) + (L,)
        zero = torch.zeros(shape, dtype=dtype, device=z.device)
        probs = _sum(_abs2(a) for a in amps if a is not None) + zero
        if not self.carried:
            plus = _sum(probs[..., l] for l in range(L) if emit[l] == 1)
            minus = _sum(probs[..., l] for l in range(L) if emit[l] == -1)
            zl = zero[..., 0]
            plus = zl if plus is None else plus
            minus = zl if minus is None else minus
            return BranchResult(torch.stack([plus, minus], -1), (1, -1), None)
        m = 1 << (self.k - 1)
        q0 = _sum(amps[i] for i in range(len(amps)) if not i & m and amps[i] is not None)
        q1 = _sum(amps[i] for i in range(len(amps)) if i & m and amps[i] is not None)
        pos = probs > 0
        # Normalise where the branch is possible; the where() keeps 0/0 out of the backward pass.
        inv = torch.where(pos, torch.rsqrt(torch.where(pos, probs, torch.ones_like(probs))), zero)
        post = tuple((zero if q is None else q * inv + zero) for q in (q0, q1))
        return BranchResult(probs, emit, post)

    def _noisy_branch(self, z, last, state, ev) -> BranchResult:
        """`branch` under device noise: the density matrix's branches (true and recorded
        outcome of the emitted measurement); post is the carried qubit's Bloch vector."""
        shapes = [torch.as_tensor(x).shape for x in (z, last) + tuple(state or ())]
        shape = torch.broadcast_shapes(*shapes)
        probs, emit, post = self.noise.branch(self, ev, state, shape, z.dtype)
        if self.carried:
            return BranchResult(probs, emit, post)
        plus = sum(probs[..., l] for l in range(len(emit)) if emit[l] == 1)
        minus = sum(probs[..., l] for l in range(len(emit)) if emit[l] == -1)
        return BranchResult(torch.stack([plus, minus], -1), (1, -1), None)

    def _certain_bit(self, amps, r) -> int:
        m = 1 << (self.k - 1 - r)
        return 1 if any(amps[i] is not None for i in range(len(amps)) if i & m) else 0

    def _measure_branch(self, amps, r, dtype, device=None):
        """Split every amplitude into (outcome 0 | outcome 1) halves along the last dim."""
        m = 1 << (self.k - 1 - r)
        ones = [i for i in range(len(amps)) if i & m and amps[i] is not None]
        zeros = [i for i in range(len(amps)) if not i & m and amps[i] is not None]
        if not ones or not zeros:
            return None
        for i in range(len(amps)):
            a = amps[i]
            if a is None:
                continue
            if not isinstance(a, torch.Tensor):  # a constant amplitude (no angle touched it yet)
                a = torch.full((1,), a, dtype=_dtype_of(a, dtype), device=device)
            zero = torch.zeros_like(a)
            amps[i] = torch.cat([zero, a] if i & m else [a, zero], dim=-1)
        return True

    # ----------------------------------------------------------------- convenience

    def emit_probabilities(self, z, last: Value = 1.0, state=None) -> torch.Tensor:
        """P(emitted = +1) for every element (exact, differentiable)."""
        res = self.branch(z, last, state)
        plus = sum(res.probs[..., l] for l, e in enumerate(res.emit) if e == 1)
        return plus + torch.zeros_like(res.probs[..., 0])


# Scalar-or-tensor arithmetic where None stands for an exact zero.


def _abs2(a: torch.Tensor | Number) -> Value:
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            return a.real * a.real + a.imag * a.imag
        return a * a
    return abs(a) ** 2


def _mul(a, b):
    # Exact zeros and ones of the gate table cost nothing.
    if a is None or b is None or (not isinstance(a, torch.Tensor) and a == 0) \
            or (not isinstance(b, torch.Tensor) and b == 0):
        return None
    if not isinstance(a, torch.Tensor) and a == 1:
        return b
    if not isinstance(b, torch.Tensor) and b == 1:
        return a
    if not isinstance(a, torch.Tensor) and a == -1:
        return -b
    return a * b


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b




def _sum(items):
    out = None
    for x in items:
        out = x if out is None else out + x
    return out


def _cos(x):
    return torch.cos(x) if isinstance(x, torch.Tensor) else math.cos(x)


def _sin(x):
    return torch.sin(x) if isinstance(x, torch.Tensor) else math.sin(x)


def _dtype_of(a, real: torch.dtype) -> torch.dtype:
    if isinstance(a, complex):
        return torch.complex64 if real == torch.float32 else torch.complex128
    return real

