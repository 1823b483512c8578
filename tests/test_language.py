"""Each construct of the `.qnn` language, and the IR it elaborates to."""

from __future__ import annotations

import math
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from qnnc.compiler import ir, load_program, parse_program
from qnnc.compiler.diagnostics import QnncError
from qnnc.compiler.formatter import expr as format_expr
from qnnc.compiler.parser import parse_expression
from qnnc.compiler.passes import FunctionPass, OverrideTraining, PassManager, SelectNetwork

NET = """
network n {{
    input x[4]
    {layers}
    output y[2] = linear of dense({last})
}}
"""


def prog(text: str, **overrides) -> ir.Program:
    return parse_program(text, "t.qnn", {k: str(v) for k, v in overrides.items()})


def param(text: str, name: str = "p", **overrides) -> ir.ParamValue:
    result = prog(text, **overrides).param(name)
    assert result is not None
    return result


def value(expression: str):
    return param(f"param p = {expression}").value


def error_codes(text: str, **overrides) -> list[str]:
    with pytest.raises(QnncError) as info:
        prog(text, **overrides)
    return [d.code for d in info.value.diagnostics]


def net(layers: str = "", last: str = "x", extra: str = "") -> str:
    return extra + NET.format(layers=layers, last=last)


def layer(text: str, index: int = 0, extra: str = "") -> ir.Layer:
    """The first hidden layer of a network `x[4] -> text -> y[2]`."""
    name = text.split("[")[0].split()[-1]
    return prog(net(text, name, extra)).networks[0].layers[index]


def dense(args: str) -> ir.Dense:
    return layer(f"layer h[3] = sign of dense({args})").dense


# --------------------------------------------------------------------------- params


def test_param_types_inferred_and_declared():
    assert param("param p = 3") == ir.ParamValue("p", "int", 3, None, None, False, param("param p = 3").span)
    assert (param("param p = 3").type, type(param("param p = 3").value)) == ("int", int)
    assert (param("param p = 0.5").type, param("param p = 0.5").value) == ("real", 0.5)
    assert (param("param p: real = 2").type, type(param("param p: real = 2").value)) == ("real", float)
    assert (param("param p: int = 6 / 2").type, param("param p: int = 6 / 2").value) == ("int", 3)
    assert param("param p = 1e3").value == 1000.0 and param("param p = .5").value == 0.5


def test_param_ranges():
    p = param("param p: real in [0, inf] = 0.5")
    assert (p.lower, p.upper) == (0.0, None)
    p = param("param p in [-inf, 1] = 0")
    assert (p.lower, p.upper) == (None, 1.0)
    p = param("param p: real in [0, pi / 2] = 1.2")
    assert (p.lower, p.upper) == (0.0, math.pi / 2)
    assert error_codes("param p: real in [0, 1] = 2") == ["Q0208"]
    assert error_codes("param p in [1, 0] = 0.5") == ["Q0221", "Q0208"]  # empty range, and outside it


def test_params_see_earlier_params():
    program = prog("param a = 2\nparam b = a * 3\nparam c: real in [0, b] = b / 2")
    assert [(p.name, p.value) for p in program.params] == [("a", 2), ("b", 6), ("c", 3.0)]
    assert program.param("c").upper == 6.0
    assert error_codes("param b = a\nparam a = 1") == ["Q0202"]  # declared later: not yet visible


def test_param_overrides():
    p = param("param p: real in [0, inf] = 0.5", p="0.25")
    assert (p.value, p.overridden) == (0.25, True)
    assert param("param p = 0.5", p="pi / 4").value == math.pi / 4
    p = param("param p: int = 4", p="7.0")
    assert (p.type, p.value) == ("int", 7)
    assert not param("param p = 0.5").overridden


def test_override_reaches_sizes_and_bindings():
    text = net("layer h[w] = rotation(a) of dense(x)", "h", "import neurons from stdlib\nparam a = 0\nparam w: int = 4\n")
    program = prog(text, w=6, a=0.75)
    h = program.networks[0].layers[0]
    assert h.size == 6 and h.activation.arg("a") == 0.75


@pytest.mark.parametrize("overrides,code", [
    ({"p": "abc"}, "Q0403"), ({"p": "-1"}, "Q0403"), ({"q": "1"}, "Q0402"), ({"p": "1 / 0"}, "Q0403"),
])
def test_bad_overrides_exit_2(overrides, code):
    with pytest.raises(QnncError) as info:
        parse_program("param p: real in [0, inf] = 0.5", "t.qnn", overrides)
    assert [d.code for d in info.value.diagnostics] == [code] and info.value.exit_code == 2


# --------------------------------------------------------------------------- expressions


@pytest.mark.parametrize("text,expected", [
    ("-2 ^ 2", -4), ("2 ^ -1", 0.5), ("(-2) ^ 2", 4), ("2 ^ 3 ^ 2", 512), ("(2 ^ 3) ^ 2", 64),
    ("1 - 2 - 3", -4), ("2 * 3 + 4", 10), ("2 + 3 * 4", 14), ("8 / 4 / 2", 1.0), ("-3 * 2", -6),
    ("- -2", 2), ("2 * -3", -6), ("-(1 + 2) * 3", -9), ("2 ^ 0.5", math.sqrt(2)), ("10 - 2 ^ 3", 2),
    ("sqrt(16)", 4.0), ("clip(5, 0, 1)", 1.0), ("min(3, -1)", -1.0), ("max(3, -1)", 3.0),
    ("log(e)", 1.0), ("sign(0)", 1.0), ("sign(-0.5)", -1.0), ("abs(-2)", 2.0), ("cos(pi)", -1.0),
    ("atan(1) * 4", math.pi), ("tanh(0)", 0.0), ("exp(0)", 1.0), ("asin(1)", math.pi / 2),
])
def test_expression_values_and_precedence(text, expected):
    v = value(text)
    assert v == pytest.approx(expected, rel=1e-12)
    assert type(v) is type(expected)  # ints stay ints under + - * and whole powers


@pytest.mark.parametrize("text,printed", [
    ("-2 ^ 2", "-2 ^ 2"), ("(-2) ^ 2", "(-2) ^ 2"), ("2 ^ -1", "2 ^ -1"), ("2 ^ (3 ^ 2)", "2 ^ 3 ^ 2"),
    ("(2 ^ 3) ^ 2", "(2 ^ 3) ^ 2"), ("1 - (2 - 3)", "1 - (2 - 3)"), ("(1 - 2) - 3", "1 - 2 - 3"),
    ("-(a * b)", "-(a * b)"), ("(-a) * b", "-a * b"), ("a / (b * c)", "a / (b * c)"), ("((x))", "x"),
])
def test_expression_printing_keeps_meaning(text, printed):
    assert format_expr(parse_expression(text)) == printed
    assert parse_expression(printed) == parse_expression(text)


@pytest.mark.parametrize("text,code", [
    ("1 / 0", "Q0221"), ("(-8) ^ (1 / 3)", "Q0221"), ("2 ^ 63", "Q0221"), ("sqrt(-1)", "Q0221"),
    ("sqr(2)", "Q0215"), ("sqrt(1, 2)", "Q0214"), ("q + 1", "Q0202"), ("z", "Q0224"), ('"s"', "Q0213"),
    ("10 ^ 400", "Q0221"), ("max(1, x = 2)", "Q0214"),
])
def test_expression_errors(text, code):
    assert error_codes(f"param p = {text}") == [code]


def test_keywords_are_contextual_names():
    """`input`, `steps`, `log`, `of`... name things where the grammar expects a name."""
    text = """
param steps = 10
param log = 2
network input {
    input of[4]
    layer layer[log] = relu of dense(of)
    output output[2] = linear of dense(layer)
}
train input {
    data mnist.train5k
    checkpoint every steps steps and at log steps
}
"""
    program = prog(text)
    n = program.networks[0]
    assert (n.name, n.input.name, [l.name for l in n.layers]) == ("input", "of", ["layer", "output"])
    assert n.layers[0].size == 2 and program.trains[0].checkpoints.every == 10


# --------------------------------------------------------------------------- imports


def test_import_stdlib():
    program = prog(net("layer h[3] = rotation(0.5) of dense(x)", "h", "import neurons from stdlib\n"))
    assert program.modules[0] == ir.ModuleInfo("stdlib.neurons", "stdlib.neurons", (), program.modules[0].span)
    assert program.modules[-1].name == "t.qnn" and program.modules[-1].imports == ("stdlib.neurons",)
    assert [(n.name, n.module) for n in program.neurons] == [("rotation", "stdlib.neurons"),
                                                            ("weak", "stdlib.neurons")]


NEURON_A = "neuron na() {\n    qubit q\n    ry(z) q\n    emit measure q\n}\n"


def test_import_local_file_relative_to_the_importer(tmp_path, monkeypatch):
    (tmp_path / "proj" / "lib").mkdir(parents=True)
    (tmp_path / "proj" / "shared.qnn").write_text(NEURON_A)
    (tmp_path / "proj" / "lib" / "mine.qnn").write_text(
        'import s from "../shared.qnn"\nneuron nb() {\n    qubit q\n    rx(z) q\n    emit measure q\n}\n')
    (tmp_path / "proj" / "main.qnn").write_text(
        'import m from "lib/mine.qnn"\nimport s from "shared.qnn"\n'
        + net("layer h[3] = na of dense(x)\n    layer k[3] = nb of dense(h)", "k"))
    monkeypatch.chdir(tmp_path)  # paths resolve against the importing file, not the cwd
    program = load_program("proj/main.qnn")
    assert [(m.name, m.imports) for m in program.modules] == [
        ("proj/shared.qnn", ()), ("proj/lib/mine.qnn", ("proj/shared.qnn",)),
        ("proj/main.qnn", ("proj/lib/mine.qnn", "proj/shared.qnn"))]
    assert {n.name: n.module for n in program.neurons} == {"na": "proj/shared.qnn", "nb": "proj/lib/mine.qnn"}
    assert program.neuron("na").span.file == "proj/shared.qnn"


def test_import_errors(tmp_path):
    (tmp_path / "a.qnn").write_text('import b from "b.qnn"\n' + NEURON_A)
    (tmp_path / "b.qnn").write_text('import a from "a.qnn"\n')
    (tmp_path / "main.qnn").write_text('import a from "a.qnn"\n')
    with pytest.raises(QnncError) as info:
        load_program(str(tmp_path / "main.qnn"))
    assert [d.code for d in info.value.diagnostics] == ["Q0211"]
    (tmp_path / "self.qnn").write_text('import me from "./self.qnn"\n')
    with pytest.raises(QnncError) as info:
        load_program(str(tmp_path / "self.qnn"))
    assert [d.code for d in info.value.diagnostics] == ["Q0211"]
    assert error_codes('import x from "nowhere.qnn"') == ["Q0225"]
    assert error_codes("import nope from stdlib") == ["Q0205"]


# --------------------------------------------------------------------------- neurons

NEURON = """
neuron mix(a: real in [0, inf] = 0, g: real in [0, pi / 2] = pi / 2, k: int = 2, f: squash = clip) {
    qubit q carried
    ancilla b, c
    ry(pi / 2 * (last - f(z / a))) q
    rx(2 * 3) b
    rz(z * (1 + 1) + k) c
    ry(-pi) c
    h b
    x c
    cx q, b
    cz b, c
    measure c
    reset c
    emit measure b
}
"""


def test_neuron_definition():
    n = prog(NEURON).neuron("mix")
    assert n.params == (
        ir.NeuronParam("a", "real", 0.0, None, 0.0, n.params[0].span),
        ir.NeuronParam("g", "real", 0.0, math.pi / 2, math.pi / 2, n.params[1].span),
        ir.NeuronParam("k", "int", None, None, 2, n.params[2].span),
        ir.NeuronParam("f", "squash", None, None, "clip", n.params[3].span))
    assert [(r.name, r.role, r.carried) for r in n.registers] == [
        ("q", "qubit", True), ("b", "ancilla", False), ("c", "ancilla", False)]
    assert n.carried
    kinds = [(type(o).__name__, getattr(o, "gate", None), o.targets if isinstance(o, ir.GateOp) else o.target)
             for o in n.ops]
    assert kinds == [("GateOp", "ry", ("q",)), ("GateOp", "rx", ("b",)), ("GateOp", "rz", ("c",)),
                     ("GateOp", "ry", ("c",)), ("GateOp", "h", ("b",)), ("GateOp", "x", ("c",)),
                     ("GateOp", "cx", ("q", "b")), ("GateOp", "cz", ("b", "c")), ("MeasureOp", None, "c"),
                     ("ResetOp", None, "c"), ("MeasureOp", None, "b")]
    assert [o.emit for o in n.ops if isinstance(o, ir.MeasureOp)] == [False, True]
    assert all(o.angle is None for o in n.ops if isinstance(o, ir.GateOp) and o.gate in ("h", "x", "cx", "cz"))


def strip(e: ir.Expr):
    """An angle expression without spans, as nested tuples."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Ref):
        return e.name
    if isinstance(e, ir.Unary):
        return (e.op, strip(e.operand))
    if isinstance(e, ir.Binary):
        return (e.op, strip(e.lhs), strip(e.rhs))
    return (e.function,) + tuple(strip(a) for a in e.args)


def test_neuron_angles_fold_constants():
    angles = [strip(o.angle) for o in prog(NEURON).neuron("mix").ops if isinstance(o, ir.GateOp) and o.angle]
    assert angles == [
        ("*", math.pi / 2, ("-", "last", ("f", ("/", "z", "a")))),  # pi / 2 folded
        6.0,  # 2 * 3
        ("+", ("*", "z", 2.0), "k"),  # 1 + 1 folded, z kept
        -math.pi,
    ]
    ops = prog("neuron m() {\n qubit q\n ry(sqrt(4) * -z + cos(0)) q\n emit measure q\n}").neuron("m").ops
    assert strip(ops[0].angle) == ("+", ("*", 2.0, ("-", "z")), 1.0)


def test_stdlib_neurons_are_the_papers():
    program = prog("import neurons from stdlib")
    rotation, weak = program.neuron("rotation"), program.neuron("weak")
    assert strip(rotation.ops[0].angle) == ("*", math.pi / 2, ("-", 1.0, ("f", ("/", "z", "a"))))
    assert [p.name for p in weak.params] == ["a", "g", "f"] and weak.carried
    assert strip(weak.ops[0].angle) == ("*", math.pi / 2, ("-", "last", ("f", ("/", "z", "a"))))
    assert strip(weak.ops[1].angle) == ("-", math.pi / 2, "g")


@pytest.mark.parametrize("body,code", [
    ("qubit q\n ry(z) q\n measure q", "Q0209"), ("qubit q\n emit measure b", "Q0210"),
    ("qubit q\n ry(last) q\n emit measure q", "Q0227"), ("qubit q\n cx q\n emit measure q", "Q0223"),
    ("qubit q\n ry q\n emit measure q", "Q0223"), ("qubit q\n h(z) q\n emit measure q", "Q0223"),
    ("qubit q\n cx q, q\n emit measure q", "Q0223"), ("qubit q\n qubit p\n emit measure q", "Q0228"),
    ("qubit q\n ancilla q\n emit measure q", "Q0206"), ("qubit q\n emit measure q\n emit measure q", "Q0222"),
    ("qubit q\n ry(y) q\n emit measure q", "Q0202"), ("qubit q\n ry(foo(z)) q\n emit measure q", "Q0215"),
    ("qubit q\n ry(z / 0 * 0 + 1 / 0) q\n emit measure q", "Q0221"), ("qubit q\n u3(z) q\n emit measure q", "Q0204"),
])
def test_neuron_errors(body, code):
    assert code in error_codes(f"neuron m() {{\n {body}\n}}")


def test_sx_is_a_gate_of_the_language():
    """√X (IBM's native gate) comes from the gate table: it takes no angle, one qubit."""
    program = prog("neuron root(a: real in [0, inf] = 0.5) {\n qubit q\n sx q\n ry(pi / 2 * (1 - tanh(z / a))) q\n"
                   " sx q\n emit measure q\n}")
    ops = program.neuron("root").ops
    assert [(o.gate, o.angle, o.targets) for o in ops[::2] if isinstance(o, ir.GateOp)] == [
        ("sx", None, ("q",)), ("sx", None, ("q",))]
    assert "Q0223" in error_codes("neuron m() {\n qubit q\n sx(z) q\n emit measure q\n}")
    assert "Q0223" in error_codes("neuron m() {\n qubit q\n ancilla b\n sx q, b\n emit measure q\n}")


def test_neuron_param_errors():
    assert error_codes("neuron m(a: real in [0, 1] = 2) {\n qubit q\n emit measure q\n}") == ["Q0208"]
    assert error_codes("neuron m(f: squash = relu) {\n qubit q\n emit measure q\n}") == ["Q0213"]
    assert error_codes("neuron m(a: float) {\n qubit q\n emit measure q\n}") == ["Q0220"]
    assert error_codes("neuron m(z: real) {\n qubit q\n emit measure q\n}") == ["Q0206"]


# --------------------------------------------------------------------------- networks


def test_input_preprocessing():
    inp = prog(net(extra="").replace("input x[4]", "input x[28, 28] with scale(1 / 255), pool(2), threshold(0.5)")
               ).networks[0].input
    assert inp.shape == (28, 28)
    assert [(s.kind, s.value) for s in inp.steps] == [("scale", 1 / 255), ("pool", 2.0), ("threshold", 0.5)]
    assert inp.features == 14 * 14
    inp = prog(net().replace("input x[4]", "input x[28, 28] with pool(2), pool(7)")).networks[0].input
    assert inp.features == 4
    assert prog(net().replace("input x[4]", "input x[2, 3, 4]")).networks[0].input.features == 24
    assert error_codes(net().replace("input x[4]", "input x[28] with pool(3)")) == ["Q0207"]
    assert error_codes(net().replace("input x[4]", "input x[4] with blur(2)")) == ["Q0217"]
    assert error_codes(net().replace("input x[4]", "input x[0]")) == ["Q0208"]


def test_dense_defaults_and_bias():
    d = dense("x")
    assert d.source == "x" and d.bias is False
    assert d.init == ir.NormalInit(0.0, 1 / math.sqrt(4), 1.0, d.init.span)
    assert dense("x, bias = on").bias and dense("x, bias = true").bias
    assert not dense("x, bias = off").bias and not dense("x, bias = false").bias
    assert dense("bias = on, x").source == "x"


@pytest.mark.parametrize("init,expected", [
    ("normal(0, 1 / sqrt(fan_in))", ir.NormalInit(0.0, 0.5, 1.0)),
    ("normal(0.1, 2 / (fan_in + fan_out))", ir.NormalInit(0.1, 2 / 7, (2 / 7) ** 2 * 4)),
    ("normal(std = 0.5)", ir.NormalInit(0.0, 0.5, 1.0)),
    ("normal(std = 1, mean = -1)", ir.NormalInit(-1.0, 1.0, 4.0)),
    ("kaiming", ir.NormalInit(0.0, math.sqrt(2) / 2, 2.0)),
    ("kaiming(1)", ir.NormalInit(0.0, 0.5, 1.0)),
    ("kaiming(gain = 3)", ir.NormalInit(0.0, 1.5, 9.0)),
    ("uniform(-1 / sqrt(fan_in), 1 / sqrt(fan_in))", ir.UniformInit(-0.5, 0.5)),
    ("zeros", ir.ZerosInit()), ("zeros()", ir.ZerosInit()),
    ('checkpoint("runs/a05", step = 500, tensor = "h1")', ir.CheckpointInit("runs/a05", 500, "h1")),
    ('checkpoint("runs/a05", tensor = "h1")', ir.CheckpointInit("runs/a05", None, "h1")),
])
def test_inits_with_fan_in_and_fan_out(init, expected):
    """fan_in = 4 (the input), fan_out = 3 (the layer)."""
    got = dense(f"x, init = {init}").init
    assert type(got) is type(expected)
    for f in expected.__dataclass_fields__:
        if f != "span":
            assert getattr(got, f) == pytest.approx(getattr(expected, f)), f


@pytest.mark.parametrize("init,code", [
    ("normal(0)", "Q0218"), ("normal(0, -1)", "Q0208"), ("kaiming(-1)", "Q0208"), ("uniform(1, 0)", "Q0221"),
    ("norml(0, 1)", "Q0218"), ('checkpoint("r")', "Q0218"), ("checkpoint(1)", "Q0218"),
    ("normal(0, 1, 2)", "Q0214"), ("zeros(sigma = 1)", "Q0214"), ("normal(0, fan_out / 0)", "Q0221"),
])
def test_init_errors(init, code):
    assert error_codes(net("layer h[3] = sign of dense(x, init = " + init + ")", "h")) == [code]


@pytest.mark.parametrize("kind", ir.CLASSICAL_ACTIVATIONS)
def test_classical_activations(kind):
    h = layer(f"layer h[3] = {kind} of dense(x)")
    assert h.activation == ir.ClassicalActivation(kind, h.activation.span) and h.role == "hidden"
    assert layer(f"layer h[3] = {kind}() of dense(x)").activation.kind == kind


def test_neuron_activation_bindings():
    std = "import neurons from stdlib\nparam a = 0.5\n"
    act = layer("layer h[3] = rotation(a) of dense(x)", extra=std).activation
    assert act.neuron == "rotation" and [(b.name, b.value) for b in act.args] == [("a", 0.5), ("f", "tanh")]
    act = layer("layer h[3] = rotation(f = clip, a = 2 * a) of dense(x)", extra=std).activation
    assert [(b.name, b.value) for b in act.args] == [("a", 1.0), ("f", "clip")]
    act = layer("layer h[3] = weak(g = pi / 4) of dense(x)", extra=std).activation
    assert [(b.name, b.value) for b in act.args] == [("a", 0.0), ("g", math.pi / 4), ("f", "tanh")]
    act = layer("layer h[3] = weak of dense(x)", extra=std).activation
    assert [(b.name, b.value) for b in act.args] == [("a", 0.0), ("g", math.pi / 2), ("f", "tanh")]
    act = layer("layer h[3] = mix(k = 3) of dense(x)", extra=NEURON).activation
    assert act.arg("k") == 3 and isinstance(act.arg("k"), int)


@pytest.mark.parametrize("call,code", [
    ("rotation(-1)", "Q0208"), ("weak(0, 2)", "Q0208"), ("rotation(0, tanh, 1)", "Q0214"),
    ("rotation(b = 1)", "Q0214"), ("rotation(0, a = 1)", "Q0206"), ("rotation(f = relu)", "Q0213"),
    ("mix(k = 1.5)", "Q0213"), ("rotaton", "Q0203"), ("sign(1)", "Q0214"), ("rotation(1 / 0)", "Q0221"),
])
def test_binding_errors(call, code):
    text = net(f"layer h[3] = {call} of dense(x)", "h", "import neurons from stdlib\n" + NEURON)
    assert error_codes(text) == [code]


def test_carried_layers_keep_width():
    std = "import neurons from stdlib\n"
    program = prog(net("layer h1[3] = weak(0) of dense(x)\n    layer h2[3] = weak(0) of dense(h1)", "h2", std))
    assert [l.size for l in program.networks[0].layers] == [3, 3, 2]
    assert error_codes(net("layer h1[3] = weak(0) of dense(x)\n    layer h2[4] = weak(0) of dense(h1)", "h2",
                           std)) == ["Q0207"]
    # A projective (not carried) layer in between breaks the chain: widths may differ.
    prog(net("layer h1[3] = weak(0) of dense(x)\n    layer h2[5] = rotation(0) of dense(h1)\n"
             "    layer h3[4] = weak(0) of dense(h2)", "h3", std))


def test_network_structure_errors():
    assert error_codes(net("layer h[3] = sign of dense(q)", "h")) == ["Q0201"]
    assert error_codes(net("layer h[3] = sign of dense(x)\n    layer k[3] = sign of dense(x)", "k")) == ["Q0216"]
    assert error_codes("network n {\n input x[4]\n layer h[2] = sign of dense(x)\n}") == ["Q0216"]
    assert error_codes("network n {\n layer h[2] = sign of dense(x)\n}") == ["Q0216"]
    assert error_codes(net("layer h[0] = sign of dense(x)", "h")) == ["Q0208"]
    assert error_codes(net("layer h[2.5] = sign of dense(x)", "h")) == ["Q0213"]
    assert error_codes(net("layer h[3] = sign of conv(x)", "h")) == ["Q0216"]


def test_huge_layer_is_refused_before_allocating():
    text = net("layer h[10 ^ 9] = sign of dense(x)", "h")
    tracemalloc.start()
    try:
        assert error_codes(text) == ["Q0212"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20  # a 10^9-wide layer would need gigabytes
    # Weights, not only widths, are bounded: 2^20 inputs x 2^20 neurons.
    assert "Q0212" in error_codes(net("layer h[1048576] = sign of dense(x)", "h").replace(
        "input x[4]", "input x[1024, 1024]"))


def test_readout():
    r = prog(net()).networks[0].readout
    assert (r.kind, r.shots) == ("argmax", 1)
    r = prog(net().replace("output y", "readout logits\n    output y")).networks[0].readout
    assert (r.kind, r.shots) == ("logits", 1)
    r = prog(net().replace("input x[4]", "input x[4]\n    readout argmax, vote over 15 shots")).networks[0].readout
    assert (r.kind, r.shots) == ("argmax", 15)
    assert error_codes(net().replace("input x[4]", "input x[4]\n readout logits, vote over 3 shots")) == ["Q0226"]
    assert error_codes(net().replace("input x[4]", "input x[4]\n readout argmax, vote over 0 shots")) == ["Q0208"]


def test_several_networks():
    text = net() + net().replace("network n", "network m")
    program = prog(text)
    assert [n.name for n in program.networks] == ["n", "m"] and program.network().name == "n"
    assert error_codes(net() + net()) == ["Q0206"]


# --------------------------------------------------------------------------- training

def train(body: str) -> str:
    return net() + f"\ntrain n {{\n{body}\n}}\n"


def recipe(body: str) -> ir.TrainRecipe:
    return prog(train(body)).trains[0]


def test_train_defaults():
    t = recipe("data mnist.train5k")
    assert (t.network, t.data.kind, t.data.name, t.validate) == ("n", "builtin", "mnist.train5k", None)
    assert (t.optimizer.name, t.optimizer.lr, t.optimizer.momentum, t.optimizer.weight_decay) == ("sgd", 0.01, 0.9, 0.0)
    assert (t.batch, t.epochs, t.seed, t.loss) == (64, 10, 0, "cross_entropy")
    assert (t.gradient.kind, t.gradient.window) == ("straight_through", 1.0)
    c = t.checkpoints
    assert (c.every, c.log_steps, c.steps, c.at_end) == (None, False, (), True)


def test_train_statements():
    t = recipe('data "data/train.npz"\nvalidate on mnist.test\noptimizer adam(lr = 0.001, weight_decay = 0.01)\n'
               "batch 32\nepochs 0\nseed 7\nloss cross_entropy\ngradient exact")
    assert (t.data.kind, t.data.name) == ("file", "data/train.npz")
    assert (t.validate.kind, t.validate.name) == ("builtin", "mnist.test")
    assert (t.optimizer.name, t.optimizer.lr, t.optimizer.momentum, t.optimizer.weight_decay) == ("adam", 0.001, 0.0, 0.01)
    assert (t.batch, t.epochs, t.seed, t.gradient.kind) == (32, 0, 7, "exact")
    o = recipe("data mnist.train\noptimizer sgd(0.1, 0.5)").optimizer
    assert (o.lr, o.momentum) == (0.1, 0.5)
    assert recipe("data mnist.train\ngradient straight_through(window = 0.5)").gradient.window == 0.5
    assert recipe("data mnist.train\ngradient straight_through(2)").gradient.window == 2.0


@pytest.mark.parametrize("schedule,expected", [
    ("every 100 steps", (100, False, (), False)),
    ("at log steps and at end", (None, True, (), True)),
    ("at steps [5, 1, 3]", (None, False, (1, 3, 5), False)),
    ("every 50 steps and at steps [7] and at log steps and at end", (50, True, (7,), True)),
    ("at steps [2] and at steps [1]", (None, False, (1, 2), False)),
])
def test_checkpoint_schedules(schedule, expected):
    c = recipe(f"data mnist.train5k\ncheckpoint {schedule}").checkpoints
    assert (c.every, c.log_steps, c.steps, c.at_end) == expected


@pytest.mark.parametrize("body,code", [
    ("batch 32", "Q0233"), ("data mnist.train5", "Q0230"), ('data "x.csv"', "Q0230"),
    ("data mnist.test\noptimizer adma", "Q0219"), ("data mnist.test\noptimizer sgd(lr = 0)", "Q0208"),
    ("data mnist.test\noptimizer adam(momentum = 0.9)", "Q0214"), ("data mnist.test\nbatch 0", "Q0208"),
    ("data mnist.test\nepochs 1.5", "Q0213"), ("data mnist.test\nloss mse", "Q0219"),
    ("data mnist.test\ngradient straight_through(0)", "Q0208"), ("data mnist.test\ngradient exact(1)", "Q0214"),
    ("data mnist.test\ncheckpoint at steps [1, 1]", "Q0231"), ("data mnist.test\nseed -1", "Q0208"),
    ("data mnist.test\nbatch 1\nbatch 2", "Q0206"), ("data mnist.test\ncheckpoint every 0 steps", "Q0208"),
])
def test_train_errors(body, code):
    assert error_codes(train(body)) == [code]


def test_train_for_unknown_network():
    assert error_codes(net() + "train m { data mnist.test }") == ["Q0232"]


# --------------------------------------------------------------------------- spans


def test_spans_point_at_the_source():
    program = prog("param a = 1\n\nnetwork n {\n    input x[4]\n    output y[2] = linear of dense(x)\n}\n")
    assert program.params[0].span == ir.Span("t.qnn", 1, 1, 1, 12)
    y = program.networks[0].layers[0]
    assert y.span == ir.Span("t.qnn", 5, 5, 5, 37)
    assert y.dense.span == ir.Span("t.qnn", 5, 29, 5, 37)
    assert program.networks[0].span.line == 3 and program.networks[0].span.end_line == 6


# --------------------------------------------------------------------------- passes

MNIST = Path(__file__).resolve().parent.parent / "examples" / "mnist.qnn"


def mnist() -> ir.Program:
    return parse_program(MNIST.read_text(), str(MNIST))


def test_pass_manager_catches_a_broken_pass():
    def drop_output(program: ir.Program) -> ir.Program:
        net = program.networks[0]
        return replace(program, networks=(replace(net, layers=net.layers[:-1]),))

    with pytest.raises(QnncError) as info:
        PassManager([SelectNetwork("mnist"), FunctionPass(drop_output, "drop-output")]).run(mnist())
    messages = [d.message for d in info.value.diagnostics]
    assert messages and all(m.startswith("after pass `drop-output`: ") for m in messages)


def test_pass_manager_catches_a_dangling_neuron():
    def forget_neurons(program: ir.Program) -> ir.Program:
        return replace(program, neurons=())

    with pytest.raises(QnncError) as info:
        PassManager([FunctionPass(forget_neurons, "forget-neurons")]).run(mnist())
    assert any("after pass `forget-neurons`: unknown neuron `rotation`" in d.message for d in info.value.diagnostics)


def test_passes_that_keep_the_invariants():
    program = PassManager([SelectNetwork("mnist"), OverrideTraining({"lr": 0.5, "epochs": 3})]).run(mnist())
    assert program.trains[0].optimizer.lr == 0.5 and program.trains[0].epochs == 3
    assert [n.name for n in program.neurons] == ["rotation"]  # `weak` is not used by mnist
    with pytest.raises(QnncError) as info:
        PassManager([OverrideTraining({"lr": -1.0})]).run(mnist())
    assert "after pass `override-training`" in info.value.diagnostics[0].message
