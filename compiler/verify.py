"""The IR verifier: the invariants every pass must preserve.

Run after elaboration, after every pass (`qnnc.compiler.passes.PassManager`), and on
every IR file loaded from JSON, so an IR written by hand or by another tool gets the
same checks as one built from `.qnn` text. Returns diagnostics; `verify_or_raise`
raises them.
"""

from __future__ import annotations

import math
from typing import Iterable

from qnnc.compiler import ir
from qnnc.compiler.angles import NAMED_CONSTANTS, NOT_FINITE, bind_neuron
from qnnc.compiler.codes import (
    BAD_GATE_USE, BAD_NETWORK, BAD_READOUT, BAD_REGISTERS, BAD_TRAIN, BAD_VALUE, CIRCULAR_IMPORT,
    DUPLICATE_NAME, MISSING_CARRIED, MULTIPLE_EMITS, NO_EMIT, OUT_OF_RANGE, SHAPE_MISMATCH,
    TOO_LARGE, TYPE_MISMATCH, UNDECLARED_REGISTER, UNKNOWN_ACTIVATION, UNKNOWN_FUNCTION,
    UNKNOWN_LAYER, UNKNOWN_MODULE, UNKNOWN_NETWORK, UNKNOWN_PARAMETER,
)
from qnnc.compiler.diagnostics import Collector, QnncError
from qnnc.compiler.limits import (MAX_BATCH, MAX_CHECKPOINTS, MAX_EPOCHS, MAX_INPUT_FEATURES, MAX_LAYER_SIZE, MAX_SEED,
                                  MAX_SHOTS, MAX_TOTAL_STEPS, MAX_WEIGHTS_PER_LAYER)


def verify(program: ir.Program) -> list:
    c = Collector()
    _modules(program, c)
    _unique((p.name for p in program.params), "parameter", program, c)
    for p in program.params:
        if p.type not in ir.PARAM_VALUE_TYPES:
            c.add(TYPE_MISMATCH, f"parameter `{p.name}` has unknown type `{p.type}`", p.span)
        if not _finite(p.value) or (p.lower is not None and p.value < p.lower) or (
                p.upper is not None and p.value > p.upper):
            c.add(OUT_OF_RANGE, f"parameter `{p.name}` = {p.value} is outside its range", p.span)
    _unique((n.name for n in program.neurons), "neuron", program, c)
    for n in program.neurons:
        _neuron(n, c)
    _unique((n.name for n in program.networks), "network", program, c)
    for net in program.networks:
        _network(net, program, c)
    _unique((t.network for t in program.trains), "train block for", program, c)
    for t in program.trains:
        _train(t, program, c)
    return c.diagnostics


def verify_or_raise(program: ir.Program) -> ir.Program:
    diags = verify(program)
    if diags:
        raise QnncError(diags)
    return program


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _unique(names: Iterable[str], what: str, program: ir.Program, c: Collector) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            c.add(DUPLICATE_NAME, f"{what} `{n}` appears twice", program.span)
        seen.add(n)


def _modules(program: ir.Program, c: Collector) -> None:
    graph = {m.name: m.imports for m in program.modules}
    for m in program.modules:
        for dep in m.imports:
            if dep not in graph:
                c.add(UNKNOWN_MODULE, f"module `{m.name}` imports `{dep}`, which is not in the program", m.span)
    # Depth-first search for a cycle in the import graph.
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in graph.get(name, ()):
            if state.get(dep) == 1:
                c.add(CIRCULAR_IMPORT, "circular import: " + " -> ".join(path + [dep]), program.span)
            elif dep in graph and state.get(dep) is None:
                visit(dep, path + [dep])
        state[name] = 2

    for name in graph:
        if state.get(name) is None:
            visit(name, [name])


def _expr_names(e: ir.Expr, out: list) -> None:
    """The names and calls of an expression, in reading order."""
    out.extend(n for n in ir.walk(e) if isinstance(n, (ir.Ref, ir.Call)))


def _neuron(n: ir.NeuronDef, c: Collector) -> None:
    regs = {r.name: r for r in n.registers}
    if len(regs) != len(n.registers):
        c.add(DUPLICATE_NAME, f"neuron `{n.name}` declares a register twice", n.span)
    if sum(r.role == "qubit" for r in n.registers) > 1:
        c.add(BAD_REGISTERS, f"neuron `{n.name}` has more than one qubit", n.span)
    for r in n.registers:
        if r.role not in ("qubit", "ancilla") or (r.carried and r.role != "qubit"):
            c.add(BAD_REGISTERS, f"register `{r.name}` of `{n.name}` has an invalid role", r.span)
    params = {p.name: p for p in n.params}
    for p in n.params:
        if p.type not in ir.PARAM_TYPES:
            c.add(TYPE_MISMATCH, f"parameter `{p.name}` of `{n.name}` has unknown type `{p.type}`", p.span)
    emits = 0
    for op in n.ops:
        targets = op.targets if isinstance(op, ir.GateOp) else (op.target,)
        for t in targets:
            if t not in regs:
                c.add(UNDECLARED_REGISTER, f"neuron `{n.name}` uses undeclared register `{t}`", op.span)
        if isinstance(op, ir.GateOp):
            if op.gate not in ir.GATES:
                c.add(BAD_GATE_USE, f"unknown gate `{op.gate}`", op.span)
                continue
            arity = 2 if op.gate in ir.GATES_2Q else 1
            if len(op.targets) != arity or len(set(op.targets)) != arity:
                c.add(BAD_GATE_USE, f"`{op.gate}` needs {arity} distinct qubit(s)", op.span)
            if (op.angle is not None) != (op.gate in ir.GATES_1Q_ANGLE):
                c.add(BAD_GATE_USE, f"`{op.gate}` has a wrong angle", op.span)
            if op.angle is not None:
                refs: list = []
                _expr_names(op.angle, refs)
                for r in refs:
                    if isinstance(r, ir.Ref):
                        if r.name not in ir.NEURON_SPECIAL_NAMES and r.name not in NAMED_CONSTANTS and (r.name not in params or params[r.name].type == "squash"):
                            c.add(UNKNOWN_PARAMETER, f"angle uses unknown name `{r.name}`", r.span)
                        if r.name == "last" and not any(x.carried for x in n.registers):
                            c.add(MISSING_CARRIED, "`last` needs a carried qubit", r.span)
                    else:
                        squash = params.get(r.function)
                        if squash is not None and squash.type == "squash":
                            if len(r.args) != 1:
                                c.add(UNKNOWN_FUNCTION, f"squash `{r.function}` takes one argument", r.span)
                        elif ir.BUILTIN_FUNCTIONS.get(r.function) != len(r.args):
                            c.add(UNKNOWN_FUNCTION, f"unknown function `{r.function}`/{len(r.args)}", r.span)
        elif isinstance(op, ir.MeasureOp) and op.emit:
            emits += 1
    if emits == 0:
        c.add(NO_EMIT, f"neuron `{n.name}` emits no measurement", n.span)
    elif emits > 1:
        c.add(MULTIPLE_EMITS, f"neuron `{n.name}` emits {emits} measurements", n.span)


def _network(net: ir.Network, program: ir.Program, c: Collector) -> None:
    if not net.input.shape or any(not isinstance(d, int) or d < 1 for d in net.input.shape):
        c.add(SHAPE_MISMATCH, f"network `{net.name}`: invalid input shape {net.input.shape}", net.input.span)
        return
    if math.prod(net.input.shape) > MAX_INPUT_FEATURES:
        c.add(TOO_LARGE, f"network `{net.name}`: the input has more than {MAX_INPUT_FEATURES:,} values",
              net.input.span)
        return
    shape = list(net.input.shape)
    for s in net.input.steps:
        if s.kind not in ir.PREPROCESS_KINDS or not _finite(s.value):
            c.add(BAD_VALUE, f"invalid preprocessing step `{s.kind}`", s.span)
        elif s.kind == "pool":
            k = int(s.value)
            if k < 1 or k != s.value or any(d % k for d in shape):
                c.add(SHAPE_MISMATCH, f"pool({s.value}) does not divide the input shape", s.span)
                return
            shape = [d // k for d in shape]
    if not net.layers:
        c.add(BAD_NETWORK, f"network `{net.name}` has no layers", net.span)
        return
    names = {net.input.name}
    prev_name, prev_size, prev = net.input.name, net.input.features, None
    for i, layer in enumerate(net.layers):
        if layer.name in names:
            c.add(DUPLICATE_NAME, f"`{layer.name}` appears twice in network `{net.name}`", layer.span)
        names.add(layer.name)
        if not isinstance(layer.size, int) or not 1 <= layer.size <= MAX_LAYER_SIZE:
            c.add(TOO_LARGE, f"layer `{layer.name}` has an invalid size {layer.size}", layer.span)
            return
        if prev_size * layer.size > MAX_WEIGHTS_PER_LAYER:
            c.add(TOO_LARGE, f"layer `{layer.name}` has too many weights", layer.span)
        if layer.dense.source != prev_name:
            c.add(UNKNOWN_LAYER, f"layer `{layer.name}` reads `{layer.dense.source}`, expected `{prev_name}`",
                  layer.dense.span)
        expected_role = "output" if i == len(net.layers) - 1 else "hidden"
        if layer.role != expected_role:
            c.add(BAD_NETWORK, f"layer `{layer.name}` should be {expected_role}", layer.span)
        _init(layer, c)
        act = layer.activation
        if isinstance(act, ir.ClassicalActivation):
            if act.kind not in ir.CLASSICAL_ACTIVATIONS:
                c.add(UNKNOWN_ACTIVATION, f"unknown activation `{act.kind}`", act.span)
        else:
            neuron = program.neuron(act.neuron)
            if neuron is None:
                c.add(UNKNOWN_ACTIVATION, f"unknown neuron `{act.neuron}`", act.span)
            else:
                _binding(layer, act, neuron, c)
                if layer.role == "output":
                    c.add(BAD_NETWORK, "the output layer must be classical", act.span)
                if neuron.carried and prev is not None and isinstance(prev.activation, ir.NeuronActivation):
                    pn = program.neuron(prev.activation.neuron)
                    if pn is not None and pn.carried and prev.size != layer.size:
                        c.add(SHAPE_MISMATCH, f"layer `{layer.name}` continues the qubits of `{prev.name}` "
                              f"but their widths differ ({layer.size} vs {prev.size})", layer.span)
        prev_name, prev_size, prev = layer.name, layer.size, layer
    r = net.readout
    if r.kind not in ir.READOUT_KINDS or not isinstance(r.shots, int) or not 1 <= r.shots <= MAX_SHOTS:
        c.add(BAD_READOUT, f"invalid readout {r.kind} over {r.shots} shots", r.span)


def _init(layer: ir.Layer, c: Collector) -> None:
    init = layer.dense.init
    if isinstance(init, ir.NormalInit):
        if not (_finite(init.mean) and _finite(init.std) and init.std >= 0 and _finite(init.gain)):
            c.add(BAD_VALUE, f"layer `{layer.name}`: invalid normal init", init.span)
    elif isinstance(init, ir.UniformInit):
        if not (_finite(init.low) and _finite(init.high) and init.low <= init.high):
            c.add(BAD_VALUE, f"layer `{layer.name}`: invalid uniform init", init.span)
    elif isinstance(init, ir.CheckpointInit):
        if not init.tensor or (init.step is not None and init.step < 0):
            c.add(BAD_VALUE, f"layer `{layer.name}`: invalid checkpoint init", init.span)


def _binding(layer: ir.Layer, act: ir.NeuronActivation, neuron: ir.NeuronDef, c: Collector) -> None:
    bound = [b.name for b in act.args]
    if sorted(bound) != sorted(p.name for p in neuron.params) or len(set(bound)) != len(bound):
        c.add(UNKNOWN_PARAMETER, f"layer `{layer.name}` binds {sorted(bound)} but `{neuron.name}` has "
              f"{sorted(p.name for p in neuron.params)}", act.span)
        return
    for b in act.args:
        p = neuron.param(b.name)
        assert p is not None
        if p.type == "squash":
            if b.value not in ir.SQUASH_FUNCTIONS:
                c.add(TYPE_MISMATCH, f"`{b.name}` must be tanh or clip", b.span)
            continue
        if not _finite(b.value) or (p.type == "int" and not isinstance(b.value, int)):
            c.add(TYPE_MISMATCH, f"`{b.name}` = {b.value!r} is not a {p.type}", b.span)
            continue
        if (p.lower is not None and b.value < p.lower) or (p.upper is not None and b.value > p.upper):
            c.add(OUT_OF_RANGE, f"`{b.name}` = {b.value} is outside its range", b.span)
            return
    # The one neuron semantics decides what the bound angles mean; an angle that is not
    # finite for these parameters (a division by a parameter that is 0) is refused here,
    # so `check`, the simulator and the targets agree. Its other faults are the ones
    # reported above in the front end's own codes.
    try:
        bind_neuron(neuron, act.args, act.span)
    except QnncError as exc:
        c.diagnostics.extend(d for d in exc.diagnostics if d.code == NOT_FINITE)


def _train(t: ir.TrainRecipe, program: ir.Program, c: Collector) -> None:
    if program.network(t.network) is None:
        c.add(UNKNOWN_NETWORK, f"train block for unknown network `{t.network}`", t.span)
    o = t.optimizer
    if o.name not in ("sgd", "adam") or not (_finite(o.lr) and o.lr > 0) or not (
            _finite(o.momentum) and o.momentum >= 0) or not (_finite(o.weight_decay) and o.weight_decay >= 0):
        c.add(BAD_TRAIN, "invalid optimizer", o.span)
    for what, v, low, high in (("batch", t.batch, 1, MAX_BATCH), ("epochs", t.epochs, 0, MAX_EPOCHS),
                               ("seed", t.seed, 0, MAX_SEED)):
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            c.add(BAD_TRAIN, f"invalid {what} {v!r}", t.span)
    if t.gradient.kind not in ir.GRADIENT_KINDS or not (_finite(t.gradient.window) and t.gradient.window > 0):
        c.add(BAD_TRAIN, "invalid gradient", t.gradient.span)
    for d in (t.data, t.validate):
        if d is not None and d.kind not in ("builtin", "file"):
            c.add(BAD_TRAIN, f"invalid data set kind `{d.kind}`", d.span)
    s = t.checkpoints
    if (s.every is not None and not 1 <= s.every <= MAX_TOTAL_STEPS) or len(s.steps) > MAX_CHECKPOINTS or any(
            not 0 <= x <= MAX_TOTAL_STEPS for x in s.steps):
        c.add(BAD_TRAIN, "invalid checkpoint schedule", s.span)
