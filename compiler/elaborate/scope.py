"""What every part of elaboration shares: the collector, the names in scope (the
program's parameters, declared here with their `--set` overrides, and the neurons
defined so far), and constant evaluation against those parameters."""

from __future__ import annotations

import math
from typing import Optional

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.codes import (BAD_VALUE, DUPLICATE_NAME, OUT_OF_RANGE, SET_BAD_VALUE,
                                 TOO_LARGE, TYPE_MISMATCH, UNKNOWN_TYPE)
from qnnc.compiler.diagnostics import Collector, QnncError, did_you_mean, error
from qnnc.compiler.elaborate.text import format_number, range_text, where
from qnnc.compiler.expressions import CONSTANTS, ConstantError, Number, evaluate_constant
from qnnc.compiler.ir import Span
from qnnc.compiler.parser import parse_expression


class Scope:
    """The state elaboration builds up, and constant evaluation that reports its failures
    (each `eval*` returns None after reporting)."""

    def __init__(self, collector: Collector, overrides: dict[str, str], imports_failed: bool = False):
        self.c = collector
        self.overrides = dict(overrides)  # `--set`s not yet taken by a declaration
        self.set_texts = dict(overrides)  # all of them, as given, for messages
        self.params: dict[str, ir.ParamValue] = {}
        self.env: dict[str, Number] = {}
        self.neurons: dict[str, ir.NeuronDef] = {}
        self.neuron_origin: dict[str, Span] = {}
        # Declared but in error (already reported): their uses are not reported again.
        self.failed_params: set[str] = set()
        # An import failed (reported): a name it may have defined is not reported unknown.
        self.imports_failed = imports_failed

    # ---- constant evaluation
    def eval(self, expr: S.Expr, env: Optional[dict] = None, context: str = "here") -> Optional[Number]:
        try:
            return evaluate_constant(expr, self.env if env is None else env, context)
        except ConstantError as exc:
            if exc.name is None or exc.name not in self.failed_params:
                self.c.diagnostics.append(exc.diagnostic)
            return None

    def eval_int(self, expr: S.Expr, what: str, low: int = 0, env=None,
                 high: Optional[int] = None) -> Optional[int]:
        v = self.eval(expr, env)
        if v is None:
            return None
        if isinstance(v, float) and (not math.isfinite(v) or v != int(v)):
            self.c.add(TYPE_MISMATCH, f"{what} must be a whole number, found {format_number(v)}", expr.span,
                       "not an integer")
            return None
        v = int(v)
        if v < low:
            self.c.add(OUT_OF_RANGE, f"{what} must be at least {low}, found {v}", expr.span,
                       "too small")
            return None
        if high is not None and v > high:
            self.c.add(TOO_LARGE, f"{what} must be at most {high:,}, found {format_number(v)}", expr.span,
                       "too large", help="the limits are listed in docs/diagnostics.md")
            return None
        return v

    def eval_real(self, expr: S.Expr, what: str, env=None, finite: bool = True) -> Optional[float]:
        v = self.eval(expr, env)
        if v is None:
            return None
        v = float(v)
        if finite and not math.isfinite(v):
            self.c.add(BAD_VALUE, f"{what} must be finite", expr.span, "infinite")
            return None
        return v

    def range_of(self, r: Optional[S.Range], env=None) -> tuple[Optional[float], Optional[float]]:
        if r is None:
            return None, None
        lo = self.eval_real(r.low, "a range bound", env, finite=False)
        hi = self.eval_real(r.high, "a range bound", env, finite=False)
        lo = None if lo is None or lo == -math.inf else lo
        hi = None if hi is None or hi == math.inf else hi
        if lo is not None and hi is not None and lo > hi:
            self.c.add(BAD_VALUE, f"empty range [{format_number(lo)}, {format_number(hi)}]", r.span, "lower bound above upper")
        return lo, hi

    # ---- parameters
    def param(self, d: S.ParamDecl) -> None:
        known = d.name in self.params
        self._param(d)
        if not known and d.name not in self.params:
            self.failed_params.add(d.name)

    def _param(self, d: S.ParamDecl) -> None:
        if d.name in self.params:
            self.c.add(DUPLICATE_NAME, f"parameter `{d.name}` is declared twice", d.name_span,
                       "declared again here", help="remove or rename one of them",
                       notes=[f"first declared at {where(self.params[d.name].span)}"])
            return
        if d.name in CONSTANTS or d.name in ("z", "last", "fan_in", "fan_out"):
            self.c.add(DUPLICATE_NAME, f"`{d.name}` is a reserved name", d.name_span,
                       "cannot be redefined", help="choose another name")
            return
        type_ = d.type
        if type_ is not None and type_ not in ir.PARAM_VALUE_TYPES:
            self.c.add(UNKNOWN_TYPE, f"unknown parameter type `{type_}`", d.type_span,
                       help=did_you_mean(type_, ir.PARAM_VALUE_TYPES) or "types: real, int")
            return
        lo, hi = self.range_of(d.range)
        overridden = d.name in self.overrides
        if overridden:
            text = self.overrides.pop(d.name)
            value = set_value(d.name, text)
        else:
            value = self.eval(d.value)
            if value is None:
                return
        if type_ is None:
            type_ = "int" if isinstance(value, int) else "real"
        set_option = f"--set {d.name}={self.overrides_text(d.name)}" if overridden else None
        if type_ == "int":
            if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
                self._param_error(TYPE_MISMATCH, f"parameter `{d.name}` is an int, found {format_number(value)}",
                                  d, set_option)
                return
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                self._param_error(BAD_VALUE, f"parameter `{d.name}` must be finite", d, set_option)
                return
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self._param_error(OUT_OF_RANGE, f"parameter `{d.name}` = {format_number(value)} is outside "
                              f"{range_text(lo, hi)}", d, set_option)
            return
        self.params[d.name] = ir.ParamValue(d.name, type_, value, lo, hi, overridden, d.span)
        self.env[d.name] = value

    def overrides_text(self, name: str) -> str:
        return self.set_texts.get(name, "")

    def _param_error(self, code: str, message: str, d: S.ParamDecl, set_option: Optional[str]) -> None:
        # A value from `--set` is a command-line error (exit 2), reported at once.
        if set_option:
            raise error(SET_BAD_VALUE, message + f" (from `{set_option}`)", d.span,
                        label="declared here", help="choose a value that fits the declaration",
                        exit_code=2)
        self.c.add(code, message, d.value.span, "this value", help=None)


def set_value(name: str, text: str) -> Number:
    """The value of `--set name=text`: a number or a constant expression."""
    try:
        expr = parse_expression(text, f"--set {name}")
        return evaluate_constant(expr, {}, "in --set")
    except (QnncError, ConstantError, RecursionError):
        raise error(SET_BAD_VALUE, f"`--set {name}={text}`: `{text}` is not a number",
                    help=f"write e.g. `--set {name}=0.5` or `--set {name}=pi/4`", exit_code=2) from None

