"""Hand-built IR for the simulator tests, independent of the parser.

`rotation()` and `weak()` construct exactly the NeuronDefs of stdlib/neurons.qnn;
`network()` a chain network. `pi` is written as the constant it folds to.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from qnnc.compiler import ir
from qnnc.compiler.ir import Binary, Call, Const, Ref

PI = Const(math.pi)


def rotation() -> ir.NeuronDef:
    # neuron rotation(a: real in [0, inf] = 0, f: squash = tanh) {
    #     qubit q
    #     ry(pi / 2 * (1 - f(z / a))) q
    #     emit measure q
    # }
    angle = Binary("*", Binary("/", PI, Const(2.0)),
                   Binary("-", Const(1.0), Call("f", (Binary("/", Ref("z"), Ref("a")),))))
    return ir.NeuronDef(
        name="rotation", module="stdlib.neurons",
        params=(ir.NeuronParam("a", "real", 0.0, None, 0.0),
                ir.NeuronParam("f", "squash", None, None, "tanh")),
        registers=(ir.Register("q", "qubit"),),
        ops=(ir.GateOp("ry", angle, ("q",)), ir.MeasureOp("q", True)),
    )


def weak() -> ir.NeuronDef:
    # neuron weak(a: real in [0, inf] = 0, g: real in [0, pi / 2] = pi / 2, f: squash = tanh) {
    #     qubit q carried
    #     ancilla b
    #     ry(pi / 2 * (last - f(z / a))) q
    #     ry(pi / 2 - g) b
    #     cx q, b
    #     emit measure b
    # }
    angle_q = Binary("*", Binary("/", PI, Const(2.0)),
                     Binary("-", Ref("last"), Call("f", (Binary("/", Ref("z"), Ref("a")),))))
    angle_b = Binary("-", Binary("/", PI, Const(2.0)), Ref("g"))
    return ir.NeuronDef(
        name="weak", module="stdlib.neurons",
        params=(ir.NeuronParam("a", "real", 0.0, None, 0.0),
                ir.NeuronParam("g", "real", 0.0, math.pi / 2, math.pi / 2),
                ir.NeuronParam("f", "squash", None, None, "tanh")),
        registers=(ir.Register("q", "qubit", carried=True), ir.Register("b", "ancilla")),
        ops=(ir.GateOp("ry", angle_q, ("q",)), ir.GateOp("ry", angle_b, ("b",)),
             ir.GateOp("cx", None, ("q", "b")), ir.MeasureOp("b", True)),
    )


STDLIB = {"rotation": rotation, "weak": weak}


# User-defined neurons (written in the language, shown in each docstring).


def probe_neuron() -> ir.NeuronDef:
    """A user neuron exercising rx, rz, h, cz, cx, two ancillas, a discarded measurement
    and a reset:
        neuron probe(s: real = 0.4, f: squash = tanh) {
            qubit q
            ancilla b, c
            h b
            rx(pi * f(z)) q
            cz q, b
            rz(s * z + 0.3) b
            ry(atan(z) - s) c
            cx c, q
            measure c
            reset b
            h b
            cx b, q
            rz(z ^ 2) q
            h q
            emit measure q
        }"""
    z, s = Ref("z"), Ref("s")
    ops = (
        ir.GateOp("h", None, ("b",)),
        ir.GateOp("rx", Binary("*", Ref("pi"), Call("f", (z,))), ("q",)),
        ir.GateOp("cz", None, ("q", "b")),
        ir.GateOp("rz", Binary("+", Binary("*", s, z), Const(0.3)), ("b",)),
        ir.GateOp("ry", Binary("-", Call("atan", (z,)), s), ("c",)),
        ir.GateOp("cx", None, ("c", "q")),
        ir.MeasureOp("c", False),
        ir.ResetOp("b"),
        ir.GateOp("h", None, ("b",)),
        ir.GateOp("cx", None, ("b", "q")),
        ir.GateOp("rz", Binary("^", z, Const(2.0)), ("q",)),
        ir.GateOp("h", None, ("q",)),
        ir.MeasureOp("q", True),
    )
    return ir.NeuronDef("probe", "tests", (ir.NeuronParam("s", "real", None, None, 0.4),
                                           ir.NeuronParam("f", "squash", None, None, "tanh")),
                        (ir.Register("q", "qubit"), ir.Register("b", "ancilla"), ir.Register("c", "ancilla")),
                        ops)


def carried_probe() -> ir.NeuronDef:
    """A carried user neuron with complex gates, a discarded ancilla measurement and an
    ancilla left entangled at the end (traced out):
        neuron cprobe(a: real = 1, g: real = 0.7) {
            qubit q carried
            ancilla b, c
            rz(last * a) q
            ry(pi / 2 * (last - tanh(z / a))) q
            h c
            cz c, q
            measure c
            ry(g) b
            cx q, b
            emit measure b
            rx(z) b
            cx b, q
        }"""
    z, a, last = Ref("z"), Ref("a"), Ref("last")
    ops = (
        ir.GateOp("rz", Binary("*", last, a), ("q",)),
        ir.GateOp("ry", Binary("*", Binary("/", Ref("pi"), Const(2.0)),
                               Binary("-", last, Call("tanh", (Binary("/", z, a),)))), ("q",)),
        ir.GateOp("h", None, ("c",)),
        ir.GateOp("cz", None, ("c", "q")),
        ir.MeasureOp("c", False),
        ir.GateOp("ry", Ref("g"), ("b",)),
        ir.GateOp("cx", None, ("q", "b")),
        ir.MeasureOp("b", True),
        ir.GateOp("rx", z, ("b",)),
        ir.GateOp("cx", None, ("b", "q")),
    )
    return ir.NeuronDef("cprobe", "tests", (ir.NeuronParam("a", "real", 0.0, None, 1.0),
                                            ir.NeuronParam("g", "real", None, None, 0.7)),
                        (ir.Register("q", "qubit", carried=True), ir.Register("b", "ancilla"),
                         ir.Register("c", "ancilla")), ops)


def activation(spec, neurons: dict[str, ir.NeuronDef]) -> ir.Activation:
    if isinstance(spec, str):
        return ir.ClassicalActivation(spec)
    name, args = spec
    nd = neurons[name]
    binds = []
    for p in nd.params:  # fill defaults, as the front end does
        binds.append(ir.Binding(p.name, args.get(p.name, p.default)))
    return ir.NeuronActivation(name, tuple(binds))


def network(n_in: int, layers: Sequence[tuple], *, name: str = "net", bias: bool = False,
            shots: int = 1, init: Optional[ir.Init] = None,
            extra_neurons: Sequence[ir.NeuronDef] = (),
            gradient: Optional[ir.Gradient] = None) -> ir.Program:
    """A Program with one chain network: input [n_in] -> layers; the last entry of
    `layers` is the output layer. Each entry is (size, activation spec)."""
    neurons = {n.name: n for n in (rotation(), weak(), *extra_neurons)}
    inp = ir.Input("x", (n_in,), ())
    built = []
    prev, fan_in = "x", n_in
    for i, (size, spec) in enumerate(layers):
        last = i == len(layers) - 1
        lname = "y" if last else f"h{i + 1}"
        lin = init or ir.NormalInit(0.0, 1.0 / math.sqrt(fan_in), 1.0)
        built.append(ir.Layer(lname, size, "output" if last else "hidden",
                              ir.Dense(prev, bias, lin), activation(spec, neurons)))
        prev, fan_in = lname, size
    net = ir.Network(name, inp, tuple(built), ir.Readout("argmax", shots))
    trains = ()
    if gradient is not None:
        trains = (ir.TrainRecipe(name, ir.Dataset("builtin", "mnist.train5k"), None,
                                 ir.Optimizer("sgd", 0.01, 0.9, 0.0), 64, 1, 0, "cross_entropy",
                                 gradient, ir.CheckpointSchedule(None, False, (), True)),)
    return ir.Program("<test>", (), (), tuple(neurons.values()), (net,), trains)
