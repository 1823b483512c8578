"""Random valid programs: neurons, networks and train blocks over generated parameters,
as syntax trees (`syntax_modules`), canonical text (`programs`) and IR (`ir_programs`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

from hypothesis import assume
from hypothesis import strategies as st

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.expressions import Number
from qnnc.compiler.testing.values import (FUNCTION_NAMES, Valued, apply_function, binop, constant_expr,
                                          fresh_name, int_equal, literal_of, names, pick, real_in,
                                          shuffled)

# --------------------------------------------------------------------------- neurons


@dataclass
class _ParamSpec:
    name: str
    type: str  # real, int, squash
    lo: Optional[Valued]
    hi: Optional[Valued]
    has_default: bool


@dataclass
class _NeuronSpec:
    name: str
    params: list[_ParamSpec]
    carried: bool


def _stdlib_specs() -> list[_NeuronSpec]:
    """`rotation` and `weak` as stdlib/neurons.qnn declares them."""
    zero = Valued(S.Num("0"), 0)
    half_pi = Valued(S.BinOp("/", S.Name("pi"), S.Num("2")), math.pi / 2)
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
    type_ = pick(draw, ["real", "real", "int", "squash"])
    if type_ == "squash":
        default = pick(draw, [None, "tanh", "clip"])
        return (S.NeuronParamSyntax(name, "squash", None, S.Name(default) if default else None),
                _ParamSpec(name, "squash", None, None, default is not None))
    rng, lo, hi = None, None, None
    if draw(st.booleans()):
        if type_ == "int":
            a, b = sorted(draw(st.lists(st.integers(-3, 8), min_size=2, max_size=2)))
            lo, hi = Valued(literal_of(a), a), Valued(literal_of(b), b)
            lo_e, hi_e = lo.expr, hi.expr
        else:
            (a_e, a), (b_e, b) = sorted(draw(st.lists(st.sampled_from(_RANGE_BOUNDS), min_size=2, max_size=2)),
                                        key=lambda t: t[1])
            lo, hi = Valued(a_e, a), Valued(b_e, b)
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
            default = int_equal(draw, {}, draw(st.integers(int(low), int(high)))).expr
        else:
            default = real_in(draw, {}, lo, hi).expr
    return (S.NeuronParamSyntax(name, type_, rng, default),
            _ParamSpec(name, type_, lo, hi, default is not None))


def _angle(draw, reals: list[str], squashes: list[str], carried: bool, depth: int = 3) -> Valued:
    """An angle expression in z, last (with a carried qubit), the neuron's parameters,
    pi and the built-ins. Constant parts are folded by the compiler, so they must have a
    finite value; value None marks a part that depends on z."""
    symbols = ["z"] + (["last"] if carried else []) + reals

    def leaf() -> Valued:
        if draw(st.integers(0, 2)):
            return Valued(S.Name(pick(draw, symbols)), None)
        return constant_expr(draw, {}, depth=1)

    if depth <= 0:
        return leaf()
    kind = pick(draw, ("leaf", "neg", "bin", "bin", "fn") + (("squash",) if squashes else ()))
    if kind == "leaf":
        return leaf()
    if kind == "neg":
        x = _angle(draw, reals, squashes, carried, depth - 1)
        return Valued(S.Neg(x.expr), None if x.value is None else -x.value)
    if kind == "squash":
        x = _angle(draw, reals, squashes, carried, depth - 1)
        return Valued(S.Apply(pick(draw, squashes), (S.Arg(None, x.expr),)), None)
    if kind == "bin":
        op = pick(draw, ("+", "-", "*", "/", "^"))
        a = _angle(draw, reals, squashes, carried, depth - 1)
        b = _angle(draw, reals, squashes, carried, depth - 1)
        if a.value is not None and b.value is not None:
            v = binop(op, float(a.value), float(b.value))  # constants fold as floats
            if v is None:
                return a
            return Valued(S.BinOp(op, a.expr, b.expr), v)
        return Valued(S.BinOp(op, a.expr, b.expr), None)
    fn = pick(draw, FUNCTION_NAMES)
    args = [_angle(draw, reals, squashes, carried, depth - 1) for _ in range(ir.BUILTIN_FUNCTIONS[fn])]
    if all(a.value is not None for a in args):
        v = apply_function(fn, [a.value for a in args])
        if v is None:
            return args[0]
        return Valued(S.Apply(fn, tuple(S.Arg(None, a.expr) for a in args)), v)
    return Valued(S.Apply(fn, tuple(S.Arg(None, a.expr) for a in args)), None)


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
        kind = pick(draw, ["angle", "angle", "1q", "2q", "measure", "reset"])
        target = pick(draw, reg_names)
        if kind == "angle":
            gate = pick(draw, ir.GATES_1Q_ANGLE)
            ops.append(S.GateStmt(gate, (_angle(draw, reals, squashes, carried).expr,), (target,)))
        elif kind == "1q":
            ops.append(S.GateStmt(pick(draw, ir.GATES_1Q), (), (target,)))
        elif kind == "2q" and len(reg_names) >= 2:
            a, b = shuffled(draw, reg_names)[:2]
            ops.append(S.GateStmt(pick(draw, ir.GATES_2Q), (), (a, b)))
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
    ops.insert(emit_at, S.MeasureStmt(pick(draw, reg_names), True))
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
            values[p.name] = S.Name(pick(draw, ir.SQUASH_FUNCTIONS))
        elif p.type == "int":
            low = int(p.lo.value) if p.lo is not None else -3
            high = int(p.hi.value) if p.hi is not None else low + 8
            values[p.name] = int_equal(draw, env, draw(st.integers(low, high))).expr
        else:
            values[p.name] = real_in(draw, env, p.lo, p.hi).expr
    order = [p.name for p in spec.params]
    n_pos = 0
    while n_pos < len(order) and order[n_pos] in values and draw(st.booleans()):
        n_pos += 1
    args = [S.Arg(None, values[n]) for n in order[:n_pos]]
    keywords = [n for n in order[n_pos:] if n in values]
    keywords = shuffled(draw, keywords) if keywords else []
    args += [S.Arg(n, values[n]) for n in keywords]
    if not args and draw(st.booleans()):
        return S.CallSyntax(spec.name, None)
    return S.CallSyntax(spec.name, tuple(args))


# --------------------------------------------------------------------------- networks


def _init(draw, env: dict[str, Number], fan_in: int, fan_out: int, layer: str) -> S.Expr:
    env = dict(env, fan_in=fan_in, fan_out=fan_out)
    kind = pick(draw, ["normal", "normal", "kaiming", "uniform", "zeros", "checkpoint"])
    if kind == "normal":
        mean = constant_expr(draw, env, depth=1)
        if draw(st.booleans()):
            std = Valued(S.BinOp("/", S.Num("1"), S.Apply("sqrt", (S.Arg(None, S.Name("fan_in")),))), None)
        else:
            std = real_in(draw, env, Valued(S.Num("0"), 0), None)
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
        gain = real_in(draw, env, Valued(S.Num("0"), 0), None)
        return S.Apply("kaiming", (S.Arg(None if form == 1 else "gain", gain.expr),))
    if kind == "uniform":
        a = constant_expr(draw, env, depth=1)
        b = constant_expr(draw, env, depth=1)
        if a.value > b.value:
            a, b = b, a
        return S.Apply("uniform", (S.Arg(None, a.expr), S.Arg(None, b.expr)))
    if kind == "zeros":
        return pick(draw, [S.Name("zeros"), S.Apply("zeros", ())])
    args = [S.Arg(None, draw(_strings("runs/")))]
    extra = [S.Arg("tensor", S.Str(f'"{layer}"'))]
    if draw(st.booleans()):
        extra.append(S.Arg("step", int_equal(draw, env, draw(st.integers(0, 500))).expr))
    return S.Apply("checkpoint", tuple(args + shuffled(draw, extra)))


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
        kind = pick(draw, ["scale", "pool", "threshold"])
        if kind == "pool":
            divisors = [k for k in range(1, max(shape) + 1) if all(d % k == 0 for d in shape)]
            k = pick(draw, divisors)
            shape = [d // k for d in shape]
            steps.append(S.CallSyntax("pool", (S.Arg(None, int_equal(draw, env, k).expr),)))
        else:
            steps.append(S.CallSyntax(kind, (S.Arg(None, constant_expr(draw, env).expr),)))
    features = math.prod(shape)
    body: list = []
    prev, prev_size, prev_carried = input_name, features, False
    n_hidden = draw(st.integers(0, 3))
    layer_names = []
    for i in range(n_hidden + 1):
        output = i == n_hidden
        lname = fresh_name(draw, used)
        layer_names.append(lname)
        size = draw(st.integers(1, 6))
        carried = False
        if not output and neurons and draw(st.booleans()):
            spec = pick(draw, neurons)
            activation = _bind(draw, spec, env)
            carried = spec.carried
            if carried and prev_carried:
                size = prev_size  # a carried qubit continues the same-index neuron
        else:
            kind = pick(draw, ir.CLASSICAL_ACTIVATIONS)
            activation = S.CallSyntax(kind, pick(draw, [None, ()]))
        dense_args = [S.Arg(None, S.Name(prev))]
        keywords = []
        if draw(st.booleans()):
            keywords.append(S.Arg("bias", S.Name(pick(draw, ["on", "off", "true", "false"]))))
        if draw(st.booleans()):
            keywords.append(S.Arg("init", _init(draw, env, prev_size, size, lname)))
        keywords = shuffled(draw, keywords) if keywords else []
        split = draw(st.integers(0, len(keywords)))  # the source may come after a keyword
        dense_args = list(keywords[:split]) + dense_args + list(keywords[split:]) if draw(st.booleans()) \
            else dense_args + list(keywords)
        size_e = int_equal(draw, env, size).expr
        body.append(S.LayerDecl("output" if output else "layer", lname, size_e, activation,
                                S.CallSyntax("dense", tuple(dense_args))))
        prev, prev_size, prev_carried = lname, size, carried
    # The layers keep their order; the input and the readout may sit anywhere among them
    # (usually the input first).
    inp = S.InputDecl(input_name, tuple(int_equal(draw, env, d).expr for d in dims), tuple(steps))
    body.insert(0 if draw(st.integers(0, 3)) else draw(st.integers(0, len(body))), inp)
    if draw(st.booleans()):
        kind = pick(draw, ir.READOUT_KINDS)
        shots = None
        if kind == "argmax" and draw(st.booleans()):
            shots = int_equal(draw, env, draw(st.integers(1, 20))).expr
        readout = S.ReadoutDecl(kind, shots)
        body.insert(len(body) if draw(st.booleans()) else draw(st.integers(0, len(body))), readout)
    return S.NetworkSyntax(name, tuple(body)), layer_names


# --------------------------------------------------------------------------- training


def _dataset(draw) -> S.DatasetSyntax:
    if draw(st.booleans()):
        return S.DatasetSyntax("builtin", pick(draw, ["mnist.train5k", "mnist.test", "mnist.train"]))
    return S.DatasetSyntax("file", draw(_strings("data/", ".npz")).text)


def _train(draw, name: str, env: dict[str, Number]) -> S.TrainSyntax:
    pos = Valued(S.Num("0.001"), 0.001)
    zero = Valued(S.Num("0"), 0)
    stmts = [S.TrainStmt("data", _dataset(draw))]
    if draw(st.booleans()):
        stmts.append(S.TrainStmt("validate", _dataset(draw)))
    if draw(st.booleans()):
        opt = pick(draw, ["sgd", "adam"])
        keys = ["lr", "momentum", "weight_decay"] if opt == "sgd" else ["lr", "weight_decay"]
        chosen = [k for k in keys if draw(st.booleans())]
        args = []
        positional = draw(st.booleans())
        for i, k in enumerate(keys):
            if k not in chosen:
                positional = False  # a positional argument after a gap would shift meaning
                continue
            low = pos if k == "lr" else zero
            v = real_in(draw, env, low, None).expr
            if k == "lr":
                v = S.BinOp("+", S.Apply("abs", (S.Arg(None, v),)), S.Num("0.001"))  # lr > 0
            args.append(S.Arg(None if positional else k, v))
        stmts.append(S.TrainStmt("optimizer", S.CallSyntax(opt, tuple(args) if args or draw(st.booleans()) else None)))
    for key, low, high in (("batch", 1, 256), ("epochs", 0, 20), ("seed", 0, 10 ** 6)):
        if draw(st.booleans()):
            stmts.append(S.TrainStmt(key, int_equal(draw, env, draw(st.integers(low, high))).expr))
    if draw(st.booleans()):
        stmts.append(S.TrainStmt("loss", S.Name("cross_entropy")))
    if draw(st.booleans()):
        if draw(st.booleans()):
            stmts.append(S.TrainStmt("gradient", S.CallSyntax("exact", pick(draw, [None, ()]))))
        else:
            form = draw(st.integers(0, 2))
            window = real_in(draw, env, Valued(S.Num("0.5"), 0.5), None).expr
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
                schedules.append(S.Schedule("every", (int_equal(draw, env, draw(st.integers(1, 1000))).expr,)))
            elif k == "steps":
                listed = [next(steps) for _ in range(draw(st.integers(1, 4)))]
                schedules.append(S.Schedule("steps", tuple(int_equal(draw, env, v).expr for v in listed)))
            else:
                schedules.append(S.Schedule(k, ()))
        stmts.append(S.TrainStmt("checkpoint", tuple(schedules)))
    return S.TrainSyntax(name, tuple(shuffled(draw, stmts)))


# --------------------------------------------------------------------------- programs


def _param(draw, name: str, env: dict[str, Number]) -> tuple[S.ParamDecl, Number]:
    """A top-level param; returns the value the compiler stores (int for int params)."""
    type_ = pick(draw, [None, None, "int", "real"])
    if type_ == "int" or (type_ is None and draw(st.booleans())):
        x = int_equal(draw, env, draw(st.integers(0, 12)))
    else:
        x = constant_expr(draw, env)
    value = x.value
    if type_ == "int" or (type_ is None and isinstance(value, int)):
        stored: Number = int(value)
    else:
        stored = float(value)
    rng = None
    if draw(st.booleans()):
        lo = S.Neg(S.Name("inf")) if draw(st.booleans()) else literal_of(math.floor(value) - draw(st.integers(0, 3)))
        hi = S.Name("inf") if draw(st.booleans()) else literal_of(math.ceil(value) + draw(st.integers(0, 3)))
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
    for nname in [fresh_name(draw, taken) for _ in range(draw(st.integers(0, 2)))]:
        neuron, spec = _neuron(draw, nname)
        other.append(neuron)
        specs.append(spec)
    for netname in draw(st.lists(names(), max_size=2, unique=True)):
        net, _ = _network(draw, netname, env, specs)
        other.append(net)
        if draw(st.booleans()):
            other.append(_train(draw, netname, env))
    # Params keep their order (each may use the ones before it); the rest goes anywhere.
    other = shuffled(draw, other) if other else []
    items: list = []
    pi = oi = 0
    while pi < len(items_params) or oi < len(other):
        if oi >= len(other) or (pi < len(items_params) and draw(st.booleans())):
            items.append(items_params[pi])
            pi += 1
        else:
            items.append(other[oi])
            oi += 1
    module = S.Module("<generated>", tuple(items))
    # A random angle may have no finite value for the parameters a layer binds (sqrt of
    # a negative parameter); the one neuron semantics refuses that program (Q0331), so
    # it is not a valid one to generate.
    assume(_angles_finite(module))
    return module


def _angles_finite(module: S.Module) -> bool:
    from qnnc.compiler import parse_program
    from qnnc.compiler.angles import NOT_FINITE
    from qnnc.compiler.diagnostics import QnncError
    from qnnc.compiler.formatter import format_module

    try:
        parse_program(format_module(module), "<generated>")
    except QnncError as exc:
        if all(d.code == NOT_FINITE for d in exc.diagnostics):
            return False
        raise
    return True


def programs() -> st.SearchStrategy[str]:
    """The canonical text (`qnnc fmt` layout) of a random valid `.qnn` program."""
    from qnnc.compiler.formatter import format_module

    return syntax_modules().map(format_module)


def ir_programs() -> st.SearchStrategy[ir.Program]:
    """`programs()` elaborated: `programs().map(parse_program)` (file name `<generated>`)."""
    from qnnc.compiler import parse_program

    return programs().map(lambda text: parse_program(text, "<generated>"))
