"""Elaboration: syntax trees (the main file and its imports) -> one verified IR Program.

Resolves imports (stdlib modules and local files, refusing cycles), substitutes
parameters (with `--set` overrides), evaluates sizes and numeric arguments, binds
neuron parameters per layer, and checks everything a user can get wrong, collecting
several diagnostics per run where it can.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Callable, Optional, Union

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.diagnostics import Collector, Diagnostic, QnncError, did_you_mean, error
from qnnc.compiler.ir import Span
from qnnc.compiler.parser import parse_expression, parse_module

from qnnc.compiler.codes import (
    BAD_ARGUMENTS, BAD_GATE_USE, BAD_IMPORTED_ITEM, BAD_INIT, BAD_NETWORK, BAD_PREPROCESS,
    BAD_READOUT, BAD_REGISTERS, BAD_SCHEDULE, BAD_TRAIN, BAD_VALUE, CIRCULAR_IMPORT,
    DUPLICATE_NAME, IMPORT_NOT_FOUND, MISSING_CARRIED, MISSING_STATEMENT, MULTIPLE_EMITS,
    NAME_NOT_ALLOWED, NO_EMIT, OUT_OF_RANGE, SET_BAD_VALUE, SET_UNKNOWN_PARAMETER, SHAPE_MISMATCH,
    TOO_LARGE, TYPE_MISMATCH, UNDECLARED_REGISTER, UNKNOWN_ACTIVATION, UNKNOWN_DATASET,
    UNKNOWN_FUNCTION, UNKNOWN_GATE, UNKNOWN_LAYER, UNKNOWN_MODULE, UNKNOWN_NETWORK,
    UNKNOWN_PARAMETER, UNKNOWN_TYPE,
)
from qnnc.compiler.ir import MAX_INPUT_FEATURES, MAX_LAYER_SIZE, MAX_WEIGHTS_PER_LAYER

CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}
BOOLEANS = {"on": True, "off": False, "true": True, "false": False}
BUILTIN_DATASETS = ("mnist.train5k", "mnist.test", "mnist.train")
OPTIMIZERS = {"sgd": ("lr", "momentum", "weight_decay"), "adam": ("lr", "weight_decay")}
LOSSES = ("cross_entropy",)
INIT_FUNCTIONS = ("normal", "kaiming", "uniform", "zeros", "checkpoint")
STDLIB_MODULES = tuple(sorted(
    p.name[:-4] for p in files("qnnc.stdlib").iterdir() if p.name.endswith(".qnn")))

Number = Union[int, float]


# --------------------------------------------------------------------------- expressions


class _EvalError(Exception):
    def __init__(self, code: str, message: str, span: Span, label: str = "", help: Optional[str] = None,
                 name: Optional[str] = None):
        super().__init__(message)
        self.diag = Diagnostic(code, message, span, label, help)
        self.name = name  # the unknown name, for UNKNOWN_PARAMETER


def _eval(expr: S.Expr, env: dict[str, Number], context: str) -> Number:
    """Evaluate a constant expression. `env` holds the names visible here (parameters,
    fan_in...). Integers stay integers under + - * and integer powers."""
    if isinstance(expr, S.Num):
        return expr.value
    if isinstance(expr, S.Name):
        if expr.name in env:
            return env[expr.name]
        if expr.name in CONSTANTS:
            return CONSTANTS[expr.name]
        if expr.name in ("z", "last"):
            raise _EvalError(NAME_NOT_ALLOWED, f"`{expr.name}` is only defined inside a neuron",
                             expr.span, "not available here",
                             help="`z` (pre-activation) and `last` (previous outcome) belong in a neuron's gate angles")
        raise _EvalError(UNKNOWN_PARAMETER, f"unknown parameter `{expr.name}`", expr.span,
                         f"not defined {context}",
                         help=did_you_mean(expr.name, list(env) + list(CONSTANTS))
                         or "declare it with `param NAME = VALUE`", name=expr.name)
    if isinstance(expr, S.Str):
        raise _EvalError(TYPE_MISMATCH, "expected a number, found a string", expr.span, "a string")
    if isinstance(expr, S.Neg):
        return -_eval(expr.operand, env, context)
    if isinstance(expr, S.BinOp):
        return _arith(expr.op, _eval(expr.lhs, env, context), _eval(expr.rhs, env, context), expr.span)
    if isinstance(expr, S.Apply):
        fn = expr.function
        if fn not in ir.BUILTIN_FUNCTIONS:
            raise _EvalError(UNKNOWN_FUNCTION, f"unknown function `{fn}`", expr.function_span,
                             help=did_you_mean(fn, ir.BUILTIN_FUNCTIONS) or
                             "functions: " + ", ".join(sorted(ir.BUILTIN_FUNCTIONS)))
        if any(a.name is not None for a in expr.args):
            bad = next(a for a in expr.args if a.name is not None)
            raise _EvalError(BAD_ARGUMENTS, f"`{fn}` takes no keyword arguments", bad.span)
        if len(expr.args) != ir.BUILTIN_FUNCTIONS[fn]:
            raise _EvalError(BAD_ARGUMENTS, f"`{fn}` takes {ir.BUILTIN_FUNCTIONS[fn]} argument(s), "
                             f"{len(expr.args)} given", expr.span)
        args = [float(_eval(a.value, env, context)) for a in expr.args]
        try:
            v = _apply_builtin(fn, args)
        except (ValueError, OverflowError):
            raise _EvalError(BAD_VALUE, f"`{fn}` is not defined at this argument", expr.span) from None
        return v
    raise AssertionError(f"unhandled expression {expr!r}")


def _apply_builtin(fn: str, a: list[float]) -> float:
    table: dict[str, Callable[..., float]] = {
        "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
        "acos": math.acos, "atan": math.atan, "exp": math.exp, "log": math.log,
        "sqrt": math.sqrt, "tanh": math.tanh, "abs": abs,
        "sign": lambda x: 1.0 if x >= 0 else -1.0,
        "clip": lambda x, lo, hi: min(max(x, lo), hi),
        "min": min, "max": max,
    }
    return float(table[fn](*a))


# --------------------------------------------------------------------------- modules


@dataclass
class _LoadedModule:
    name: str  # "stdlib.neurons" or the file path
    path: str
    syntax: S.Module
    imports: list[str] = field(default_factory=list)


class _Loader:
    """Loads the main file and, depth first, its imports; detects cycles."""

    def __init__(self, collector: Collector, read_file: Callable[[str], str]):
        self.collector = collector
        self.read_file = read_file
        self.modules: dict[str, _LoadedModule] = {}
        self.order: list[str] = []
        self.sources: dict[str, str] = {}
        self.main: Optional[str] = None
        self.failed = False  # an import could not be loaded

    def load_main(self, text: str, file: str) -> _LoadedModule:
        self.main = file
        self.sources[file] = text
        module = _LoadedModule(file, file, parse_module(text, file))
        self.modules[file] = module
        self._imports(module, [file])
        self.order.append(file)
        return module

    def _imports(self, module: _LoadedModule, stack: list[str]) -> None:
        for item in module.syntax.items:
            if not isinstance(item, S.Import):
                continue
            key, path = self._resolve(item, module)
            if key is None:
                self.failed = True
                continue
            module.imports.append(key)
            if key in stack:
                cycle = stack[stack.index(key):] + [key]
                self.collector.add(CIRCULAR_IMPORT, "circular import", item.span,
                                   "this import closes a cycle",
                                   notes=["the cycle: " + " -> ".join(_short(c) for c in cycle)],
                                   help="move the shared neurons into a module that imports neither")
                continue
            if key in self.modules:
                continue
            try:
                text = self.read_file(path)
            except (OSError, UnicodeDecodeError) as exc:
                self.collector.add(IMPORT_NOT_FOUND, f"cannot read module `{_short(path)}`",
                                   item.source_span, str(getattr(exc, "strerror", None) or exc),
                                   help="import paths are relative to the importing file")
                self.failed = True
                continue
            self.sources[path] = text
            try:
                child = _LoadedModule(key, path, parse_module(text, path))
            except QnncError as exc:
                self.collector.extend(exc)
                self.failed = True
                continue
            self.modules[key] = child
            self._imports(child, stack + [key])
            self.order.append(key)

    def _resolve(self, item: S.Import, module: _LoadedModule) -> tuple[Optional[str], str]:
        if item.is_stdlib:
            if item.module not in STDLIB_MODULES:
                self.collector.add(UNKNOWN_MODULE, f"unknown stdlib module `{item.module}`",
                                   item.module_span, "not in the standard library",
                                   help=did_you_mean(item.module, STDLIB_MODULES)
                                   or "stdlib modules: " + ", ".join(STDLIB_MODULES))
                return None, ""
            path = str(files("qnnc.stdlib").joinpath(f"{item.module}.qnn"))
            return f"stdlib.{item.module}", path
        rel = item.path
        base = os.path.dirname(module.path) if module.path and not module.path.startswith("<") else "."
        path = os.path.normpath(os.path.join(base, rel))
        if not os.path.isfile(path):
            siblings = []
            if os.path.isdir(os.path.dirname(path) or "."):
                # Suggest a sibling spelled as the user would write it (`lib/mine.qnn`).
                siblings = [os.path.join(os.path.dirname(rel), f)
                            for f in os.listdir(os.path.dirname(path) or ".") if f.endswith(".qnn")]
            self.collector.add(IMPORT_NOT_FOUND, f"cannot find module file `{rel}`",
                               item.source_span, f"no such file: {_short(path)}",
                               help=did_you_mean(rel, siblings)
                               or "import paths are relative to the importing file")
            return None, ""
        if self.main is not None and os.path.abspath(path) == os.path.abspath(self.main):
            return self.main, self.main
        return path, path


def _short(path: str) -> str:
    if path.startswith("stdlib."):
        return path
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("../..") else path
    except ValueError:
        return path


def _default_read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


# --------------------------------------------------------------------------- elaboration


class _Elaborator:
    def __init__(self, collector: Collector, overrides: dict[str, str]):
        self.c = collector
        self.overrides = dict(overrides)
        self.params: dict[str, ir.ParamValue] = {}
        self.env: dict[str, Number] = {}
        self.neurons: dict[str, ir.NeuronDef] = {}
        self.neuron_origin: dict[str, Span] = {}
        # Declared but in error (already reported): their uses are not reported again.
        self.failed_params: set[str] = set()
        self.failed_neurons: set[str] = set()
        self.imports_failed = False

    # ---- helpers
    def eval(self, expr: S.Expr, env: Optional[dict] = None, context: str = "here") -> Optional[Number]:
        try:
            return _eval(expr, self.env if env is None else env, context)
        except _EvalError as exc:
            if exc.name is None or exc.name not in self.failed_params:
                self.c.diagnostics.append(exc.diag)
            return None

    def eval_int(self, expr: S.Expr, what: str, low: int = 0, env=None) -> Optional[int]:
        v = self.eval(expr, env)
        if v is None:
            return None
        if isinstance(v, float) and (not math.isfinite(v) or v != int(v)):
            self.c.add(TYPE_MISMATCH, f"{what} must be a whole number, found {_fmt(v)}", expr.span,
                       "not an integer")
            return None
        v = int(v)
        if v < low:
            self.c.add(OUT_OF_RANGE, f"{what} must be at least {low}, found {v}", expr.span,
                       "too small")
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
            self.c.add(BAD_VALUE, f"empty range [{_fmt(lo)}, {_fmt(hi)}]", r.span, "lower bound above upper")
        return lo, hi

    # ---- params
    def param(self, d: S.ParamDecl) -> None:
        known = d.name in self.params
        self._param(d)
        if not known and d.name not in self.params:
            self.failed_params.add(d.name)

    def _param(self, d: S.ParamDecl) -> None:
        if d.name in self.params:
            self.c.add(DUPLICATE_NAME, f"parameter `{d.name}` is declared twice", d.name_span,
                       "declared again here", help="remove or rename one of them",
                       notes=[f"first declared at {_where(self.params[d.name].span)}"])
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
            value = _set_value(d.name, text)
        else:
            value = self.eval(d.value)
            if value is None:
                return
        if type_ is None:
            type_ = "int" if isinstance(value, int) else "real"
        where = f"--set {d.name}={self.overrides_text(d.name)}" if overridden else None
        if type_ == "int":
            if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
                self._param_error(TYPE_MISMATCH, f"parameter `{d.name}` is an int, found {_fmt(value)}",
                                  d, where)
                return
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                self._param_error(BAD_VALUE, f"parameter `{d.name}` must be finite", d, where)
                return
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self._param_error(OUT_OF_RANGE, f"parameter `{d.name}` = {_fmt(value)} is outside "
                              f"{_range_text(lo, hi)}", d, where)
            return
        self.params[d.name] = ir.ParamValue(d.name, type_, value, lo, hi, overridden, d.span)
        self.env[d.name] = value

    _set_texts: dict[str, str] = {}

    def overrides_text(self, name: str) -> str:
        return self._set_texts.get(name, "")

    def _param_error(self, code: str, message: str, d: S.ParamDecl, where: Optional[str]) -> None:
        if where:
            raise error(SET_BAD_VALUE, message + f" (from `{where}`)", d.span,
                        label="declared here", help="choose a value that fits the declaration",
                        exit_code=2)
        self.c.add(code, message, d.value.span, "this value", help=None)

    # ---- neurons
    def neuron(self, d: S.NeuronSyntax, module: str) -> None:
        if d.name in self.neurons:
            self.c.add(DUPLICATE_NAME, f"neuron `{d.name}` is defined twice", d.name_span,
                       "defined again here",
                       notes=[f"first defined at {_where(self.neuron_origin[d.name])}"])
            return
        if d.name in ir.CLASSICAL_ACTIVATIONS:
            self.c.add(DUPLICATE_NAME, f"`{d.name}` is a built-in activation", d.name_span,
                       "cannot be redefined", help="choose another name")
            return
        n_before = len(self.c.diagnostics)
        params: list[ir.NeuronParam] = []
        seen: set[str] = set()
        for p in d.params:
            if p.name in seen:
                self.c.add(DUPLICATE_NAME, f"parameter `{p.name}` appears twice", p.name_span,
                           "declared again here", help="each parameter of a neuron has its own name")
                continue
            if p.name in ir.NEURON_SPECIAL_NAMES or p.name in CONSTANTS:
                self.c.add(DUPLICATE_NAME, f"`{p.name}` is a reserved name", p.name_span,
                           "cannot be a parameter",
                           help="`z` and `last` are given to every neuron" if p.name in ir.NEURON_SPECIAL_NAMES
                           else "`pi`, `e` and `inf` are constants; choose another name")
                continue
            seen.add(p.name)
            if p.type not in ir.PARAM_TYPES:
                self.c.add(UNKNOWN_TYPE, f"unknown parameter type `{p.type}`", p.type_span,
                           help=did_you_mean(p.type, ir.PARAM_TYPES) or "types: real, int, squash")
                continue
            if p.type == "squash" and p.range is not None:
                self.c.add(TYPE_MISMATCH, "a squash parameter takes no range", p.range.span,
                           help="a squash is `tanh` or `clip`; ranges are for real and int parameters")
                continue
            lo, hi = self.range_of(p.range, env={})
            default: Union[float, int, str, None] = None
            if p.default is not None:
                default = self._neuron_default(p, lo, hi)
            params.append(ir.NeuronParam(p.name, p.type, lo, hi, default, p.span))
        param_types = {p.name: p.type for p in params}
        registers: list[ir.Register] = []
        ops: list[ir.Op] = []
        declared: dict[str, ir.Register] = {}
        self._reported_registers: set[str] = set()
        for st in d.body:
            if isinstance(st, S.QubitDecl):
                self._declare(declared, registers, ir.Register(st.name, "qubit", st.carried, st.span), st.span)
            elif isinstance(st, S.AncillaDecl):
                for name, sp in zip(st.names, st.name_spans or [st.span] * len(st.names)):
                    self._declare(declared, registers, ir.Register(name, "ancilla", False, sp), sp)
            elif isinstance(st, S.GateStmt):
                op = self._gate(st, declared, param_types)
                if op is not None:
                    ops.append(op)
            elif isinstance(st, S.MeasureStmt):
                if self._use(st.target, st.target_span, declared):
                    ops.append(ir.MeasureOp(st.target, st.emit, st.span))
            elif isinstance(st, S.ResetStmt):
                if self._use(st.target, st.target_span, declared):
                    ops.append(ir.ResetOp(st.target, st.span))
        qubits = [r for r in registers if r.role == "qubit"]
        if len(qubits) > 1:
            self.c.add(BAD_REGISTERS, f"neuron `{d.name}` declares {len(qubits)} qubits", qubits[1].span,
                       "a second qubit", help="a neuron has one qubit of its own; declare the others as `ancilla`")
        emits = [o for o in ops if isinstance(o, ir.MeasureOp) and o.emit]
        if not emits and len(self.c.diagnostics) == n_before:
            self.c.add(NO_EMIT, f"neuron `{d.name}` measures nothing it could emit", d.name_span,
                       "this neuron has no activation",
                       help="end the neuron with `emit measure q`: the outcome is its activation")
        elif len(emits) > 1:
            self.c.add(MULTIPLE_EMITS, f"neuron `{d.name}` emits {len(emits)} measurements", emits[1].span,
                       "a second `emit`", help="exactly one measurement is the activation; drop `emit` from the others")
        uses_last = any(_mentions(o.angle, "last") for o in ops if isinstance(o, ir.GateOp) and o.angle)
        if uses_last and not any(r.carried for r in registers):
            op = next(o for o in ops if isinstance(o, ir.GateOp) and o.angle and _mentions(o.angle, "last"))
            self.c.add(MISSING_CARRIED, "`last` needs a carried qubit", _ref_span(op.angle, "last") or op.span,
                       "uses the previous outcome",
                       help="declare the neuron's qubit as `qubit q carried` so it continues the previous layer's neuron")
        self.neurons[d.name] = ir.NeuronDef(d.name, module, tuple(params), tuple(registers), tuple(ops), d.span)
        self.neuron_origin[d.name] = d.span

    def _neuron_default(self, p: S.NeuronParamSyntax, lo, hi):
        if p.type == "squash":
            if isinstance(p.default, S.Name) and p.default.name in ir.SQUASH_FUNCTIONS:
                return p.default.name
            self.c.add(TYPE_MISMATCH, "a squash parameter takes `tanh` or `clip`", p.default.span,
                       help=did_you_mean(getattr(p.default, "name", ""), ir.SQUASH_FUNCTIONS))
            return None
        v = self.eval_real(p.default, f"the default of `{p.name}`", env={})
        if v is None:
            return None
        if p.type == "int":
            if v != int(v):
                self.c.add(TYPE_MISMATCH, f"`{p.name}` is an int, found {_fmt(v)}", p.default.span)
                return None
            v = int(v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            self.c.add(OUT_OF_RANGE, f"the default {_fmt(v)} of `{p.name}` is outside {_range_text(lo, hi)}",
                       p.default.span)
            return None
        return v

    def _declare(self, declared, registers, reg: ir.Register, span: Span) -> None:
        if reg.name in declared:
            self.c.add(DUPLICATE_NAME, f"register `{reg.name}` is declared twice", span, "declared again here",
                       notes=[f"first declared at {_where(declared[reg.name].span)}"])
            return
        declared[reg.name] = reg
        registers.append(reg)

    def _use(self, name: str, span: Span, declared) -> bool:
        if name in declared:
            return True
        if name in self._reported_registers:
            return False  # reported at its first use
        self._reported_registers.add(name)
        self.c.add(UNDECLARED_REGISTER, f"undeclared qubit or ancilla `{name}`", span,
                   "not declared in this neuron",
                   help=did_you_mean(name, declared) or f"declare it first: `ancilla {name}`")
        return False

    def _gate(self, st: S.GateStmt, declared, param_types) -> Optional[ir.GateOp]:
        if st.gate not in ir.GATES:
            self.c.add(UNKNOWN_GATE, f"unknown gate `{st.gate}`", st.gate_span,
                       help=did_you_mean(st.gate, ir.GATES) or "gates: " + ", ".join(ir.GATES))
            return None
        want_angle = st.gate in ir.GATES_1Q_ANGLE
        want_targets = 2 if st.gate in ir.GATES_2Q else 1
        if want_angle and len(st.angles) != 1:
            self.c.add(BAD_GATE_USE, f"`{st.gate}` takes one angle", st.span,
                       help=f"write `{st.gate}(ANGLE) q`")
            return None
        if not want_angle and st.angles:
            self.c.add(BAD_GATE_USE, f"`{st.gate}` takes no angle", st.span, help=f"write `{st.gate} ...`")
            return None
        if len(st.targets) != want_targets:
            self.c.add(BAD_GATE_USE, f"`{st.gate}` acts on {want_targets} qubit(s), {len(st.targets)} given",
                       st.span, help=f"write `{st.gate} CONTROL, TARGET`" if want_targets == 2
                       else f"write `{st.gate}{'(ANGLE)' if want_angle else ''} QUBIT`")
            return None
        spans = st.target_spans or (st.span,) * len(st.targets)
        if not all(self._use(t, s, declared) for t, s in zip(st.targets, spans)):
            return None
        if want_targets == 2 and st.targets[0] == st.targets[1]:
            self.c.add(BAD_GATE_USE, f"`{st.gate}` needs two different qubits", st.span)
            return None
        angle = None
        if want_angle:
            angle = self._angle(st.angles[0], param_types)
            if angle is None:
                return None
        return ir.GateOp(st.gate, angle, st.targets, st.span)

    def _angle(self, e: S.Expr, param_types: dict[str, str]) -> Optional[ir.Expr]:
        """Syntax -> IR expression in z, last and the neuron's parameters; constants fold."""
        try:
            return _to_ir_expr(e, param_types)
        except _EvalError as exc:
            self.c.diagnostics.append(exc.diag)
            return None

    # ---- networks
    def network(self, d: S.NetworkSyntax) -> Optional[ir.Network]:
        inputs = [s for s in d.body if isinstance(s, S.InputDecl)]
        layers_syn = [s for s in d.body if isinstance(s, S.LayerDecl)]
        readouts = [s for s in d.body if isinstance(s, S.ReadoutDecl)]
        if not inputs:
            self.c.add(BAD_NETWORK, f"network `{d.name}` has no input", d.name_span,
                       help="declare one, e.g. `input x[28, 28] with scale(1 / 255)`")
            return None
        for extra in inputs[1:]:
            self.c.add(BAD_NETWORK, "a network has one input", extra.span, "a second input")
        for extra in readouts[1:]:
            self.c.add(DUPLICATE_NAME, "a network has one readout", extra.span, "a second readout")
        inp = self.input(inputs[0])
        names: dict[str, Span] = {inputs[0].name: inputs[0].name_span}
        layers: list[ir.Layer] = []
        prev_name, prev_size = inputs[0].name, (inp.features if inp else None)
        prev_layer: Optional[ir.Layer] = None
        for i, ls in enumerate(layers_syn):
            if ls.name in names:
                self.c.add(DUPLICATE_NAME, f"`{ls.name}` is declared twice in network `{d.name}`",
                           ls.name_span, "declared again here", help="give each layer its own name",
                           notes=[f"first declared at {_where(names[ls.name])}"])
                continue
            names[ls.name] = ls.name_span
            layer = self.layer(ls, d, prev_name, prev_size, prev_layer, names)
            if ls.role == "output" and i != len(layers_syn) - 1:
                self.c.add(BAD_NETWORK, "the output layer must be the last layer", ls.span,
                           help="move it to the end of the network")
            if layer is not None:
                layers.append(layer)
                prev_layer = layer
                prev_size = layer.size
            else:
                prev_layer, prev_size = None, None
            prev_name = ls.name
        if not any(ls.role == "output" for ls in layers_syn):
            at = layers_syn[-1].span if layers_syn else d.name_span
            self.c.add(BAD_NETWORK, f"network `{d.name}` has no output layer", at,
                       help="end it with e.g. `output y[10] = linear of dense(h2)`")
        readout = self.readout(readouts[0] if readouts else None, d)
        if inp is None or readout is None or len(layers) != len(layers_syn):
            return None
        return ir.Network(d.name, inp, tuple(layers), readout, d.span)

    def input(self, d: S.InputDecl) -> Optional[ir.Input]:
        shape = []
        for e in d.shape:
            v = self.eval_int(e, "an input dimension", low=1)
            if v is None:
                return None
            shape.append(v)
        steps = []
        pooled = list(shape)  # the shape as the steps see it; the IR keeps the raw shape
        for st in d.steps:
            step = self.preprocess(st, pooled)
            if step is None:
                return None
            steps.append(step)
        inp = ir.Input(d.name, tuple(shape), tuple(steps), d.span)
        n = 1
        for s in shape:
            n *= s
        if n > MAX_INPUT_FEATURES:
            self.c.add(TOO_LARGE, f"an input of {n:,} values exceeds the limit of {MAX_INPUT_FEATURES:,}",
                       d.span)
            return None
        return inp

    def preprocess(self, st: S.CallSyntax, shape: list[int]) -> Optional[ir.PreprocessStep]:
        if st.name not in ir.PREPROCESS_KINDS:
            self.c.add(BAD_PREPROCESS, f"unknown preprocessing step `{st.name}`", st.name_span,
                       help=did_you_mean(st.name, ir.PREPROCESS_KINDS)
                       or "steps: scale(factor), pool(size), threshold(level)")
            return None
        if st.args is None or len(st.args) != 1 or st.args[0].name is not None:
            self.c.add(BAD_ARGUMENTS, f"`{st.name}` takes one value", st.span,
                       help=f"e.g. `{st.name}({ {'scale': '1 / 255', 'pool': '2', 'threshold': '0.5'}[st.name] })`")
            return None
        e = st.args[0].value
        if st.name == "pool":
            k = self.eval_int(e, "a pooling size", low=1)
            if k is None:
                return None
            for dim in shape:
                if dim % k:
                    self.c.add(SHAPE_MISMATCH, f"pool({k}) does not divide the input shape "
                               f"[{', '.join(map(str, shape))}]", st.span,
                               help="pool by a divisor of every dimension (28 x 28: 2, 4, 7 or 14)")
                    return None
            for i in range(len(shape)):
                shape[i] //= k
            return ir.PreprocessStep("pool", float(k), st.span)
        v = self.eval_real(e, f"the {st.name} value")
        if v is None:
            return None
        return ir.PreprocessStep(st.name, v, st.span)

    def layer(self, ls: S.LayerDecl, net: S.NetworkSyntax, prev_name: str, prev_size: Optional[int],
              prev_layer: Optional[ir.Layer], names: dict[str, Span]) -> Optional[ir.Layer]:
        size = self.eval_int(ls.size, "a layer size", low=1)
        if size is not None and size > MAX_LAYER_SIZE:
            self.c.add(TOO_LARGE, f"layer `{ls.name}` has {size:,} neurons, more than the limit of "
                       f"{MAX_LAYER_SIZE:,}", ls.size.span, "too many neurons",
                       help="qnnc refuses this before allocating anything; use a smaller width")
            size = None
        dense = self.dense(ls, net, prev_name, prev_size, size, names)
        activation = self.activation(ls.activation)
        if size is None or dense is None or activation is None:
            return None
        if prev_size is not None and prev_size * size > MAX_WEIGHTS_PER_LAYER:
            self.c.add(TOO_LARGE, f"layer `{ls.name}` would have {prev_size * size:,} weights, more than "
                       f"the limit of {MAX_WEIGHTS_PER_LAYER:,}", ls.size.span)
            return None
        role = "output" if ls.role == "output" else "hidden"
        if role == "output" and isinstance(activation, ir.NeuronActivation):
            self.c.add(BAD_NETWORK, "the output layer must be classical", ls.activation.span,
                       "a quantum neuron", help="use `linear` logits (the papers' read-out) or sign/relu/tanh")
            return None
        if isinstance(activation, ir.NeuronActivation):
            neuron = self.neurons[activation.neuron]
            if neuron.carried and prev_layer is not None and isinstance(prev_layer.activation, ir.NeuronActivation) \
                    and self.neurons[prev_layer.activation.neuron].carried and prev_layer.size != size:
                self.c.add(SHAPE_MISMATCH, f"layer `{ls.name}` ({size} neurons) continues the qubits of "
                           f"`{prev_layer.name}` ({prev_layer.size} neurons)", ls.size.span,
                           "widths differ",
                           help=f"a carried neuron reuses the same-index qubit of the previous layer: "
                           f"give `{ls.name}` {prev_layer.size} neurons")
                return None
        return ir.Layer(ls.name, size, role, dense, activation, ls.span)

    def dense(self, ls: S.LayerDecl, net: S.NetworkSyntax, prev_name: str, prev_size: Optional[int],
              size: Optional[int], names: dict[str, Span]) -> Optional[ir.Dense]:
        call = ls.dense
        if call.name != "dense":
            self.c.add(BAD_NETWORK, f"unknown connection `{call.name}`", call.name_span,
                       help=did_you_mean(call.name, ["dense"]) or "layers connect with `dense(SOURCE, ...)`")
            return None
        args = call.args or ()
        positional = [a for a in args if a.name is None]
        if len(positional) != 1 or not isinstance(positional[0].value, S.Name):
            self.c.add(BAD_ARGUMENTS, "`dense` takes its source layer as the first argument", call.span,
                       help=f"e.g. `dense({prev_name}, bias = off)`")
            return None
        src = positional[0].value
        if src.name not in names or src.name == ls.name:
            self.c.add(UNKNOWN_LAYER, f"unknown layer `{src.name}`", src.span,
                       f"not declared before `{ls.name}` in network `{net.name}`",
                       help=did_you_mean(src.name, [n for n in names if n != ls.name])
                       or f"layers read from the input or an earlier layer, e.g. `dense({prev_name})`")
            return None
        if src.name != prev_name:
            self.c.add(BAD_NETWORK, f"layer `{ls.name}` reads from `{src.name}`, not from the layer before it",
                       src.span, f"expected `{prev_name}`",
                       help="qnnc networks are chains: each layer reads the one declared just before it")
            return None
        bias, init = False, None
        seen: set[str] = set()
        for a in args:
            if a.name is None:
                continue
            if a.name in seen:
                self.c.add(DUPLICATE_NAME, f"`{a.name}` is given twice", a.name_span)
                continue
            seen.add(a.name)
            if a.name == "bias":
                if isinstance(a.value, S.Name) and a.value.name in BOOLEANS:
                    bias = BOOLEANS[a.value.name]
                else:
                    self.c.add(TYPE_MISMATCH, "`bias` is `on` or `off`", a.value.span)
            elif a.name == "init":
                init = self.init(a.value, prev_size, size)
                if init is None:
                    return None
            else:
                self.c.add(BAD_ARGUMENTS, f"`dense` has no argument `{a.name}`", a.name_span,
                           help=did_you_mean(a.name, ["bias", "init"]) or "arguments: bias, init")
        if init is None:
            if prev_size is None or size is None:
                return None
            std = 1.0 / math.sqrt(prev_size)
            init = ir.NormalInit(0.0, std, std * std * prev_size, call.span)
        return ir.Dense(src.name, bias, init, call.span)

    def init(self, e: S.Expr, fan_in: Optional[int], fan_out: Optional[int]) -> Optional[ir.Init]:
        if isinstance(e, S.Name):
            name, args = e.name, ()
            span, fspan = e.span, e.span
        elif isinstance(e, S.Apply):
            name, args, span, fspan = e.function, e.args, e.span, e.function_span
        else:
            self.c.add(BAD_INIT, "expected an initialisation", e.span,
                       help="normal(mean, std), kaiming, uniform(low, high), zeros or checkpoint(...)")
            return None
        if name not in INIT_FUNCTIONS:
            self.c.add(BAD_INIT, f"unknown initialisation `{name}`", fspan,
                       help=did_you_mean(name, INIT_FUNCTIONS) or "inits: " + ", ".join(INIT_FUNCTIONS))
            return None
        if fan_in is None or fan_out is None:
            return None
        env = dict(self.env, fan_in=fan_in, fan_out=fan_out)
        pos = [a for a in args if a.name is None]
        kw = {a.name: a for a in args if a.name is not None}
        if name == "checkpoint":
            if len(pos) != 1 or not isinstance(pos[0].value, S.Str):
                self.c.add(BAD_INIT, "`checkpoint` takes the run directory as a string", span,
                           help='e.g. `checkpoint("runs/a05", step = 500, tensor = "h1")`')
                return None
            step = None
            tensor = None
            for k, a in kw.items():
                if k == "step":
                    step = self.eval_int(a.value, "a checkpoint step", low=0, env=env)
                elif k == "tensor":
                    if isinstance(a.value, S.Str):
                        tensor = a.value.value
                    else:
                        self.c.add(TYPE_MISMATCH, "`tensor` is a string", a.value.span)
                else:
                    self.c.add(BAD_ARGUMENTS, f"`checkpoint` has no argument `{k}`", a.name_span,
                               help=did_you_mean(k, ["step", "tensor"]))
            if tensor is None:
                self.c.add(BAD_INIT, "`checkpoint` needs the tensor name", span,
                           help='add `tensor = "h1"` (the layer name in that run)')
                return None
            return ir.CheckpointInit(pos[0].value.value, step, tensor, span)
        expected = {"normal": ("mean", "std"), "uniform": ("low", "high"), "kaiming": ("gain",),
                    "zeros": ()}[name]
        values: dict[str, float] = {}
        if len(pos) > len(expected):
            self.c.add(BAD_ARGUMENTS, f"`{name}` takes at most {len(expected)} argument(s)", span)
            return None
        for key, a in zip(expected, pos):
            values[key] = a.value  # type: ignore[assignment]
        for k, a in kw.items():
            if k not in expected:
                self.c.add(BAD_ARGUMENTS, f"`{name}` has no argument `{k}`", a.name_span,
                           help=did_you_mean(k, expected))
                return None
            values[k] = a.value  # type: ignore[assignment]
        nums: dict[str, float] = {}
        for k, v in values.items():
            r = self.eval_real(v, f"`{k}`", env=env)  # type: ignore[arg-type]
            if r is None:
                return None
            nums[k] = r
        if name == "normal":
            if "std" not in nums:
                self.c.add(BAD_INIT, "`normal` needs a standard deviation", span,
                           help="e.g. `normal(0, 1 / sqrt(fan_in))`")
                return None
            std, mean = nums["std"], nums.get("mean", 0.0)
            if std < 0:
                self.c.add(OUT_OF_RANGE, "a standard deviation cannot be negative", values["std"].span)  # type: ignore[union-attr]
                return None
            return ir.NormalInit(mean, std, std * std * fan_in, span)
        if name == "kaiming":
            # Kaiming-normal for ReLU: std = gain / sqrt(fan_in), gain sqrt(2) by default.
            gain = nums.get("gain", math.sqrt(2.0))
            if gain < 0:
                self.c.add(OUT_OF_RANGE, "the gain of `kaiming` cannot be negative", values["gain"].span,  # type: ignore[union-attr]
                           "a negative gain", help="the default is sqrt(2), for ReLU layers")
                return None
            std = gain / math.sqrt(fan_in)
            return ir.NormalInit(0.0, std, std * std * fan_in, span)
        if name == "uniform":
            if "low" not in nums or "high" not in nums:
                self.c.add(BAD_INIT, "`uniform` needs low and high", span)
                return None
            if nums["low"] > nums["high"]:
                self.c.add(BAD_VALUE, "`uniform` needs low <= high", span)
                return None
            return ir.UniformInit(nums["low"], nums["high"], span)
        return ir.ZerosInit(span)

    def activation(self, call: S.CallSyntax) -> Optional[ir.Activation]:
        if call.name in ir.CLASSICAL_ACTIVATIONS:
            if call.args:
                self.c.add(BAD_ARGUMENTS, f"`{call.name}` takes no arguments", call.span)
                return None
            return ir.ClassicalActivation(call.name, call.span)
        neuron = self.neurons.get(call.name)
        if neuron is None and self.imports_failed:
            return None  # most likely defined in the module that failed to load (reported)
        if neuron is None:
            self.c.add(UNKNOWN_ACTIVATION, f"unknown neuron or activation `{call.name}`", call.name_span,
                       help=did_you_mean(call.name, list(self.neurons) + list(ir.CLASSICAL_ACTIVATIONS))
                       or ("import the stdlib neurons: `import neurons from stdlib`" if call.name in ("rotation", "weak")
                           else "activations: " + ", ".join(ir.CLASSICAL_ACTIVATIONS + tuple(self.neurons))))
            return None
        return self.bind(neuron, call)

    def bind(self, neuron: ir.NeuronDef, call: S.CallSyntax) -> Optional[ir.NeuronActivation]:
        args = call.args or ()
        given: dict[str, S.Arg] = {}
        ok = True
        positional = [a for a in args if a.name is None]
        if len(positional) > len(neuron.params):
            self.c.add(BAD_ARGUMENTS, f"`{neuron.name}` takes {len(neuron.params)} argument(s), "
                       f"{len(positional)} given", positional[len(neuron.params)].span,
                       help="parameters: " + ", ".join(p.name for p in neuron.params))
            return None
        for p, a in zip(neuron.params, positional):
            given[p.name] = a
        for a in args:
            if a.name is None:
                continue
            if neuron.param(a.name) is None:
                self.c.add(BAD_ARGUMENTS, f"`{neuron.name}` has no parameter `{a.name}`", a.name_span,
                           help=did_you_mean(a.name, [p.name for p in neuron.params])
                           or "parameters: " + ", ".join(p.name for p in neuron.params))
                ok = False
                continue
            if a.name in given:
                self.c.add(DUPLICATE_NAME, f"`{a.name}` is given twice", a.name_span)
                ok = False
                continue
            given[a.name] = a
        bindings = []
        for p in neuron.params:
            a = given.get(p.name)
            if a is None:
                if p.default is None:
                    self.c.add(BAD_ARGUMENTS, f"`{neuron.name}` needs a value for `{p.name}`", call.span,
                               help=f"pass it: `{neuron.name}({p.name} = ...)`")
                    ok = False
                    continue
                bindings.append(ir.Binding(p.name, p.default, call.span))
                continue
            value = self._bind_value(neuron, p, a)
            if value is None:
                ok = False
                continue
            bindings.append(ir.Binding(p.name, value, a.span))
        if not ok:
            return None
        return ir.NeuronActivation(neuron.name, tuple(bindings), call.span)

    def _bind_value(self, neuron: ir.NeuronDef, p: ir.NeuronParam, a: S.Arg):
        if p.type == "squash":
            if isinstance(a.value, S.Name) and a.value.name in ir.SQUASH_FUNCTIONS:
                return a.value.name
            self.c.add(TYPE_MISMATCH, f"`{p.name}` is a squash: `tanh` or `clip`", a.value.span,
                       help=did_you_mean(getattr(a.value, "name", ""), ir.SQUASH_FUNCTIONS))
            return None
        v = self.eval(a.value)
        if v is None:
            return None
        if p.type == "int":
            if isinstance(v, float) and v != int(v):
                self.c.add(TYPE_MISMATCH, f"`{p.name}` is an int, found {_fmt(v)}", a.value.span)
                return None
            v = int(v)
        else:
            v = float(v)
            if not math.isfinite(v):
                self.c.add(BAD_VALUE, f"`{p.name}` must be finite", a.value.span)
                return None
        if (p.lower is not None and v < p.lower) or (p.upper is not None and v > p.upper):
            self.c.add(OUT_OF_RANGE, f"`{p.name}` = {_fmt(v)} is outside {_range_text(p.lower, p.upper)}",
                       a.value.span, f"`{neuron.name}` requires {p.name} in {_range_text(p.lower, p.upper)}",
                       help=_range_help(neuron.name, p))
            return None
        return v

    def readout(self, d: Optional[S.ReadoutDecl], net: S.NetworkSyntax) -> Optional[ir.Readout]:
        if d is None:
            return ir.Readout("argmax", 1, net.span)
        if d.kind not in ir.READOUT_KINDS:
            self.c.add(BAD_READOUT, f"unknown readout `{d.kind}`", d.kind_span,
                       help=did_you_mean(d.kind, ir.READOUT_KINDS) or "readouts: argmax, logits")
            return None
        shots = 1
        if d.shots is not None:
            shots = self.eval_int(d.shots, "the number of shots", low=1)
            if shots is None:
                return None
            if d.kind == "logits":
                self.c.add(BAD_READOUT, "a vote needs `argmax`", d.span, help="write `readout argmax, vote over N shots`")
                return None
        return ir.Readout(d.kind, shots, d.span)

    # ---- training
    def train(self, d: S.TrainSyntax, networks: dict[str, ir.Network]) -> Optional[ir.TrainRecipe]:
        if d.name not in networks:
            self.c.add(UNKNOWN_NETWORK, f"unknown network `{d.name}`", d.name_span,
                       help=did_you_mean(d.name, networks) or "train blocks are named after a network")
            return None
        stmts: dict[str, S.TrainStmt] = {}
        for st in d.body:
            if st.keyword in stmts:
                self.c.add(DUPLICATE_NAME, f"`{st.keyword}` is given twice", st.span, "given again here")
                continue
            stmts[st.keyword] = st
        if "data" not in stmts:
            self.c.add(MISSING_STATEMENT, f"train block `{d.name}` has no `data` statement", d.name_span,
                       help="add e.g. `data mnist.train5k`")
            return None
        data = self.dataset(stmts["data"].value)
        validate = self.dataset(stmts["validate"].value) if "validate" in stmts else None
        optimizer = ir.Optimizer("sgd", 0.01, 0.9, 0.0, d.span)
        if "optimizer" in stmts:
            optimizer = self.optimizer(stmts["optimizer"].value)
        batch = self.eval_int(stmts["batch"].value, "the batch size", low=1) if "batch" in stmts else 64
        epochs = self.eval_int(stmts["epochs"].value, "the number of epochs", low=0) if "epochs" in stmts else 10
        seed = self.eval_int(stmts["seed"].value, "the seed", low=0) if "seed" in stmts else 0
        loss = "cross_entropy"
        if "loss" in stmts:
            name = stmts["loss"].value
            if name.name not in LOSSES:
                self.c.add(BAD_TRAIN, f"unknown loss `{name.name}`", name.span,
                           help=did_you_mean(name.name, LOSSES) or "losses: " + ", ".join(LOSSES))
                loss = None
            else:
                loss = name.name
        gradient = ir.Gradient("straight_through", 1.0, d.span)
        if "gradient" in stmts:
            gradient = self.gradient(stmts["gradient"].value)
        schedule = ir.CheckpointSchedule(None, False, (), True, d.span)
        if "checkpoint" in stmts:
            schedule = self.schedule(stmts["checkpoint"])
        parts = (data, optimizer, batch, epochs, seed, loss, gradient, schedule)
        if any(p is None for p in parts) or ("validate" in stmts and validate is None):
            return None
        return ir.TrainRecipe(d.name, data, validate, optimizer, batch, epochs, seed, loss, gradient,
                              schedule, d.span)

    def dataset(self, ds: S.DatasetSyntax) -> Optional[ir.Dataset]:
        if ds.kind == "builtin":
            if ds.text not in BUILTIN_DATASETS:
                self.c.add(UNKNOWN_DATASET, f"unknown data set `{ds.text}`", ds.span,
                           help=did_you_mean(ds.text, BUILTIN_DATASETS)
                           or "built-in: " + ", ".join(BUILTIN_DATASETS) + '; or a file: "path.npz"')
                return None
            return ir.Dataset("builtin", ds.text, ds.span)
        path = S.Str(ds.text).value
        if not path.endswith(".npz"):
            self.c.add(UNKNOWN_DATASET, f"data files are .npz archives, not `{path}`", ds.span,
                       help="save arrays `images` and `labels` with numpy.savez")
            return None
        return ir.Dataset("file", path, ds.span)

    def optimizer(self, call: S.CallSyntax) -> Optional[ir.Optimizer]:
        if call.name not in OPTIMIZERS:
            self.c.add(BAD_TRAIN, f"unknown optimizer `{call.name}`", call.name_span,
                       help=did_you_mean(call.name, OPTIMIZERS) or "optimizers: sgd, adam")
            return None
        names = OPTIMIZERS[call.name]
        values = {"lr": 0.01 if call.name == "sgd" else 0.001, "momentum": 0.0, "weight_decay": 0.0}
        args = call.args or ()
        for i, a in enumerate(args):
            key = a.name if a.name is not None else (names[i] if i < len(names) else None)
            if key is None or key not in names:
                self.c.add(BAD_ARGUMENTS, f"`{call.name}` has no argument `{key or '#' + str(i + 1)}`",
                           a.name_span if a.name else a.span,
                           help=did_you_mean(key or "", names) or "arguments: " + ", ".join(names))
                return None
            v = self.eval_real(a.value, f"`{key}`")
            if v is None:
                return None
            if v < 0 or (key == "lr" and v == 0):
                self.c.add(OUT_OF_RANGE, f"`{key}` must be {'positive' if key == 'lr' else 'non-negative'}",
                           a.value.span)
                return None
            values[key] = v
        return ir.Optimizer(call.name, values["lr"], values["momentum"], values["weight_decay"], call.span)

    def gradient(self, call: S.CallSyntax) -> Optional[ir.Gradient]:
        if call.name not in ir.GRADIENT_KINDS:
            self.c.add(BAD_TRAIN, f"unknown gradient `{call.name}`", call.name_span,
                       help=did_you_mean(call.name, ir.GRADIENT_KINDS) or "gradients: straight_through, exact")
            return None
        window = 1.0
        for a in call.args or ():
            if call.name == "straight_through" and a.name in (None, "window"):
                w = self.eval_real(a.value, "the window")
                if w is None:
                    return None
                if w <= 0:
                    self.c.add(OUT_OF_RANGE, "the window must be positive", a.value.span)
                    return None
                window = w
            else:
                self.c.add(BAD_ARGUMENTS, f"`{call.name}` has no argument `{a.name or ''}`".replace(" ``", ""),
                           a.span, help="straight_through(window = 1); exact takes none")
                return None
        return ir.Gradient(call.name, window, call.span)

    def schedule(self, st: S.TrainStmt) -> Optional[ir.CheckpointSchedule]:
        every, log, steps, end = None, False, [], False
        seen: dict[int, Span] = {}
        for sch in st.value:
            if sch.kind == "every" and every is not None:
                self.c.add(BAD_SCHEDULE, "`every N steps` is given twice", sch.span, "a second interval",
                           help="keep one interval; list extra steps with `at steps [...]`")
                return None
            if sch.kind == "every":
                every = self.eval_int(sch.values[0], "a checkpoint interval", low=1)
                if every is None:
                    return None
            elif sch.kind == "log":
                log = True
            elif sch.kind == "end":
                end = True
            else:
                for e in sch.values:
                    v = self.eval_int(e, "a checkpoint step", low=0)
                    if v is None:
                        return None
                    if v in seen:
                        self.c.add(BAD_SCHEDULE, f"checkpoint step {v} is listed twice", e.span,
                                   "listed again here", notes=[f"first listed at {_where(seen[v])}"])
                        return None
                    seen[v] = e.span
                    steps.append(v)
        return ir.CheckpointSchedule(every, log, tuple(sorted(steps)), end, st.span)


# --------------------------------------------------------------------------- IR expressions


def _to_ir_expr(e: S.Expr, param_types: dict[str, str]) -> ir.Expr:
    if isinstance(e, S.Num):
        return ir.Const(float(e.value), e.span)
    if isinstance(e, S.Str):
        raise _EvalError(TYPE_MISMATCH, "expected an angle, found a string", e.span)
    if isinstance(e, S.Name):
        if e.name in ir.NEURON_SPECIAL_NAMES:
            return ir.Ref(e.name, e.span)
        if e.name in param_types:
            if param_types[e.name] == "squash":
                raise _EvalError(TYPE_MISMATCH, f"`{e.name}` is a squash function, not a number", e.span,
                                 "a squash", help=f"apply it to an angle, e.g. `{e.name}(z)`")
            return ir.Ref(e.name, e.span)
        if e.name in CONSTANTS and e.name != "inf":
            return ir.Const(CONSTANTS[e.name], e.span)
        raise _EvalError(UNKNOWN_PARAMETER, f"unknown name `{e.name}` in a gate angle", e.span,
                         "not a parameter of this neuron",
                         help=did_you_mean(e.name, list(param_types) + list(ir.NEURON_SPECIAL_NAMES) + ["pi"])
                         or "angles may use z, last, pi and the neuron's parameters")
    if isinstance(e, S.Neg):
        inner = _to_ir_expr(e.operand, param_types)
        if isinstance(inner, ir.Const):
            return ir.Const(-inner.value, e.span)
        return ir.Unary("-", inner, e.span)
    if isinstance(e, S.BinOp):
        lhs, rhs = _to_ir_expr(e.lhs, param_types), _to_ir_expr(e.rhs, param_types)
        if isinstance(lhs, ir.Const) and isinstance(rhs, ir.Const):
            return ir.Const(_fold(e.op, lhs.value, rhs.value, e.span), e.span)
        return ir.Binary(e.op, lhs, rhs, e.span)
    if isinstance(e, S.Apply):
        fn = e.function
        if any(a.name is not None for a in e.args):
            raise _EvalError(BAD_ARGUMENTS, f"`{fn}` takes no keyword arguments", e.span)
        args = tuple(_to_ir_expr(a.value, param_types) for a in e.args)
        if param_types.get(fn) == "squash":
            if len(args) != 1:
                raise _EvalError(BAD_ARGUMENTS, f"squash `{fn}` takes one argument", e.span)
            return ir.Call(fn, args, e.span)
        if fn not in ir.BUILTIN_FUNCTIONS:
            raise _EvalError(UNKNOWN_FUNCTION, f"unknown function `{fn}`", e.function_span,
                             help=did_you_mean(fn, list(ir.BUILTIN_FUNCTIONS) + [p for p, t in param_types.items() if t == "squash"]))
        if len(args) != ir.BUILTIN_FUNCTIONS[fn]:
            raise _EvalError(BAD_ARGUMENTS, f"`{fn}` takes {ir.BUILTIN_FUNCTIONS[fn]} argument(s), {len(args)} given",
                             e.span)
        if all(isinstance(a, ir.Const) for a in args):
            try:
                return ir.Const(_apply_builtin(fn, [a.value for a in args]), e.span)  # type: ignore[union-attr]
            except (ValueError, OverflowError):
                raise _EvalError(BAD_VALUE, f"`{fn}` is not defined at this argument", e.span) from None
        return ir.Call(fn, args, e.span)
    raise AssertionError(e)


def _arith(op: str, a: Number, b: Number, span: Span) -> Number:
    """One binary operation of a constant expression. Integers stay integers under
    + - * and small non-negative integer powers; `/` gives a float."""
    try:
        if op == "+":
            v = a + b
        elif op == "-":
            v = a - b
        elif op == "*":
            v = a * b
        elif op == "/":
            if b == 0:
                raise _EvalError(BAD_VALUE, "division by zero", span, "the divisor is 0")
            v = a / b
        elif isinstance(a, int) and isinstance(b, int) and 0 <= b < 64:
            v = a ** b
        else:
            v = float(a) ** float(b)
    except (OverflowError, ZeroDivisionError, ValueError):
        raise _EvalError(BAD_VALUE, "this expression has no finite value", span) from None
    if isinstance(v, complex) or (isinstance(v, float) and math.isnan(v)):
        raise _EvalError(BAD_VALUE, "this expression has no real value", span)
    if isinstance(v, int) and abs(v) > 1 << 62:
        raise _EvalError(BAD_VALUE, "this integer is too large", span)
    return v


def _fold(op: str, a: float, b: float, span: Span) -> float:
    """Constant folding inside a gate angle: as `_arith`, and the result must be finite."""
    v = float(_arith(op, a, b, span))
    if not math.isfinite(v):
        raise _EvalError(BAD_VALUE, "this expression has no finite real value", span)
    return v


def _ref_span(e: ir.Expr, name: str) -> Optional[Span]:
    """The span of the first reference to `name` in e."""
    return next((n.span for n in ir.walk(e) if isinstance(n, ir.Ref) and n.name == name), None)


def _mentions(e: ir.Expr, name: str) -> bool:
    return any(isinstance(n, ir.Ref) and n.name == name for n in ir.walk(e))


# --------------------------------------------------------------------------- formatting helpers


def _fmt(v: Number) -> str:
    if isinstance(v, float):
        if v == math.inf:
            return "inf"
        return f"{v:.6g}"
    return str(v)


def _range_text(lo: Optional[float], hi: Optional[float]) -> str:
    lo_s = "-inf" if lo is None else _fmt(_pretty_pi(lo))
    hi_s = "inf" if hi is None else _fmt(_pretty_pi(hi))
    return f"[{lo_s}, {hi_s}]"


def _pretty_pi(v: float):
    for k, name in ((1.0, "pi"), (0.5, "pi/2"), (0.25, "pi/4"), (2.0, "2 pi")):
        if abs(v - k * math.pi) < 1e-12:
            return _Sym(name)
    return v


class _Sym(str):
    pass


def _range_help(neuron: str, p: ir.NeuronParam) -> Optional[str]:
    if p.name == "a" and p.lower == 0:
        return "a >= 0: a = 0 is the classical sign network, larger a is more quantum randomness"
    if p.name == "g":
        return "g is the entanglement angle: pi/2 is a projective read-out, 0 a fair coin"
    return None


def _where(span: Span) -> str:
    return f"{_short(span.file)}:{span.line}:{span.col}"


def _set_value(name: str, text: str) -> Number:
    """The value of `--set name=text`: a number or a constant expression."""
    try:
        expr = parse_expression(text, f"--set {name}")
        return _eval(expr, {}, "in --set")
    except (QnncError, _EvalError, RecursionError):
        raise error(SET_BAD_VALUE, f"`--set {name}={text}`: `{text}` is not a number",
                    help=f"write e.g. `--set {name}=0.5` or `--set {name}=pi/4`", exit_code=2) from None


# --------------------------------------------------------------------------- entry point


def elaborate(text: str, file: str, overrides: Optional[dict[str, str]] = None,
              read_file: Callable[[str], str] = _default_read) -> ir.Program:
    """Parse, resolve imports and elaborate one program. Raises QnncError."""
    overrides = dict(overrides or {})
    collector = Collector()
    loader = _Loader(collector, read_file)
    main = loader.load_main(text, file)
    elab = _Elaborator(collector, overrides)
    elab._set_texts = dict(overrides)
    elab.imports_failed = loader.failed
    # Imported modules first (dependency order), then the main file.
    for key in loader.order:
        module = loader.modules[key]
        is_main = key == file
        for item in module.syntax.items:
            if isinstance(item, S.NeuronSyntax):
                elab.neuron(item, key if not key.startswith("stdlib.") else key)
            elif isinstance(item, S.Import):
                continue
            elif not is_main:
                collector.add(BAD_IMPORTED_ITEM, "an imported module may only define neurons",
                              _item_span(item), "not importable",
                              help="keep params, networks and train blocks in the main file")
            elif isinstance(item, S.ParamDecl):
                elab.param(item)
    if overrides := elab.overrides:
        name = next(iter(overrides))
        raise error(SET_UNKNOWN_PARAMETER, f"`--set {name}=...`: the program has no parameter `{name}`",
                    help=did_you_mean(name, elab.params) or
                    ("parameters: " + ", ".join(elab.params) if elab.params else "this program declares no `param`"),
                    exit_code=2)
    networks: dict[str, ir.Network] = {}
    net_spans: dict[str, Span] = {}
    for item in main.syntax.items:
        if isinstance(item, S.NetworkSyntax):
            if item.name in net_spans:
                collector.add(DUPLICATE_NAME, f"network `{item.name}` is defined twice", item.name_span)
                continue
            net_spans[item.name] = item.name_span
            net = elab.network(item)
            if net is not None:
                networks[item.name] = net
    trains: list[ir.TrainRecipe] = []
    seen_trains: set[str] = set()
    for item in main.syntax.items:
        if isinstance(item, S.TrainSyntax):
            if item.name in seen_trains:
                collector.add(DUPLICATE_NAME, f"network `{item.name}` has two train blocks", item.name_span)
                continue
            seen_trains.add(item.name)
            if item.name in net_spans and item.name not in networks:
                continue  # its network already failed; do not pile on
            t = elab.train(item, networks)
            if t is not None:
                trains.append(t)
    collector.raise_if_any()
    modules = tuple(
        ir.ModuleInfo(key, _module_path(loader.modules[key]), tuple(loader.modules[key].imports),
                      ir.Span(loader.modules[key].path, 1, 1, 1, 1))
        for key in loader.order)
    program = ir.Program(
        source=file, modules=modules, params=tuple(elab.params.values()),
        neurons=tuple(elab.neurons.values()), networks=tuple(networks.values()), trains=tuple(trains),
        span=ir.Span(file, 1, 1, 1, 1))
    return program


def _module_path(m: _LoadedModule) -> str:
    return m.name if m.name.startswith("stdlib.") else m.path


def _item_span(item) -> Span:
    return getattr(item, "name_span", None) or item.span
