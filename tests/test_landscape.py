"""The classification energy landscape of one image (`qnnc.runtime.landscape`, `qnnc
landscape`): the definition against the simulator's exact enumeration and against the
Ising Hamiltonian, the minima (exhaustive against descent, and against brute force),
properties on random small networks, the golden text report, and the refusals."""

from __future__ import annotations

import json
import math
import os
from importlib.resources import files
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from cli_harness import run_cli
from qnnc.compiler import parse_program
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.exact_dp import pattern_table
from qnnc.runtime.landscape import Landscape, landscape_of
from qnnc.runtime.simulator import QNNModel

GOLDEN = Path(__file__).parent / "golden" / "landscape"
UPDATE = bool(os.environ.get("QNNC_UPDATE_GOLDEN"))

NET = """
import neurons from stdlib
param a: real in [0, inf] = 0.5
network small {{
    input x[{features}]
    layer h1[{w1}] = rotation(a, f = {f}) of dense(x, bias = {bias}, init = normal(0, 1.5))
    layer h2[{w2}] = rotation(a, f = {f}) of dense(h1, bias = off, init = normal(0, 1.5 / sqrt(fan_in)))
    output y[{out}] = linear of dense(h2, bias = off, init = normal(0, 1))
}}
"""

# A rotation followed by a read-out error written as a circuit: an ancilla rotated so that
# P(1) = eps controls a flip of the neuron's qubit and is traced out.
NOISY = """
import neurons from stdlib
param a: real in [0, inf] = 0.5
param eps: real in [0, 1] = 0.1
neuron noisy(a: real in [0, inf] = 0, eps: real in [0, 1] = 0, f: squash = tanh) {{
    qubit q
    ancilla b
    ry(pi / 2 * (1 - f(z / a))) q
    ry(2 * asin(sqrt(eps))) b
    cx b, q
    emit measure q
}}
network small {{
    input x[{features}]
    layer h1[{w1}] = noisy(a, eps, f = {f}) of dense(x, bias = {bias}, init = normal(0, 1.5))
    layer h2[{w2}] = noisy(a, eps, f = {f}) of dense(h1, bias = off, init = normal(0, 1.5 / sqrt(fan_in)))
    output y[{out}] = linear of dense(h2, bias = off, init = normal(0, 1))
}}
"""

# P(+1 | z) = (1 + tanh(z / T)) / 2: the Glauber (heat-bath) neuron, whose energy is the
# Ising Hamiltonian's plus one normaliser per neuron.
GLAUBER = """
param T: real in [0, inf] = 0.7
neuron glauber(T: real in [0, inf] = 1) {
    qubit q
    ry(acos(tanh(z / T))) q
    emit measure q
}
network small {
    input x[3]
    layer h1[3] = glauber(T) of dense(x, bias = off, init = normal(0, 1))
    layer h2[4] = glauber(T) of dense(h1, bias = off, init = normal(0, 0.8))
    layer h3[2] = glauber(T) of dense(h2, bias = off, init = normal(0, 0.8))
    output y[2] = linear of dense(h3, bias = off, init = normal(0, 1))
}
"""


def _model(text: str, seed: int = 0, **fmt) -> QNNModel:
    program = parse_program(text.format(**fmt) if fmt else text, "small.qnn")
    return QNNModel(program, seed=seed, dtype=torch.float64)


def _x(features: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, features))


def _all_patterns(n: int) -> torch.Tensor:
    return pattern_table(n, torch.float64)


SHAPES = dict(features=5, w1=3, w2=4, out=3)


@pytest.mark.parametrize("f, bias, a", [("clip", "off", 0.5), ("tanh", "on", 0.3), ("clip", "on", 1.5)])
def test_the_energy_is_minus_log_of_the_exact_outcome_distribution(f, bias, a):
    model = _model(NET.replace("= 0.5", f"= {a}"), f=f, bias=bias, **SHAPES)
    x = _x(5, 3)
    table, probs = model.exact_outcome_distribution(x)
    land = Landscape(model, x)
    E = land.energy(table)
    p = torch.exp(-E)
    assert torch.allclose(p, probs, atol=1e-12), (p - probs).abs().max()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("eps", [0.02, 0.2])
def test_the_flip_is_a_read_out_error_written_as_a_circuit(eps):
    """--flip ε equals a neuron whose qubit is flipped by an ancilla with P(1) = ε: the
    simulator's exact enumeration of that circuit, traced over the ancilla."""
    shapes = dict(f="clip", bias="on", **SHAPES)
    plain = _model(NET, **shapes)
    noisy = QNNModel(parse_program(NOISY.format(**shapes).replace("= 0.1", f"= {eps}"), "noisy.qnn"),
                     dtype=torch.float64)
    noisy.load_tensors(plain.tensors())
    x = _x(5, 4)
    table, probs = noisy.exact_outcome_distribution(x)
    E = Landscape(plain, x, flip=eps).energy(table)
    assert torch.allclose(torch.exp(-E), probs, atol=1e-12)
    # and the read-out error changed the distribution
    assert not torch.allclose(Landscape(plain, x).energy(table).exp(), probs, atol=1e-3)


def test_glauber_neurons_give_the_ising_energy_plus_normalisers():
    """With P(+1 | z) = (1 + tanh(z/T))/2, −log P(s | x) = H(x, s)/T + Σ log 2cosh(z/T),
    H the network's Ising Hamiltonian (runtime/ising.py) with the image on the input spins."""
    from qnnc.runtime.ising import IsingModel

    model = _model(GLAUBER, seed=2)
    T = 0.7
    x = _x(3, 5)
    land = Landscape(model, x)
    S = _all_patterns(land.n)
    W = [model.weight[n].detach().numpy() for n in ("h1", "h2", "h3")]
    ising = IsingModel.from_weights(W, ["x", "h1", "h2", "h3"])
    sigma = np.concatenate([np.broadcast_to(x.numpy(), (S.shape[0], 3)), S.numpy()], 1)
    H = ising.energy(sigma)
    srcs = [np.broadcast_to(x.numpy(), (S.shape[0], 3)), S[:, :3].numpy(), S[:, 3:7].numpy()]
    norm = sum(np.log(2 * np.cosh((s @ w.T) / T)).sum(1) for s, w in zip(srcs, W))
    assert np.allclose(land.energy(S).numpy(), H / T + norm, atol=1e-10)


def _brute_minima(land: Landscape) -> dict:
    S = _all_patterns(land.n)
    E = land.energy(S)
    out = {}
    for i in range(S.shape[0]):
        if not math.isfinite(float(E[i])):
            continue
        nb = S[i].unsqueeze(0) * (1 - 2 * torch.eye(land.n, dtype=S.dtype))
        if bool((land.energy(nb) >= E[i] - 1e-12).all()):
            out[(S[i] > 0).numpy().tobytes()] = float(E[i])
    return out


@pytest.mark.parametrize("seed, flip, f", [(0, 0.0, "tanh"), (1, 0.0, "clip"), (2, 0.05, "clip"), (3, 0.0, "tanh")])
def test_exhaustive_minima_are_exactly_the_brute_force_minima(seed, flip, f):
    model = _model(NET, seed=seed, f=f, bias="on", **SHAPES)
    land = Landscape(model, _x(5, seed), flip)
    res = land.find_minima(exhaustive_limit=1 << 10)
    assert res.mode == "exhaustive"
    got = {(torch.as_tensor(m.pattern) > 0).numpy().tobytes(): m.energy for m in res.minima}
    want = _brute_minima(land)
    assert got.keys() == want.keys()
    for k in got:
        assert got[k] == pytest.approx(want[k], abs=1e-12)
    E = land.energy(_all_patterns(land.n))
    assert res.minima[0].energy == pytest.approx(float(E.min()), abs=1e-12)  # the ground state
    assert res.support == int(torch.isfinite(E).sum())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_descent_agrees_with_exhaustive_enumeration(seed):
    model = _model(NET, seed=seed, f="tanh", bias="on", features=5, w1=4, w2=5, out=4)
    land = Landscape(model, _x(5, 10 + seed), 0.0)
    ex = land.find_minima(exhaustive_limit=1 << 12)
    de = land.find_minima(exhaustive_limit=0, starts=512, seed=seed)
    assert ex.mode == "exhaustive" and de.mode == "descent"
    exact = {(torch.as_tensor(m.pattern) > 0).numpy().tobytes(): m.energy for m in ex.minima}
    for m in de.minima:  # every minimum descent finds is a true one, with its energy
        key = (torch.as_tensor(m.pattern) > 0).numpy().tobytes()
        assert key in exact and exact[key] == pytest.approx(m.energy, abs=1e-12)
    # 9 spins, 512 starts (half of them spread uniformly): every minimum is found
    assert {(torch.as_tensor(m.pattern) > 0).numpy().tobytes() for m in de.minima} == exact.keys()
    g_ex, g_de = ex.ground, de.ground
    assert np.array_equal(g_ex.pattern, g_de.pattern) and g_ex.label == g_de.label
    assert g_ex.gap == pytest.approx(g_de.gap, abs=1e-12) and g_ex.hamming == g_de.hamming
    assert sum(m.starts for m in de.minima) == 512


@settings(max_examples=25)
@given(widths=st.lists(st.integers(1, 4), min_size=1, max_size=3), features=st.integers(1, 4),
       out=st.integers(2, 4), a=st.sampled_from([0.0, 0.2, 1.0, 3.0]), f=st.sampled_from(["tanh", "clip"]),
       flip=st.sampled_from([0.0, 0.01, 0.3]), seed=st.integers(0, 2 ** 16))
def test_properties_on_random_small_networks(widths, features, out, a, f, flip, seed):
    layers = []
    src = "x"
    for i, w in enumerate(widths, start=1):
        layers.append(f"    layer h{i}[{w}] = rotation(a, f = {f}) of dense({src}, bias = on, "
                      f"init = normal(0, 1))")
        src = f"h{i}"
    text = (f"import neurons from stdlib\nparam a: real in [0, inf] = {a}\nnetwork n {{\n"
            f"    input x[{features}]\n" + "\n".join(layers) +
            f"\n    output y[{out}] = linear of dense({src}, bias = off, init = normal(0, 1))\n}}\n")
    model = QNNModel(parse_program(text, "n.qnn"), seed=seed % 97, dtype=torch.float64)
    with torch.no_grad():
        for name in model.bias:
            model.bias[name].normal_(generator=torch.Generator().manual_seed(seed))
    land = Landscape(model, _x(features, seed), flip)
    S = _all_patterns(land.n)
    E = land.energy(S)
    assert bool((E >= -1e-12).all())  # −log of a probability
    assert float(torch.exp(-E).sum()) == pytest.approx(1.0, abs=1e-10)  # normalised
    if flip:
        assert bool(torch.isfinite(E).all())
    fin = torch.isfinite(E)
    Sf = S[fin]
    nb = land.neighbour_energies(Sf)
    eye = 1 - 2 * torch.eye(land.n, dtype=S.dtype)
    ref = land.energy((Sf.unsqueeze(1) * eye).reshape(-1, land.n)).view(-1, land.n)
    assert torch.allclose(nb, ref, atol=1e-9, equal_nan=False) or bool(((nb == ref) | (nb - ref).abs().lt(1e-9)).all())
    res = land.find_minima(exhaustive_limit=1 << 12)
    pats = torch.from_numpy(np.stack([m.pattern for m in res.minima]).astype(np.float64))
    assert bool(land.is_minimum(pats).all())
    assert [m.label for m in res.minima] == land.labels(pats).tolist()
    assert res.minima[0].energy == pytest.approx(float(E.min()), abs=1e-12)
    for m in res.minima:
        if m.gap is not None:
            other = res.minima[m.other]
            assert other.label != m.label and m.hamming >= 1
            assert m.gap == pytest.approx(other.energy - m.energy)
            assert m.hamming == int((other.pattern != m.pattern).sum())
            # the lowest minimum of another label: no minimum of another label is lower
            assert all(o.energy >= other.energy for o in res.minima if o.label != m.label)
    if res.minima[0].gap is not None:
        assert res.minima[0].gap >= 0
    d = land.descend(land.sample(16, torch.Generator().manual_seed(seed)))[0]
    assert bool(land.is_minimum(d).all())


def test_samples_follow_the_distribution():
    model = _model(NET, seed=1, f="tanh", bias="on", features=5, w1=2, w2=2, out=3)
    land = Landscape(model, _x(5, 1), 0.1)
    S = land.sample(20000, torch.Generator().manual_seed(0))
    table = _all_patterns(land.n)
    p = torch.exp(-land.energy(table))
    idx = ((S < 0).long() * (2 ** torch.arange(land.n - 1, -1, -1))).sum(1)
    freq = torch.bincount(idx, minlength=table.shape[0]).double() / S.shape[0]
    assert float((freq - p).abs().max()) < 5 * math.sqrt(0.25 / S.shape[0])


def test_refusals():
    model = _model(NET, f="tanh", bias="on", **SHAPES)
    with pytest.raises(QnncError) as e:
        Landscape(model, _x(5, 0), flip=0.5)
    assert e.value.diagnostics[0].code == "Q0761"
    land = Landscape(model, _x(5, 0))
    for bad in (torch.ones(3, 6), torch.zeros(2, 7)):
        with pytest.raises(QnncError) as e:
            land.energy(bad)
        assert e.value.diagnostics[0].code == "Q0763"
    with pytest.raises(QnncError) as e:
        land.find_minima(starts=0)
    assert e.value.diagnostics[0].code == "Q0761"
    between = NET.format(f="tanh", bias="on", **SHAPES).replace(
        "layer h2[4] = rotation(a, f = tanh)", "layer c[4] = tanh of dense(h1, bias = off)\n"
        "    layer h2[4] = rotation(a, f = tanh)").replace("dense(h1, bias = off, init = normal(0, 1.5 / sqrt",
                                                          "dense(c, bias = off, init = normal(0, 1.5 / sqrt")
    with pytest.raises(QnncError) as e:
        Landscape(QNNModel(parse_program(between, "b.qnn"), dtype=torch.float64), _x(5, 0))
    assert e.value.diagnostics[0].code == "Q0760"
    weak = ("import neurons from stdlib\nnetwork w {\n    input x[3]\n"
            "    layer h1[2] = weak(0.5, 1.0) of dense(x, bias = off)\n"
            "    layer h2[2] = weak(0.5, 1.0) of dense(h1, bias = off)\n"
            "    output y[2] = linear of dense(h2, bias = off)\n}\n")
    with pytest.raises(QnncError) as e:
        Landscape(QNNModel(parse_program(weak, "w.qnn"), dtype=torch.float64), _x(3, 0))
    assert e.value.diagnostics[0].code == "Q0760"


# --------------------------------------------------------------------------- the command

CLI_NET = """import neurons from stdlib

param a: real in [0, inf] = 0.5

network tiny {
    input x[28, 28] with scale(1 / 255), pool(7)
    layer h1[4] = rotation(a, f = clip) of dense(x, bias = off, init = normal(0, 2 / sqrt(fan_in)))
    layer h2[5] = rotation(a, f = clip) of dense(h1, bias = off, init = normal(0, 1 / sqrt(fan_in)))
    output y[10] = linear of dense(h2, bias = off, init = normal(0, 1 / sqrt(fan_in)))
}
"""


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tiny.qnn").write_text(CLI_NET)
    return "tiny.qnn"


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; regenerate with QNNC_UPDATE_GOLDEN=1 and read it"


@pytest.mark.parametrize("name, flags", [("exhaustive.out", ["--image", "3"]),
                                         ("descent.out", ["--image", "3", "--exhaustive-limit", "0",
                                                          "--starts", "64", "--flip", "0.02", "--top", "5"])])
def test_golden_text_report(tiny, name, flags):
    rc, out, err = run_cli(["landscape", tiny, *flags])
    assert rc == 0, err
    _golden(name, out)


def test_json_envelope_validates_and_matches_the_library(tiny):
    rc, out, err = run_cli(["landscape", tiny, "--image", "3", "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    schema = json.loads(files("qnnc.runtime.schemas").joinpath("envelope.schema.json").read_text())
    jsonschema.validate(doc, schema)
    r = doc["result"]
    assert doc["command"] == "landscape" and r["mode"] == "exhaustive" and r["certified"]
    from qnnc.compiler import load_program
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.weights import load_weights

    program = load_program(tiny)
    net = program.network()
    tensors, _, _ = load_weights(program, net, None, 0)
    ds = load_dataset("mnist.test")
    land = landscape_of(program, net, tensors, preprocess(ds.images[3:4], net.input)[0])
    res = land.find_minima()
    assert [m["energy"] for m in r["minima"]] == pytest.approx([m.energy for m in res.minima], abs=1e-12)
    assert r["image_label"] == int(ds.labels[3])


@pytest.mark.parametrize("argv, code", [
    (["--image", "10000"], "Q0762"),
    (["--flip", "0.5"], "Q0407"),
    (["--flip", "-0.1"], "Q0407"),
    (["--starts", "0"], "Q0407"),
])
def test_cli_refusals(tiny, argv, code):
    rc, out, err = run_cli(["landscape", tiny, *argv])
    assert rc == 2 and f"error[{code}]" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_a_layered_run_takes_one_input_per_shot():
    """`host.shot_inputs`: the landscape study runs many images in one `layered` run. At
    a = 0 every outcome is certain, so each shot must give its own image's pattern."""
    pytest.importorskip("qiskit_aer")
    import dataclasses

    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.weights import load_weights

    program = parse_program(CLI_NET.replace("= 0.5", "= 0"), "tiny.qnn")
    net = program.network()
    tensors, _, _ = load_weights(program, net, None, 0)
    X = preprocess(load_dataset("mnist.test").images[:3], net.input).astype(np.float64)
    compiled = compile_network(program, None, tensors, X[0], target="ibm", strategy="layered", seed=0)
    xs = np.repeat(X, 2, axis=0)[[0, 2, 4, 1, 3, 5]]  # images 0, 1, 2, 0, 1, 2
    batch = dataclasses.replace(compiled, spec=dataclasses.replace(compiled.spec, x=xs))
    got = run_compiled(batch, 6, simulator="ideal", seed=0)
    for i in range(3):
        land = landscape_of(program, net, tensors, X[i])
        want = land.sample(1, torch.Generator().manual_seed(0))[0].numpy()
        assert np.array_equal(got[i], want) and np.array_equal(got[i + 3], want)
    assert not np.array_equal(got[0], got[1]) or not np.array_equal(got[1], got[2])  # the images differ
