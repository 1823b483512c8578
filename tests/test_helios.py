"""The Helios target: the network as one Guppy program (HUGR), sampled on Selene.

- differential: Selene's samples against the torch simulator's exact outcome
  distribution (`QNNModel.exact_outcome_distribution`), within the total-variation bound
  for the shot count (tests/test_targets_differential.py gives the bound), over
  hypothesis-drawn weights, a, g and squash (clip, tanh), models A and B; no weight is
  rounded;
- tanh: Guppy has none; `tanh_approx` is checked against math.tanh on Selene itself;
- the Guppy text of small networks as golden files, and the file `qnnc compile` writes
  compiled to HUGR by a separate Python that cannot import qnnc;
- refusals (Q0321, Q0322, Q0303, Q0308) and QIR for the H2 circuits, parsed by pyqir.

Regenerate the golden files with `QNNC_UPDATE_GOLDEN=1 pytest tests/test_helios.py`.
The slow tests: more hypothesis examples and shots, and the trained hardware network's
vote accuracy on Selene against the simulator's on the same 50 test images."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("guppylang")
pytest.importorskip("selene_sim")

from cli_harness import run_cli  # noqa: E402
from ir_builders_targets import (NEURONS, chain_network, random_case, random_weights,  # noqa: E402
                                 torch_exact_distribution)
from test_targets_golden import check_golden, small  # noqa: E402
from qnnc.compiler import ir  # noqa: E402
from qnnc.compiler.diagnostics import QnncError  # noqa: E402
from qnnc.runtime.targets import compile_network, run_compiled  # noqa: E402
from qnnc.runtime.targets.helios.guppy_source import (TANH_MAX_ERROR, _tanh_source,  # noqa: E402
                                                      tanh_approx)
from qnnc.runtime.targets.helios.selene import SeleneRunner, compile_source  # noqa: E402
from qnnc.runtime.targets.network import tv_bound, tv_distance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def assert_matches_simulator(net, w, x, shots, seed, neurons=NEURONS):
    exact = torch_exact_distribution(net, w, x, neurons)
    compiled = compile_network(net, neurons, w, x, target="helios")
    assert compiled.strategy == "program"
    out = run_compiled(compiled, shots, "ideal", seed=seed)
    assert out.shape == (shots, sum(l.size for l in net.layers if l.role == "hidden"))
    support = sum(1 for p in exact.values() if p > 1e-12)
    tv = tv_distance(out, exact)
    assert tv <= tv_bound(shots, support + 1), f"TV {tv:.4f} > bound for {shots} shots"
    return compiled, out


cases = st.tuples(st.sampled_from(["rotation", "weak"]), st.integers(1, 2), st.integers(1, 2),
                  st.sampled_from([0.0, 0.4, 1.5]), st.floats(0.3, math.pi / 2),
                  st.sampled_from(["tanh", "clip"]), st.integers(0, 10_000), st.booleans())


@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(c=cases)
def test_selene_matches_simulator(c):
    assert_matches_simulator(*random_case(*c), shots=1500, seed=c[6])


@pytest.mark.slow
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(c=st.tuples(st.sampled_from(["rotation", "weak"]), st.integers(1, 3), st.integers(1, 3),
                   st.sampled_from([0.0, 0.2, 0.5, 1.5, 4.0]), st.floats(0.1, math.pi / 2),
                   st.sampled_from(["tanh", "clip"]), st.integers(0, 10_000), st.booleans()))
def test_selene_matches_simulator_many(c):
    assert_matches_simulator(*random_case(*c), shots=6000, seed=c[6])


def test_mixed_chain_of_models_a_and_b():
    """weak -> weak (carried qubit continued) -> rotation: carried qubits, ancillas and
    fresh qubits in one program; the seed reproduces the samples."""
    kinds, widths = ("weak", "weak", "rotation"), (2, 2, 2)
    args = [{"a": 0.5, "g": 0.8, "f": "clip"}, {"a": 0.3, "g": 1.2, "f": "tanh"},
            {"a": 0.6, "f": "tanh"}]
    net = chain_network(3, list(widths), list(kinds), args, 2)
    w = random_weights(net, 11)
    x = np.array([0.4, -0.7, 0.2])
    compiled, out = assert_matches_simulator(net, w, x, shots=2000, seed=3)
    assert "carried = array(qubit() for _ in range(2))" in compiled.texts["guppy"][0]
    assert compiled.summary["total"]["qubits"] == 3  # two carried + one ancilla at a time
    again = run_compiled(compiled, 2000, "ideal", seed=3)
    assert np.array_equal(out, again)
    # the label the program returns is the argmax of the outcomes it returns
    from qnnc.runtime.targets import host
    from qnnc.runtime.targets.compile import predictions, vendor

    ex = vendor("helios").local_executor(compiled.native, compiled.lowered, "ideal", 5)
    out = host.run(compiled.lowered, compiled.spec, ex, 300, 5)
    assert ex.labels == predictions(compiled, out)["labels"]


# --------------------------------------------------------------------------- tanh


def test_tanh_approx_error_bound():
    xs = np.concatenate([np.linspace(-25, 25, 100_001), np.linspace(-1e-3, 1e-3, 2001),
                         np.random.default_rng(0).normal(0, 3, 20_000)])
    err = max(abs(tanh_approx(float(v)) - math.tanh(float(v))) for v in xs)
    assert err <= TANH_MAX_ERROR, err


def test_tanh_approx_on_selene():
    """The Guppy function itself, run on Selene, within the stated error of math.tanh."""
    points = [float(v) for v in np.concatenate([np.linspace(-22, 22, 45), [0.0, 1e-9, -3e-7, 0.1234]])]
    text = ("from guppylang import guppy\nfrom guppylang.std.builtins import array, comptime, result\n"
            f"P = {points!r}\n" + _tanh_source() +
            "\n@guppy\ndef main() -> None:\n    p = comptime(P)\n"
            f"    out = array(0.0 for _ in range({len(points)}))\n"
            f"    for i in range({len(points)}):\n        out[i] = tanh_approx(p[i])\n"
            '    result("t", out)\n')
    runner = SeleneRunner(compile_source(text), 1, seed=0)
    try:
        (shot,) = list(runner.shots(1))
    finally:
        runner.close()
    (tag, values), = shot
    assert tag == "t" and len(values) == len(points)
    for p, v in zip(points, values):
        assert abs(v - math.tanh(p)) <= TANH_MAX_ERROR, (p, v)
        assert v == tanh_approx(p)  # the Python mirror: the same operations


# --------------------------------------------------------------------------- golden text


@pytest.mark.parametrize("neuron", ["rotation", "weak"])
def test_golden_guppy_text(neuron):
    net, w, x = small(neuron)
    compiled = compile_network(net, NEURONS, w, x, target="helios")
    check_golden(f"helios_small_{neuron}.py", compiled.texts["guppy"][0])


def test_written_program_compiles_without_qnnc(tmp_path):
    """`qnnc compile --target helios -o F.py` writes F.py and F.hugr; F.py compiles to the
    same HUGR in a Python that cannot import qnnc."""
    src = tmp_path / "net.py"
    rc, out, err = run_cli(["compile", str(ROOT / "examples" / "hardware.qnn"), "--target", "helios",
                            "--image", "3", "-o", str(src)])
    assert rc == 0, err
    assert f"wrote {src}" in out and f"wrote {tmp_path / 'net.hugr'}" in out
    code = ("import runpy, sys; sys.modules['qnnc'] = None; "  # any `import qnnc` fails
            f"sys.argv = ['net.py', {str(tmp_path / 'again.hugr')!r}]; "
            f"runpy.run_path({str(src)!r}, run_name='__main__'); "
            "assert not any(m.startswith('qnnc.') for m in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from hugr.package import Package

    ours = Package.from_bytes((tmp_path / "net.hugr").read_bytes())
    theirs = Package.from_bytes((tmp_path / "again.hugr").read_bytes())
    assert len(ours.modules) == len(theirs.modules) == 1
    assert ours.modules[0].num_nodes() == theirs.modules[0].num_nodes()


# --------------------------------------------------------------------------- refusals


def _code(fn) -> str:
    with pytest.raises(QnncError) as e:
        fn()
    return e.value.diagnostics[0]


def test_function_guppy_lacks_is_refused():
    sin_def = ir.NeuronDef("sine", "<test>", (), (ir.Register("q", "qubit"),),
                           (ir.GateOp("ry", ir.Call("sin", (ir.Ref("z"),)), ("q",)),
                            ir.MeasureOp("q", True)))
    neurons = dict(NEURONS, sine=sin_def)
    net = chain_network(3, [2], "rotation", {}, None)
    net = ir.Network(net.name, net.input, (ir.Layer(
        "h1", 2, "hidden", net.layers[0].dense, ir.NeuronActivation("sine", ())),), net.readout)
    d = _code(lambda: compile_network(net, neurons, random_weights(net, 0), np.zeros(3),
                                      target="helios"))
    assert d.code == "Q0322" and "`sin`" in d.message and "layered" in d.help


def test_carried_layer_beyond_helios_is_refused_with_what_fits():
    net = chain_network(3, [98, 98], "weak", {"a": 0.5, "g": 1.0, "f": "clip"}, None)
    d = _code(lambda: compile_network(net, NEURONS, random_weights(net, 0), np.zeros(3),
                                      target="helios"))
    assert d.code == "Q0321" and "99 qubits" in d.message and "98" in d.message
    assert "at most 97 neurons" in d.help
    # a model-A layer of the same width holds one qubit at a time: it fits
    wide = chain_network(3, [120], "rotation", {"a": 0.5, "f": "clip"}, None)
    compiled = compile_network(wide, NEURONS, random_weights(wide, 0), np.zeros(3), target="helios")
    assert compiled.summary["total"]["qubits"] == 1


def test_missing_extra_is_a_clear_refusal(monkeypatch):
    net, w, x = random_case("rotation", 1, 1, 0.5, 1.0, "clip", 1, False)
    monkeypatch.setitem(sys.modules, "guppylang", None)  # import fails
    d = _code(lambda: compile_network(net, NEURONS, w, x, target="helios"))
    assert d.code == "Q0310" and "qnnc[helios]" in d.help


def test_wider_than_the_local_emulator_is_refused():
    net = chain_network(3, [30, 30], "weak", {"a": 0.5, "g": 1.0, "f": "clip"}, None)
    compiled = compile_network(net, NEURONS, random_weights(net, 0), np.zeros(3), target="helios")
    d = _code(lambda: run_compiled(compiled, 10, "ideal", seed=0))
    assert d.code == "Q0316" and "31 qubits" in d.message


def test_program_strategy_needs_float_arithmetic_and_no_rounding():
    net, w, x = random_case("rotation", 2, 2, 0.5, 1.0, "clip", 1, False)
    d = _code(lambda: compile_network(net, NEURONS, w, x, target="quantinuum", strategy="program"))
    assert d.code == "Q0303" and any("floating-point" in n for n in d.notes)
    d = _code(lambda: compile_network(net, NEURONS, w, x, target="helios", weight_bits=4))
    assert d.code == "Q0308"
    d = _code(lambda: compile_network(net, NEURONS, w, x, target="helios", strategy="dynamic"))
    assert d.code == "Q0303" and "`program`" in d.help


def test_cli_run_on_selene():
    import json

    rc, out, err = run_cli(["run", str(ROOT / "examples" / "hardware.qnn"), "--target", "helios",
                            "--shots", "20", "--seed", "4", "--json"])
    assert rc == 0, err
    r = json.loads(out)["result"]
    assert r["summary"]["strategy"] == "program" and r["shots"] == 20 and r["seed"] == 4
    assert sum(r["predictions"]["histogram"]) == 20


# --------------------------------------------------------------------------- QIR (H2)


def test_qir_of_the_h2_circuit_parses(tmp_path):
    pyqir = pytest.importorskip("pyqir")
    net, w, x = small("rotation")
    compiled = compile_network(net, NEURONS, w, x, target="quantinuum", strategy="dynamic", seed=0)
    from qnnc.runtime.targets.compile import vendor

    (text,) = vendor("quantinuum").text(compiled.native, "qir")
    check_golden("quantinuum_dynamic.ll", text)
    module = pyqir.Module.from_ir(pyqir.Context(), text)
    assert module.verify() is None  # None: no errors
    (entry,) = [f for f in module.functions if pyqir.is_entry_point(f)]
    assert pyqir.required_num_qubits(entry) == 3 and pyqir.required_num_results(entry) == 3
    # conditioned rotations survive as branches on measured results
    assert "__quantum__qis__read_result__body" in text and "br i1" in text


def test_qir_refuses_host_bound_symbols():
    net, w, x = small("rotation")
    compiled = compile_network(net, NEURONS, w, x, target="quantinuum", strategy="layered", seed=0)
    from qnnc.runtime.targets.compile import vendor

    d = _code(lambda: vendor("quantinuum").text(compiled.native, "qir"))
    assert d.code == "Q0325" and "dynamic" in d.help


# --------------------------------------------------------------------------- trained hardware.qnn


@pytest.mark.slow
def test_trained_hardware_vote_accuracy_matches_simulator(tmp_path):
    """hardware.qnn (a = 0.5, clip), trained one epoch: its vote accuracy over 10 shots on
    Selene, over 200 test images (one program, 200 forward passes per shot), lies in the 95%
    interval of the simulator's vote accuracy on the same images (the interval of a sum of
    independent per-image votes, with each image's vote probability estimated from 40
    simulator votes)."""
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.targets.helios.guppy_source import guppy_source
    from qnnc.runtime.targets.helios.selene import parse_shot
    from qnnc.runtime.targets.network import resolve
    from qnnc.runtime.train import build_model, predict

    run = tmp_path / "hw"
    rc, _, err = run_cli(["train", str(ROOT / "examples" / "hardware.qnn"), "--epochs", "1",
                          "--out", str(run)])
    assert rc == 0, err
    prog = load_program(str(ROOT / "examples" / "hardware.qnn"))
    net = prog.network("hardware")
    from qnnc.runtime import weights as weight_source

    last = sorted((run / "checkpoints").glob("step-*.safetensors"))[-1]
    weights, _, _ = weight_source.load_weights(prog, net, str(last), 0)
    # The issue asks for at least 50 images. At 50 the comparison sat at z = -2.2 (Selene
    # seed 1) and -1.1, -1.1, -2.8 (seeds 2-4), too coarse to tell chance from a bias;
    # 200 images resolve it (z = -0.6 per 10-shot vote, single shots agree).
    n_img, shots = 200, 10
    ds = load_dataset("mnist.test")
    xs = preprocess(ds.images[:n_img], net.input).astype(np.float64)
    labels = ds.labels[:n_img].astype(int)
    # the simulator: per-image probability that the vote over 10 shots is right
    model = build_model(prog, net, 0)
    model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    right = np.zeros(n_img)
    reps = 40
    for r in range(reps):
        pred, _ = predict(model, torch.from_numpy(xs), shots, r)
        right += pred.numpy() == labels
    p = right / reps
    mean, sd = p.mean(), math.sqrt(float(np.sum(p * (1 - p)))) / n_img
    # Selene: one program, every shot runs the 50 forward passes
    spec = resolve(net, prog.neurons, weights, xs[0])
    source = guppy_source(spec, list(xs))
    runner = SeleneRunner(compile_source(source.text), source.max_live_qubits, seed=1)
    votes = np.zeros((n_img, 10), dtype=int)
    try:
        for res in runner.shots(shots):
            _, lab = parse_shot(res, source.layers, n_img, True)
            votes[np.arange(n_img), lab] += 1
    finally:
        runner.close()
    acc = float(np.mean(votes.argmax(1) == labels))
    # sharper, without the vote's ties: single-shot accuracy, 500 samples against the
    # simulator's per-shot probability of the right class (4 standard deviations)
    single_sel = votes[np.arange(n_img), labels].sum() / (n_img * shots)
    _, per_shot = predict(model, torch.from_numpy(xs), 400, 99)
    q = (per_shot.numpy() == labels[None, :]).mean(0)
    assert abs(single_sel - q.mean()) <= 4 * math.sqrt(float(np.sum(q * (1 - q))) / shots) / n_img
    print(f"\nhardware.qnn, 1 epoch, {n_img} images, vote over {shots}: Selene {acc:.3f}; "
          f"simulator {mean:.3f}, 95% interval [{mean - 1.96 * sd:.3f}, {mean + 1.96 * sd:.3f}]")
    assert abs(acc - mean) <= 1.96 * sd + 1e-9, (acc, mean, sd)
