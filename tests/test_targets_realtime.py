"""The `dynamic` strategy with real-time classical arithmetic (Quantinuum): a neuron's
angle computed during the shot from the previous layer's bits, with the weights on an
integer grid (`weight_bits`).

- exactness: the neutral circuit's exact distribution (real-time ops evaluated in
  Python integers) equals the exact distribution of the quantised network;
- differential: samples of the compiled H2-1 circuit on the local emulator (H2-1LE,
  pytket-pecos) match that distribution within the total-variation bound;
- property: the register the emulator computes equals clip(Z, -A, A) + A (or the sign
  bit) computed in Python, for random integer weights and bit patterns;
- the 784-16-16-16-10 hardware network compiles to one H2-1 circuit;
- refusals, as golden diagnostics (`QNNC_UPDATE_GOLDEN=1` regenerates them)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from ir_builders_targets import (NEURONS, chain_network, check_refusal_golden, emitted_distribution, example,
                                 max_abs_diff, random_weights, with_random_bias)
from qnnc.compiler import ir
from qnnc.compiler.diagnostics import QnncError, render_all
from qnnc.runtime.targets import compile_network, exact_distribution, resolve, run_compiled
from qnnc.runtime.targets.network import tv_bound, tv_distance

pytest.importorskip("pytket.extensions.quantinuum")
# The local emulator (extra `quantinuum-emulator`, part of `dev`) runs ClExpr; Aer cannot.
needs_emulator = pytest.mark.skipif(importlib.util.find_spec("pytket_pecos") is None,
                                    reason="pytket-pecos (qnnc[quantinuum-emulator]) not installed")

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "targets" / "diagnostics"
UPDATE = os.environ.get("QNNC_UPDATE_GOLDEN") == "1"
SHOTS = 3000
BITS = 3

# (neuron, widths, a): clip with a > 0 and sign (a = 0), rotation and weak neurons
CASES = [("rotation", (3, 3, 2), 0.4), ("rotation", (3, 4, 2), 0.0),
         ("weak", (3, 3, 3), 0.5), ("weak", (2, 2, 2), 0.0)]


def _case(neuron, widths, a, seed=1):
    args = {"a": a, "f": "clip"} if neuron == "rotation" else {"a": a, "g": 0.9, "f": "clip"}
    net = chain_network(3, list(widths), neuron, args, 2)
    w = random_weights(net, seed)
    rng = np.random.default_rng(seed + 1)
    net = with_random_bias(net, w, rng)
    x = rng.uniform(-1, 1, 3)
    return net, w, x


def _compile(net, w, x, **kw):
    # max_table_width=0 forces every non-affine angle onto the real-time path
    return compile_network(net, NEURONS, w, x, target="quantinuum", strategy="dynamic",
                           max_table_width=0, weight_bits=BITS, **kw)


@pytest.mark.parametrize("neuron,widths,a", CASES)
def test_neutral_circuit_is_the_quantised_network(neuron, widths, a):
    net, w, x = _case(neuron, widths, a)
    compiled = _compile(net, w, x)
    assert "real-time" in " ".join(compiled.lowered.layer_realisation.values())
    (circ,) = compiled.circuits
    assert any(o.name == "assign" for o in circ.ops)
    spec = resolve(net, NEURONS, w, x, weight_bits=BITS)
    assert all(h.quantised is not None for h in spec.hidden[1:])
    assert max_abs_diff(emitted_distribution(circ, compiled.spec), exact_distribution(spec)) < 1e-9


@needs_emulator
@pytest.mark.parametrize("neuron,widths,a", CASES)
def test_sampled_on_emulator_matches_quantised_exact(neuron, widths, a):
    net, w, x = _case(neuron, widths, a)
    compiled = _compile(net, w, x)
    assert compiled.native.compiled and len(compiled.circuits) == 1
    exact = exact_distribution(resolve(net, NEURONS, w, x, weight_bits=BITS))
    out = run_compiled(compiled, SHOTS, "ideal", seed=7)
    support = sum(1 for p in exact.values() if p > 0)
    tv = tv_distance(out, exact)
    assert tv <= tv_bound(SHOTS, support + 1), f"TV {tv:.4f} for {neuron} {widths} a={a}"


def test_quantisation_is_reported_and_changes_only_later_layers():
    net, w, x = _case("rotation", (3, 3, 2), 0.4)
    compiled = _compile(net, w, x)
    q = compiled.summary["quantisation"]
    assert q["weight_bits"] == BITS and set(q["layers"]) == {"h2", "h3"}
    assert q["layers"]["h2"]["grid"] == pytest.approx(0.4 / 2 ** BITS)
    assert 0 < q["layers"]["h2"]["max_abs_change"] <= 0.4 / 2 ** (BITS + 1) + 1e-12
    assert any("quantised" in n for n in compiled.summary["notes"])
    spec = resolve(net, NEURONS, w, x, weight_bits=BITS)
    assert np.array_equal(spec.hidden[0].weight, w["h1"])  # the first layer's angle is a constant
    assert np.allclose(spec.hidden[1].weight / (0.4 / 2 ** BITS),
                       np.rint(spec.hidden[1].weight / (0.4 / 2 ** BITS)), atol=1e-9)


# --------------------------------------------------------------------------- property


def _register_network(k, kb, a, bits):
    """input -> h1 (sign neurons that copy a bit pattern) -> h2 (clip, or sign at a = 0)
    with integer weights k and biases kb on the grid of `bits`."""
    n, width = k.shape
    net = chain_network(width, [width, n], "rotation", [{"a": 0.0, "f": "clip"}, {"a": a, "f": "clip"}],
                        None, "reg")
    net = ir.Network(net.name, net.input, (net.layers[0], ir.Layer(
        "h2", n, "hidden", ir.Dense("h1", True, net.layers[1].dense.init), net.layers[1].activation)),
        net.readout)
    grid = 2.0 ** -bits  # a = 1 (clip) or 0 (sign): exact in floating point
    return net, {"h1": np.eye(width), "h2": k * grid, "h2.bias": kb * grid}


@needs_emulator
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), width=st.integers(1, 5), n=st.integers(1, 3), bits=st.integers(0, 4),
       sign=st.booleans())
def test_emulator_register_equals_python_reference(data, width, n, bits, sign):
    from qnnc.runtime.targets import quantinuum

    k = np.array(data.draw(st.lists(st.lists(st.integers(-40, 40), min_size=width, max_size=width),
                                    min_size=n, max_size=n)), dtype=np.int64)
    kb = np.array(data.draw(st.lists(st.integers(-40, 40), min_size=n, max_size=n)), dtype=np.int64)
    pattern = np.array(data.draw(st.lists(st.integers(0, 1), min_size=width, max_size=width)))
    a = 0.0 if sign else 1.0  # a = 1: the grid 2^-bits is exact in floating point
    net, w = _register_network(k, kb, a, bits)
    x = 1.0 - 2.0 * pattern  # h1 reproduces the pattern (sign neurons, identity weights)
    compiled = compile_network(net, NEURONS, w, x, target="quantinuum", strategy="dynamic",
                               max_table_width=0, weight_bits=bits)
    q = compiled.spec.hidden[1].quantised
    assert q is not None
    (circ,) = compiled.circuits
    ex = quantinuum.executor(compiled.native, compiled.lowered, "ideal", seed=3)
    (shots,) = ex.run(0, None, [2])
    regs = {r.name: r.clbits for r in circ.cregs}
    assert np.array_equal(shots[:, list(regs["h1"])], np.tile(pattern, (2, 1)))
    for i in range(n):
        z = int(q.bias_int[i]) + int(np.sum(q.weight_int[i] * (1 - 2 * pattern)))
        name = f"h2_rt{i}_sign" if sign else f"h2_rt{i}"
        if name not in regs:
            event("neuron realised without arithmetic (its angle is affine in the bits)")
            continue
        event("register compared")
        if sign:
            got = shots[:, regs[name][0]]
            assert np.all(got == int(z >= 0)), (i, z, k[i], kb[i], pattern)
        else:
            half = 2 ** bits
            value = (shots[:, list(regs[name])] << np.arange(len(regs[name]))).sum(1)
            assert np.all(value == min(max(z, -half), half) + half), (i, z, value, k[i], kb[i], pattern)


def test_wide_layer_sums_in_chunks_that_stay_in_range():
    """A previous layer of 50 bits (too wide to enumerate) with 50 positive weights: the
    sum is split into chunks of at most 32 terms, and running the classical ops in
    Python integers (each result checked against its register's width) gives
    clip(Z, -A, A) + A for random bit patterns."""
    from qnnc.runtime.targets.circuit import Arith, BitVal, evaluate

    net = chain_network(3, [50, 2], "rotation", [{"a": 0.0, "f": "clip"}, {"a": 1.0, "f": "clip"}],
                        None, "wide")
    w = {"h1": np.zeros((50, 3)), "h2": np.abs(random_weights(net, 3)["h2"]) + 0.01}
    compiled = compile_network(net, NEURONS, w, np.zeros(3), target="quantinuum",
                               strategy="dynamic", weight_bits=BITS)
    assert compiled.lowered.layer_realisation["h2"] == "real-time clip, a/2^3 grid"
    (circ,) = compiled.circuits
    assign = [o for o in circ.ops if o.name == "assign"]

    def n_terms(e) -> int:
        if isinstance(e, BitVal):
            return 1
        return n_terms(e.lhs) + n_terms(e.rhs) if isinstance(e, Arith) else 0

    assert max(n_terms(o.expr) for o in assign) <= 32 < 50
    regs = {r.name: r.clbits for r in circ.cregs}
    q = compiled.spec.hidden[1].quantised
    rng = np.random.default_rng(0)
    for pattern in rng.integers(0, 2, size=(20, 50)):
        bits = [0] * circ.num_clbits
        for j, c in enumerate(regs["h1"]):
            bits[c] = int(pattern[j])
        for o in assign:
            if o.condition and [bits[c] for c in o.condition.clbits] != [1]:
                continue
            value = evaluate(o.expr, bits)
            assert 0 <= value < 1 << len(o.targets)
            for k, c in enumerate(o.targets):
                bits[c] = (value >> k) & 1
        for i in range(2):
            z = int(q.bias_int[i]) + int(np.sum(q.weight_int[i] * (1 - 2 * pattern)))
            got = sum(bits[c] << k for k, c in enumerate(regs[f"h2_rt{i}"]))
            assert got == min(max(z, -2 ** BITS), 2 ** BITS) + 2 ** BITS


# --------------------------------------------------------------------------- hardware network


@needs_emulator
def test_hardware_network_compiles_to_one_h2_circuit():
    from qnnc.runtime.targets.quantinuum import backend

    prog, w, x = example("hardware")
    compiled = compile_network(prog, None, w, x, target="quantinuum", strategy="dynamic",
                               weight_bits=4)
    assert len(compiled.circuits) == 1 and compiled.summary["total"]["circuits"] == 1
    layers = {l["name"]: l["realisation"] for l in compiled.summary["layers"]}
    assert layers == {"h1": "constant", "h2": "real-time clip, a/2^4 grid",
                      "h3": "real-time clip, a/2^4 grid"}
    assert backend("H2-1").valid_circuit(compiled.native.compiled[0])
    assert compiled.summary["circuits"][0]["classical"] > 0
    qasm = compiled.texts["hqslib1"][0]
    assert "h2_rt0 = " in qasm and "if(h2_rt0[0]==1)" in qasm
    assert '"ClExpr"' in compiled.texts["pytket_json"][0]
    # the default choice is now `dynamic`; without --weight-bits it passes over it
    assert compile_network(prog, None, w, x, target="quantinuum", weight_bits=4).strategy == "dynamic"
    plain = compile_network(prog, None, w, x, target="quantinuum")
    assert plain.strategy == "layered" and "[Q0306]" in plain.summary["passed_over"][0]
    out = run_compiled(compiled, 8, "ideal", seed=1)  # 16 qubits: quick on the emulator
    assert out.shape == (8, 48) and set(np.unique(out)) <= {-1, 1}


def test_narrow_tanh_layers_keep_their_table_and_weights():
    net = chain_network(3, [3, 3], "rotation", {"a": 0.5, "f": "tanh"}, 2)
    w, x = random_weights(net, 2), np.array([0.2, -0.4, 0.6])
    compiled = compile_network(net, NEURONS, w, x, target="quantinuum", strategy="dynamic",
                               weight_bits=4)
    assert compiled.lowered.layer_realisation["h2"] in ("table", "affine")
    assert compiled.spec.hidden[1].quantised is None
    assert any("no layer quantised" in n for n in compiled.summary["notes"])


def test_missing_emulator_is_refused(monkeypatch):
    net, w, x = _case("rotation", (3, 3, 2), 0.4)
    compiled = _compile(net, w, x)
    monkeypatch.setitem(sys.modules, "pytket_pecos", None)  # import fails
    with pytest.raises(QnncError) as exc:
        run_compiled(compiled, 10, "ideal", seed=0)
    assert exc.value.diagnostics[0].code == "Q0310"
    assert "pecos" in render_all(exc.value.diagnostics)


# --------------------------------------------------------------------------- refusals


def _refusals():
    def realtime_tanh():
        p, w, x = example("mnist", width=16)
        compile_network(p, None, w, x, target="quantinuum", strategy="dynamic", weight_bits=4)

    def realtime_ibm_lacks_arithmetic():
        p, w, x = example("hardware")
        compile_network(p, None, w, x, target="ibm", strategy="dynamic", weight_bits=4)

    def realtime_needs_weight_bits():
        p, w, x = example("hardware")
        compile_network(p, None, w, x, target="quantinuum", strategy="dynamic")

    def realtime_weight_bits_out_of_range():
        p, w, x = example("hardware")
        compile_network(p, None, w, x, target="quantinuum", strategy="dynamic", weight_bits=31)

    def realtime_weights_too_fine():
        p, w, x = example("hardware", a=1e-9)
        compile_network(p, None, w, x, target="quantinuum", strategy="dynamic", weight_bits=30)

    def realtime_noisy_simulator():
        net, w, x = _case("rotation", (3, 3, 2), 0.4)
        run_compiled(_compile(net, w, x), 10, "noisy")

    return {k: v for k, v in locals().items() if callable(v)}


REFUSALS = _refusals()


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusal_golden(name):
    check_refusal_golden(REFUSALS[name], GOLDEN / f"{name}.txt", UPDATE)
