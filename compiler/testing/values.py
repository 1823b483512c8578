"""Names and constant expressions for generated programs, each expression with the
value the compiler gives it."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Optional

from hypothesis import strategies as st

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.expressions import CONSTANTS, ConstantError, Number, apply_builtin, arith
from qnnc.compiler.parser import KEYWORDS as _PARSER_KEYWORDS


# Keywords are contextual in the grammar, so any of them may name a parameter, a layer...
KEYWORDS = tuple(sorted(_PARSER_KEYWORDS))
# Names with a meaning of their own somewhere (constants, built-ins, activations, inits,
# stdlib neurons...): never generated as user names, so a program's meaning is plain.
RESERVED = frozenset(
    {"pi", "e", "inf", "z", "last", "fan_in", "fan_out", "on", "off", "true", "false", "dense",
     "sgd", "adam", "straight_through", "exact", "argmax", "logits", "cross_entropy", "rotation",
     "weak", "neurons", "real", "int", "squash", "normal", "kaiming", "uniform", "zeros",
     "checkpoint", "scale", "pool", "threshold", "mnist"}
    | set(ir.BUILTIN_FUNCTIONS) | set(ir.CLASSICAL_ACTIVATIONS) | set(ir.SQUASH_FUNCTIONS)
    | set(ir.GATES))

# Values stay far from overflow and from the compiler's integer limit (2**62).
_BOUND = 1e6


@functools.lru_cache(maxsize=None)
def names() -> st.SearchStrategy[str]:
    """A user name: a short identifier or one of the language's keywords."""
    ident = st.from_regex(re.compile(r"[a-z][a-z0-9_]{0,5}", re.ASCII), fullmatch=True)
    return st.one_of(ident, ident, ident, st.sampled_from(KEYWORDS)).filter(lambda n: n not in RESERVED)


# --------------------------------------------------------------------------- values
# The compiler's own constant evaluation (ints stay ints under + - * and small integer
# powers), so a generated program is valid exactly when the compiler says so. None: the
# compiler refuses it, or the value is outside what the generator keeps.


def binop(op: str, a: Number, b: Number) -> Optional[Number]:
    """`a op b` as the compiler computes it, or None."""
    try:
        v = arith(op, a, b)
    except ConstantError:
        return None
    if (isinstance(v, float) and not math.isfinite(v)) or abs(v) > _BOUND:
        return None
    return v


FUNCTION_NAMES = tuple(sorted(ir.BUILTIN_FUNCTIONS))


def apply_function(fn: str, args: list[Number]) -> Optional[float]:
    """A built-in function's value as the compiler computes it, or None."""
    try:
        v = apply_builtin(fn, [float(a) for a in args])
    except (ValueError, OverflowError):
        return None
    return v if math.isfinite(v) and abs(v) <= _BOUND else None


def literal_of(v: Number) -> S.Expr:
    """A literal for v (negative: `-` applied to a literal), parsing back to exactly v."""
    text = str(abs(v)) if isinstance(v, int) else repr(abs(float(v)))
    node = S.Num(text)
    return S.Neg(node) if v < 0 else node


@dataclass(frozen=True)
class Valued:
    """An expression with its value (None: not a constant, e.g. an angle in z)."""

    expr: S.Expr
    value: Optional[Number]


_NICE_REALS = (0.5, 0.25, 0.1, 0.01, 1.5, 2.5, 0.001, 1e-05, 3.75, 100.0, 2.0, 1e3)


def pick(draw, seq):
    """One element of a sequence (cheaper than a fresh `sampled_from` per draw)."""
    return seq[draw(st.integers(0, len(seq) - 1))]


def shuffled(draw, seq) -> list:
    """The elements of a sequence in a drawn order."""
    out = list(seq)
    for i in range(len(out) - 1, 0, -1):
        j = draw(st.integers(0, i))
        out[i], out[j] = out[j], out[i]
    return out


def fresh_name(draw, used: set) -> str:
    """A name not in `used` (and added to it)."""
    n = draw(names())
    if n in used:
        n = f"{n}_{len(used)}"
    used.add(n)
    return n


def random_literal(draw, integral: bool = False) -> Valued:
    if integral or draw(st.booleans()):
        v: Number = draw(st.integers(0, 12))
    elif draw(st.booleans()):
        v = pick(draw, _NICE_REALS)
    else:
        v = draw(st.floats(0, 50, allow_nan=False, allow_infinity=False))
    return Valued(literal_of(v), v)


def constant_expr(draw, env: dict[str, Number], depth: int = 2, integral: bool = False) -> Valued:
    """A constant expression over literals, `env`'s names (and pi, e unless integral),
    with its value. Integral: the value is a Python int (int arithmetic only)."""
    names_ = [n for n, v in env.items() if not integral or isinstance(v, int)]

    def leaf() -> Valued:
        kind = draw(st.integers(0, 2))
        if kind == 1 and names_:
            n = pick(draw, names_)
            return Valued(S.Name(n), env[n])
        if kind == 2 and not integral:
            n = pick(draw, ("pi", "e"))
            return Valued(S.Name(n), CONSTANTS[n])
        return random_literal(draw, integral)

    if depth <= 0:
        return leaf()
    kind = pick(draw, ("leaf", "leaf", "neg", "bin", "bin", "pow") + (() if integral else ("fn",)))
    if kind == "leaf":
        return leaf()
    if kind == "neg":
        x = constant_expr(draw, env, depth - 1, integral)
        return Valued(S.Neg(x.expr), -x.value)
    if kind == "bin":
        op = pick(draw, ("+", "-", "*") if integral else ("+", "-", "*", "/"))
        a = constant_expr(draw, env, depth - 1, integral)
        b = constant_expr(draw, env, depth - 1, integral)
        v = binop(op, a.value, b.value)
        if v is None:
            return a
        return Valued(S.BinOp(op, a.expr, b.expr), v)
    if kind == "pow":
        # `2 ^ 3`, `2 ^ -1`, `-2 ^ 2` (that is -(2 ^ 2)), `(-2) ^ 2`
        base = draw(st.integers(-3, 4))
        exp = draw(st.integers(-2 if not integral else 0, 3))
        base_e = literal_of(base) if not (base < 0 and draw(st.booleans())) else S.Neg(S.Num(str(-base)))
        v = binop("^", base, exp)
        if v is None:
            return leaf()
        node = S.BinOp("^", base_e, literal_of(exp))
        if draw(st.booleans()) and base >= 0:
            return Valued(S.Neg(node), -v)  # -b ^ k: the power binds tighter than `-`
        return Valued(node, v)
    fn = pick(draw, FUNCTION_NAMES)
    arity = ir.BUILTIN_FUNCTIONS[fn]
    args = [constant_expr(draw, env, depth - 1) for _ in range(arity)]
    v = apply_function(fn, [a.value for a in args])
    if v is None:
        return args[0]
    return Valued(S.Apply(fn, tuple(S.Arg(None, a.expr) for a in args)), v)


def real_in(draw, env: dict[str, Number], lo: Optional[Valued], hi: Optional[Valued]) -> Valued:
    """A real expression whose value lies in [lo, hi] (bounds None: unbounded); clipped
    with the bounds' own expressions when the drawn value falls outside."""
    x = constant_expr(draw, env)
    ok_lo = lo is None or x.value >= lo.value
    ok_hi = hi is None or x.value <= hi.value
    if ok_lo and ok_hi:
        return x
    if lo is not None and hi is not None:
        v = min(max(float(x.value), float(lo.value)), float(hi.value))
        return Valued(S.Apply("clip", (S.Arg(None, x.expr), S.Arg(None, lo.expr), S.Arg(None, hi.expr))), v)
    fn, bound = ("max", lo) if not ok_lo else ("min", hi)
    assert bound is not None
    v = apply_function(fn, [x.value, bound.value])
    return Valued(S.Apply(fn, (S.Arg(None, x.expr), S.Arg(None, bound.expr))), v)


def int_equal(draw, env: dict[str, Number], target: int) -> Valued:
    """An integer-valued expression equal to `target`: a literal, an int parameter, or
    int arithmetic corrected by a literal; sometimes a whole float like `8 / 2`."""
    kind = pick(draw, ["lit", "lit", "arith", "name", "div"])
    if kind == "name":
        matches = [n for n, v in env.items() if isinstance(v, int) and v == target]
        if matches:
            return Valued(S.Name(pick(draw, matches)), target)
        kind = "arith"
    if kind == "arith":
        base = constant_expr(draw, env, depth=2, integral=True)
        diff = target - base.value
        if diff == 0 and draw(st.booleans()):
            return Valued(base.expr, target)
        op = "+" if diff >= 0 else "-"
        return Valued(S.BinOp(op, base.expr, literal_of(abs(diff))), target)
    if kind == "div" and target != 0:
        k = draw(st.integers(1, 4))
        return Valued(S.BinOp("/", literal_of(target * k), literal_of(k)), float(target))
    return Valued(literal_of(target), target)
