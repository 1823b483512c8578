"""Local simulation of one quantum neuron, vectorised over [images, shots, neurons].

A `NeuronKernel` is built from a `NeuronDef` and the bindings of one layer. It knows
nothing about the stdlib neurons: it compiles the neuron's angle expressions and runs
its op list on a tiny state vector (2^k amplitudes, k registers) whose every amplitude
is a tensor over the batch. Two ways to run it:

* `sample`: one stochastic trajectory per element (measurements draw outcomes with the
  Born rule, collapse and renormalise). Used for the forward pass.
* `branch`: every measurement splits the state into both outcomes, kept unnormalised,
  so a branch's probability is its squared norm: a differentiable function of z. Used
  for exact expectations and exact outcome distributions.

Amplitudes are held as a list indexed by the basis state; an entry is `None` when it is
exactly zero (so |0...0> costs nothing and a measurement whose outcome is certain by
construction draws nothing). Register 0 is the most significant bit of the index; the
neuron's `qubit` (if any) is register 0, ancillas follow in declaration order.

Random numbers come from `RandomFields`: counter-based streams keyed by (layer,
measurement), indexed by the element's position in the image-major [B, S, N] layout, so
a sample does not depend on how the batch was chunked.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error

Number = Union[int, float, complex]
Value = Union[Number, torch.Tensor]

# Names an angle expression may use besides z, last and the neuron's parameters.
# (The front end may already have folded them to constants; both forms are accepted.)
EXPR_CONSTANTS: dict[str, float] = {"pi": math.pi, "inf": math.inf}

# --------------------------------------------------------------------------- elementwise helpers


def sign_pos(x: Value) -> Value:
    """sign with sign(0) = +1 (also for -0.0, hence the `+ 0.0`, which maps -0.0 to +0.0)."""
    if isinstance(x, torch.Tensor):
        return torch.copysign(torch.ones((), dtype=x.dtype), x + 0.0)
    return 1.0 if x >= 0 or math.isnan(x) else -1.0


def _abs2(a: torch.Tensor | Number) -> Value:
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            return a.real * a.real + a.imag * a.imag
        return a * a
    return abs(a) ** 2


def _fdiv(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:  # IEEE semantics for the constant folder
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)


def _fpow(x: float, y: float) -> float:
    try:
        r = x ** y
    except (OverflowError, ZeroDivisionError):
        return math.inf
    return r if not isinstance(r, complex) else math.nan


def _fmath(name: str, x: float) -> float:
    try:
        return {
            "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
            "acos": math.acos, "atan": math.atan, "exp": math.exp, "log": math.log,
            "sqrt": math.sqrt, "tanh": math.tanh, "abs": abs,
        }[name](x)
    except (ValueError, OverflowError):
        return math.nan if name != "exp" else math.inf


_TORCH_UNARY = {
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "asin": torch.asin,
    "acos": torch.acos, "atan": torch.atan, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "tanh": torch.tanh, "abs": torch.abs,
}
_TORCH_UNARY_INPLACE = {
    "sin": torch.Tensor.sin_, "cos": torch.Tensor.cos_, "tan": torch.Tensor.tan_,
    "asin": torch.Tensor.asin_, "acos": torch.Tensor.acos_, "atan": torch.Tensor.atan_,
    "exp": torch.Tensor.exp_, "log": torch.Tensor.log_, "sqrt": torch.Tensor.sqrt_,
    "tanh": torch.Tensor.tanh_, "abs": torch.Tensor.abs_,
}

# --------------------------------------------------------------------------- expression compiler
# Compiled nodes are tuples (cheap to walk at run time):
#   ("c", value) ("z",) ("last",) ("neg", a) ("bin", op, a, b)
#   ("fn", name, args)          built-in; "clip1" is the one-argument squash clip
#   ("sign", a)                 sign with sign(0) = +1
#   ("limit", fn, args, num, den)  fn(num/den, *rest) whose den is only known at run time


class _Compiler:
    def __init__(self, neuron: ir.NeuronDef, bound: Mapping[str, Any]):
        self.neuron = neuron
        self.bound = bound  # param name -> number or squash name
        self.uses: dict[str, int] = {"z": 0, "last": 0}

    def compile(self, e: ir.Expr):
        if isinstance(e, ir.Const):
            return ("c", float(e.value))
        if isinstance(e, ir.Ref):
            if e.name in ir.NEURON_SPECIAL_NAMES:
                self.uses[e.name] += 1
                return (e.name,)
            if e.name in self.bound:
                v = self.bound[e.name]
                if isinstance(v, str):
                    raise error("Q0624", f"squash parameter `{e.name}` of neuron `{self.neuron.name}` "
                                "is used as a value", e.span, label="a squash can only be called",
                                help=f"write `{e.name}(...)`")
                return ("c", float(v))
            if e.name in EXPR_CONSTANTS:
                return ("c", EXPR_CONSTANTS[e.name])
            raise error("Q0624", f"unknown name `{e.name}` in neuron `{self.neuron.name}`", e.span,
                        label="not a parameter of this neuron")
        if isinstance(e, ir.Unary):
            if e.op != "-":
                raise error("Q0624", f"unknown unary operator `{e.op}`", e.span)
            a = self.compile(e.operand)
            return ("c", -a[1]) if a[0] == "c" else ("neg", a)
        if isinstance(e, ir.Binary):
            if e.op not in ("+", "-", "*", "/", "^"):
                raise error("Q0624", f"unknown operator `{e.op}`", e.span)
            a, b = self.compile(e.lhs), self.compile(e.rhs)
            if a[0] == "c" and b[0] == "c":
                return ("c", _binop_const(e.op, a[1], b[1]))
            return ("bin", e.op, a, b)
        if isinstance(e, ir.Call):
            return self._call(e)
        raise error("Q0624", f"unsupported expression node {type(e).__name__}", getattr(e, "span", None))

    def _call(self, e: ir.Call):
        name = e.function
        if name in self.bound:
            fn = self.bound[name]
            if not isinstance(fn, str) or fn not in ir.SQUASH_FUNCTIONS:
                raise error("Q0624", f"`{name}` is called but is bound to {fn!r}, not a squash", e.span,
                            help=f"a squash is one of {', '.join(ir.SQUASH_FUNCTIONS)}")
            if len(e.args) != 1:
                raise error("Q0624", f"squash `{name}` takes one argument, got {len(e.args)}", e.span)
            fname = "tanh" if fn == "tanh" else "clip1"
        elif name in ir.BUILTIN_FUNCTIONS:
            if len(e.args) != ir.BUILTIN_FUNCTIONS[name]:
                raise error("Q0624", f"`{name}` takes {ir.BUILTIN_FUNCTIONS[name]} argument(s), "
                            f"got {len(e.args)}", e.span)
            fname = name
        else:
            raise error("Q0624", f"unknown function `{name}` in neuron `{self.neuron.name}`", e.span)
        args = [self.compile(a) for a in e.args]
        if fname in ("tanh", "clip1", "clip"):
            first = e.args[0]
            # The classical limit: squash(x / a) with a = 0 is sign(x), sign(0) = +1.
            if isinstance(first, ir.Binary) and first.op == "/":
                num, den = self.compile_quiet(first.lhs), self.compile_quiet(first.rhs)
                if den[0] == "c":
                    if den[1] == 0.0:
                        return _limit_node(fname, num, args[1:])
                else:
                    return ("limit", fname, tuple(args[1:]), num, den)
        if all(a[0] == "c" for a in args):
            return ("c", _fn_const(fname, [a[1] for a in args]))
        return ("fn", fname, tuple(args))

    def compile_quiet(self, e: ir.Expr):
        """Compile without counting uses a second time (the sub-tree was counted already)."""
        saved = dict(self.uses)
        try:
            return self.compile(e)
        finally:
            self.uses = saved


def _limit_node(fname: str, num, rest):
    if fname == "clip":  # clip(x/0, lo, hi): hi for x >= 0, lo otherwise
        lo, hi = rest
        return ("bin", "+", ("bin", "*", ("c", 0.5), ("bin", "+", lo, hi)),
                ("bin", "*", ("bin", "*", ("c", 0.5), ("bin", "-", hi, lo)), ("sign", num)))
    return ("sign", num) if num[0] != "c" else ("c", sign_pos(num[1]))


def _binop_const(op: str, x: float, y: float) -> float:
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        return _fdiv(x, y)
    return _fpow(x, y)


def _fn_const(name: str, args: Sequence[float]) -> float:
    if name == "sign":
        return sign_pos(args[0])
    if name == "clip1":
        return min(max(args[0], -1.0), 1.0)
    if name == "clip":
        return min(max(args[0], args[1]), args[2])
    if name == "min":
        return min(args)
    if name == "max":
        return max(args)
    return _fmath(name, args[0])


class _Evaluator:
    """Evaluates compiled expressions on tensors. With `inplace`, temporaries it created
    itself (and `z` when the neuron reads it exactly once) are overwritten in place:
    in a no-grad forward pass that saves one allocation and one memory pass per op."""

    def __init__(self, z: Value, last: Value, inplace: bool, z_owned: bool):
        self.z, self.last = z, last
        self.inplace = inplace
        self.z_owned = inplace and z_owned

    def __call__(self, node) -> Value:
        return self.ev(node)[0]

    def ev(self, n) -> tuple[Value, bool]:
        """(value, owned): owned values are temporaries this evaluation may overwrite."""
        v, owned = self._ev(n)
        return v, owned and self.inplace

    def _ev(self, n) -> tuple[Value, bool]:
        kind = n[0]
        if kind == "c":
            return n[1], False
        if kind == "z":
            owned, self.z_owned = self.z_owned, False  # only the first (only) use may own it
            return self.z, owned
        if kind == "last":
            return self.last, False
        if kind == "neg":
            a, own = self.ev(n[1])
            if isinstance(a, torch.Tensor):
                return (a.neg_() if own else -a), True
            return -a, False
        if kind == "bin":
            return self._bin(n[1], n[2], n[3])
        if kind == "sign":
            a, _ = self.ev(n[1])
            return sign_pos(a), isinstance(a, torch.Tensor)
        if kind == "fn":
            return self._fn(n[1], n[2])
        if kind == "limit":
            _, fname, rest, num, den = n
            x, _ = self.ev(num)
            y, _ = self.ev(den)
            restv = [self.ev(r)[0] for r in rest]
            ref = next(a for a in (x, y) if isinstance(a, torch.Tensor))
            y = torch.as_tensor(y, dtype=ref.dtype)
            zero = y == 0
            safe = torch.where(zero, torch.ones((), dtype=y.dtype), y)  # no 0/0, even in backward
            val = _apply_fn(fname, [x / safe] + restv)
            if fname == "clip":  # clip(x/0, lo, hi): hi for x >= 0, lo otherwise
                lo, hi = (torch.as_tensor(r, dtype=ref.dtype) for r in restv)
                limv = torch.where(torch.as_tensor(x) >= 0, hi, lo)
            else:
                limv = sign_pos(torch.as_tensor(x, dtype=ref.dtype))
            return torch.where(zero, limv, val), True
        raise AssertionError(kind)

    def _bin(self, op, na, nb) -> tuple[Value, bool]:
        a, oa = self.ev(na)
        b, ob = self.ev(nb)
        ta, tb = isinstance(a, torch.Tensor), isinstance(b, torch.Tensor)
        if not ta and not tb:
            return _binop_const(op, a, b), False
        if op == "^":
            return torch.pow(a, b) if ta else torch.pow(torch.as_tensor(a, dtype=b.dtype), b), True
        # In place into an owned operand whose shape is already the result's shape.
        if oa and ta and (not tb or b.shape == a.shape or _broadcasts_into(b, a)):
            if op == "+":
                return a.add_(b), True
            if op == "-":
                return a.sub_(b), True
            if op == "*":
                return a.mul_(b), True
            return a.div_(b), True
        if ob and tb and (not ta or _broadcasts_into(a, b)):
            if op == "+":
                return b.add_(a), True
            if op == "*":
                return b.mul_(a), True
            # number - b, number / b: into b as well (a fresh tensor would cost page faults)
            a0 = a if ta else torch.full((), a, dtype=b.dtype)
            return (torch.sub(a0, b, out=b) if op == "-" else torch.div(a0, b, out=b)), True
        if op == "+":
            return a + b, True
        if op == "-":
            return a - b, True
        if op == "*":
            return a * b, True
        return a / b, True

    def _fn(self, name, nargs) -> tuple[Value, bool]:
        vals = [self.ev(x) for x in nargs]
        args = [v for v, _ in vals]
        if len(args) == 1 and isinstance(args[0], torch.Tensor) and vals[0][1] and name in _TORCH_UNARY_INPLACE:
            return _TORCH_UNARY_INPLACE[name](args[0]), True
        if len(args) == 1 and isinstance(args[0], torch.Tensor) and vals[0][1] and name == "clip1":
            return args[0].clamp_(-1.0, 1.0), True
        return _apply_fn(name, args), True


def _broadcasts_into(small: torch.Tensor, big: torch.Tensor) -> bool:
    """Whether `small` broadcasts to exactly `big`'s shape (an in-place op on big is valid).
    Written out: torch.broadcast_shapes costs tens of microseconds per call."""
    s, b = small.shape, big.shape
    if len(s) > len(b):
        return False
    for x, y in zip(reversed(s), reversed(b)):
        if x != y and x != 1:
            return False
    return True


def _apply_fn(name: str, args: list) -> Value:
    if not any(isinstance(a, torch.Tensor) for a in args):
        return _fn_const(name, args)
    x = args[0]
    if name in _TORCH_UNARY:
        return _TORCH_UNARY[name](x)
    if name == "sign":
        return sign_pos(x)
    if name == "clip1":
        return torch.clamp(x, -1.0, 1.0)
    ref = next(a for a in args if isinstance(a, torch.Tensor))
    t = [a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=ref.dtype) for a in args]
    if name == "clip":
        return torch.minimum(torch.maximum(t[0], t[1]), t[2])
    if name == "min":
        return torch.minimum(t[0], t[1])
    if name == "max":
        return torch.maximum(t[0], t[1])
    raise AssertionError(name)


# --------------------------------------------------------------------------- random fields


# Random numbers are generated on up to two threads (numpy's generators release the GIL),
# never more than torch is allowed to use. The values do not depend on the thread count.
_MAX_RNG_THREADS = 2


def _default_rng_threads() -> int:
    return max(1, min(_MAX_RNG_THREADS, torch.get_num_threads()))


_POOL: Optional[ThreadPoolExecutor] = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_MAX_RNG_THREADS, thread_name_prefix="qnnc-rng")
    return _POOL


_SCRATCH = threading.local()

# Below this many values a second thread costs more than it saves.
_PARALLEL_MIN = 1 << 16


class RandomFields:
    """Uniform random numbers for one forward pass, drawn from counter-based streams.

    Entropy comes from the caller's `torch.Generator` (two 62-bit draws per pass), so a
    seeded generator makes every pass reproducible. Value `i` of field `key` is fixed by
    (entropy, key, i) alone: chunking the batch, or splitting the work across threads,
    never changes a sample. The streams are numpy's PCG64DXSM, which can jump ahead in
    O(log n); it is several times faster than torch's CPU generator, and the sampler is
    dominated by random-number generation once the matrix products are done.

    `uniform_12` returns values f = 1 + j·2^-m, j uniform, in [1, 2): random mantissa
    bits under the exponent of 1.0 (m = 23 for float32, 52 for float64), so making them
    costs two integer passes and no conversion, and every value is exact.
    """

    def __init__(self, generator: torch.Generator, dtype: torch.dtype):
        draw = torch.randint(0, 2 ** 62, (2,), generator=generator, dtype=torch.int64)
        self.entropy = [int(v) for v in draw]
        self.dtype = dtype
        self._states: dict[tuple, dict] = {}

    def _stream(self, key: tuple, offset_draws: int) -> np.random.PCG64DXSM:
        st = self._states.get(key)
        if st is None:
            ss = np.random.SeedSequence(self.entropy + [int(k) for k in key])
            st = self._states[key] = np.random.PCG64DXSM(ss).state
        bg = getattr(_SCRATCH, "bg", None)
        if bg is None:  # one scratch generator per thread: setting a state is cheaper than seeding
            bg = _SCRATCH.bg = np.random.PCG64DXSM(0)
        bg.state = st
        if offset_draws:
            bg.advance(offset_draws)
        return bg

    def uniform_12(self, key: tuple, start: int, shape: Sequence[int],
                   out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Values start .. start + prod(shape) - 1 of field `key`, as a tensor of `shape`
        (written into `out`, a contiguous tensor of that many elements, when given)."""
        count, start = int(math.prod(shape)), int(start)
        if out is not None and out.is_contiguous() and out.numel() == count and out.dtype == self.dtype:
            result = out.view(*shape)
        else:
            result = torch.empty(tuple(shape), dtype=self.dtype)
        bits = result.view(-1).view(torch.int32 if self.dtype == torch.float32 else torch.int64).numpy()
        bits = bits.view(np.uint32 if self.dtype == torch.float32 else np.uint64)
        if count >= _PARALLEL_MIN and _default_rng_threads() > 1:
            half = (count // 2) & ~1
            jobs = [(0, half), (half, count)]
            list(_pool().map(lambda j: self._fill(key, start, bits, j[0], j[1]), jobs))
        else:
            self._fill(key, start, bits, 0, count)
        return result

    def _fill(self, key, start, bits, lo, hi):
        # Value i of the field is 32-bit word i (float32) or 64-bit draw i (float64).
        g0 = start + lo
        out = bits[lo:hi]
        if bits.dtype == np.uint32:
            first, skip = divmod(g0, 2)
            ndraw = (skip + hi - lo + 1) // 2
            raw = self._stream(key, first).random_raw(ndraw).view(np.uint32)[skip:skip + hi - lo]
            np.right_shift(raw, 9, out=out)  # 23 random mantissa bits
            np.bitwise_or(out, np.uint32(0x3F800000), out=out)  # exponent of 1.0
        else:
            raw = self._stream(key, g0).random_raw(hi - lo)
            np.right_shift(raw, np.uint64(12), out=out)
            np.bitwise_or(out, np.uint64(0x3FF0000000000000), out=out)


def sample_pm1(t: Value, f: torch.Tensor) -> torch.Tensor:
    """The emitted value of a Z measurement, -1 with probability (1 + t)/2 where
    t = p1 - p0, given f uniform on the grid in [1, 2) (consumed). With v = 2f - 3,
    uniform in [-1, 1): -1 exactly when v < t, i.e. f < (3 + t)/2. So t = -1 (p1 = 0)
    never gives -1 and t = 1 (p1 = 1) always does, whatever the rounding of t."""
    thr = (t + 3.0) * 0.5
    if isinstance(thr, torch.Tensor) and not _broadcasts_into(thr, f):
        f = f - thr
    else:
        f.sub_(thr)
    # copysign(1, f - thr): +0.0 (-> +1) when they are equal, matching `f < thr` for -1.
    return torch.copysign(_ONE[f.dtype], f, out=f)


_ONE = {torch.float32: torch.ones((), dtype=torch.float32), torch.float64: torch.ones((), dtype=torch.float64)}
_THREE_HALVES = {dt: torch.full((), -1.5, dtype=dt) for dt in (torch.float32, torch.float64)}


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
    """The compiled local simulation of one layer's neurons (one NeuronDef + bindings)."""

    def __init__(self, neuron: ir.NeuronDef, bindings: Mapping[str, Any] | Sequence[ir.Binding] = (),
                 *, span: Optional[ir.Span] = None, force_generic: bool = False):
        if not isinstance(bindings, Mapping):
            bindings = {b.name: b.value for b in bindings}
        self.neuron = neuron
        self.span = span or neuron.span
        self.params = self._bind(neuron, bindings)
        self._check_structure(neuron)
        comp = _Compiler(neuron, self.params)
        self.ops: list[tuple] = []
        for op in neuron.ops:
            if isinstance(op, ir.GateOp):
                idx = tuple(self.reg_index[t] for t in op.targets)
                angle = comp.compile(op.angle) if op.gate in ir.GATES_1Q_ANGLE else None
                self.ops.append(("gate", op.gate, idx, angle))
            elif isinstance(op, ir.MeasureOp):
                self.ops.append(("measure", self.reg_index[op.target], op.emit))
            else:
                self.ops.append(("reset", self.reg_index[op.target]))
        self.uses_z = comp.uses["z"]
        self.uses_last = comp.uses["last"] > 0
        if self.uses_last and not self.carried:
            raise error("Q0621", f"neuron `{neuron.name}` reads `last` but has no carried qubit",
                        neuron.span, help="`last` is the previous layer's outcome of a carried "
                        "neuron; declare `qubit q carried`")
        self.is_complex = any(o[0] == "gate" and o[1] in ("rx", "rz") for o in self.ops)
        # Whether the state must be collapsed after op i (anything later can observe it).
        n = len(self.ops)
        self._state_live_after = [self.carried or i < n - 1 for i in range(n)]
        # Fast path, recognised by structure: one fresh qubit, R_y(θ), emit-measure.
        # P(+1) = cos²(θ/2): one cosine and one comparison per sample (see sample()).
        self.fast_ry = (not force_generic and len(self.registers) == 1 and not self.carried
                        and n == 2 and self.ops[0][:2] == ("gate", "ry") and self.ops[1][0] == "measure"
                        and self.ops[1][2])

    # ----------------------------------------------------------------- construction

    @staticmethod
    def _bind(neuron: ir.NeuronDef, bindings: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        known = {p.name for p in neuron.params}
        for name in bindings:
            if name not in known:
                raise error("Q0624", f"neuron `{neuron.name}` has no parameter `{name}`", neuron.span)
        for p in neuron.params:
            v = bindings.get(p.name, p.default)
            if v is None:
                raise error("Q0624", f"parameter `{p.name}` of neuron `{neuron.name}` is not bound",
                            p.span, help="give it a value where the layer uses the neuron")
            if p.type == "squash":
                if v not in ir.SQUASH_FUNCTIONS:
                    raise error("Q0624", f"squash `{p.name}` is bound to {v!r}", p.span,
                                help=f"one of {', '.join(ir.SQUASH_FUNCTIONS)}")
            else:
                if isinstance(v, str):
                    raise error("Q0624", f"parameter `{p.name}` of neuron `{neuron.name}` is {p.type}, "
                                f"got {v!r}", p.span)
                v = float(v)
                if (p.lower is not None and v < p.lower) or (p.upper is not None and v > p.upper):
                    raise error("Q0624", f"parameter `{p.name}` = {v:g} is outside "
                                f"[{p.lower}, {p.upper}]", p.span)
            out[p.name] = v
        return out

    def _check_structure(self, neuron: ir.NeuronDef) -> None:
        qubits = [r for r in neuron.registers if r.role == "qubit"]
        if len(qubits) > 1:
            raise error("Q0623", f"neuron `{neuron.name}` declares {len(qubits)} qubits; at most one",
                        qubits[1].span)
        for r in neuron.registers:
            if r.role not in ("qubit", "ancilla"):
                raise error("Q0623", f"register `{r.name}` has unknown role {r.role!r}", r.span)
            if r.carried and r.role != "qubit":
                raise error("Q0623", f"ancilla `{r.name}` cannot be carried", r.span)
        regs = qubits + [r for r in neuron.registers if r.role == "ancilla"]
        names = [r.name for r in regs]
        if len(set(names)) != len(names):
            raise error("Q0623", f"neuron `{neuron.name}` declares a register twice", neuron.span)
        if not regs:
            raise error("Q0623", f"neuron `{neuron.name}` has no registers", neuron.span)
        self.registers = regs
        self.reg_index = {r.name: i for i, r in enumerate(regs)}
        self.k = len(regs)
        self.carried = bool(qubits and qubits[0].carried)
        emits = 0
        for op in neuron.ops:
            targets = op.targets if isinstance(op, ir.GateOp) else (op.target,)
            for t in targets:
                if t not in self.reg_index:
                    raise error("Q0623", f"unknown register `{t}` in neuron `{neuron.name}`", op.span)
            if isinstance(op, ir.GateOp):
                if op.gate not in ir.GATES:
                    raise error("Q0623", f"unknown gate `{op.gate}`", op.span)
                want = 2 if op.gate in ir.GATES_2Q else 1
                if len(targets) != want or len(set(targets)) != want:
                    raise error("Q0623", f"`{op.gate}` acts on {want} distinct register(s)", op.span)
                if (op.angle is None) != (op.gate not in ir.GATES_1Q_ANGLE):
                    raise error("Q0623", f"`{op.gate}` {'needs' if op.angle is None else 'takes no'} angle",
                                op.span)
            elif isinstance(op, ir.MeasureOp) and op.emit:
                emits += 1
        if emits != 1:
            raise error("Q0623", f"neuron `{neuron.name}` has {emits} `emit measure`; exactly one is needed",
                        neuron.span, help="mark the measurement that is the activation with `emit`")
        if self.k > 8:
            raise error("Q0623", f"neuron `{neuron.name}` has {self.k} registers; the local simulator "
                        "handles at most 8", neuron.span)

    # ----------------------------------------------------------------- gates

    def _angle(self, node, ev: _Evaluator):
        return ev(node)

    def _apply_gate(self, amps: list, gate: str, idx: tuple, theta) -> None:
        k = self.k
        if gate in ("cx", "cz"):
            mc, mt = 1 << (k - 1 - idx[0]), 1 << (k - 1 - idx[1])
            for i in range(1 << k):
                if i & mc and not i & mt:
                    j = i | mt
                    if gate == "cx":
                        amps[i], amps[j] = amps[j], amps[i]
                    elif amps[j] is not None:  # cz: phase -1 on |11>
                        amps[j] = -amps[j]
            return
        m = 1 << (k - 1 - idx[0])
        if gate == "x":
            for i in range(1 << k):
                if not i & m:
                    amps[i], amps[i | m] = amps[i | m], amps[i]
            return
        if gate == "h":
            r = 1.0 / math.sqrt(2.0)
            mat = (r, r, r, -r)
        elif gate == "ry":
            half = _mul(theta, 0.5)
            c, s = _cos(half), _sin(half)
            mat = (c, _neg(s), s, c)
        elif gate == "rx":
            half = _mul(theta, 0.5)
            c, s = _cos(half), _sin(half)
            mis = _mul(s, -1j)
            mat = (c, mis, mis, c)
        elif gate == "rz":
            half = _mul(theta, 0.5)
            mat = (_expi(_neg(half)), None, None, _expi(half))
        else:
            raise AssertionError(gate)
        m00, m01, m10, m11 = mat
        for i in range(1 << k):
            if i & m:
                continue
            a0, a1 = amps[i], amps[i | m]
            if a0 is None and a1 is None:
                continue
            amps[i] = _add(_mul(m00, a0), _mul(m01, a1))
            amps[i | m] = _add(_mul(m10, a0), _mul(m11, a1))

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
               threshold: Optional[torch.Tensor] = None):
        """One trajectory per element. z: pre-activations broadcastable to `shape`
        ([B, S, N] image-major, or [B, 1, N] when deterministic across shots); last: the
        previous outcomes (or 1.0); state: carried (amp0, amp1) or None for |0>. Returns
        (d, post) with d = ±1 of `shape` and post the carried qubit's state (or None).
        Runs without autograd; the caller attaches the straight-through gradient. `out`:
        an optional buffer for d; `threshold`: `fast_threshold(z)` computed beforehand
        (fast path only), e.g. once per image for all shots."""
        with torch.no_grad():
            ev = _Evaluator(z, last, inplace, z_owned=self.uses_z == 1)
            if self.fast_ry:
                thr = threshold if threshold is not None else self._fast_threshold(ev, z.dtype)
                f = fields.uniform_12(key + (1,), start, shape, out=out)
                f.add_(thr)
                return torch.copysign(_ONE[f.dtype], f, out=f), None
            amps = self._fresh_amps(state)
            basis = [True] * self.k  # register known to be in a basis state
            d = None
            for i, op in enumerate(self.ops):
                if op[0] == "gate":
                    theta = ev(op[3]) if op[3] is not None else None
                    self._apply_gate(amps, op[1], op[2], theta)
                    for r in op[2]:
                        basis[r] = False
                else:
                    r = op[1]
                    reset = op[0] == "reset"
                    live = self._state_live_after[i] or reset
                    outcome = self._measure_sample(amps, r, fields, key + (i,), start, shape, live, z.dtype)
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
                                             True, z.dtype)
                post = self._qubit_state(amps, shape, z.dtype)
            return d, post

    def fast_threshold(self, z: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
        """Fast path: the per-element threshold that `sample` compares with the random
        field (it depends on z only, so it can be computed once for all shots)."""
        assert self.fast_ry
        with torch.no_grad():
            return self._fast_threshold(_Evaluator(z, 1.0, inplace, z_owned=self.uses_z == 1), z.dtype)

    def _fast_threshold(self, ev: _Evaluator, dtype) -> torch.Tensor:
        theta, own = ev.ev(self.ops[0][3])
        if not isinstance(theta, torch.Tensor):
            theta = torch.full((), float(theta), dtype=dtype)
        c = theta.cos_() if own else torch.cos(theta)
        # As sample_pm1 with t = p1 - p0 = -cos θ: -1 exactly when f < (3 - cos θ)/2, i.e.
        # when f + (cos θ / 2 - 3/2) < 0; that threshold is exact on f's grid.
        return torch.add(_THREE_HALVES[c.dtype], c, alpha=0.5, out=c)  # c is ours either way

    def _measure_sample(self, amps, r, fields, key, start, shape, live, dtype):
        m = 1 << (self.k - 1 - r)
        ones = [i for i in range(len(amps)) if i & m and amps[i] is not None]
        zeros = [i for i in range(len(amps)) if not i & m and amps[i] is not None]
        if not ones or not zeros:  # outcome fixed by construction: nothing to draw
            return torch.full(tuple(shape), 1.0 if not ones else -1.0, dtype=dtype)
        p1 = _sum(_abs2(amps[i]) for i in ones)
        p0 = _sum(_abs2(amps[i]) for i in zeros)
        d = sample_pm1(p1 - p0, fields.uniform_12(key, start, shape))
        if live:
            tiny = torch.finfo(dtype).tiny
            s1 = (1.0 - d) * 0.5 * torch.rsqrt(torch.clamp(torch.as_tensor(p1, dtype=dtype), min=tiny))
            s0 = (1.0 + d) * 0.5 * torch.rsqrt(torch.clamp(torch.as_tensor(p0, dtype=dtype), min=tiny))
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

    def _qubit_state(self, amps, shape, dtype):
        m = 1 << (self.k - 1)
        q0 = _sum(amps[i] for i in range(len(amps)) if not i & m and amps[i] is not None)
        q1 = _sum(amps[i] for i in range(len(amps)) if i & m and amps[i] is not None)
        full = lambda a: (torch.zeros(tuple(shape), dtype=dtype) if a is None else
                          (a if isinstance(a, torch.Tensor) else torch.full((), a, dtype=dtype))
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
        u = lambda a: a.unsqueeze(-1) if isinstance(a, torch.Tensor) else a
        ev = _Evaluator(u(z), u(last), inplace=False, z_owned=False)
        amps = self._fresh_amps(None if state is None else (u(state[0]), u(state[1])))
        basis = [True] * self.k
        emit_bits: list[int] = [0]  # per local branch: the emitted bit
        for op in self.ops:
            if op[0] == "gate":
                theta = ev(op[3]) if op[3] is not None else None
                self._apply_gate(amps, op[1], op[2], theta)
                for r in op[2]:
                    basis[r] = False
                continue
            r = op[1]
            is_emit = op[0] == "measure" and op[2]
            if self._measure_branch(amps, r, dtype):
                n = len(emit_bits)
                emit_bits = ([0] * n + [1] * n) if is_emit else emit_bits + emit_bits
            elif is_emit:  # certain outcome: no new branches
                emit_bits = [self._certain_bit(amps, r)] * len(emit_bits)
            if op[0] == "reset":
                self._move_to_zero(amps, r)
            basis[r] = True
        if self.carried:  # trace out the ancillas: branch on them and forget the outcome
            for r in range(1, self.k):
                if not basis[r] and self._measure_branch(amps, r, dtype):
                    emit_bits = emit_bits + emit_bits
        L = len(emit_bits)
        emit = tuple(1 - 2 * b for b in emit_bits)
        shapes = [torch.as_tensor(x).shape for x in (z, last) + tuple(state or ())]
        shape = torch.broadcast_shapes(*shapes) + (L,)
        zero = torch.zeros(shape, dtype=dtype)
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

    def _certain_bit(self, amps, r) -> int:
        m = 1 << (self.k - 1 - r)
        return 1 if any(amps[i] is not None for i in range(len(amps)) if i & m) else 0

    def _measure_branch(self, amps, r, dtype):
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
                a = torch.full((1,), a, dtype=_dtype_of(a, dtype))
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


def _mul(a, b):
    if a is None or b is None:
        return None
    return a * b


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _neg(a):
    return None if a is None else -a


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


def _expi(x):
    """exp(i x) for a real x."""
    if isinstance(x, torch.Tensor):
        return torch.polar(torch.ones_like(x), x)
    return complex(math.cos(x), math.sin(x))
