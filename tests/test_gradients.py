"""Gradients of the simulator: the straight-through estimator's window, and the exact
expectation's gradient against central finite differences (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ir_builders as B
from qnnc.compiler import ir
from qnnc.runtime.simulator import QNNModel

F64 = torch.float64


# --------------------------------------------------------------------------- straight-through


@pytest.mark.parametrize("window", [1.0, 0.3])
@pytest.mark.parametrize("act", [("rotation", {"a": 0.5}), ("weak", {"a": 0.5, "g": 1.0}), "sign"])
def test_straight_through_is_the_window_indicator(window, act):
    prog = B.network(6, [(7, act), (7, act), (3, "linear")], gradient=ir.Gradient("straight_through", window))
    m = QNNModel(prog, dtype=F64, seed=2)
    x = torch.rand(5, 6, dtype=F64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    S = 4
    # Scale each layer's weights so that its median |z| is the window: by construction a
    # good share of |z| falls on each side of it, whatever weights the seed draws.
    for name in ("h1", "h2"):
        z, _ = m.trace(x, shots=S, generator=torch.Generator().manual_seed(3))[name]
        scale = window / float(z.detach().abs().median())
        m.load_tensors({name: m.tensors()[name] * scale}, strict=False)
    tr = m.trace(x, shots=S, generator=torch.Generator().manual_seed(3))
    for name in ("h1", "h2"):
        z, d = tr[name]
        c = torch.randn(d.shape, dtype=F64, generator=torch.Generator().manual_seed(1))
        (g,) = torch.autograd.grad((c * d).sum(), z, retain_graph=True)
        mask = (z.detach().abs() < window).to(F64)
        want = (c * mask).sum_to_size(z.shape)  # z of h1 is shared by the shots: their gradients add
        assert torch.equal(g, want)
        assert 0 < float(mask.mean()) < 1


def test_straight_through_whole_network_gradient_by_hand():
    """W1's gradient through two hidden layers, written out: the carried state and `last`
    contribute nothing; only the window indicators and the weights do."""
    prog = B.network(4, [(3, ("weak", {"a": 0.4, "g": 0.9})), (3, ("weak", {"a": 0.4, "g": 1.3})), (2, "linear")])
    m = QNNModel(prog, dtype=F64, seed=5)
    x = torch.rand(6, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    tr = m.trace(x, shots=3, generator=torch.Generator().manual_seed(1))
    loss = tr["y"][1].pow(2).sum()
    loss.backward()
    W1, W2, W3 = (m.tensors()[k] for k in ("h1", "h2", "y"))
    z1, d1 = (t.detach() for t in tr["h1"])
    z2, d2 = (t.detach() for t in tr["h2"])
    y = tr["y"][1].detach()
    gy = 2 * y                                          # [S, B, 2]
    gd2 = gy @ W3
    gz2 = gd2 * (z2.abs() < 1)
    gd1 = gz2 @ W2
    gz1 = (gd1 * (z1.abs() < 1)).sum(0)                 # z1 is shared by the shots
    gW1 = gz1.t() @ x
    assert torch.allclose(m.weight["h1"].grad, gW1, atol=1e-12)
    assert torch.allclose(m.weight["h2"].grad, torch.einsum("sbn,sbk->nk", gz2, d1), atol=1e-12)


def test_forward_backward_runs_in_float32_training_step():
    prog = B.network(20, [(16, ("rotation", {"a": 0.5})), (16, ("rotation", {"a": 0.5})), (10, "linear")])
    m = QNNModel(prog)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(64, 20, generator=torch.Generator().manual_seed(0)), torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(0))
    before = m.tensors()
    loss = torch.nn.functional.cross_entropy(m(x, shots=1)[0], y)
    loss.backward()
    opt.step()
    after = m.tensors()
    assert all(not torch.equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------- exact expectation


def flat_params(m: QNNModel):
    return [p for p in m.parameters()]


def check_grads(m: QNNModel, loss_fn, eps=1e-6, rtol=1e-4, directions=3, seed=0):
    """Central finite differences, per coordinate and along random directions."""
    params = flat_params(m)
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p, g in zip(params, grads):
            flat, gflat = p.view(-1), g.reshape(-1)
            for i in range(flat.numel()):
                old = float(flat[i])
                flat[i] = old + eps
                up = float(loss_fn())
                flat[i] = old - eps
                down = float(loss_fn())
                flat[i] = old
                fd = (up - down) / (2 * eps)
                err = abs(fd - float(gflat[i]))
                assert err <= rtol * max(abs(fd), abs(float(gflat[i])), 1e-3), (i, fd, float(gflat[i]))
        for _ in range(directions):
            vs = [torch.randn(p.shape, dtype=p.dtype, generator=gen) for p in params]
            for p, v in zip(params, vs):
                p.add_(eps * v)
            up = float(loss_fn())
            for p, v in zip(params, vs):
                p.sub_(2 * eps * v)
            down = float(loss_fn())
            for p, v in zip(params, vs):
                p.add_(eps * v)
            fd = (up - down) / (2 * eps)
            an = float(sum((g * v).sum() for g, v in zip(grads, vs)))
            assert abs(fd - an) <= rtol * max(abs(fd), abs(an), 1e-3), (fd, an)


NETWORKS = {
    "rotation": lambda: B.network(3, [(3, ("rotation", {"a": 0.7})), (2, ("rotation", {"a": 1.3})), (3, "linear")],
                                  bias=True),
    "weak": lambda: B.network(3, [(2, ("weak", {"a": 0.6, "g": 0.8})), (2, ("weak", {"a": 0.9, "g": 1.2})),
                                  (2, ("weak", {"a": 0.5, "g": math.pi / 2})), (3, "linear")]),
    "user": lambda: B.network(2, [(2, ("probe", {"s": 0.3})), (2, ("rotation", {"a": 0.8})), (2, "tanh"),
                                  (3, "linear")], extra_neurons=[B.probe_neuron()], bias=True),
    "carried_user": lambda: B.network(2, [(2, ("cprobe", {"a": 0.8, "g": 0.6})),
                                          (2, ("cprobe", {"a": 1.1, "g": 1.0})), (3, "linear")],
                                      extra_neurons=[B.carried_probe()]),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_exact_gradient_matches_finite_differences(name):
    prog = NETWORKS[name]()
    m = QNNModel(prog, dtype=F64, seed=3, gradient=ir.Gradient("exact", 1.0))
    x = torch.rand(3, prog.networks[0].input.features, dtype=F64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    y = torch.tensor([0, 2, 1])
    check_grads(m, lambda: m.expected_loss(x, y))
    w = torch.randn(3, 3, dtype=F64, generator=torch.Generator().manual_seed(2))
    check_grads(m, lambda: (m.expected_logits(x) * w).sum())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10 ** 6), widths=st.lists(st.integers(1, 3), min_size=1, max_size=2),
       a=st.floats(0.3, 3.0), g=st.floats(0.2, math.pi / 2), kind=st.sampled_from(["rotation", "weak"]))
def test_exact_gradient_random_networks(seed, widths, a, g, kind):
    if kind == "weak":
        widths = [widths[0]] * len(widths)
        spec = ("weak", {"a": a, "g": g})
    else:
        spec = ("rotation", {"a": a})
    prog = B.network(3, [(w, spec) for w in widths] + [(2, "linear")], bias=bool(seed % 2))
    m = QNNModel(prog, dtype=F64, seed=seed)
    x = torch.rand(2, 3, dtype=F64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    y = torch.tensor([1, 0])
    check_grads(m, lambda: m.expected_loss(x, y), directions=2, seed=seed)


def test_expected_output_distribution_is_a_distribution():
    prog = NETWORKS["weak"]()
    m = QNNModel(prog, dtype=F64)
    x = torch.rand(4, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    dist = m.expected_output_distribution(x)
    assert torch.allclose(dist.sum(-1), torch.ones(4, dtype=F64))
    logits, P = m.exact_branches(x)
    assert torch.allclose(P.sum(0), torch.ones(4, dtype=F64))
    assert logits.shape == (m.branch_count(), 4, 3)


def test_exact_at_a0_is_the_sign_network():
    rng = np.random.default_rng(0)
    q = QNNModel(B.network(4, [(3, ("rotation", {"a": 0.0})), (3, ("rotation", {"a": 0.0})), (2, "linear")]),
                 dtype=F64)
    c = QNNModel(B.network(4, [(3, "sign"), (3, "sign"), (2, "linear")]), dtype=F64)
    c.load_tensors(q.tensors())
    x = torch.from_numpy(rng.uniform(-1, 1, (5, 4)))
    _, P = q.exact_branches(x)
    # One certain branch per input (the others get cos(pi/2)^2 ~ 1e-33, floating point's zero).
    assert torch.all((P < 1e-12) | (P > 1 - 1e-12)) and torch.all((P > 0.5).sum(0) == 1)
    assert torch.allclose(q.expected_logits(x), c.expected_logits(x), atol=1e-12)


# --------------------------------------------------------------------------- dynamic programme over layers


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=st.integers(1, 4), hidden=st.integers(1, 3), seed=st.integers(0, 10_000),
       prefix=st.booleans(), suffix=st.sampled_from(["linear", "tanh", "sign"]))
def test_layer_dp_equals_the_full_enumeration(w, hidden, seed, prefix, suffix):
    """expected_logits / expected_loss by the dynamic programme over layers (L·4^w)
    equal the sums over all 2^{wL} joint branches of `exact_branches`, with gradients."""
    layers = ([(3, "sign")] if prefix else []) + [(w, ("rotation", {"a": 0.6}))] * hidden
    layers += ([(2, suffix)] if suffix != "linear" else []) + [(3, "linear")]
    m = QNNModel(B.network(4, layers), dtype=F64, seed=seed)
    assert m._dp_layers() is not None
    x = torch.rand(3, 4, dtype=F64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    y = torch.tensor([0, 2, 1])
    got = m.expected_loss(x, y)
    g_got = torch.autograd.grad(got, list(m.parameters()))
    logits, P = m.exact_branches(x)
    K = logits.shape[0]
    ce = torch.nn.functional.cross_entropy(logits.reshape(K * 3, 3), y.repeat(K), reduction="none").view(K, 3)
    want = (P * ce).sum(0).mean()
    g_want = torch.autograd.grad(want, list(m.parameters()))
    assert torch.allclose(got, want, atol=1e-12)
    for a, b in zip(g_got, g_want):
        assert torch.allclose(a, b, atol=1e-11)
    assert torch.allclose(m.expected_logits(x), (P.unsqueeze(-1) * logits).sum(0), atol=1e-12)


def test_layer_dp_is_not_used_for_carried_chains():
    m = QNNModel(B.network(4, [(3, ("weak", {"a": 0.5, "g": 1.0})), (3, ("weak", {"a": 0.5, "g": 1.0})),
                               (2, "linear")]), dtype=F64)
    assert m._dp_layers() is None


def test_fast_branch_equals_the_generic_amplitudes():
    from qnnc.runtime.neuron_kernel import NeuronKernel

    prog = B.network(4, [(3, ("rotation", {"a": 0.5})), (2, "linear")])
    act = prog.networks[0].layers[0].activation
    nd = prog.neuron(act.neuron)
    fast = NeuronKernel(nd, {b.name: b.value for b in act.args})
    slow = NeuronKernel(nd, {b.name: b.value for b in act.args}, force_generic=True)
    assert fast.fast_ry and not slow.fast_ry
    z = torch.linspace(-2, 2, 41, dtype=F64).reshape(41, 1).expand(41, 3)
    a, b = fast.branch(z), slow.branch(z)
    assert a.emit == b.emit
    assert torch.allclose(a.probs, b.probs, atol=1e-15)


@pytest.mark.parametrize("f", ["tanh", "clip"])
@pytest.mark.parametrize("bias", [False, True])
def test_written_out_dp_gradient_equals_autograd(f, bias):
    """The hand-written backward of runtime/exact_dp.py against autograd through the
    same dynamic programme, clip's saturation included (weights scaled so that some
    |z/a| exceed 1)."""
    prog = B.network(4, [(3, ("rotation", {"a": 0.4, "f": f})), (4, ("rotation", {"a": 0.3, "f": f})),
                         (3, ("rotation", {"a": 0.5, "f": f})), (2, "linear")], bias=bias)
    m = QNNModel(prog, dtype=F64, seed=11)
    m.load_tensors({k: v * 2 for k, v in m.tensors().items()})
    x = (torch.rand(5, 4, dtype=F64, generator=torch.Generator().manual_seed(3)) * 2 - 1).requires_grad_()
    out = {}
    for engine in ("numba", "torch", "autograd"):  # runtime/fused.py, runtime/exact_dp.py, autograd
        m._dp_fused_cache = {} if engine == "numba" else None
        m._dp_analytic_cache = engine != "autograd"
        for readout in (True, False):
            if readout:
                e = m.expected_logits(x)
            else:
                logits, P = m._exact_dp(x)  # P_L, no readout
                e = torch.cat([(P.unsqueeze(-1) * logits).sum(0), P.t()], -1)
            c = torch.linspace(-1, 1, e.numel(), dtype=F64).view_as(e)
            grads = torch.autograd.grad((c * e).sum(), [x] + list(m.parameters()))
            out[engine, readout] = (e.detach(), grads)
        if engine == "numba":
            assert m._dp_fused_cache[True] is not None and m._dp_fused_cache[False] is not None
    for engine in ("numba", "torch"):
        for readout in (True, False):
            assert torch.allclose(out[engine, readout][0], out["autograd", readout][0], atol=1e-14)
            for a, b in zip(out[engine, readout][1], out["autograd", readout][1]):
                assert torch.allclose(a, b, atol=1e-12)


def test_exact_dp_of_a_nan_input_is_q0331():
    from qnnc.compiler.diagnostics import QnncError

    m = QNNModel(B.network(4, [(3, ("rotation", {"a": 0.4})), (2, "linear")]), dtype=F64)
    x = torch.zeros(2, 4, dtype=F64)
    x[1, 2] = float("nan")
    with pytest.raises(QnncError) as e:
        m.expected_logits(x)
    assert e.value.diagnostics[0].code == "Q0331"
