"""The torch evaluator of the one neuron semantics: the closed forms that
`qnnc.compiler.angles.bind_neuron` produces, evaluated on tensors over a batch.

With `inplace`, temporaries the evaluator created itself (and `z` when the neuron reads
it exactly once) are overwritten in place: in a no-grad forward pass that saves one
allocation and one memory pass per operation. The numpy evaluator of the same forms is
`qnnc.compiler.angles.evaluate`.
"""

from __future__ import annotations

import math
from typing import Union

import torch

from qnnc.compiler import angles

Number = Union[int, float, complex]
Value = Union[Number, torch.Tensor]

# --------------------------------------------------------------------------- elementwise helpers


def sign_pos(x: Value) -> Value:
    """sign with sign(0) = +1 (also for -0.0, hence the `+ 0.0`, which maps -0.0 to +0.0)."""
    if isinstance(x, torch.Tensor):
        return torch.copysign(torch.ones((), dtype=x.dtype, device=x.device), x + 0.0)
    return angles.sign_pos(x)


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



class _Evaluator:
    """Evaluates compiled expressions on tensors. With `inplace`, temporaries it created
    itself (and `z` when the neuron reads it exactly once) are overwritten in place:
    in a no-grad forward pass that saves one allocation and one memory pass per op."""

    def __init__(self, z: Value, last: Value, inplace: bool, z_owned: bool):
        self.z, self.last = z, last
        ref = z if isinstance(z, torch.Tensor) else last
        self.device = ref.device if isinstance(ref, torch.Tensor) else None
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
            y = torch.as_tensor(y, dtype=ref.dtype, device=ref.device)
            zero = y == 0
            safe = torch.where(zero, torch.ones((), dtype=y.dtype, device=y.device), y)  # no 0/0, even in backward
            val = _apply_fn(fname, [x / safe] + restv)
            if fname == "clip":  # clip(x/0, lo, hi): hi for x >= 0, lo otherwise
                lo, hi = (torch.as_tensor(r, dtype=ref.dtype, device=ref.device) for r in restv)
                limv = torch.where(torch.as_tensor(x, device=ref.device) >= 0, hi, lo)
            else:
                limv = sign_pos(torch.as_tensor(x, dtype=ref.dtype, device=ref.device))
            return torch.where(zero, limv, val), True
        raise AssertionError(kind)

    def _bin(self, op, na, nb) -> tuple[Value, bool]:
        a, oa = self.ev(na)
        b, ob = self.ev(nb)
        ta, tb = isinstance(a, torch.Tensor), isinstance(b, torch.Tensor)
        if not ta and not tb:
            return angles.binop_const(op, a, b), False
        if op == "^":
            return torch.pow(a, b) if ta else torch.pow(torch.as_tensor(a, dtype=b.dtype, device=b.device), b), True
        # In place into an owned operand whose shape is already the result's shape.
        if oa and ta and (not tb or b.shape == a.shape or broadcasts_into(b, a)):
            if op == "+":
                return a.add_(b), True
            if op == "-":
                return a.sub_(b), True
            if op == "*":
                return a.mul_(b), True
            return a.div_(b), True
        if ob and tb and (not ta or broadcasts_into(a, b)):
            if op == "+":
                return b.add_(a), True
            if op == "*":
                return b.mul_(a), True
            # number - b, number / b: into b as well (a fresh tensor would cost page faults)
            a0 = a if ta else torch.full((), a, dtype=b.dtype, device=b.device)
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


_SATURATING = frozenset({"tanh", "clip1", "atan", "sign"})  # finite for every non-NaN argument, ±inf too


def bounded(form) -> bool:
    """Whether a closed form is finite for every z and `last` that are not NaN (±inf
    included): constants, and z or last only under saturating functions (tanh, clip,
    atan, sign) reached through scalings by finite non-zero constants. Conservative:
    False means "not known"."""
    if form is None:
        return True
    kind = form[0]
    if kind == "c":
        return isinstance(form[1], (int, float)) and math.isfinite(form[1])
    if kind == "neg":
        return bounded(form[1])
    if kind == "sign":
        return _not_nan(form[1])
    if kind == "bin":
        op, a, b = form[1], form[2], form[3]
        return op in "+-*" and bounded(a) and bounded(b)
    if kind == "fn":
        name, args = form[1], form[2]
        if name in _SATURATING and len(args) == 1:
            return _not_nan(args[0])
        if name == "clip" and len(args) == 3:
            return _not_nan(args[0]) and bounded(args[1]) and bounded(args[2])
        if name in ("sin", "cos") and len(args) == 1:
            return bounded(args[0])
        return False
    return False


_INPLACE_UNARY = {"sin": "sin_", "cos": "cos_", "tanh": "tanh_", "atan": "atan_", "abs": "abs_"}


def compile_inplace(form):
    """A closed form compiled once into a list of in-place steps on an owned tensor, or
    None when the form is not of that shape (z read once, every binary operation has one
    constant operand, unary functions of the table). The compiled function overwrites
    its argument, which must be an owned float tensor, and returns it: the evaluator's
    result in fewer Python steps (no tree walk per call)."""
    steps = []

    def const(n):
        return n[0] == "c" and isinstance(n[1], (int, float))

    def walk(n) -> bool:
        kind = n[0]
        if kind == "z":
            return True
        if kind == "neg":
            if not walk(n[1]):
                return False
            steps.append(lambda t: t.neg_())
            return True
        if kind == "bin":
            op, a, b = n[1], n[2], n[3]
            if const(b) and not const(a):
                if not walk(a):
                    return False
                c = float(b[1])
                steps.append({"+": lambda t: t.add_(c), "-": lambda t: t.sub_(c), "*": lambda t: t.mul_(c),
                              "/": lambda t: t.div_(c)}.get(op) or (lambda t: t.pow_(c)))
                return True
            if const(a) and not const(b) and op in "+-*/":
                if not walk(b):
                    return False
                c = float(a[1])
                if op == "+":
                    steps.append(lambda t: t.add_(c))
                elif op == "*":
                    steps.append(lambda t: t.mul_(c))
                elif op == "-":  # c - t in one op, rounded as the evaluator rounds it
                    steps.append(lambda t: torch.sub(torch.full((), c, dtype=t.dtype, device=t.device), t, out=t))
                else:  # c / t, rounded as the evaluator rounds it
                    steps.append(lambda t: torch.div(torch.full((), c, dtype=t.dtype, device=t.device), t, out=t))
                return True
            return False
        if kind == "fn" and len(n[2]) == 1:
            name = n[1]
            if name not in _INPLACE_UNARY and name not in ("clip1", "sign"):
                return False
            if not walk(n[2][0]):
                return False
            if name == "clip1":
                steps.append(lambda t: t.clamp_(-1.0, 1.0))
            elif name == "sign":
                steps.append(lambda t: torch.copysign(torch.ones((), dtype=t.dtype, device=t.device), t.add_(0.0), out=t))
            else:
                meth = _INPLACE_UNARY[name]
                steps.append(lambda t: getattr(t, meth)())
            return True
        return False

    if form is None or not walk(form):
        return None
    frozen = tuple(steps)

    def run(t):
        for step in frozen:
            t = step(t)
        return t

    return run


def _not_nan(form) -> bool:
    """Whether a form is not NaN for every z and last that are not NaN (±inf included)."""
    kind = form[0]
    if kind in ("z", "last"):
        return True
    if kind == "neg":
        return _not_nan(form[1])
    if kind == "bin" and form[1] in "*/" and form[3][0] == "c":
        c = form[3][1]
        return isinstance(c, (int, float)) and math.isfinite(c) and c != 0 and _not_nan(form[2])
    if kind == "bin" and form[1] == "*" and form[2][0] == "c":
        return _not_nan(("bin", "*", form[3], form[2]))
    return bounded(form)


def broadcasts_into(small: torch.Tensor, big: torch.Tensor) -> bool:
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
        return angles.fn_const(name, args)
    x = args[0]
    if name in _TORCH_UNARY:
        return _TORCH_UNARY[name](x)
    if name == "sign":
        return sign_pos(x)
    if name == "clip1":
        return torch.clamp(x, -1.0, 1.0)
    ref = next(a for a in args if isinstance(a, torch.Tensor))
    t = [a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=ref.dtype, device=ref.device) for a in args]
    if name == "clip":
        return torch.minimum(torch.maximum(t[0], t[1]), t[2])
    if name == "min":
        return torch.minimum(t[0], t[1])
    if name == "max":
        return torch.maximum(t[0], t[1])
    raise AssertionError(name)

