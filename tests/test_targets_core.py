"""Target-neutral parts of the circuit targets, checked exactly with numpy (no SDK):
angle expressions, neuron branches, the exact reference, and every lowering's
circuit against the exact distribution."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ir_builders_targets import (NEURONS, chain_network, emitted_distribution, max_abs_diff,
                                 random_weights, rotation_def, simulate_neutral, weak_def)
from qnnc.compiler import ir
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets.capabilities import Capabilities, check_strategy, ionq_capabilities
from qnnc.runtime.targets.lowering import Options, lower
from qnnc.runtime.targets.network import (exact_distribution, outcomes_to_codes, resolve, tv_bound,
                                          tv_distance)
from qnnc.compiler.angles import bind_neuron, evaluate
from qnnc.compiler.gates import unitary
from qnnc.runtime.targets.neurons import NeuronModel, sign

X3 = np.array([0.3, -0.2, 0.9])


def caps(**kw) -> Capabilities:
    base = dict(target="test", backend="test", max_qubits=64, supports_mid_circuit_measurement=True,
                supports_feed_forward=True, supports_register_conditions=True, supports_reset=True,
                supports_realtime_arithmetic=False, native_gates=(), noise_kinds=("sx", "cz", "ms"),
                strategies=("dynamic", "layered", "deferred"))
    base.update(kw)
    return Capabilities(**base)


def test_core_imports_no_vendor_sdk():
    import subprocess

    code = ("import sys, qnnc.runtime.targets, qnnc.runtime.targets.lowering, qnnc.runtime.targets.host;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('qiskit','braket','pytket','qiskit_aer')];"
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- expressions


def test_squash_at_a_zero_is_sign():
    nm = NeuronModel(rotation_def(), {"a": 0.0, "f": "tanh"})
    z = np.array([-2.0, -1e-9, 0.0, 1e-9, 3.0])
    (theta,) = nm.angles(z, 1.0)
    # sign(0) = +1 -> theta = 0; negative z -> theta = pi
    assert np.allclose(theta, [math.pi, math.pi, 0.0, 0.0, 0.0])
    assert list(sign(np.array([-1.0, 0.0, 2.0]))) == [-1.0, 1.0, 1.0]


@pytest.mark.parametrize("f", ["tanh", "clip"])
def test_rotation_probability_formula(f):
    a = 0.7
    nm = NeuronModel(rotation_def(), {"a": a, "f": f})
    z = np.linspace(-2, 2, 9)
    fz = np.tanh(z / a) if f == "tanh" else np.clip(z / a, -1, 1)
    p_minus = nm.emit_probability(z, np.ones_like(z))
    assert np.allclose(p_minus, (1 - np.sin(math.pi / 2 * fz)) / 2)


def test_weak_kraus_formula():
    g, a = 1.1, 0.5
    nm = NeuronModel(weak_def(), {"a": a, "g": g, "f": "tanh"})
    z = np.linspace(-1.5, 1.5, 7)
    phi = math.pi / 2 * (1 - np.tanh(z / a))
    # P(m = +1) = [1 + sin g cos phi] / 2 after the rotation from |0>
    assert np.allclose(1 - nm.emit_probability(z, np.ones_like(z)), (1 + math.sin(g) * np.cos(phi)) / 2)
    # the post-measurement state is M_m |psi> normalised (Kraus form)
    gamma = math.pi / 2 - g
    psi = np.stack([np.cos(phi / 2), np.sin(phi / 2)], 1)
    for br in nm.branches(z, np.ones_like(z)):
        m = np.diag([math.cos(gamma / 2), math.sin(gamma / 2)]) if br.emit == 0 else \
            np.diag([math.sin(gamma / 2), math.cos(gamma / 2)])
        want = psi @ m.T
        want /= np.linalg.norm(want, axis=1, keepdims=True)
        ok = br.prob > 0
        assert np.allclose(np.abs(np.sum(np.conj(want) * br.carried_out, 1))[ok], 1.0)


def test_unknown_function_is_refused_with_the_one_semantics_code():
    bad = ir.NeuronDef("bad", "test", (), (ir.Register("q", "qubit"),),
                       (ir.GateOp("ry", ir.Call("frobnicate", (ir.Ref("z"),)), ("q",)),
                        ir.MeasureOp("q", True)))
    with pytest.raises(QnncError) as e:
        NeuronModel(bad, {}).angles(np.zeros(2), np.ones(2))
    assert e.value.diagnostics[0].code == "Q0624"


def _gate_form(expr):
    n = ir.NeuronDef("n", "test", (), (ir.Register("q", "qubit"),),
                     (ir.GateOp("ry", expr, ("q",)), ir.MeasureOp("q", True)))
    return bind_neuron(n, {}).angles[0]


def test_eval_builtin_calls():
    z = np.array([0.5])
    e = ir.Call("clip", (ir.Ref("z"), ir.Const(-0.2), ir.Const(0.2)))
    assert np.allclose(evaluate(_gate_form(e), z, 1.0), 0.2)
    e = ir.Binary("^", ir.Ref("z"), ir.Const(2.0))
    assert np.allclose(evaluate(_gate_form(e), z, 1.0), 0.25)


# --------------------------------------------------------------------------- exact reference


@pytest.mark.parametrize("neuron,args", [("rotation", {"a": 0.7}), ("weak", {"a": 0.4, "g": 0.9})])
def test_exact_distribution_normalised_and_marginal(neuron, args):
    net = chain_network(3, [3, 3, 3], neuron, args, None)
    spec = resolve(net, NEURONS, random_weights(net, 2), X3)
    d = exact_distribution(spec)
    assert abs(sum(d.values()) - 1) < 1e-12
    # first-layer marginals are the neuron's own probabilities
    nm = spec.hidden[0].neuron
    p1 = nm.emit_probability(spec.z1(), np.ones(3))
    for i in range(3):
        assert abs(sum(p for c, p in d.items() if c >> i & 1) - p1[i]) < 1e-12


def test_exact_a_zero_is_the_classical_network():
    net = chain_network(3, [3, 2], "rotation", {"a": 0.0}, None)
    w = random_weights(net, 3)
    d = exact_distribution(resolve(net, NEURONS, w, X3))
    h1 = sign(w["h1"] @ X3)
    h2 = sign(w["h2"] @ h1)
    code = outcomes_to_codes(np.concatenate([h1, h2])[None, :])[0]
    assert d == {int(code): pytest.approx(1.0)}


def test_tv_helpers():
    exact = {0: 0.5, 1: 0.5}
    s = np.array([[1], [1], [-1], [-1]])
    assert tv_distance(s, exact) == 0.0
    assert tv_bound(10_000, 2) < tv_bound(1_000, 2)


# --------------------------------------------------------------------------- lowerings, exactly


def _spec(neuron, args, widths, seed, bias=False):
    net = chain_network(3, widths, neuron, args, None)
    w = random_weights(net, seed)
    if bias:
        rng = np.random.default_rng(seed + 100)
        net = ir.Network(net.name, net.input, tuple(
            ir.Layer(l.name, l.size, l.role, ir.Dense(l.dense.source, True, l.dense.init), l.activation)
            for l in net.layers), net.readout)
        for l in net.layers:
            w[f"{l.name}.bias"] = rng.normal(0, 0.3, l.size)
    return resolve(net, NEURONS, w, X3)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(neuron=st.sampled_from(["rotation", "weak"]), width=st.integers(1, 3), depth=st.integers(1, 3),
       a=st.sampled_from([0.0, 0.3, 1.0, 4.0]), g=st.floats(0.2, math.pi / 2),
       f=st.sampled_from(["tanh", "clip"]), seed=st.integers(0, 1000), bias=st.booleans(),
       strategy=st.sampled_from(["dynamic", "deferred"]))
def test_single_circuit_lowerings_are_exact(neuron, width, depth, a, g, f, seed, bias, strategy):
    args = {"a": a, "f": f} if neuron == "rotation" else {"a": a, "g": g, "f": f}
    spec = _spec(neuron, args, [width] * depth, seed, bias)
    low = lower(strategy, spec, caps(), Options())
    (circ,) = low.circuits
    got = emitted_distribution(circ, spec)
    assert max_abs_diff(got, exact_distribution(spec)) < 1e-9


@pytest.mark.parametrize("strategy", ["dynamic", "deferred"])
def test_lowerings_exact_with_noise_pairs(strategy):
    spec = _spec("rotation", {"a": 0.5}, [3, 3], 5, True)
    for kind in ("sx", "cz", "ms"):
        (circ,) = lower(strategy, spec, caps(), Options(noise_pairs=2, noise_kind=kind)).circuits
        assert max_abs_diff(emitted_distribution(circ, spec), exact_distribution(spec)) < 1e-9


def test_layered_chunk_circuit_with_bound_angles_is_exact():
    """One layered chunk, its parameters bound by the host's rule, against the neuron."""
    from qnnc.runtime.targets import host

    spec = _spec("weak", {"a": 0.6, "g": 1.0}, [2, 2], 4)
    low = lower("layered", spec, caps(max_qubits=8), Options())
    ch = [c for c in low.chunks if c.layer == 1][0]
    nm = spec.hidden[1].neuron
    d_prev = np.array([[1.0, -1.0]])
    z, last = spec.hidden[1].z(d_prev), spec.hidden[1].last(d_prev, 1)
    state = np.array([[[0.6, 0.8], [1.0, 0.0]]], dtype=complex)
    values = np.zeros(len(ch.circuit.params))
    for cp in range(ch.copies):
        for j, i in enumerate(ch.neurons):
            for gi, ang in enumerate(nm.angles(z[:, i], last[:, i])):
                if ch.angle_params[cp, j, gi] >= 0:
                    values[ch.angle_params[cp, j, gi]] = ang[0]
            values[ch.prep_params[cp, j]] = host.prep_angles(state[:, i])[0]
    dist = simulate_neutral(ch.circuit, values)
    for j, i in enumerate(ch.neurons):
        p1 = sum(p for cl, p in dist.items() if cl[ch.clbits[0, j, nm.emit_index]])
        want = nm.emit_probability(z[:, i], last[:, i], state[:, i])[0]
        assert abs(p1 - want) < 1e-9


def test_affine_angles_use_one_condition_per_bit():
    # clip with a >= sum |W|: the angle is affine in the previous bits
    spec = _spec("rotation", {"a": 50.0, "f": "clip"}, [4, 4], 1, True)
    low = lower("dynamic", spec, caps(max_table_width=2), Options())
    assert low.layer_realisation["h2"] == "affine"
    assert low.circuits[0].stats(1)["conditionals"] <= 16


def test_dynamic_reuses_qubits():
    spec = _spec("rotation", {"a": 0.5}, [3, 3, 3], 1, True)
    (circ,) = lower("dynamic", spec, caps(), Options()).circuits
    assert circ.num_qubits <= 3
    assert circ.stats()["resets"] > 0


def test_layered_chunks_and_copies():
    net = chain_network(784, [512, 512], "rotation", {"a": 0.5}, 10)
    spec = resolve(net, NEURONS, random_weights(net, 0), np.zeros(784))
    low = lower("layered", spec, caps(max_qubits=127), Options())
    assert len(low.chunks) == 10 and all(c.circuit.num_qubits <= 127 for c in low.chunks)
    assert sorted(i for c in low.chunks if c.layer == 0 for i in c.neurons) == list(range(512))
    net = chain_network(784, [16] * 3, "rotation", {"a": 0.5}, 10)
    spec = resolve(net, NEURONS, random_weights(net, 0), np.zeros(784))
    low = lower("layered", spec, caps(max_qubits=127), Options())
    assert [c.copies for c in low.chunks] == [7, 7, 7]


def test_ionq_capabilities_refuse_dynamic():
    with pytest.raises(QnncError) as e:
        check_strategy("dynamic", ionq_capabilities(None))
    assert e.value.diagnostics[0].code == "Q0303"


# --------------------------------------------------------------------------- IonQ natives


def _natives_unitary(prims, n):
    from qnnc.runtime.targets.neurons import _apply

    def r(theta, phi):
        return unitary("rz", phi) @ unitary("rx", theta) @ unitary("rz", -phi)

    u = np.eye(2 ** n, dtype=complex)
    for p in prims:
        if p[0] == "rz":
            m, qs = unitary("rz", p[2]), [p[1]]
        elif p[0] == "gpi2":
            m, qs = r(math.pi / 2, p[2]), [p[1]]
        elif p[0] == "gpi":
            m, qs = 1j * r(math.pi, p[2]), [p[1]]
        else:
            a = np.cos(p[3]) * unitary("x") + np.sin(p[3]) * np.array([[0, -1j], [1j, 0]])
            b = np.cos(p[4]) * unitary("x") + np.sin(p[4]) * np.array([[0, -1j], [1j, 0]])
            m, qs = (np.eye(4) - 1j * np.kron(a, b)) / math.sqrt(2), [p[1], p[2]]  # p[1] most significant
        u = _apply(u.T, m, qs, n).T
    return u


def _same_up_to_phase(a, b):
    k = np.argmax(np.abs(b))
    ph = a.flat[k] / b.flat[k]
    return abs(abs(ph) - 1) < 1e-9 and np.allclose(a, ph * b, atol=1e-9)


@pytest.mark.parametrize("name,qubits,angle", [
    ("ry", (0,), 0.737), ("ry", (0,), math.pi / 2), ("ry", (0,), -math.pi / 2), ("ry", (0,), math.pi),
    ("rx", (0,), -1.2), ("rx", (0,), math.pi), ("rz", (0,), 0.4), ("x", (0,), None), ("h", (0,), None),
    ("sx", (0,), None), ("sxdg", (0,), None), ("cx", (0, 1), None), ("cx", (1, 0), None),
    ("cz", (0, 1), None), ("ms", (0, 1), None), ("msdg", (0, 1), None)])
def test_ionq_native_decompositions(name, qubits, angle):
    from qnnc.runtime.targets.ionq import natives

    n = 2
    want = _natives_unitary([], n)
    from qnnc.runtime.targets.neurons import _apply

    want = _apply(want.T, unitary(name, angle if angle is not None else 0.0), list(qubits), n).T
    assert _same_up_to_phase(_natives_unitary(natives(name, qubits, angle), n), want)


def test_ionq_virtual_z_keeps_measured_distribution():
    """Natives after virtual Z, with the final frames dropped, give the neutral circuit's
    Z-basis distribution (the dropped Rz commutes with the final measurement)."""
    from qnnc.runtime.targets.ionq import native_gates

    spec = _spec("weak", {"a": 0.5, "g": 1.0}, [2, 2], 7, True)
    (circ,) = lower("deferred", spec, caps(), Options(noise_pairs=1, noise_kind="ms")).circuits
    gates, measures = native_gates(circ)
    u = _natives_unitary(gates, circ.num_qubits)
    probs = np.abs(u[:, 0]) ** 2
    dist: dict = {}
    offs = spec.offsets()
    for idx, p in enumerate(probs):
        code = 0
        for o in circ.outcomes:
            q = next(qq for qq, cl in measures if cl == o.clbit)
            if o.emit and (idx >> q) & 1:
                code |= 1 << (offs[o.layer] + o.neuron)
        dist[code] = dist.get(code, 0.0) + p
    assert max_abs_diff(dist, exact_distribution(spec)) < 1e-9


@pytest.mark.parametrize("module,package", [("ionq", "braket.circuits"), ("quantinuum", "pytket"),
                                            ("ibm", "qiskit_aer")])
def test_missing_extra_is_a_clear_error(monkeypatch, module, package):
    import importlib

    mod = importlib.import_module(f"qnnc.runtime.targets.{module}")
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    guard = {"ionq": "_braket", "quantinuum": "_pytket", "ibm": "_qiskit"}[module]
    with pytest.raises(QnncError) as e:
        getattr(mod, guard)()
    d = e.value.diagnostics[0]
    assert d.code == "Q0310" and f"qnnc[{module}]" in d.help
