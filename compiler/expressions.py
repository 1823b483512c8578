"""Constant expressions of the `.qnn` language: their values and their IR.

One implementation of the language's arithmetic, for elaboration and for anything that
must agree with it (the program generator of `qnnc.compiler.testing`):

    evaluate_constant(expr, env)      a syntax expression's value (int or float)
    arith(op, a, b)                   one of + - * / ^ on constants
    apply_builtin(name, args)         a built-in function (`ir.BUILTIN_FUNCTIONS`)
    to_ir_expression(expr, params)    a gate angle as IR, constant parts folded

An expression with no value raises `ConstantError`, which carries its diagnostic.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Optional, Sequence, Union

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.codes import (BAD_ARGUMENTS, BAD_VALUE, NAME_NOT_ALLOWED, TYPE_MISMATCH,
                                 UNKNOWN_FUNCTION, UNKNOWN_PARAMETER)
from qnnc.compiler.diagnostics import Diagnostic, did_you_mean
from qnnc.compiler.ir import NO_SPAN, Span
from qnnc.compiler.limits import MAX_NUMBER_DIGITS

__all__ = ["CONSTANTS", "ConstantError", "Number", "apply_builtin", "arith", "evaluate_constant",
           "to_ir_expression"]

Number = Union[int, float]

CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}


class ConstantError(Exception):
    """A constant expression with no value: `diagnostic` says why (Q0202, Q0213...)."""

    def __init__(self, code: str, message: str, span: Span, label: str = "", help: Optional[str] = None,
                 name: Optional[str] = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(code, message, span, label, help)
        self.name = name  # the unknown name, for UNKNOWN_PARAMETER


def evaluate_constant(expr: S.Expr, env: Mapping[str, Number], context: str = "here") -> Number:
    """The value of a constant expression, or ConstantError. `env` holds the names visible
    here (parameters, fan_in...); `context` ends the label of an unknown name ("not
    defined here"). Integers stay integers under + - * and integer powers."""
    if isinstance(expr, S.Num):
        return literal_value(expr)
    if isinstance(expr, S.Name):
        if expr.name in env:
            return env[expr.name]
        if expr.name in CONSTANTS:
            return CONSTANTS[expr.name]
        if expr.name in ("z", "last"):
            raise ConstantError(NAME_NOT_ALLOWED, f"`{expr.name}` is only defined inside a neuron",
                                expr.span, "not available here",
                                help="`z` (pre-activation) and `last` (previous outcome) belong in a neuron's gate angles")
        raise ConstantError(UNKNOWN_PARAMETER, f"unknown parameter `{expr.name}`", expr.span,
                            f"not defined {context}",
                            help=did_you_mean(expr.name, list(env) + list(CONSTANTS))
                            or "declare it with `param NAME = VALUE`", name=expr.name)
    if isinstance(expr, S.Str):
        raise ConstantError(TYPE_MISMATCH, "expected a number, found a string", expr.span, "a string")
    if isinstance(expr, S.Neg):
        return -evaluate_constant(expr.operand, env, context)
    if isinstance(expr, S.BinOp):
        lhs = evaluate_constant(expr.lhs, env, context)
        return arith(expr.op, lhs, evaluate_constant(expr.rhs, env, context), expr.span)
    if isinstance(expr, S.Apply):
        fn = expr.function
        if fn not in ir.BUILTIN_FUNCTIONS:
            raise ConstantError(UNKNOWN_FUNCTION, f"unknown function `{fn}`", expr.function_span,
                                help=did_you_mean(fn, ir.BUILTIN_FUNCTIONS) or
                                "functions: " + ", ".join(sorted(ir.BUILTIN_FUNCTIONS)))
        if any(a.name is not None for a in expr.args):
            bad = next(a for a in expr.args if a.name is not None)
            raise ConstantError(BAD_ARGUMENTS, f"`{fn}` takes no keyword arguments", bad.span)
        if len(expr.args) != ir.BUILTIN_FUNCTIONS[fn]:
            raise ConstantError(BAD_ARGUMENTS, f"`{fn}` takes {ir.BUILTIN_FUNCTIONS[fn]} argument(s), "
                                f"{len(expr.args)} given", expr.span)
        args = [float(evaluate_constant(a.value, env, context)) for a in expr.args]
        try:
            v = apply_builtin(fn, args)
        except (ValueError, OverflowError):
            raise ConstantError(BAD_VALUE, f"`{fn}` is not defined at this argument", expr.span) from None
        return v
    raise AssertionError(f"unhandled expression {expr!r}")


def apply_builtin(fn: str, a: Sequence[float]) -> float:
    """A built-in function (`ir.BUILTIN_FUNCTIONS`) at float arguments; ValueError or
    OverflowError where it has no value (`log(0)`, `exp(1000)`)."""
    return float(_BUILTINS[fn](*a))


_BUILTINS: dict[str, Callable[..., float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "exp": math.exp, "log": math.log,
    "sqrt": math.sqrt, "tanh": math.tanh, "abs": abs,
    "sign": lambda x: 1.0 if x >= 0 else -1.0,
    "clip": lambda x, lo, hi: min(max(x, lo), hi),
    "min": min, "max": max,
}


def to_ir_expression(e: S.Expr, param_types: Mapping[str, str]) -> ir.Expr:
    """A gate angle as an IR expression in `z`, `last` and the neuron's parameters
    (`param_types`: name -> real, int or squash); constant parts fold. Raises
    ConstantError."""
    if isinstance(e, S.Num):
        return ir.Const(float(literal_value(e)), e.span)
    if isinstance(e, S.Str):
        raise ConstantError(TYPE_MISMATCH, "expected an angle, found a string", e.span)
    if isinstance(e, S.Name):
        if e.name in ir.NEURON_SPECIAL_NAMES:
            return ir.Ref(e.name, e.span)
        if e.name in param_types:
            if param_types[e.name] == "squash":
                raise ConstantError(TYPE_MISMATCH, f"`{e.name}` is a squash function, not a number", e.span,
                                    "a squash", help=f"apply it to an angle, e.g. `{e.name}(z)`")
            return ir.Ref(e.name, e.span)
        if e.name in CONSTANTS and e.name != "inf":
            return ir.Const(CONSTANTS[e.name], e.span)
        raise ConstantError(UNKNOWN_PARAMETER, f"unknown name `{e.name}` in a gate angle", e.span,
                            "not a parameter of this neuron",
                            help=did_you_mean(e.name, list(param_types) + list(ir.NEURON_SPECIAL_NAMES) + ["pi"])
                            or "angles may use z, last, pi and the neuron's parameters")
    if isinstance(e, S.Neg):
        inner = to_ir_expression(e.operand, param_types)
        if isinstance(inner, ir.Const):
            return ir.Const(-inner.value, e.span)
        return ir.Unary("-", inner, e.span)
    if isinstance(e, S.BinOp):
        lhs, rhs = to_ir_expression(e.lhs, param_types), to_ir_expression(e.rhs, param_types)
        if isinstance(lhs, ir.Const) and isinstance(rhs, ir.Const):
            return ir.Const(_fold(e.op, lhs.value, rhs.value, e.span), e.span)
        return ir.Binary(e.op, lhs, rhs, e.span)
    if isinstance(e, S.Apply):
        fn = e.function
        if any(a.name is not None for a in e.args):
            raise ConstantError(BAD_ARGUMENTS, f"`{fn}` takes no keyword arguments", e.span)
        args = tuple(to_ir_expression(a.value, param_types) for a in e.args)
        if param_types.get(fn) == "squash":
            if len(args) != 1:
                raise ConstantError(BAD_ARGUMENTS, f"squash `{fn}` takes one argument", e.span)
            return ir.Call(fn, args, e.span)
        if fn not in ir.BUILTIN_FUNCTIONS:
            raise ConstantError(UNKNOWN_FUNCTION, f"unknown function `{fn}`", e.function_span,
                                help=did_you_mean(fn, list(ir.BUILTIN_FUNCTIONS) + [p for p, t in param_types.items() if t == "squash"]))
        if len(args) != ir.BUILTIN_FUNCTIONS[fn]:
            raise ConstantError(BAD_ARGUMENTS, f"`{fn}` takes {ir.BUILTIN_FUNCTIONS[fn]} argument(s), {len(args)} given",
                                e.span)
        if all(isinstance(a, ir.Const) for a in args):
            try:
                return ir.Const(apply_builtin(fn, [a.value for a in args]), e.span)  # type: ignore[union-attr]
            except (ValueError, OverflowError):
                raise ConstantError(BAD_VALUE, f"`{fn}` is not defined at this argument", e.span) from None
        return ir.Call(fn, args, e.span)
    raise AssertionError(e)


def literal_value(num: S.Num) -> Number:
    """A number literal's value. One longer than MAX_NUMBER_DIGITS, or an integer beyond
    2^62 (as `arith` bounds results), is ConstantError, before any conversion."""
    if len(num.text) > MAX_NUMBER_DIGITS:
        raise ConstantError(BAD_VALUE, f"a number literal of {len(num.text):,} characters; the limit is "
                            f"{MAX_NUMBER_DIGITS}", num.span, "too long",
                            help="write large or small numbers with an exponent, e.g. 1e300")
    v = num.value
    if isinstance(v, int) and v > 1 << 62:
        raise ConstantError(BAD_VALUE, "this integer is too large", num.span, "more than 2^62",
                            help="integers are at most 2^62; write a real number with an exponent, e.g. 1e30")
    return v


def arith(op: str, a: Number, b: Number, span: Span = NO_SPAN) -> Number:
    """One binary operation of a constant expression. Integers stay integers under
    + - * and small non-negative integer powers; `/` gives a float. No real value
    (division by zero, a complex or NaN result, an overflowing power, an integer beyond
    2^62) is ConstantError; a float result may be infinite."""
    try:
        if op == "+":
            v = a + b
        elif op == "-":
            v = a - b
        elif op == "*":
            v = a * b
        elif op == "/":
            if b == 0:
                raise ConstantError(BAD_VALUE, "division by zero", span, "the divisor is 0")
            v = a / b
        elif isinstance(a, int) and isinstance(b, int) and 0 <= b < 64:
            v = a ** b
        else:
            v = float(a) ** float(b)
    except (OverflowError, ZeroDivisionError, ValueError):
        raise ConstantError(BAD_VALUE, "this expression has no finite value", span) from None
    if isinstance(v, complex) or (isinstance(v, float) and math.isnan(v)):
        raise ConstantError(BAD_VALUE, "this expression has no real value", span)
    if isinstance(v, int) and abs(v) > 1 << 62:
        raise ConstantError(BAD_VALUE, "this integer is too large", span)
    return v


def _fold(op: str, a: float, b: float, span: Span) -> float:
    """Constant folding inside a gate angle: as `arith`, and the result must be finite."""
    v = float(arith(op, a, b, span))
    if not math.isfinite(v):
        raise ConstantError(BAD_VALUE, "this expression has no finite real value", span)
    return v

