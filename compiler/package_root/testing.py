"""Hypothesis strategies for `.qnn` programs: `qnnc.testing`.

For property tests of the compiler and of anything that consumes its IR:

    from hypothesis import given, strategies as st
    from qnnc.compiler import format_source, parse_program
    from qnnc.testing import messy_layout, programs

    @given(programs())
    def test_checks(text):
        parse_program(text)                    # every generated program is valid

    @given(st.data())
    def test_fmt_ignores_layout(data):
        text = data.draw(programs())
        assert format_source(data.draw(messy_layout(text))) == text

Strategies:

    syntax_modules()  -> qnnc.compiler.syntax.Module   a valid program as a syntax tree
    programs()        -> str                            its canonical text (`qnnc fmt` layout)
    ir_programs()     -> qnnc.compiler.ir.Program       programs().map(parse_program)
    messy_layout(text, comments=False) -> str           the same program, re-laid out
    names()           -> str                            a user name (identifier or keyword)

Generated programs are small (a few parameters, neurons and layers) so that hundreds of
examples run in seconds, but they use every construct of the language: typed and ranged
`param`s whose values are expressions over earlier params; user neurons with real, int
and squash parameters, a qubit (sometimes carried) and ancillas, built from
ry/rx/rz/x/h/cx/cz/measure/reset with angle expressions in `z`, `last` (only with a
carried qubit), the neuron's parameters, `pi` and the built-in functions; the stdlib
neurons; networks of random depth and width with classical and quantum activations bound
to valid arguments (positional and keyword), preprocessing steps, every init, readouts;
and train blocks with random statements and checkpoint schedules. Names are drawn from
identifiers and from the language's (contextual) keywords.

Every generated program elaborates without error: the generator tracks the value of
every expression it writes (with the same int/float rules as the compiler) and only
writes values that fit the declared ranges. That is part of the property being tested.
"""

from __future__ import annotations

import functools
import math
import random
import re
from dataclasses import dataclass
from typing import Optional

from hypothesis import strategies as st

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.expressions import ConstantError, Number, apply_builtin, arith
from qnnc.compiler.parser import KEYWORDS as _PARSER_KEYWORDS

__all__ = ["syntax_modules", "programs", "ir_programs", "messy_layout", "names"]

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


def _binop(op: str, a: Number, b: Number) -> Optional[Number]:
    try:
        v = arith(op, a, b)
    except ConstantError:
        return None
    if (isinstance(v, float) and not math.isfinite(v)) or abs(v) > _BOUND:
        return None
    return v


_FUNCTION_NAMES = tuple(sorted(ir.BUILTIN_FUNCTIONS))


def _apply(fn: str, args: list[Number]) -> Optional[float]:
    try:
        v = apply_builtin(fn, [float(a) for a in args])
    except (ValueError, OverflowError):
        return None
    return v if math.isfinite(v) and abs(v) <= _BOUND else None


def _num(v: Number) -> S.Expr:
    """A literal for v (negative: `-` applied to a literal), parsing back to exactly v."""
    text = str(abs(v)) if isinstance(v, int) else repr(abs(float(v)))
    node = S.Num(text)
    return S.Neg(node) if v < 0 else node


@dataclass(frozen=True)
class _E:
    """An expression with its value (None: not a constant, e.g. an angle in z)."""

    expr: S.Expr
    value: Optional[Number]


_NICE_REALS = (0.5, 0.25, 0.1, 0.01, 1.5, 2.5, 0.001, 1e-05, 3.75, 100.0, 2.0, 1e3)
_CONSTANTS = {"pi": math.pi, "e": math.e}


def _pick(draw, seq):
    """One element of a sequence (cheaper than a fresh `sampled_from` per draw)."""
    return seq[draw(st.integers(0, len(seq) - 1))]


def _shuffle(draw, seq) -> list:
    """The elements of a sequence in a drawn order."""
    out = list(seq)
    for i in range(len(out) - 1, 0, -1):
        j = draw(st.integers(0, i))
        out[i], out[j] = out[j], out[i]
    return out


def _fresh(draw, used: set) -> str:
    """A name not in `used` (and added to it)."""
    n = draw(names())
    if n in used:
        n = f"{n}_{len(used)}"
    used.add(n)
    return n


def _literal(draw, integral: bool = False) -> _E:
    if integral or draw(st.booleans()):
        v: Number = draw(st.integers(0, 12))
    elif draw(st.booleans()):
        v = _pick(draw, _NICE_REALS)
    else:
        v = draw(st.floats(0, 50, allow_nan=False, allow_infinity=False))
    return _E(_num(v), v)


def _const_expr(draw, env: dict[str, Number], depth: int = 2, integral: bool = False) -> _E:
    """A constant expression over literals, `env`'s names (and pi, e unless integral),
    with its value. Integral: the value is a Python int (int arithmetic only)."""
    names_ = [n for n, v in env.items() if not integral or isinstance(v, int)]

    def leaf() -> _E:
        kind = draw(st.integers(0, 2))
        if kind == 1 and names_:
            n = _pick(draw, names_)
            return _E(S.Name(n), env[n])
        if kind == 2 and not integral:
            n = _pick(draw, ("pi", "e"))
            return _E(S.Name(n), _CONSTANTS[n])
        return _literal(draw, integral)

    if depth <= 0:
        return leaf()
    kind = _pick(draw, ("leaf", "leaf", "neg", "bin", "bin", "pow") + (() if integral else ("fn",)))
    if kind == "leaf":
        return leaf()
    if kind == "neg":
        x = _const_expr(draw, env, depth - 1, integral)
        return _E(S.Neg(x.expr), -x.value)
    if kind == "bin":
        op = _pick(draw, ("+", "-", "*") if integral else ("+", "-", "*", "/"))
        a = _const_expr(draw, env, depth - 1, integral)
        b = _const_expr(draw, env, depth - 1, integral)
        v = _binop(op, a.value, b.value)
        if v is None:
            return a
        return _E(S.BinOp(op, a.expr, b.expr), v)
    if kind == "pow":
        # `2 ^ 3`, `2 ^ -1`, `-2 ^ 2` (that is -(2 ^ 2)), `(-2) ^ 2`
        base = draw(st.integers(-3, 4))
        exp = draw(st.integers(-2 if not integral else 0, 3))
        base_e = _num(base) if not (base < 0 and draw(st.booleans())) else S.Neg(S.Num(str(-base)))
        v = _binop("^", base, exp)
        if v is None:
            return leaf()
        node = S.BinOp("^", base_e, _num(exp))
        if draw(st.booleans()) and base >= 0:
            return _E(S.Neg(node), -v)  # -b ^ k: the power binds tighter than `-`
        return _E(node, v)
    fn = _pick(draw, _FUNCTION_NAMES)
    arity = ir.BUILTIN_FUNCTIONS[fn]
    args = [_const_expr(draw, env, depth - 1) for _ in range(arity)]
    v = _apply(fn, [a.value for a in args])
    if v is None:
        return args[0]
    return _E(S.Apply(fn, tuple(S.Arg(None, a.expr) for a in args)), v)


def _real_in(draw, env: dict[str, Number], lo: Optional[_E], hi: Optional[_E]) -> _E:
    """A real expression whose value lies in [lo, hi] (bounds None: unbounded); clipped
    with the bounds' own expressions when the drawn value falls outside."""
    x = _const_expr(draw, env)
    ok_lo = lo is None or x.value >= lo.value
    ok_hi = hi is None or x.value <= hi.value
    if ok_lo and ok_hi:
        return x
    if lo is not None and hi is not None:
        v = min(max(float(x.value), float(lo.value)), float(hi.value))
        return _E(S.Apply("clip", (S.Arg(None, x.expr), S.Arg(None, lo.expr), S.Arg(None, hi.expr))), v)
    fn, bound = ("max", lo) if not ok_lo else ("min", hi)
    assert bound is not None
    v = _apply(fn, [x.value, bound.value])
    return _E(S.Apply(fn, (S.Arg(None, x.expr), S.Arg(None, bound.expr))), v)


def _int_equal(draw, env: dict[str, Number], target: int) -> _E:
    """An integer-valued expression equal to `target`: a literal, an int parameter, or
    int arithmetic corrected by a literal; sometimes a whole float like `8 / 2`."""
    kind = _pick(draw, ["lit", "lit", "arith", "name", "div"])
    if kind == "name":
        matches = [n for n, v in env.items() if isinstance(v, int) and v == target]
        if matches:
            return _E(S.Name(_pick(draw, matches)), target)
        kind = "arith"
    if kind == "arith":
        base = _const_expr(draw, env, depth=2, integral=True)
        diff = target - base.value
        if diff == 0 and draw(st.booleans()):
            return _E(base.expr, target)
        op = "+" if diff >= 0 else "-"
        return _E(S.BinOp(op, base.expr, _num(abs(diff))), target)
    if kind == "div" and target != 0:
        k = draw(st.integers(1, 4))
        return _E(S.BinOp("/", _num(target * k), _num(k)), float(target))
    return _E(_num(target), target)


# --------------------------------------------------------------------------- neurons


@dataclass
class _ParamSpec:
    name: str
    type: str  # real, int, squash
    lo: Optional[_E]
    hi: Optional[_E]
    has_default: bool


@dataclass
class _NeuronSpec:
    name: str
    params: list[_ParamSpec]
    carried: bool


def _stdlib_specs() -> list[_NeuronSpec]:
    """`rotation` and `weak` as stdlib/neurons.qnn declares them."""
    zero = _E(S.Num("0"), 0)
    half_pi = _E(S.BinOp("/", S.Name("pi"), S.Num("2")), math.pi / 2)
    a = _ParamSpec("a", "real", zero, None, True)
    f = _ParamSpec("f", "squash", None, None, True)
    return [_NeuronSpec("rotation", [a, f], False),
            _NeuronSpec("weak", [a, _ParamSpec("g", "real", zero, half_pi, True), f], True)]


_RANGE_BOUNDS = [
    # (expression, value) of finite range bounds; `inf` bounds are drawn separately
    (S.Num("0"), 0), (S.Num("1"), 1), (S.Neg(S.Num("1")), -1), (S.Num("0.5"), 0.5),
    (S.Name("pi"), math.pi), (S.BinOp("/", S.Name("pi"), S.Num("2")), math.pi / 2),
    (S.BinOp("*", S.Num("2"), S.Name("pi")), 2 * math.pi), (S.Neg(S.Name("pi")), -math.pi),
    (S.Num("10"), 10),
]


def _neuron_param(draw, name: str) -> tuple[S.NeuronParamSyntax, _ParamSpec]:
    type_ = _pick(draw, ["real", "real", "int", "squash"])
    if type_ == "squash":
        default = _pick(draw, [None, "tanh", "clip"])
        return (S.NeuronParamSyntax(name, "squash", None, S.Name(default) if default else None),
                _ParamSpec(name, "squash", None, None, default is not None))
    rng, lo, hi = None, None, None
    if draw(st.booleans()):
        if type_ == "int":
            a, b = sorted(draw(st.lists(st.integers(-3, 8), min_size=2, max_size=2)))
            lo, hi = _E(_num(a), a), _E(_num(b), b)
            lo_e, hi_e = lo.expr, hi.expr
        else:
            (a_e, a), (b_e, b) = sorted(draw(st.lists(st.sampled_from(_RANGE_BOUNDS), min_size=2, max_size=2)),
                                        key=lambda t: t[1])
            lo, hi = _E(a_e, a), _E(b_e, b)
            lo_e, hi_e = a_e, b_e
            if draw(st.booleans()):
                lo, lo_e = None, S.Neg(S.Name("inf"))
            elif draw(st.booleans()):
                hi, hi_e = None, S.Name("inf")
        rng = S.Range(lo_e, hi_e)
    default = None
    if draw(st.booleans()):
        if type_ == "int":
            low = lo.value if lo is not None else -3
            high = hi.value if hi is not None else 8
            default = _int_equal(draw, {}, draw(st.integers(int(low), int(high)))).expr
        else:
            default = _real_in(draw, {}, lo, hi).expr
    return (S.NeuronParamSyntax(name, type_, rng, default),
            _ParamSpec(name, type_, lo, hi, default is not None))


def _angle(draw, reals: list[str], squashes: list[str], carried: bool, depth: int = 3) -> _E:
    """An angle expression in z, last (with a carried qubit), the neuron's parameters,
    pi and the built-ins. Constant parts are folded by the compiler, so they must have a
    finite value; value None marks a part that depends on z."""
    symbols = ["z"] + (["last"] if carried else []) + reals

    def leaf() -> _E:
        if draw(st.integers(0, 2)):
            return _E(S.Name(_pick(draw, symbols)), None)
        return _const_expr(draw, {}, depth=1)

    if depth <= 0:
        return leaf()
    kind = _pick(draw, ("leaf", "neg", "bin", "bin", "fn") + (("squash",) if squashes else ()))
    if kind == "leaf":
        return leaf()
    if kind == "neg":
        x = _angle(draw, reals, squashes, carried, depth - 1)
        return _E(S.Neg(x.expr), None if x.value is None else -x.value)
    if kind == "squash":
        x = _angle(draw, reals, squashes, carried, depth - 1)
        return _E(S.Apply(_pick(draw, squashes), (S.Arg(None, x.expr),)), None)
    if kind == "bin":
        op = _pick(draw, ("+", "-", "*", "/", "^"))
        a = _angle(draw, reals, squashes, carried, depth - 1)
        b = _angle(draw, reals, squashes, carried, depth - 1)
        if a.value is not None and b.value is not None:
            v = _binop(op, float(a.value), float(b.value))  # constants fold as floats
            if v is None:
                return a
            return _E(S.BinOp(op, a.expr, b.expr), v)
        return _E(S.BinOp(op, a.expr, b.expr), None)
    fn = _pick(draw, _FUNCTION_NAMES)
    args = [_angle(draw, reals, squashes, carried, depth - 1) for _ in range(ir.BUILTIN_FUNCTIONS[fn])]
    if all(a.value is not None for a in args):
        v = _apply(fn, [a.value for a in args])
        if v is None:
            return args[0]
        return _E(S.Apply(fn, tuple(S.Arg(None, a.expr) for a in args)), v)
    return _E(S.Apply(fn, tuple(S.Arg(None, a.expr) for a in args)), None)


def _neuron(draw, name: str) -> tuple[S.NeuronSyntax, _NeuronSpec]:
    pnames = draw(st.lists(names(), max_size=3, unique=True))
    params = [_neuron_param(draw, n) for n in pnames]
    specs = [p for _, p in params]
    reals = [p.name for p in specs if p.type != "squash"]
    squashes = [p.name for p in specs if p.type == "squash"]
    reg_names = draw(st.lists(names(), min_size=1, max_size=3, unique=True))
    has_qubit = draw(st.booleans()) or len(reg_names) == 1
    carried = has_qubit and draw(st.booleans())
    body: list = []
    ancillas = reg_names[1:] if has_qubit else reg_names
    if has_qubit:
        body.append(S.QubitDecl(reg_names[0], carried))
    if ancillas:
        # one `ancilla a, b` or one declaration per ancilla
        if draw(st.booleans()):
            body.append(S.AncillaDecl(tuple(ancillas)))
        else:
            body.extend(S.AncillaDecl((a,)) for a in ancillas)
    ops = []
    for _ in range(draw(st.integers(0, 4))):
        kind = _pick(draw, ["angle", "angle", "1q", "2q", "measure", "reset"])
        target = _pick(draw, reg_names)
        if kind == "angle":
            gate = _pick(draw, ir.GATES_1Q_ANGLE)
            ops.append(S.GateStmt(gate, (_angle(draw, reals, squashes, carried).expr,), (target,)))
        elif kind == "1q":
            ops.append(S.GateStmt(_pick(draw, ir.GATES_1Q), (), (target,)))
        elif kind == "2q" and len(reg_names) >= 2:
            a, b = _shuffle(draw, reg_names)[:2]
            ops.append(S.GateStmt(_pick(draw, ir.GATES_2Q), (), (a, b)))
        elif kind == "measure":
            ops.append(S.MeasureStmt(target, False))
        else:
            ops.append(S.ResetStmt(target))
    if carried and draw(st.booleans()):
        # model B's opening move: undo the previous outcome `last` on the carried qubit
        angle = S.BinOp("*", S.BinOp("/", S.Name("pi"), S.Num("2")),
                        S.BinOp("-", S.Name("last"), _angle(draw, reals, squashes, carried, 2).expr))
        ops.insert(0, S.GateStmt("ry", (angle,), (reg_names[0],)))
    emit_at = draw(st.integers(0, len(ops)))
    ops.insert(emit_at, S.MeasureStmt(_pick(draw, reg_names), True))
    body.extend(ops)
    return (S.NeuronSyntax(name, tuple(p for p, _ in params), tuple(body)),
            _NeuronSpec(name, specs, carried))


def _bind(draw, spec: _NeuronSpec, env: dict[str, Number]) -> S.CallSyntax:
    """A call binding the neuron's parameters: the first few positionally, others by
    keyword in any order, parameters with defaults sometimes left out."""
    values = {}
    for p in spec.params:
        if p.has_default and draw(st.booleans()):
            continue
        if p.type == "squash":
            values[p.name] = S.Name(_pick(draw, ir.SQUASH_FUNCTIONS))
        elif p.type == "int":
            low = int(p.lo.value) if p.lo is not None else -3
            high = int(p.hi.value) if p.hi is not None else low + 8
            values[p.name] = _int_equal(draw, env, draw(st.integers(low, high))).expr
        else:
            values[p.name] = _real_in(draw, env, p.lo, p.hi).expr
    order = [p.name for p in spec.params]
    n_pos = 0
    while n_pos < len(order) and order[n_pos] in values and draw(st.booleans()):
        n_pos += 1
    args = [S.Arg(None, values[n]) for n in order[:n_pos]]
    keywords = [n for n in order[n_pos:] if n in values]
    keywords = _shuffle(draw, keywords) if keywords else []
    args += [S.Arg(n, values[n]) for n in keywords]
    if not args and draw(st.booleans()):
        return S.CallSyntax(spec.name, None)
    return S.CallSyntax(spec.name, tuple(args))


# --------------------------------------------------------------------------- networks


def _init(draw, env: dict[str, Number], fan_in: int, fan_out: int, layer: str) -> S.Expr:
    env = dict(env, fan_in=fan_in, fan_out=fan_out)
    kind = _pick(draw, ["normal", "normal", "kaiming", "uniform", "zeros", "checkpoint"])
    if kind == "normal":
        mean = _const_expr(draw, env, depth=1)
        if draw(st.booleans()):
            std = _E(S.BinOp("/", S.Num("1"), S.Apply("sqrt", (S.Arg(None, S.Name("fan_in")),))), None)
        else:
            std = _real_in(draw, env, _E(S.Num("0"), 0), None)
        form = draw(st.integers(0, 2))
        if form == 0:
            args = (S.Arg(None, mean.expr), S.Arg(None, std.expr))
        elif form == 1:
            args = (S.Arg("std", std.expr),)
        else:
            args = (S.Arg("std", std.expr), S.Arg("mean", mean.expr))
        return S.Apply("normal", args)
    if kind == "kaiming":
        form = draw(st.integers(0, 2))
        if form == 0:
            return S.Name("kaiming")
        gain = _real_in(draw, env, _E(S.Num("0"), 0), None)
        return S.Apply("kaiming", (S.Arg(None if form == 1 else "gain", gain.expr),))
    if kind == "uniform":
        a = _const_expr(draw, env, depth=1)
        b = _const_expr(draw, env, depth=1)
        if a.value > b.value:
            a, b = b, a
        return S.Apply("uniform", (S.Arg(None, a.expr), S.Arg(None, b.expr)))
    if kind == "zeros":
        return _pick(draw, [S.Name("zeros"), S.Apply("zeros", ())])
    args = [S.Arg(None, draw(_strings("runs/")))]
    extra = [S.Arg("tensor", S.Str(f'"{layer}"'))]
    if draw(st.booleans()):
        extra.append(S.Arg("step", _int_equal(draw, env, draw(st.integers(0, 500))).expr))
    return S.Apply("checkpoint", tuple(args + _shuffle(draw, extra)))


def _strings(prefix: str, suffix: str = "") -> st.SearchStrategy[S.Str]:
    """A string literal (with quotes) whose value starts with prefix; sometimes with escapes."""
    body = st.from_regex(re.compile(r'[a-z0-9_/.-]{1,8}(\\\\|\\"|\\t)?[a-z0-9_.]{0,4}', re.ASCII), fullmatch=True)
    return body.map(lambda b: S.Str(f'"{prefix}{b}{suffix}"'))


def _network(draw, name: str, env: dict[str, Number], neurons: list[_NeuronSpec]) -> tuple[S.NetworkSyntax, list[str]]:
    used = set()
    input_name = draw(names())
    used.add(input_name)
    dims = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    shape = list(dims)
    steps = []
    for _ in range(draw(st.integers(0, 3))):
        kind = _pick(draw, ["scale", "pool", "threshold"])
        if kind == "pool":
            divisors = [k for k in range(1, max(shape) + 1) if all(d % k == 0 for d in shape)]
            k = _pick(draw, divisors)
            shape = [d // k for d in shape]
            steps.append(S.CallSyntax("pool", (S.Arg(None, _int_equal(draw, env, k).expr),)))
        else:
            steps.append(S.CallSyntax(kind, (S.Arg(None, _const_expr(draw, env).expr),)))
    features = math.prod(shape)
    body: list = []
    prev, prev_size, prev_carried = input_name, features, False
    n_hidden = draw(st.integers(0, 3))
    layer_names = []
    for i in range(n_hidden + 1):
        output = i == n_hidden
        lname = _fresh(draw, used)
        layer_names.append(lname)
        size = draw(st.integers(1, 6))
        carried = False
        if not output and neurons and draw(st.booleans()):
            spec = _pick(draw, neurons)
            activation = _bind(draw, spec, env)
            carried = spec.carried
            if carried and prev_carried:
                size = prev_size  # a carried qubit continues the same-index neuron
        else:
            kind = _pick(draw, ir.CLASSICAL_ACTIVATIONS)
            activation = S.CallSyntax(kind, _pick(draw, [None, ()]))
        dense_args = [S.Arg(None, S.Name(prev))]
        keywords = []
        if draw(st.booleans()):
            keywords.append(S.Arg("bias", S.Name(_pick(draw, ["on", "off", "true", "false"]))))
        if draw(st.booleans()):
            keywords.append(S.Arg("init", _init(draw, env, prev_size, size, lname)))
        keywords = _shuffle(draw, keywords) if keywords else []
        split = draw(st.integers(0, len(keywords)))  # the source may come after a keyword
        dense_args = list(keywords[:split]) + dense_args + list(keywords[split:]) if draw(st.booleans()) \
            else dense_args + list(keywords)
        size_e = _int_equal(draw, env, size).expr
        body.append(S.LayerDecl("output" if output else "layer", lname, size_e, activation,
                                S.CallSyntax("dense", tuple(dense_args))))
        prev, prev_size, prev_carried = lname, size, carried
    # The layers keep their order; the input and the readout may sit anywhere among them
    # (usually the input first).
    inp = S.InputDecl(input_name, tuple(_int_equal(draw, env, d).expr for d in dims), tuple(steps))
    body.insert(0 if draw(st.integers(0, 3)) else draw(st.integers(0, len(body))), inp)
    if draw(st.booleans()):
        kind = _pick(draw, ir.READOUT_KINDS)
        shots = None
        if kind == "argmax" and draw(st.booleans()):
            shots = _int_equal(draw, env, draw(st.integers(1, 20))).expr
        readout = S.ReadoutDecl(kind, shots)
        body.insert(len(body) if draw(st.booleans()) else draw(st.integers(0, len(body))), readout)
    return S.NetworkSyntax(name, tuple(body)), layer_names


# --------------------------------------------------------------------------- training


def _dataset(draw) -> S.DatasetSyntax:
    if draw(st.booleans()):
        return S.DatasetSyntax("builtin", _pick(draw, ["mnist.train5k", "mnist.test", "mnist.train"]))
    return S.DatasetSyntax("file", draw(_strings("data/", ".npz")).text)


def _train(draw, name: str, env: dict[str, Number]) -> S.TrainSyntax:
    pos = _E(S.Num("0.001"), 0.001)
    zero = _E(S.Num("0"), 0)
    stmts = [S.TrainStmt("data", _dataset(draw))]
    if draw(st.booleans()):
        stmts.append(S.TrainStmt("validate", _dataset(draw)))
    if draw(st.booleans()):
        opt = _pick(draw, ["sgd", "adam"])
        keys = ["lr", "momentum", "weight_decay"] if opt == "sgd" else ["lr", "weight_decay"]
        chosen = [k for k in keys if draw(st.booleans())]
        args = []
        positional = draw(st.booleans())
        for i, k in enumerate(keys):
            if k not in chosen:
                positional = False  # a positional argument after a gap would shift meaning
                continue
            low = pos if k == "lr" else zero
            v = _real_in(draw, env, low, None).expr
            if k == "lr":
                v = S.BinOp("+", S.Apply("abs", (S.Arg(None, v),)), S.Num("0.001"))  # lr > 0
            args.append(S.Arg(None if positional else k, v))
        stmts.append(S.TrainStmt("optimizer", S.CallSyntax(opt, tuple(args) if args or draw(st.booleans()) else None)))
    for key, low, high in (("batch", 1, 256), ("epochs", 0, 20), ("seed", 0, 10 ** 6)):
        if draw(st.booleans()):
            stmts.append(S.TrainStmt(key, _int_equal(draw, env, draw(st.integers(low, high))).expr))
    if draw(st.booleans()):
        stmts.append(S.TrainStmt("loss", S.Name("cross_entropy")))
    if draw(st.booleans()):
        if draw(st.booleans()):
            stmts.append(S.TrainStmt("gradient", S.CallSyntax("exact", _pick(draw, [None, ()]))))
        else:
            form = draw(st.integers(0, 2))
            window = _real_in(draw, env, _E(S.Num("0.5"), 0.5), None).expr
            args = None if form == 0 else (S.Arg(None if form == 1 else "window", window),)
            stmts.append(S.TrainStmt("gradient", S.CallSyntax("straight_through", args)))
    if draw(st.booleans()):
        kinds = draw(st.lists(st.sampled_from(["every", "log", "steps", "end"]), min_size=1, max_size=4))
        if kinds.count("every") > 1:  # one interval per statement
            kinds = [k for i, k in enumerate(kinds) if k != "every" or i == kinds.index("every")]
        # Listed steps are unique across all the `at steps [...]` of one statement.
        steps = iter(draw(st.lists(st.integers(0, 5000), min_size=4 * len(kinds), max_size=4 * len(kinds),
                                   unique=True)))
        schedules = []
        for k in kinds:
            if k == "every":
                schedules.append(S.Schedule("every", (_int_equal(draw, env, draw(st.integers(1, 1000))).expr,)))
            elif k == "steps":
                listed = [next(steps) for _ in range(draw(st.integers(1, 4)))]
                schedules.append(S.Schedule("steps", tuple(_int_equal(draw, env, v).expr for v in listed)))
            else:
                schedules.append(S.Schedule(k, ()))
        stmts.append(S.TrainStmt("checkpoint", tuple(schedules)))
    return S.TrainSyntax(name, tuple(_shuffle(draw, stmts)))


# --------------------------------------------------------------------------- programs


def _param(draw, name: str, env: dict[str, Number]) -> tuple[S.ParamDecl, Number]:
    """A top-level param; returns the value the compiler stores (int for int params)."""
    type_ = _pick(draw, [None, None, "int", "real"])
    if type_ == "int" or (type_ is None and draw(st.booleans())):
        x = _int_equal(draw, env, draw(st.integers(0, 12)))
    else:
        x = _const_expr(draw, env)
    value = x.value
    if type_ == "int" or (type_ is None and isinstance(value, int)):
        stored: Number = int(value)
    else:
        stored = float(value)
    rng = None
    if draw(st.booleans()):
        lo = S.Neg(S.Name("inf")) if draw(st.booleans()) else _num(math.floor(value) - draw(st.integers(0, 3)))
        hi = S.Name("inf") if draw(st.booleans()) else _num(math.ceil(value) + draw(st.integers(0, 3)))
        rng = S.Range(lo, hi)
    return S.ParamDecl(name, type_, rng, x.expr), stored


@st.composite
def syntax_modules(draw) -> S.Module:
    """A valid program as a syntax tree (`qnnc.compiler.syntax.Module`); print it with
    `qnnc.compiler.formatter.format_module`."""
    items_params: list = []
    env: dict[str, Number] = {}
    for pname in draw(st.lists(names(), max_size=4, unique=True)):
        decl, value = _param(draw, pname, env)
        items_params.append(decl)
        env[pname] = value
    specs: list[_NeuronSpec] = []
    other: list = []
    if draw(st.booleans()):
        other.append(S.Import("neurons", "stdlib"))
        specs.extend(_stdlib_specs())
    taken = {s.name for s in specs}
    for nname in [_fresh(draw, taken) for _ in range(draw(st.integers(0, 2)))]:
        neuron, spec = _neuron(draw, nname)
        other.append(neuron)
        specs.append(spec)
    for netname in draw(st.lists(names(), max_size=2, unique=True)):
        net, _ = _network(draw, netname, env, specs)
        other.append(net)
        if draw(st.booleans()):
            other.append(_train(draw, netname, env))
    # Params keep their order (each may use the ones before it); the rest goes anywhere.
    other = _shuffle(draw, other) if other else []
    items: list = []
    pi = oi = 0
    while pi < len(items_params) or oi < len(other):
        if oi >= len(other) or (pi < len(items_params) and draw(st.booleans())):
            items.append(items_params[pi])
            pi += 1
        else:
            items.append(other[oi])
            oi += 1
    return S.Module("<generated>", tuple(items))


def programs() -> st.SearchStrategy[str]:
    """The canonical text (`qnnc fmt` layout) of a random valid `.qnn` program."""
    from qnnc.compiler.formatter import format_module

    return syntax_modules().map(format_module)


def ir_programs() -> st.SearchStrategy[ir.Program]:
    """`programs()` elaborated: `programs().map(parse_program)` (file name `<generated>`)."""
    from qnnc.compiler import parse_program

    return programs().map(lambda text: parse_program(text, "<generated>"))


# --------------------------------------------------------------------------- layout

# A token of the language, a comment, or a run of the whitespace the grammar ignores.
_LEX = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?'
                  r'|[A-Za-z_][A-Za-z0-9_]*|[ \t\r\n\f]+|.', re.S)
_WORDISH = re.compile(r"[A-Za-z0-9_.\"]")  # two such tokens side by side would merge
_SPACES = (" ", " ", "  ", "\t", " \t ", "\f")
_COMMENT_CHARS = " abcdefghijklmnopqrstuvwxyz0123456789{}()[]#\"',.=*-"


def _is_space(tok: str) -> bool:
    return tok[0] in " \t\r\n\f"


def _gap(rng: random.Random, original: str, needs_space: bool, comments: bool, newline: bool = True) -> str:
    """New whitespace for a gap between two tokens. A gap that held a blank line keeps
    one (`qnnc fmt` keeps the author's blank lines between statements); one that did not
    gets at most one newline, so no blank line appears. Spaces where tokens would merge."""
    parts = [rng.choice(_SPACES) if needs_space or rng.random() < 0.5 else ""]
    if original.count("\n") >= 2:
        parts.append("\n" + rng.choice(("", " ", "\t")) + "\n" * rng.randint(1, 2))
    elif newline and rng.random() < 0.3:
        parts.append("\n" + rng.choice(("", "    ", "\t", "  ")))
    if comments and rng.random() < 0.2:
        text = "".join(rng.choice(_COMMENT_CHARS) for _ in range(rng.randint(0, 16)))
        parts.insert(1, " #" + text + "\n")
    return "".join(parts)


def _relayout(tokens: list[str], seed: int, comments: bool) -> str:
    rng = random.Random(seed)
    # The tokens of lines that end in a comment after code: such a line keeps its line
    # breaks (before it and inside it), so the comment keeps trailing the same statement.
    commented, line = set(), []
    for idx, tok in enumerate(tokens):
        if _is_space(tok) and "\n" in tok:
            line = []
        elif tok.startswith("#"):
            if any(not _is_space(tokens[j]) for j in line):
                commented.update(line)
            line = []
        else:
            line.append(idx)
    out = [rng.choice(("", " ", "\n", "\t")) if tokens and not tokens[0].startswith("#") else ""]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if _is_space(tok):
            i += 1
            continue
        out.append(tok)
        gap = tokens[i + 1] if i + 1 < len(tokens) and _is_space(tokens[i + 1]) else ""
        k = i + 2 if gap else i + 1
        nxt = tokens[k] if k < len(tokens) else None
        if tok.startswith("#") or (nxt is not None and nxt.startswith("#")) or (
                "\n" in gap and k in commented):
            # Around an existing comment the layout stays: it decides own-line vs trailing.
            out.append(gap if not tok.startswith("#") or "\n" in gap else gap + "\n")
        elif nxt is None:
            out.append(rng.choice(("", "\n", "\n\n", "  \n", " ")))
        else:
            needs = bool(gap) and bool(_WORDISH.match(tok[-1])) and bool(_WORDISH.match(nxt[0]))
            out.append(_gap(rng, gap, needs, comments, newline=i not in commented))
        i = k
    return "".join(out)


def messy_layout(text: str, comments: bool = False) -> st.SearchStrategy[str]:
    """The program `text` with its layout scrambled: random spaces, tabs, form feeds and
    line breaks between tokens (and with `comments=True`, random `#` comments), same
    tokens in the same order. Without new comments `qnnc fmt` gives the same text for it
    as for `text`: existing comments and the gaps around them are kept as they are, a
    line that ends in a comment keeps its line breaks, and blank lines are kept exactly
    where `text` had them.

    The layout comes from one drawn seed (a program has hundreds of gaps; one draw each
    would dominate a test's time), so failures shrink the program, not the layout."""
    tokens = _LEX.findall(text)
    return st.integers(0, 2 ** 32 - 1).map(lambda seed: _relayout(tokens, seed, comments))
