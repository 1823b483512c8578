"""One neuron semantics: a neuron definition bound to one layer's parameters.

`bind_neuron` is the only place that gives a `NeuronDef`'s gate angles a meaning. It
checks the neuron's structure, resolves every name (the layer's bindings, defaults,
named constants), binds squash parameters to their functions, takes the classical
limit of a squash applied to `x / 0`, and folds everything constant. What it returns,
a `BoundNeuron`, holds one closed form per gate angle. The torch simulator
(`qnnc.runtime.torch_angles`, used by the neuron kernel) and the numpy neuron model of the targets and references
(`qnnc.runtime.targets.neurons`) are thin evaluators of that form, so a program means
the same thing everywhere and a fault has one code wherever it is found.

Closed forms are tuples, cheap to walk at run time:

    ("c", v)                        a constant
    ("z",) ("last",)                the pre-activation; the previous outcome (±1)
    ("neg", a)                      -a
    ("bin", op, a, b)               op in + - * / ^
    ("fn", name, args)              a built-in (ir.BUILTIN_FUNCTIONS); "clip1" is the
                                    one-argument squash clip(x, -1, 1)
    ("sign", a)                     sign with sign(0) = +1
    ("limit", name, rest, num, den) name(num / den, *rest) whose den is only known at run
                                    time: where den = 0 it is the classical limit, sign(num)
                                    (clip: hi where num >= 0, else lo)

Codes: Q0624 a parameter or expression cannot be bound, Q0623 a malformed neuron,
Q0621 `last` without a carried qubit, Q0331 an angle that is not finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error
from qnnc.compiler.expressions import apply_builtin
from qnnc.compiler.gates import GATES

Node = tuple
ParamValue = Union[float, str]

# Constants an angle may name besides z, last and the neuron's parameters. The front end
# folds them already; an IR written by another tool may name them (the verifier agrees).
NAMED_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

SQUASH_OF = {"tanh": "tanh", "clip": "clip1"}  # squash value -> closed-form function

BAD_BINDING = "Q0624"
MALFORMED = "Q0623"
LAST_WITHOUT_CARRIED = "Q0621"
NOT_FINITE = "Q0331"


# --------------------------------------------------------------------------- constants


def sign_pos(x: float) -> float:
    """sign with sign(0) = +1 (also for -0.0); NaN maps to +1 like the tensor version."""
    return 1.0 if x >= 0 or math.isnan(x) else -1.0


def binop_const(op: str, x: float, y: float) -> float:
    """IEEE arithmetic on floats (x / 0 is ±inf or NaN, never an exception)."""
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return x / y
        r = x ** y
        return math.nan if isinstance(r, complex) else r
    except ZeroDivisionError:
        if op == "/":
            return math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x) * math.copysign(1.0, y)
        return math.inf
    except OverflowError:
        return math.inf


def fn_const(name: str, args: Sequence[float]) -> float:
    """A closed-form function on floats (the language's built-ins, `clip1` the squash
    clip). Where a built-in has no value it is NaN (inf for an overflowing exp): the
    binder then refuses the angle as not finite, wherever it is used."""
    if name == "sign":
        return sign_pos(args[0])
    if name == "clip1":
        return min(max(args[0], -1.0), 1.0)
    try:
        return apply_builtin(name, args)
    except (ValueError, OverflowError):
        return math.inf if name == "exp" else math.nan


# --------------------------------------------------------------------------- the bound neuron


@dataclass(frozen=True)
class BoundNeuron:
    """A neuron with one layer's parameters bound. `angles[i]` is the closed form of
    `neuron.ops[i]`'s angle (None for ops without one); `params` maps every parameter to
    its number or squash name; `uses_z` counts the reads of z over all angles."""

    neuron: ir.NeuronDef
    params: Mapping[str, ParamValue]
    angles: tuple[Optional[Node], ...]
    uses_z: int
    uses_last: bool

    @property
    def gate_angles(self) -> list[Optional[Node]]:
        """The closed forms of the GateOps only, in order (the targets count gates)."""
        return [a for op, a in zip(self.neuron.ops, self.angles) if isinstance(op, ir.GateOp)]


def bind_neuron(neuron: ir.NeuronDef, bindings: Union[Mapping[str, Any], Sequence[ir.Binding]] = (),
                span: Optional[ir.Span] = None) -> BoundNeuron:
    """Bind, check and fold. Raises a QnncError (codes in the module docstring)."""
    if not isinstance(bindings, Mapping):
        bindings = {b.name: b.value for b in bindings}
    check_structure(neuron)
    params = _bind_params(neuron, bindings)
    binder = _Binder(neuron, params)
    angles = []
    for op in neuron.ops:
        if isinstance(op, ir.GateOp) and GATES[op.gate].takes_angle:
            form = binder.bind(op.angle)
            _check_finite(form, neuron, op.span, span)
            angles.append(form)
        else:
            angles.append(None)
    uses_last = binder.uses["last"] > 0
    if uses_last and not neuron.carried:
        raise error(LAST_WITHOUT_CARRIED, f"neuron `{neuron.name}` reads `last` but has no carried qubit",
                    neuron.span, help="`last` is the previous layer's outcome of a carried neuron; "
                    "declare `qubit q carried`")
    return BoundNeuron(neuron, params, tuple(angles), binder.uses["z"], uses_last)


def check_structure(neuron: ir.NeuronDef) -> None:
    """The structural rules every consumer relies on (the verifier reports them with their
    source codes first; this guards IR built by other tools)."""
    qubits = [r for r in neuron.registers if r.role == "qubit"]
    if len(qubits) > 1:
        raise error(MALFORMED, f"neuron `{neuron.name}` declares {len(qubits)} qubits; at most one",
                    qubits[1].span)
    for r in neuron.registers:
        if r.role not in ("qubit", "ancilla"):
            raise error(MALFORMED, f"register `{r.name}` has unknown role {r.role!r}", r.span)
        if r.carried and r.role != "qubit":
            raise error(MALFORMED, f"ancilla `{r.name}` cannot be carried", r.span)
    names = [r.name for r in neuron.registers]
    if len(set(names)) != len(names):
        raise error(MALFORMED, f"neuron `{neuron.name}` declares a register twice", neuron.span)
    if not names:
        raise error(MALFORMED, f"neuron `{neuron.name}` has no registers", neuron.span)
    emits = 0
    for op in neuron.ops:
        targets = op.targets if isinstance(op, ir.GateOp) else (op.target,)
        for t in targets:
            if t not in names:
                raise error(MALFORMED, f"unknown register `{t}` in neuron `{neuron.name}`", op.span)
        if isinstance(op, ir.GateOp):
            g = GATES.get(op.gate)
            if g is None or not g.language:
                raise error(MALFORMED, f"unknown gate `{op.gate}`", op.span)
            if len(targets) != g.qubits or len(set(targets)) != g.qubits:
                raise error(MALFORMED, f"`{op.gate}` acts on {g.qubits} distinct register(s)", op.span)
            if (op.angle is None) == g.takes_angle:
                raise error(MALFORMED, f"`{op.gate}` {'needs' if op.angle is None else 'takes no'} angle",
                            op.span)
        elif isinstance(op, ir.MeasureOp) and op.emit:
            emits += 1
    if emits != 1:
        raise error(MALFORMED, f"neuron `{neuron.name}` has {emits} `emit measure`; exactly one is needed",
                    neuron.span, help="mark the measurement that is the activation with `emit`")


def _bind_params(neuron: ir.NeuronDef, bindings: Mapping[str, Any]) -> dict[str, ParamValue]:
    known = {p.name for p in neuron.params}
    for name in bindings:
        if name not in known:
            raise error(BAD_BINDING, f"neuron `{neuron.name}` has no parameter `{name}`", neuron.span)
    out: dict[str, ParamValue] = {}
    for p in neuron.params:
        v = bindings.get(p.name, p.default)
        if v is None:
            raise error(BAD_BINDING, f"parameter `{p.name}` of neuron `{neuron.name}` is not bound", p.span,
                        help="give it a value where the layer uses the neuron")
        if p.type == "squash":
            if v not in ir.SQUASH_FUNCTIONS:
                raise error(BAD_BINDING, f"squash `{p.name}` is bound to {v!r}", p.span,
                            help=f"one of {', '.join(ir.SQUASH_FUNCTIONS)}")
        else:
            if isinstance(v, (str, bool)):
                raise error(BAD_BINDING, f"parameter `{p.name}` of neuron `{neuron.name}` is {p.type}, "
                            f"got {v!r}", p.span)
            v = float(v)
            if math.isnan(v) or (p.lower is not None and v < p.lower) or (p.upper is not None and v > p.upper):
                raise error(BAD_BINDING, f"parameter `{p.name}` = {v:g} is outside [{p.lower}, {p.upper}]",
                            p.span)
        out[p.name] = v
    return out


def _check_finite(form: Node, neuron: ir.NeuronDef, op_span: ir.Span, layer_span: Optional[ir.Span]) -> None:
    # Pointed at the layer that bound the parameters (when known): that is what to change.
    where = layer_span or op_span
    notes = (f"the angle is the gate at {op_span.file}:{op_span.line}:{op_span.col}",) if layer_span else ()
    if form[0] == "c" and not math.isfinite(form[1]):
        raise error(NOT_FINITE, f"an angle of neuron `{neuron.name}` is {form[1]} for these parameters",
                    where, help="check divisions by a parameter that is 0", notes=notes)
    for node in _nodes(form):
        if node[0] == "bin" and node[1] == "/" and node[3] == ("c", 0.0):
            raise error(NOT_FINITE, f"an angle of neuron `{neuron.name}` divides by 0 for these parameters",
                        where, help="only a squash of `x / 0` has a value (its classical limit, "
                        "sign(x)); check the parameters", notes=notes)


def _nodes(n: Node):
    yield n
    kind = n[0]
    if kind == "neg" or kind == "sign":
        yield from _nodes(n[1])
    elif kind == "bin":
        yield from _nodes(n[2])
        yield from _nodes(n[3])
    elif kind == "fn":
        for a in n[2]:
            yield from _nodes(a)
    elif kind == "limit":
        for a in n[2] + (n[3], n[4]):
            yield from _nodes(a)


def reads(form: Optional[Node]) -> frozenset[str]:
    """Which of z and last a closed form reads."""
    if form is None:
        return frozenset()
    return frozenset(n[0] for n in _nodes(form) if n[0] in ir.NEURON_SPECIAL_NAMES)


class _Binder:
    def __init__(self, neuron: ir.NeuronDef, params: Mapping[str, ParamValue]):
        self.neuron = neuron
        self.params = params
        self.uses = {"z": 0, "last": 0}

    def bind(self, e: ir.Expr) -> Node:
        if isinstance(e, ir.Const):
            return ("c", float(e.value))
        if isinstance(e, ir.Ref):
            return self._ref(e)
        if isinstance(e, ir.Unary):
            if e.op not in ("-", "+"):
                raise error(BAD_BINDING, f"unknown unary operator `{e.op}`", e.span)
            a = self.bind(e.operand)
            if e.op == "+":
                return a
            return ("c", -a[1]) if a[0] == "c" else ("neg", a)
        if isinstance(e, ir.Binary):
            if e.op not in ("+", "-", "*", "/", "^"):
                raise error(BAD_BINDING, f"unknown operator `{e.op}`", e.span)
            a, b = self.bind(e.lhs), self.bind(e.rhs)
            if a[0] == "c" and b[0] == "c":
                return ("c", binop_const(e.op, a[1], b[1]))
            return ("bin", e.op, a, b)
        if isinstance(e, ir.Call):
            return self._call(e)
        raise error(BAD_BINDING, f"unsupported expression node {type(e).__name__}", getattr(e, "span", None))

    def _ref(self, e: ir.Ref) -> Node:
        if e.name in ir.NEURON_SPECIAL_NAMES:
            self.uses[e.name] += 1
            return (e.name,)
        if e.name in self.params:
            v = self.params[e.name]
            if isinstance(v, str):
                raise error(BAD_BINDING, f"squash parameter `{e.name}` of neuron `{self.neuron.name}` is used "
                            "as a value", e.span, label="a squash can only be called", help=f"write `{e.name}(...)`")
            return ("c", float(v))
        if e.name in NAMED_CONSTANTS:
            return ("c", NAMED_CONSTANTS[e.name])
        raise error(BAD_BINDING, f"unknown name `{e.name}` in neuron `{self.neuron.name}`", e.span,
                    label="not a parameter of this neuron")

    def _call(self, e: ir.Call) -> Node:
        name = e.function
        if name in self.params:
            fn = self.params[name]
            if not isinstance(fn, str):
                raise error(BAD_BINDING, f"`{name}` is called but is bound to {fn!r}, not a squash", e.span,
                            help=f"a squash is one of {', '.join(ir.SQUASH_FUNCTIONS)}")
            if len(e.args) != 1:
                raise error(BAD_BINDING, f"squash `{name}` takes one argument, got {len(e.args)}", e.span)
            fname = SQUASH_OF[fn]
        elif name in ir.BUILTIN_FUNCTIONS:
            if len(e.args) != ir.BUILTIN_FUNCTIONS[name]:
                raise error(BAD_BINDING, f"`{name}` takes {ir.BUILTIN_FUNCTIONS[name]} argument(s), "
                            f"got {len(e.args)}", e.span)
            fname = name
        else:
            raise error(BAD_BINDING, f"unknown function `{name}` in neuron `{self.neuron.name}`", e.span)
        first = e.args[0]
        if fname in ("tanh", "clip1", "clip") and isinstance(first, ir.Binary) and first.op == "/":
            # The classical limit: squash(x / a) with a = 0 is sign(x), sign(0) = +1. Seen
            # before folding, so that 0 / a with a = 0 is the limit too, not NaN.
            num, den = self.bind(first.lhs), self.bind(first.rhs)
            rest = [self.bind(a) for a in e.args[1:]]
            if den[0] != "c":
                return ("limit", fname, tuple(rest), num, den)
            if den[1] == 0.0:
                return _limit(fname, num, rest)
            quotient = ("c", binop_const("/", num[1], den[1])) if num[0] == "c" else ("bin", "/", num, den)
            args = [quotient] + rest
        else:
            args = [self.bind(a) for a in e.args]
        if all(a[0] == "c" for a in args):
            return ("c", fn_const(fname, [a[1] for a in args]))
        return ("fn", fname, tuple(args))


def _limit(fname: str, num: Node, rest: Sequence[Node]) -> Node:
    if fname == "clip":  # clip(x/0, lo, hi): hi for x >= 0, lo otherwise
        lo, hi = rest
        return ("bin", "+", ("bin", "*", ("c", 0.5), ("bin", "+", lo, hi)),
                ("bin", "*", ("bin", "*", ("c", 0.5), ("bin", "-", hi, lo)), ("sign", num)))
    return ("sign", num) if num[0] != "c" else ("c", sign_pos(num[1]))


# --------------------------------------------------------------------------- a numpy evaluator


def evaluate(form: Node, z, last, xp=None):
    """Evaluate a closed form with an array module `xp` (numpy by default), broadcasting
    over z and last. The torch simulator has its own, in-place evaluator of the same form."""
    if xp is None:
        import numpy as xp
    return _NumpyEval(xp, xp.asarray(z, dtype=float), xp.asarray(last, dtype=float))(form)


class _NumpyEval:
    def __init__(self, xp, z, last):
        self.xp, self.z, self.last = xp, z, last

    def __call__(self, n: Node):
        xp = self.xp
        kind = n[0]
        if kind == "c":
            return xp.asarray(n[1])
        if kind == "z":
            return self.z
        if kind == "last":
            return self.last
        if kind == "neg":
            return -self(n[1])
        if kind == "sign":
            return xp.where(self(n[1]) >= 0, 1.0, -1.0)
        with xp.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if kind == "bin":
                a, b = self(n[2]), self(n[3])
                op = n[1]
                return a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else \
                    a / b if op == "/" else xp.power(a, b)
            if kind == "fn":
                return self._fn(n[1], [self(a) for a in n[2]])
            if kind == "limit":
                _, fname, rest, num, den = n
                x, y = self(num), self(den)
                restv = [self(r) for r in rest]
                zero = y == 0
                val = self._fn(fname, [x / xp.where(zero, 1.0, y)] + restv)
                if fname == "clip":
                    lim = xp.where(x >= 0, restv[1], restv[0])
                else:
                    lim = xp.where(x >= 0, 1.0, -1.0)
                return xp.where(zero, lim, val)
        raise AssertionError(kind)

    def _fn(self, name: str, a: list):
        xp = self.xp
        if name == "sign":
            return xp.where(a[0] >= 0, 1.0, -1.0)
        if name == "clip1":
            return xp.clip(a[0], -1.0, 1.0)
        if name == "clip":
            return xp.minimum(xp.maximum(a[0], a[1]), a[2])
        if name == "min":
            return xp.minimum(a[0], a[1])
        if name == "max":
            return xp.maximum(a[0], a[1])
        f = {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}.get(name, name)
        return getattr(xp, f)(a[0])
