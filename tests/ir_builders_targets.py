"""IR built by hand for the target tests: NeuronDefs equivalent to stdlib's `rotation`
and `weak`, and small chain networks with random weights."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from qnnc.compiler import ir

PI = ir.Const(math.pi)


def _div(a, b):
    return ir.Binary("/", a, b)


def _mul(a, b):
    return ir.Binary("*", a, b)


def _sub(a, b):
    return ir.Binary("-", a, b)


def rotation_def() -> ir.NeuronDef:
    """neuron rotation(a: real in [0, inf] = 0, f: squash = tanh):
    qubit q; ry(pi / 2 * (1 - f(z / a))) q; emit measure q"""
    angle = _mul(_div(PI, ir.Const(2.0)),
                 _sub(ir.Const(1.0), ir.Call("f", (_div(ir.Ref("z"), ir.Ref("a")),))))
    return ir.NeuronDef(
        "rotation", "stdlib.neurons",
        (ir.NeuronParam("a", "real", 0.0, None, 0.0), ir.NeuronParam("f", "squash", None, None, "tanh")),
        (ir.Register("q", "qubit"),),
        (ir.GateOp("ry", angle, ("q",)), ir.MeasureOp("q", True)),
    )


def weak_def() -> ir.NeuronDef:
    """neuron weak(a, g, f): qubit q carried; ancilla b;
    ry(pi/2 * (last - f(z/a))) q; ry(pi/2 - g) b; cx q, b; emit measure b"""
    angle_q = _mul(_div(PI, ir.Const(2.0)),
                   _sub(ir.Ref("last"), ir.Call("f", (_div(ir.Ref("z"), ir.Ref("a")),))))
    angle_b = _sub(_div(PI, ir.Const(2.0)), ir.Ref("g"))
    return ir.NeuronDef(
        "weak", "stdlib.neurons",
        (ir.NeuronParam("a", "real", 0.0, None, 0.0),
         ir.NeuronParam("g", "real", 0.0, math.pi / 2, math.pi / 2),
         ir.NeuronParam("f", "squash", None, None, "tanh")),
        (ir.Register("q", "qubit", carried=True), ir.Register("b", "ancilla")),
        (ir.GateOp("ry", angle_q, ("q",)), ir.GateOp("ry", angle_b, ("b",)),
         ir.GateOp("cx", None, ("q", "b")), ir.MeasureOp("b", True)),
    )


NEURONS = {"rotation": rotation_def(), "weak": weak_def()}


def chain_network(n_in: int, widths: Sequence[int], neurons: Sequence[str] | str = "rotation",
                  args: Sequence[dict] | dict | None = None, n_out: Optional[int] = 10,
                  name: str = "net") -> ir.Network:
    """input[n_in] -> hidden widths (quantum neurons) -> optional linear output."""
    if isinstance(neurons, str):
        neurons = [neurons] * len(widths)
    if args is None or isinstance(args, dict):
        args = [dict(args or {})] * len(widths)
    layers = []
    src = "x"
    for i, (w, nn, aa) in enumerate(zip(widths, neurons, args)):
        ndef = NEURONS[nn]
        bound = {p.name: p.default for p in ndef.params}
        bound.update(aa)
        binds = tuple(ir.Binding(k, v) for k, v in bound.items())
        lname = f"h{i + 1}"
        layers.append(ir.Layer(lname, w, "hidden", ir.Dense(src, False, ir.NormalInit(0, 1, 1)),
                               ir.NeuronActivation(nn, binds)))
        src = lname
    if n_out:
        layers.append(ir.Layer("y", n_out, "output", ir.Dense(src, False, ir.NormalInit(0, 1, 1)),
                               ir.ClassicalActivation("linear")))
    return ir.Network(name, ir.Input("x", (n_in,), ()), tuple(layers), ir.Readout("argmax", 1))


def with_random_bias(net: ir.Network, w: dict, rng: np.random.Generator) -> ir.Network:
    """The network with a bias in every layer; draws the biases into `w`."""
    net = ir.Network(net.name, net.input, tuple(
        ir.Layer(l.name, l.size, l.role, ir.Dense(l.dense.source, True, l.dense.init), l.activation)
        for l in net.layers), net.readout)
    for l in net.layers:
        w[f"{l.name}.bias"] = rng.normal(0, 0.3, l.size)
    return net


def check_refusal_golden(refusal, path: Path, update: bool = False) -> None:
    """Run `refusal` from the repository root (spans are relative to it); its QnncError,
    rendered, must equal the golden text at `path` (written instead with `update`)."""
    import os

    from qnnc.compiler.diagnostics import QnncError, render_all
    from qnnc.runtime.targets import CODES

    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parent.parent)
    try:
        try:
            refusal()
        except QnncError as exc:
            diagnostics = exc.diagnostics
        else:
            raise AssertionError(f"{refusal.__name__} was not refused")
        # The sources the refusal's program was loaded from, given explicitly: the
        # renderer's own memory of loaded sources is emptied by every CLI run in this
        # process, so it would depend on which tests ran before.
        files = {d.span.file for d in diagnostics if d.span is not None}
        sources = {f: Path(f).read_text(encoding="utf-8") for f in files if Path(f).is_file()}
        text = render_all(diagnostics, sources)
    finally:
        os.chdir(cwd)
    assert all(d.code in CODES for d in diagnostics)
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with QNNC_UPDATE_GOLDEN=1"
    golden = path.read_text(encoding="utf-8")
    assert text == golden, f"rendered:\n{text}\ngolden:\n{golden}"


def example(name: str, **overrides):
    """An example program of the repository (spans relative to its root), its declared
    initial weights (seed 0), and an image-like input."""
    import os

    from qnnc.compiler import load_program
    from qnnc.runtime.weights import initial_weights

    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parent.parent)
    try:
        prog = load_program(f"examples/{name}.qnn", {k: str(v) for k, v in overrides.items()})
    finally:
        os.chdir(cwd)
    net = prog.network()
    return prog, initial_weights(net, 0), np.linspace(0, 1, net.input.features)


def random_weights(network: ir.Network, seed: int = 0, scale: float = 1.0) -> dict:
    rng = np.random.default_rng(seed)
    fan_in = network.input.features
    out = {}
    for layer in network.layers:
        out[layer.name] = rng.normal(0, scale / math.sqrt(fan_in), size=(layer.size, fan_in))
        fan_in = layer.size
    return out


def random_case(neuron: str, width: int, depth: int, a: float, g: float, f: str, seed: int, bias: bool):
    """(network, weights, input) of a chain of `depth` layers of `width` `neuron`s on 3
    inputs with 2 outputs: the case drawn by the targets' hypothesis tests."""
    args = {"a": a, "f": f} if neuron == "rotation" else {"a": a, "g": g, "f": f}
    net = chain_network(3, [width] * depth, neuron, args, 2)
    w = random_weights(net, seed)
    if bias:
        net = with_random_bias(net, w, np.random.default_rng(seed + 1))
    x = np.random.default_rng(seed + 2).uniform(-1, 1, 3)
    return net, w, x


def torch_exact_distribution(net: ir.Network, w: dict, x, neurons=NEURONS) -> dict[int, float]:
    """The torch simulator's exact outcome distribution (outcome code -> probability), in
    float64 weights and input (the model itself is float32)."""
    import pytest

    sim = pytest.importorskip("qnnc.runtime.simulator")
    torch = pytest.importorskip("torch")
    from qnnc.runtime.targets.network import outcomes_to_codes

    prog = ir.Program("<test>", (), (), tuple(neurons.values()), (net,), ())
    model = sim.QNNModel(prog, net.name, seed=0)
    model.load_tensors({k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()})
    with torch.no_grad():
        outs, probs = model.exact_outcome_distribution(torch.tensor(x, dtype=torch.float64))
    out: dict[int, float] = {}
    for c, p in zip(outcomes_to_codes(outs.numpy()).tolist(), probs.double().numpy().tolist()):
        out[c] = out.get(c, 0.0) + p
    return out


def hardware_network(width: int = 16, depth: int = 3, a: float = 0.5) -> ir.Network:
    """784-16-16-16-10 with clip rotation neurons, like examples/hardware.qnn."""
    return chain_network(784, [width] * depth, "rotation", {"a": a, "f": "clip"}, 10, "hardware")


# --------------------------------------------------------------------------- exact neutral-circuit simulation

def simulate_neutral(circ, values=None, max_qubits: int = 12) -> dict:
    """Exact distribution over the clbits of a neutral circuit (numpy state vectors,
    branching on every measurement and reset; real-time `assign` ops evaluated in
    Python integers, each checked to fit its register): {clbit tuple: probability}."""
    from qnnc.runtime.targets.circuit import Param, evaluate
    from qnnc.compiler.gates import unitary
    from qnnc.runtime.targets.neurons import _apply, _project

    n = circ.num_qubits
    assert n <= max_qubits
    psi = np.zeros((1, 2 ** n), dtype=complex)
    psi[0, 0] = 1
    branches = [(1.0, psi, (0,) * circ.num_clbits)]
    for op in circ.ops:
        new = []
        for p, s, cl in branches:
            if op.condition is not None:
                v = sum(cl[b] << k for k, b in enumerate(op.condition.clbits))
                if v != op.condition.value:
                    new.append((p, s, cl))
                    continue
            if op.name == "barrier":
                new.append((p, s, cl))
            elif op.name == "assign":  # real-time arithmetic, in exact integers
                value = evaluate(op.expr, cl)
                assert 0 <= value < 1 << len(op.targets), (value, op)
                c2 = list(cl)
                for k, b in enumerate(op.targets):
                    c2[b] = (value >> k) & 1
                new.append((p, s, tuple(c2)))
            elif op.name in ("measure", "reset"):
                for bit in (0, 1):
                    pb, sb = _project(s, op.qubits[0], bit, n)
                    if pb[0] < 1e-15:
                        continue
                    if op.name == "measure":
                        c2 = list(cl)
                        c2[op.clbit] = bit
                        new.append((p * pb[0], sb, tuple(c2)))
                    else:
                        if bit:
                            sb = _apply(sb, unitary("x"), [0 + op.qubits[0]], n)
                        new.append((p * pb[0], sb, cl))
            else:
                a = op.angle
                if isinstance(a, Param):
                    a = values[a.index]
                m = unitary(op.name, a if a is not None else 0.0)
                new.append((p, _apply(s, m, list(op.qubits), n), cl))
        branches = new
    out: dict = {}
    for p, _, cl in branches:
        out[cl] = out.get(cl, 0.0) + p
    return out


def emitted_distribution(circ, spec, values=None) -> dict:
    """The exact distribution of a single-circuit strategy's emitted outcomes, as codes."""
    offs = spec.offsets()
    dist = simulate_neutral(circ, values)
    out: dict = {}
    for cl, p in dist.items():
        code = 0
        for o in circ.outcomes:
            if o.emit and o.copy == 0 and cl[o.clbit]:
                code |= 1 << (offs[o.layer] + o.neuron)
        out[code] = out.get(code, 0.0) + p
    return out


def max_abs_diff(d1: dict, d2: dict) -> float:
    return max(abs(d1.get(k, 0.0) - d2.get(k, 0.0)) for k in set(d1) | set(d2))
