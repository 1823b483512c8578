"""Elaborating neurons: their definitions (parameters, registers, gates, measurements)
and, where a layer uses one as its activation, the binding of its parameters."""

from __future__ import annotations

import math
from typing import Optional, Union

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.codes import (BAD_ARGUMENTS, BAD_GATE_USE, BAD_REGISTERS, BAD_VALUE,
                                 DUPLICATE_NAME, MISSING_CARRIED, MULTIPLE_EMITS, NO_EMIT,
                                 OUT_OF_RANGE, TYPE_MISMATCH, UNDECLARED_REGISTER,
                                 UNKNOWN_ACTIVATION, UNKNOWN_GATE, UNKNOWN_TYPE)
from qnnc.compiler.diagnostics import did_you_mean
from qnnc.compiler.elaborate.scope import Scope
from qnnc.compiler.elaborate.text import format_number, range_text, where
from qnnc.compiler.expressions import CONSTANTS, ConstantError, to_ir_expression
from qnnc.compiler.ir import Span


class NeuronElaboration(Scope):
    # ---- definitions
    def neuron(self, d: S.NeuronSyntax, module: str) -> None:
        if d.name in self.neurons:
            self.c.add(DUPLICATE_NAME, f"neuron `{d.name}` is defined twice", d.name_span,
                       "defined again here",
                       notes=[f"first defined at {where(self.neuron_origin[d.name])}"])
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
            if not math.isfinite(v) or v != int(v) or abs(v) > 1 << 62:
                self.c.add(TYPE_MISMATCH, f"`{p.name}` is an int, found {format_number(v)}", p.default.span)
                return None
            v = int(v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            self.c.add(OUT_OF_RANGE, f"the default {format_number(v)} of `{p.name}` is outside {range_text(lo, hi)}",
                       p.default.span)
            return None
        return v

    def _declare(self, declared, registers, reg: ir.Register, span: Span) -> None:
        if reg.name in declared:
            self.c.add(DUPLICATE_NAME, f"register `{reg.name}` is declared twice", span, "declared again here",
                       notes=[f"first declared at {where(declared[reg.name].span)}"])
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
            return to_ir_expression(e, param_types)
        except ConstantError as exc:
            self.c.diagnostics.append(exc.diagnostic)
            return None


    # ---- activations: a layer's neuron, its parameters bound
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
            if isinstance(v, float) and (not math.isfinite(v) or v != int(v) or abs(v) > 1 << 62):
                self.c.add(TYPE_MISMATCH, f"`{p.name}` is an int, found {format_number(v)}", a.value.span,
                           help="an int parameter is a whole number of at most 2^62")
                return None
            v = int(v)
        else:
            v = float(v)
            if not math.isfinite(v):
                self.c.add(BAD_VALUE, f"`{p.name}` must be finite", a.value.span)
                return None
        if (p.lower is not None and v < p.lower) or (p.upper is not None and v > p.upper):
            self.c.add(OUT_OF_RANGE, f"`{p.name}` = {format_number(v)} is outside {range_text(p.lower, p.upper)}",
                       a.value.span, f"`{neuron.name}` requires {p.name} in {range_text(p.lower, p.upper)}",
                       help=_range_help(neuron.name, p))
            return None
        return v



def _range_help(neuron: str, p: ir.NeuronParam) -> Optional[str]:
    if p.name == "a" and p.lower == 0:
        return "a >= 0: a = 0 is the classical sign network, larger a is more quantum randomness"
    if p.name == "g":
        return "g is the entanglement angle: pi/2 is a projective read-out, 0 a fair coin"
    return None


def _ref_span(e: ir.Expr, name: str) -> Optional[Span]:
    """The span of the first reference to `name` in e."""
    return next((n.span for n in ir.walk(e) if isinstance(n, ir.Ref) and n.name == name), None)


def _mentions(e: ir.Expr, name: str) -> bool:
    return any(isinstance(n, ir.Ref) and n.name == name for n in ir.walk(e))

