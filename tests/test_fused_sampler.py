"""The fused numba sampler's fast paths against its exact ones (runtime/fused.py,
runtime/fused_kernels.py): float32 decisions from `cos32` with an exact fallback near the
threshold (`decide_f32`), rows in blocks through all layers, outcomes packed into the
next layer's table patterns. Each fast path must give the same samples as the exact one,
bit for bit; tests/test_simulator.py compares the sampler with the general torch path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ir_builders as B
from qnnc.runtime import counter_rng
from qnnc.runtime.simulator import QNNModel

pytestmark = pytest.mark.skipif(not counter_rng.numba_enabled(), reason="numba not installed")


def _kernels():
    from qnnc.runtime import fused_kernels as K
    return K


def test_cos32_error_bound_on_a_dense_grid():
    """decide_f32's margin rests on |cos32 - cos| < 1e-6 for |θ| <= COS32_MAX_ARG."""
    K = _kernels()
    x = np.concatenate([np.linspace(-K.COS32_MAX_ARG, K.COS32_MAX_ARG, 2_000_001),
                        np.linspace(0, np.pi, 100_001)]).astype(np.float32)
    got = np.array([K.cos32(v) for v in x[::97]], dtype=np.float64)  # the scalar, as inlined
    want = np.cos(x[::97].astype(np.float64))
    assert np.max(np.abs(got - want)) < 1e-6
    S = x.reshape(1, -1)
    tmp = np.empty(x.size, np.float32)
    fbuf = np.full(x.size + 2, 1.5, np.float32)
    neg = np.empty(x.size, np.uint8)
    # with every value unsure (margin above any |x|) the kernel takes the exact path; here
    # only the first loop matters: x = fbuf + (-3/2 + cos32/2) = cos32/2 where |θ| <= max
    K.decide_f32(S, x.size, np.float32(0.5), np.float32(-1.5), fbuf, neg, 2.0 ** -16, tmp)
    ok = np.abs(x) <= K.COS32_MAX_ARG
    assert np.max(np.abs(2 * tmp[ok].astype(np.float64) - np.cos(x[ok].astype(np.float64)))) < 1e-6
    assert 2.0 ** -16 > 7 * (1e-6 / 2 + 2e-7)  # the margin's factor over the bound (see DECIDE_MARGIN)


@pytest.mark.parametrize("spread", [3.0, 200.0])
def test_decide_f32_equals_the_exact_thresholds(spread):
    """Random values at, and a few ulps around, each exact threshold (where the fallback
    decides), and angles beyond COS32_MAX_ARG (spread 200: libm's cos for the layer, as
    `thresholds`): the same outcomes as the exact thresholds."""
    K = _kernels()
    rng = np.random.default_rng(7)
    M = 4000
    theta = rng.uniform(-spread, spread, M).astype(np.float32)
    S = theta.reshape(1, M).copy()
    half, m15 = np.float32(0.5), np.float32(-1.5)
    t = np.empty(M, np.float32)
    K.thresholds(S, M, half, m15, t)
    # random values on the grid of float32 uniform_12 values, within +-3 ulps of -t for
    # half of them, anywhere in [1, 2) for the rest
    u = -t.astype(np.float64)
    k = rng.integers(-3, 4, M)
    u = np.where(np.arange(M) % 2 == 0, u + k * 2.0 ** -23, rng.uniform(1, 2, M))
    u = np.clip(np.round((u - 1) * 2 ** 23) / 2 ** 23 + 1, 1, 2 - 2 ** -23).astype(np.float32)
    fbuf = np.zeros(M + 2, np.float32)
    fbuf[:M] = u
    want = (u + t < 0).astype(np.uint8)
    neg = np.empty(M, np.uint8)
    K.decide_f32(S, M, half, m15, fbuf, neg, K.DECIDE_MARGIN, np.empty(M, np.float32))
    assert np.array_equal(neg, want)
    assert want[::2].min() == 0 and want[::2].max() == 1  # both sides of the thresholds were hit


def _model(widths, f, dtype, bias):
    layers = [(w, ("rotation", {"a": a, "f": f})) if w > 0 else (-w, "tanh")
              for w, a in zip(widths, (0.5, 0.3, 0.7, 0.4, 0.6))]
    prog = B.network(11, layers + [(3, "linear")], bias=bias)
    m = QNNModel(prog, seed=3, dtype=dtype)
    if bias:
        m.load_tensors({k: torch.full_like(v, 0.1) if k.endswith(".bias") else v for k, v in m.tensors().items()})
    return m


@pytest.mark.parametrize("widths", [(16, 16, 16), (10, 9, -7, 12), (8, 24, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_paths_give_the_exact_paths_samples(widths, dtype):
    """Blocks of 2, 6 or the default number of rows, the float32 decisions with their
    margin or without (every threshold exact), with and without pattern tables (the first
    call of a small batch has none): the same values, bit for bit. Widths that are not a
    multiple of 8 take the bit-by-bit packing; a tanh layer breaks the chain of ±1 inputs."""
    x = torch.rand(23, 11, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1
    runs = []
    for block, margin in ((None, None), (2, None), (6, 0.0), (None, 0.0), (None, 0.25)):
        m = _model(widths, "clip", dtype, bias=True)
        fs = m._fused_sampler()
        assert fs is not None
        if block is not None:
            fs.block = block
        if margin is not None:
            fs.margin = margin  # 0: exact thresholds; 0.25: most decisions fall back
        with torch.no_grad():
            runs.append([m(x, shots=7, generator=torch.Generator().manual_seed(c)) for c in range(3)])
        assert fs._packed[2]  # the third call used the tables
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b)


def test_fused_sampler_follows_weight_updates():
    """The cached transposed first layer and packed tables follow in-place updates (an
    optimiser step) and replaced parameters: samples equal a fresh model's with the new
    weights."""
    m = _model((16, 16), "tanh", torch.float32, bias=False)
    x = torch.rand(5, 11, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for _ in range(3):
            m(x, shots=4)
        for p in m.parameters():
            p.mul_(-0.5)
        got = m(x, shots=4, generator=torch.Generator().manual_seed(9))
    fresh = _model((16, 16), "tanh", torch.float32, bias=False)
    fresh.load_tensors(m.tensors())
    with torch.no_grad():
        want = fresh(x, shots=4, generator=torch.Generator().manual_seed(9))
    assert torch.equal(got, want)


def test_the_pass_entropy_is_torchs_randint_draw():
    """`_entropy_words` (the buffer the fused sampler reads) and `_entropy` (its list) are
    one draw: the values torch.randint(0, 2**62, (2,)) gives for the same generator state,
    so seeds and checkpoints reproduce the passes they did before."""
    from qnnc.runtime.random_fields import _entropy, _entropy_words

    a, b, c = (torch.Generator().manual_seed(11) for _ in range(3))
    for _ in range(4):
        want = torch.randint(0, 2 ** 62, (2,), generator=a, dtype=torch.int64).tolist()
        assert _entropy(b) == want
        assert _entropy_words(c).tolist() == want
