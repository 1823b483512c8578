"""Measured gradients (`qnnc.runtime.gradients`): the parameter-shift and score-function
estimators are unbiased, checked against the exact branch-enumeration gradient (autograd
through `QNNModel.expected_loss`) on narrow networks of models A and B, tanh and clip,
a > 0; on the torch simulator in shot mode and on the compiled circuits with Aer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from qnnc.compiler import parse_program
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.gradients import (CircuitExecutor, estimate, exact_gradient, make_executor,
                                    view_model)
from qnnc.runtime.weights import initial_weights

SRC = """
import neurons from stdlib
network n {{
    input x[{n_in}]
    layer h1[{w1}] = {n1} of dense(x, bias = on, init = normal(0, {std}))
    layer h2[{w2}] = {n2} of dense(h1, bias = off, init = normal(0, {std}))
    output y[3] = linear of dense(h2, bias = on, init = normal(0, 1))
    readout argmax, vote over 5 shots
}}
"""


def _neuron(model: str, a: float, f: str, g: float, last: bool) -> str:
    if model == "A":
        return f"rotation(a = {a}, f = {f})"
    return f"weak(a = {a}, g = {'pi / 2' if last else g}, f = {f})"


def _case(model, a1, a2, f1, f2, g, w, std, seed, images=2):
    w2 = w if model == "B" else max(1, w - 1)  # carried layers have equal widths
    src = SRC.format(n_in=3, w1=w, w2=w2, n1=_neuron(model, a1, f1, g, False),
                     n2=_neuron(model, a2, f2, g, True), std=std)
    prog = parse_program(src)
    net = prog.networks[0]
    t = initial_weights(net, seed)
    rng = np.random.default_rng(seed)
    for k in t:
        if k.endswith(".bias"):
            t[k] = rng.normal(0, 0.5, size=t[k].shape)
    x = rng.normal(size=(images, 3))
    y = rng.integers(0, 3, size=images)
    return prog, net, t, x, y


def _exact(prog, net, t, x, y):
    m = view_model(prog, net)
    m.load_tensors({k: torch.as_tensor(v) for k, v in t.items()})
    return exact_gradient(m, torch.as_tensor(x), torch.as_tensor(y))


def _assert_within(est, exact, k=4.0):
    assert set(est.grads) == set(exact)
    for name, g in exact.items():
        diff = (est.grads[name] - g).abs()
        se = est.stderr[name]
        # A weight whose every sample is 0 (a saturated clip) has se = 0: then it is exact.
        # The absolute 1e-6 admits gradients carried by events rarer than the shots can see
        # (a saturated tanh: P(outcome) ~ 1e-8), whose sample variance is 0 too.
        bad = diff > k * se + 1e-6
        assert not bool(bad.any()), (name, g, est.grads[name], se)


cases = st.tuples(st.sampled_from(["A", "B"]), st.sampled_from([0.3, 0.8, 1.5]), st.sampled_from([0.5, 2.0]),
                  st.sampled_from(["tanh", "clip"]), st.sampled_from(["tanh", "clip"]),
                  st.sampled_from([0.6, 1.2]), st.integers(1, 3), st.sampled_from([0.5, 1.0]),
                  st.integers(0, 1000))


@settings(max_examples=12, deadline=None, derandomize=True)
@given(cases)
def test_parameter_shift_is_unbiased_on_the_simulator(case):
    prog, net, t, x, y = _case(*case)
    ex = make_executor("sim", prog, net, t, seed=case[-1])
    est = estimate(ex, prog, net, t, x, y, shots=3000)
    _assert_within(est, _exact(prog, net, t, x, y))
    assert est.circuits == 0 and est.images == 2
    assert est.variants == 1 + 2 * (len(t["h1"]) + len(t["h2"]))


# The score function's samples are heavy-tailed where a neuron saturates: a gradient
# carried by an outcome of probability 1e-5 is unseen in 3000 shots and its sample
# variance is 0, so a standard-error test says nothing there. It is tested where the
# neurons do not saturate (a >= 0.8, weights of std 0.5); the parameter shift moves
# such a neuron to P = 1/2 and sees every case above (docs/hardware-in-the-loop.md).
score_cases = st.tuples(st.sampled_from(["A", "B"]), st.sampled_from([0.8, 1.5]), st.sampled_from([0.8, 2.0]),
                        st.sampled_from(["tanh", "clip"]), st.sampled_from(["tanh", "clip"]),
                        st.sampled_from([0.6, 1.2]), st.integers(1, 3), st.just(0.5), st.integers(0, 1000))


@settings(max_examples=8, deadline=None, derandomize=True)
@given(score_cases)
def test_score_function_is_unbiased_on_the_simulator(case):
    prog, net, t, x, y = _case(*case)
    ex = make_executor("sim", prog, net, t, seed=case[-1])
    est = estimate(ex, prog, net, t, x, y, shots=3000, estimator="score")
    _assert_within(est, _exact(prog, net, t, x, y))
    assert est.variants == 1


def test_the_estimate_detects_a_wrong_gradient():
    """The check can fail: the exact gradient of a different network is rejected."""
    prog, net, t, x, y = _case("A", 0.8, 0.8, "tanh", "tanh", 1.0, 2, 1.0, 5)
    ex = make_executor("sim", prog, net, t, seed=1)
    est = estimate(ex, prog, net, t, x, y, shots=3000)
    t2 = dict(t, h1=t["h1"] * 1.3)
    with pytest.raises(AssertionError):
        _assert_within(est, _exact(prog, net, t2, x, y))


def test_standard_error_falls_like_one_over_root_shots():
    prog, net, t, x, y = _case("A", 0.8, 0.8, "tanh", "tanh", 1.0, 2, 1.0, 7)
    se = []
    for shots in (400, 6400):
        est = estimate(make_executor("sim", prog, net, t, seed=3), prog, net, t, x, y, shots=shots)
        se.append(float(est.stderr["h1"].mean()))
    assert 2.5 < se[0] / se[1] < 6.5  # sqrt(16) = 4


@pytest.mark.parametrize("model, strategy", [("A", "dynamic")])
def test_parameter_shift_on_aer_circuits(model, strategy):
    _aer_case(model, strategy, shots=1500)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["A", "B"])
@pytest.mark.parametrize("strategy", ["dynamic", "layered", "deferred"])
def test_parameter_shift_on_aer_circuits_every_strategy(model, strategy):
    _aer_case(model, strategy, shots=3000)


def _aer_case(model, strategy, shots):
    pytest.importorskip("qiskit_aer")
    prog, net, t, x, y = _case(model, 0.8, 1.5, "tanh", "clip", 1.0, 2, 1.0, 11, images=1)
    ex = CircuitExecutor(prog, net, t, target="ibm", strategy=strategy, simulator="ideal", seed=2)
    est = estimate(ex, prog, net, t, x, y, shots=shots)
    _assert_within(est, _exact(prog, net, t, x, y))
    assert est.circuits >= est.variants


def test_refusals():
    prog = parse_program("""
import neurons from stdlib
network n {
    input x[2]
    layer h1[2] = tanh of dense(x, bias = off, init = normal(0, 1))
    output y[2] = linear of dense(h1, bias = off, init = normal(0, 1))
    readout argmax, vote over 5 shots
}
""")
    net = prog.networks[0]
    t = initial_weights(net, 0)
    ex = make_executor("sim", prog, net, t)
    with pytest.raises(QnncError) as e:
        estimate(ex, prog, net, t, np.zeros((1, 2)), [0], shots=10)
    assert e.value.diagnostics[0].code == "Q0720"
    prog, net, t, x, y = _case("A", 0.8, 0.8, "tanh", "tanh", 1.0, 2, 1.0, 5)
    ex = make_executor("sim", prog, net, t)
    for kw, code in [(dict(shots=1), "Q0722"), (dict(shots=10, estimator="spsa"), "Q0722")]:
        with pytest.raises(QnncError) as e:
            estimate(ex, prog, net, t, x, y, **kw)
        assert e.value.diagnostics[0].code == code
    with pytest.raises(QnncError) as e:
        estimate(ex, prog, net, t, x, [0, 7], shots=10)
    assert e.value.diagnostics[0].code == "Q0724"
    with pytest.raises(QnncError) as e:
        make_executor("qpu", prog, net, t)
    assert e.value.diagnostics[0].code == "Q0723"


@pytest.mark.parametrize("model", ["A", pytest.param("B", marks=pytest.mark.slow)])
def test_parameter_shift_is_unbiased_under_device_noise(model):
    """Under FakeBrisbane's noise (the noisy torch simulator) the angle still enters one
    rz between fixed channels, so the shift rule stays exact: the estimate matches the
    noisy model's exact gradient, and is far from the ideal one."""
    pytest.importorskip("qiskit_ibm_runtime")
    from qnnc.runtime.noise import parse

    prog, net, t, x, y = _case(model, 0.7, 0.9, "tanh", "clip", 1.0, 2, 1.0, 21)
    noise = parse("ibm:fake_brisbane", prog, net)
    m = view_model(prog, net, noise)
    m.load_tensors({k: torch.as_tensor(v) for k, v in t.items()})
    exact_noisy = exact_gradient(m, torch.as_tensor(x), torch.as_tensor(y))
    ex = make_executor("sim", prog, net, t, seed=4, noise=noise)
    est = estimate(ex, prog, net, t, x, y, shots=4000)
    _assert_within(est, exact_noisy)
    ideal = _exact(prog, net, t, x, y)
    with pytest.raises(AssertionError):
        _assert_within(est, ideal)


@pytest.mark.slow
def test_parameter_shift_on_noisy_aer_layered_matches_the_noisy_exact_gradient():
    """The batched Aer path (every image and variant in one Aer call per layer, noise
    model cut to the circuits' qubits) under FakeBrisbane's noise: the estimate matches
    the fast executor's exact gradient under the same noise model."""
    pytest.importorskip("qiskit_aer")
    from qnnc.runtime.noise import parse

    prog, net, t, x, y = _case("A", 0.7, 0.9, "tanh", "clip", 1.0, 2, 1.0, 21)
    noise = parse("ibm:fake_brisbane", prog, net)
    m = view_model(prog, net, noise)
    m.load_tensors({k: torch.as_tensor(v) for k, v in t.items()})
    exact_noisy = exact_gradient(m, torch.as_tensor(x), torch.as_tensor(y))
    ex = CircuitExecutor(prog, net, t, target="ibm", strategy="layered", simulator="noisy", seed=6)
    est = estimate(ex, prog, net, t, x, y, shots=3000)
    _assert_within(est, exact_noisy)


def test_a_subset_of_layers_runs_only_its_variants():
    """`layers=`: only those layers' gradients, from only their shift variants; they are
    the full estimate's (same executor seed: the same unshifted run) and still unbiased."""
    prog, net, t, x, y = _case("A", 0.8, 1.5, "tanh", "clip", 1.0, 3, 1.0, 5)
    full = estimate(make_executor("sim", prog, net, t, seed=1), prog, net, t, x, y, shots=3000)
    part = estimate(make_executor("sim", prog, net, t, seed=1), prog, net, t, x, y, shots=3000,
                    layers=["h2", "y"])
    assert set(part.grads) == {k for k in full.grads if k.split(".")[0] in ("h2", "y")}
    assert part.variants == 1 + 2 * t["h2"].shape[0] < full.variants
    assert torch.equal(part.grads["y"], full.grads["y"])  # the readout's, from the same unshifted run
    exact = _exact(prog, net, t, x, y)
    for name in part.grads:
        assert bool(((part.grads[name] - exact[name]).abs() <= 4 * part.stderr[name] + 1e-6).all()), name
    with pytest.raises(QnncError) as e:
        estimate(make_executor("sim", prog, net, t, seed=1), prog, net, t, x, y, shots=10, layers=["h9"])
    assert e.value.diagnostics[0].code == "Q0722"
