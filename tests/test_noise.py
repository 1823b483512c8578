"""Device noise in the torch simulator (runtime/noise): the channels against Aer's own,
the density-matrix neuron against the state-vector one at zero noise, sampling against
exact enumeration under noise, noise models as validated data, and the fast noisy
simulator against Aer running the compiled circuits with FakeBrisbane's noise model
(`AerSimulator.from_backend`). The wide differential runs are marked slow."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ir_builders_targets import NEURONS, chain_network, random_weights  # noqa: E402
from noise_helpers import exact_codes, means_of, torch_model  # noqa: E402
from qnnc.compiler.diagnostics import QnncError  # noqa: E402
from qnnc.runtime.noise import channels as ch  # noqa: E402
from qnnc.runtime.noise import from_json, parse, with_layout  # noqa: E402
from qnnc.runtime.noise.published import published  # noqa: E402
from qnnc.runtime.noise.model import GateNoise, NoiseModel, QubitNoise  # noqa: E402
from qnnc.runtime.targets.network import tv_bound, tv_distance  # noqa: E402

X = np.array([0.3, -0.2, 0.9])


@pytest.fixture(scope="module")
def brisbane():
    pytest.importorskip("qiskit_aer")
    from qnnc.runtime.noise.ibm import from_fake_backend

    return from_fake_backend("fake_brisbane")


def _zero_noise(model: NoiseModel) -> NoiseModel:
    return replace(model, qubits=tuple(QubitNoise(q.qubit, None, None, 0.0, 0.0) for q in model.qubits),
                   gates=tuple(GateNoise(g.gate, g.qubits, 0.0, 0.0) for g in model.gates))


# --------------------------------------------------------------------------- channels


def _aer_ptm(error, n):
    """A QuantumError as a PTM in our order (first listed qubit most significant)."""
    from qiskit.quantum_info import SuperOp

    sup = SuperOp(error)
    r = ch.ptm_of(lambda m: _apply_superop(sup.data, m), n)
    if n == 2:  # qiskit: qubit 0 least significant -> swap to our order
        r = ch.embed(r, (1, 0), 2)
    return r


def _apply_superop(s, m):
    d = m.shape[0]
    vec = m.reshape(-1, order="F")
    return (s @ vec).reshape(d, d, order="F")


def test_gate_channels_equal_aers(brisbane):
    from qnnc.runtime.targets.ibm import noisy_simulator

    aer = noisy_simulator("fake_brisbane").options.noise_model  # the one `run --simulator noisy` uses
    for gate, qubits in [("sx", (0,)), ("x", (5,)), ("ecr", (1, 0)), ("ecr", (2, 1))]:
        g = brisbane.gate(gate, qubits)
        mine = ch.gate_error_channel(g.error, g.duration,
                                     [(brisbane.qubit(q).t1, brisbane.qubit(q).t2) for q in qubits])
        theirs = _aer_ptm(aer._local_quantum_errors[gate][qubits], len(qubits))
        assert np.allclose(mine, theirs, atol=1e-12), gate


def test_ecr_matrix_is_qiskits():
    from qiskit.circuit.library import ECRGate
    from qiskit.quantum_info import Operator

    theirs = Operator(ECRGate()).data  # qiskit: qubit 0 least significant
    perm = [0, 2, 1, 3]
    assert np.allclose(ch.NATIVE_FIXED["ecr"], theirs[np.ix_(perm, perm)])


@pytest.mark.parametrize("gate", ["rx", "ry", "rz"])
def test_rotation_ptm_parts(gate):
    from qnnc.compiler.gates import unitary

    a, c, s = ch.rotation_parts(gate)
    for theta in (0.0, 0.7, -2.1, math.pi):
        assert np.allclose(a + math.cos(theta) * c + math.sin(theta) * s, ch.unitary_ptm(unitary(gate, theta)))


# --------------------------------------------------------------------------- the neuron


@pytest.mark.parametrize("kind,args", [("rotation", {"a": 0.7}), ("weak", {"a": 0.5, "g": 1.0})])
def test_zero_noise_is_the_ideal_simulator(brisbane, kind, args):
    """Through the device's native gates with every error zero, the density-matrix neuron
    gives the state-vector neuron's exact distribution."""
    net = chain_network(3, [3, 3], kind, args, None, name="z")
    w = random_weights(net, 4)
    model = with_layout(_zero_noise(brisbane), [[(0, 1), (2, 3), (4, 5)]] * 2 if kind == "weak"
                        else [[(0,), (1,), (2,)]] * 2, "test")
    if kind == "weak":  # coupled pairs of FakeBrisbane (ecr on (1, 0), ...)
        pairs = [tuple(g.qubits) for g in brisbane.gates if g.gate == "ecr"][:3]
        model = with_layout(model, [[p for p in pairs]] * 2, "test")
    ideal = exact_codes(torch_model(net, w), X)
    noisy = exact_codes(torch_model(net, w, model), X)
    assert max(abs(ideal.get(k, 0) - noisy.get(k, 0)) for k in set(ideal) | set(noisy)) < 1e-12


@pytest.mark.parametrize("kind,args", [("rotation", {"a": 0.4}), ("weak", {"a": 0.5, "g": 0.9})])
def test_noisy_sampling_matches_noisy_enumeration(kind, args):
    """The sampler's trajectories (true outcome, then the readout's flip) follow the
    density matrix's exact branches; a readout error of 5% keeps it far from ideal."""
    net = chain_network(3, [2, 2], kind, args, None, name="s")
    w = random_weights(net, 2)
    model = published("ionq:aria")
    model = replace(model, qubits=(QubitNoise(-1, None, None, 0.05, 0.08),))
    m = torch_model(net, w, model)
    exact = exact_codes(m, X)
    shots = 20000
    rec = m.sample(torch.as_tensor(X).reshape(1, -1), shots, generator=torch.Generator().manual_seed(3))
    out = torch.cat([rec["h1"][:, 0], rec["h2"][:, 0]], -1).numpy()
    assert tv_distance(out, exact) <= tv_bound(shots, 16)
    se = np.sqrt(np.maximum(1 - out.mean(0) ** 2, 1e-3) / shots)
    assert np.all(np.abs(out.mean(0) - means_of(exact, 4)) < 4 * se)
    ideal = exact_codes(torch_model(net, w), X)
    assert np.max(np.abs(means_of(ideal, 4) - means_of(exact, 4))) > 0.05


def test_noisy_exact_expectation_is_differentiable():
    net = chain_network(3, [2, 2], "rotation", {"a": 0.6}, 3, name="g")
    w = random_weights(net, 5)
    m = torch_model(net, w, published("quantinuum:h1"))
    loss = m.expected_loss(torch.as_tensor(X).reshape(1, -1), torch.tensor([1]))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in m.parameters())


# --------------------------------------------------------------------------- as data


def test_json_round_trip(brisbane, tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"command": "noise", "result": brisbane.to_json()}))
    again = parse(str(p))
    assert again.to_json() == brisbane.to_json()


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(format="x"), "format"),
    (lambda d: d["qubits"][0].update(readout_p01=0.7), "readout_p01"),
    (lambda d: d["qubits"][0].update(t1=-1), "t1"),
    (lambda d: d["gates"][0].update(gate="nope"), "unknown native gate"),
    (lambda d: d["natives"][0]["steps"][0].update(wires=[0, 1]), "wires"),
    (lambda d: d.pop("gates"), "missing `gates`"),
])
def test_bad_model_files_are_refused(mutate, needle):
    d = published("ionq:aria").to_json()
    mutate(d)
    with pytest.raises(QnncError) as exc:
        from_json(d, "m.json")
    assert exc.value.diagnostics[0].code == "Q0703"
    assert needle in exc.value.diagnostics[0].message


@pytest.mark.parametrize("spec,code", [("bogus", "Q0701"), ("ionq:forte9", "Q0701"), ("ibm:", "Q0701"),
                                       ("missing.json", "Q0702")])
def test_bad_model_names_are_refused(spec, code):
    with pytest.raises(QnncError) as exc:
        parse(spec)
    assert exc.value.diagnostics[0].code == code


def test_a_layout_of_another_network_is_refused():
    net = chain_network(3, [2, 2], "rotation", {"a": 0.4}, None, name="s")
    model = with_layout(published("ionq:aria"), [[(0,), (1,)]], "test")
    with pytest.raises(QnncError) as exc:
        torch_model(net, random_weights(net, 1), model)
    assert exc.value.diagnostics[0].code == "Q0708"


# --------------------------------------------------------------------------- against Aer


def _fast_noisy(brisbane, net, w, c, strategy):
    """The noisy model's exact distribution for the strategy's circuits: per neuron for
    `dynamic` and `layered` (the torch simulator, its model bound to the compiled qubits
    and strategy), per circuit for `deferred` (runtime/noise/circuit.py)."""
    from qnnc.runtime.noise.circuit import exact_outcome_distribution
    from qnnc.runtime.noise.ibm import layout_from_compiled

    if strategy == "deferred":
        return exact_outcome_distribution(c, brisbane)
    model = with_layout(brisbane, layout_from_compiled(c), strategy, strategy)
    return exact_codes(torch_model(net, w, model), X)


def _against_aer(brisbane, kind, strategy, widths, shots, seed=5):
    from qnnc.runtime.noise.ibm import layout_from_compiled
    from qnnc.runtime.targets import compile_network, run_compiled

    args = {"a": 0.0} if kind == "rotation" else {"a": 0.5, "g": 1.0}
    net = chain_network(3, widths, kind, args, None, name="aer")
    w = random_weights(net, 1)
    c = compile_network(net, NEURONS, w, X, target="ibm", strategy=strategy,
                        copies=1 if strategy == "layered" else None)
    noisy = _fast_noisy(brisbane, net, w, c, strategy)
    ideal = exact_codes(torch_model(net, w), X)
    out = run_compiled(c, shots, "noisy", seed=seed)
    H = out.shape[1]
    return out, noisy, ideal, H


def test_fast_noisy_simulator_matches_aer_quick(brisbane):
    """One layer of four deterministic (a = 0) neurons, `dynamic` on FakeBrisbane: Aer's
    samples fit the fast simulator's noisy distribution within the TV bound and every
    neuron's mean within 4 standard errors; the ideal distribution is rejected."""
    shots = 4000
    out, noisy, ideal, H = _against_aer(brisbane, "rotation", "dynamic", [4], shots)
    bound = tv_bound(shots, 2 ** H)
    assert tv_distance(out, noisy) <= bound
    assert tv_distance(out, ideal) > bound  # the test can tell noise from none
    se = np.sqrt(np.maximum(1 - out.mean(0) ** 2, 1e-3) / shots)
    assert np.all(np.abs(out.mean(0) - means_of(noisy, H)) < 4 * se)


@pytest.mark.slow
@pytest.mark.parametrize("kind,strategy", [
    ("rotation", "dynamic"), ("rotation", "layered"), ("weak", "dynamic"),
    ("rotation", "deferred"), ("weak", "layered"), ("weak", "deferred")])
def test_fast_noisy_simulator_matches_aer(brisbane, kind, strategy):
    """Every strategy IBM runs, models A and B, widths [3, 3]: Aer's samples of the compiled
    circuits fit the noisy model of those circuits within the TV bound, every neuron's mean
    within 4 standard errors."""
    shots = 8000
    out, noisy, ideal, H = _against_aer(brisbane, kind, strategy, [3, 3], shots)
    assert tv_distance(out, noisy) <= tv_bound(shots, 2 ** H)
    se = np.sqrt(np.maximum(1 - out.mean(0) ** 2, 1e-3) / shots)
    assert np.all(np.abs(out.mean(0) - means_of(noisy, H)) < 4 * se)


@pytest.mark.parametrize("kind,strategy,seed", [("weak", "layered", 2), ("rotation", "deferred", 1),
                                                ("weak", "deferred", 1)])
def test_strategy_noise_is_exact_at_zero_noise(brisbane, kind, strategy, seed):
    """The strategy's noisy model with every error zero is the ideal distribution: the
    host's re-preparation (layered) and the transpiled circuit's density matrix
    (deferred, routed on the heavy-hex map) change nothing but the noise."""
    from qnnc.runtime.targets import compile_network

    args = {"a": 0.3} if kind == "rotation" else {"a": 0.5, "g": 1.0}
    net = chain_network(3, [2, 3] if kind == "rotation" else [3, 3], kind, args, None, name="zn")
    w = random_weights(net, seed)
    c = compile_network(net, NEURONS, w, X, target="ibm", strategy=strategy,
                        copies=1 if strategy == "layered" else None)
    got = _fast_noisy(_zero_noise(brisbane), net, w, c, strategy)
    ideal = exact_codes(torch_model(net, w), X)
    assert max(abs(ideal.get(k, 0) - got.get(k, 0)) for k in set(ideal) | set(got)) < 1e-9
    noisy = _fast_noisy(brisbane, net, w, c, strategy)
    assert max(abs(ideal.get(k, 0) - noisy.get(k, 0)) for k in set(ideal) | set(noisy)) > 1e-3


def test_layered_neuron_matches_its_transpiled_circuit(brisbane):
    """One `layered` circuit of carried weak neurons (prep ry, rz bound from the host's
    state, then the neuron): the per-neuron channel's P(+1) equals the density matrix of
    the transpiled circuit with those parameters bound (within the merges the transpiler
    makes of fixed one-qubit gates, ~1e-4)."""
    from qnnc.runtime.noise.circuit import exact_clbit_distribution
    from qnnc.runtime.noise.ibm import layout_from_compiled
    from qnnc.runtime.targets import compile_network
    from qnnc.runtime.targets.host import prep_angles
    from qnnc.runtime.torch_angles import _Evaluator

    net = chain_network(3, [3, 3], "weak", {"a": 0.5, "g": 1.0}, None, name="lw")
    w = random_weights(net, 1)
    c = compile_network(net, NEURONS, w, X, target="ibm", strategy="layered", copies=1)
    m = torch_model(net, w, with_layout(brisbane, layout_from_compiled(c), "layered", "layered"))
    kern = [p.kernel for p in m.plans if p.kind == "neuron"][1]
    amps = np.array([[0.8, 0.6], [0.6, -0.8], [math.cos(0.3), math.sin(0.3)]])
    z = torch.tensor([[0.4, -0.7, 1.3]], dtype=torch.float64)
    last = torch.tensor([[1.0, -1.0, 1.0]], dtype=torch.float64)
    fast = kern.branch(z, last, tuple(torch.tensor(amps[None, :, j]) for j in range(2))).probs[0, :, 0].numpy()
    theta = kern._angle(0, _Evaluator(z[0], last[0], False, z_owned=False)).numpy()
    pa = prep_angles(amps.astype(complex))
    values = {}
    for p in c.native.isa[1].parameters:
        i = int(p.name.split("_n")[1].split("_")[0])
        values[p] = pa[i, 0] if p.name.endswith("prep_y") else pa[i, 1] if p.name.endswith("prep_z") else theta[i]
    bits, probs = exact_clbit_distribution(c.native.isa[1].assign_parameters(values), brisbane)
    circuit = np.array([probs[bits[:, j] == 0].sum() for j in range(3)])
    assert np.max(np.abs(fast - circuit)) < 5e-4
    assert np.max(np.abs(fast - circuit)) < np.max(np.abs(fast - 0.5)) / 10  # not vacuous


def test_deferred_model_is_refused_per_neuron(brisbane):
    net = chain_network(3, [2, 2], "rotation", {"a": 0.4}, None, name="d")
    model = with_layout(brisbane, [[(0,), (1,)], [(2,), (3,)]], "test", "deferred")
    with pytest.raises(QnncError) as exc:
        torch_model(net, random_weights(net, 1), model)
    assert exc.value.diagnostics[0].code == "Q0712"


@pytest.mark.slow
def test_noise_probes_match_aer(brisbane):
    """K = 30 pairs (√X, √X†) after each rotation, compiled and run on Aer with FakeBrisbane's
    noise, against the fast simulator's model with `probe_pairs = 30`; the model without
    the pairs is rejected."""
    from qnnc.runtime.noise.ibm import layout_from_compiled
    from qnnc.runtime.targets import compile_network, run_compiled

    k, shots = 30, 3000
    net = chain_network(3, [3], "rotation", {"a": 0.0}, None, name="probe")
    w = random_weights(net, 1)
    c = compile_network(net, NEURONS, w, X, target="ibm", strategy="dynamic", noise_pairs=k, noise_kind="sx")
    model = with_layout(brisbane, layout_from_compiled(c), "dynamic")
    probed = exact_codes(torch_model(net, w, replace(model, probe_pairs=k)), X)
    plain = exact_codes(torch_model(net, w, model), X)
    out = run_compiled(c, shots, "noisy", seed=2)
    se = np.sqrt(np.maximum(1 - out.mean(0) ** 2, 1e-3) / shots)
    assert np.all(np.abs(out.mean(0) - means_of(probed, 3)) < 4 * se)
    assert np.any(np.abs(out.mean(0) - means_of(plain, 3)) > 4 * se)


@pytest.mark.slow
def test_hardware_network_layer_means_match_aer(brisbane):
    """examples/hardware.qnn (declared initialisation, MNIST test image 0), `layered` with
    one copy on FakeBrisbane: each hidden layer's mean outcome on Aer agrees with the fast
    noisy simulator's within 4 standard errors (Aer: 60 shots, its cost)."""
    from ir_builders_targets import example
    from qnnc.runtime.noise.ibm import layout_from_compiled
    from qnnc.runtime.simulator import QNNModel
    from qnnc.runtime.targets import compile_network, run_compiled

    prog, w, _ = example("hardware")
    from qnnc.runtime.data import load_dataset, preprocess

    net = prog.network()
    x = preprocess(load_dataset("mnist.test").images[:1], net.input)[0].astype(np.float64)
    c = compile_network(prog, None, w, x, target="ibm", strategy="layered", copies=1)
    model = with_layout(brisbane, layout_from_compiled(c), "layered")
    m = QNNModel(prog, net.name, seed=0, dtype=torch.float64, noise=model)
    m.load_tensors({k: torch.as_tensor(v) for k, v in w.items()})
    rec = m.sample(torch.as_tensor(x).reshape(1, -1), 20000, generator=torch.Generator().manual_seed(1))
    fast = torch.cat([rec[n][:, 0] for n in ("h1", "h2", "h3")], -1).numpy()
    aer = run_compiled(c, 60, "noisy", seed=4)
    for li in range(3):
        a, f = aer[:, 16 * li:16 * li + 16].mean(1), fast[:, 16 * li:16 * li + 16].mean(1)
        se = math.sqrt(a.var() / a.size + f.var() / f.size)
        assert abs(a.mean() - f.mean()) < 4 * se, (li, a.mean(), f.mean(), se)


# --------------------------------------------------------------------------- the command line


def test_noise_show_cli(tmp_path):
    from cli_harness import run_cli

    rc, out, err = run_cli(["noise", "show", "--target", "quantinuum"])
    assert rc == 0 and "noise model quantinuum:h1  [ILLUSTRATIVE]" in out and "natives" in out
    rc, out, _ = run_cli(["noise", "show", "--target", "ionq", "--json"])
    env = json.loads(out)
    assert rc == 0 and env["command"] == "noise" and env["result"]["format"] == "qnnc-noise/1"
    path = tmp_path / "aria.json"
    path.write_text(out)
    rc, out2, _ = run_cli(["noise", "show", "--model", str(path), "--json"])
    assert rc == 0 and json.loads(out2)["result"] == env["result"]


@pytest.mark.parametrize("argv,code,rc", [
    (["noise", "show", "--model", "nowhere:x"], "Q0701", 1),
    (["run", "examples/hardware.qnn", "--target", "ionq", "--noise", "ionq:aria", "--shots", "2"], "Q0709", 2),
    (["eval", "examples/hardware.qnn", "--noise", "ibm:", "--limit", "2"], "Q0701", 1),
])
def test_noise_flags_refuse_bad_input(argv, code, rc, monkeypatch):
    from pathlib import Path

    from cli_harness import assert_clean, run_cli

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    got, out, err = run_cli(argv)
    assert_clean(got, err, argv)
    assert got == rc and f"error[{code}]" in err


def test_eval_under_published_noise(monkeypatch):
    from pathlib import Path

    from cli_harness import run_cli

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    rc, out, err = run_cli(["eval", "examples/hardware.qnn", "--noise", "ionq:aria", "--limit", "20",
                            "--shots", "2", "--json"])
    r = json.loads(out)["result"]
    assert rc == 0 and r["noise"] == "ionq:aria" and r["images"] == 20


# --------------------------------------------------------------------------- the circuit-level model


def _deferred(kind="rotation", widths=(2, 2), strategy="deferred"):
    from qnnc.runtime.targets import compile_network

    args = {"a": 0.3} if kind == "rotation" else {"a": 0.5, "g": 1.0}
    net = chain_network(3, list(widths), kind, args, None, name="cl")
    w = random_weights(net, 3)
    return compile_network(net, NEURONS, w, X, target="ibm", strategy=strategy,
                           copies=1 if strategy == "layered" else None)


def test_circuit_level_refusals(brisbane, monkeypatch):
    """Not one deferred circuit (Q0710), a gate the model lacks on its qubits (Q0711),
    more live qubits than it holds (Q0713): clear errors, no traceback."""
    from qnnc.runtime.noise import circuit

    cases = [(lambda: circuit.exact_outcome_distribution(_deferred(strategy="dynamic"), brisbane), "Q0710")]
    no_ecr = replace(brisbane, gates=tuple(g for g in brisbane.gates if g.gate != "ecr"))
    cases.append((lambda: circuit.exact_outcome_distribution(_deferred(), no_ecr), "Q0711"))
    for run, code in cases:
        with pytest.raises(QnncError) as exc:
            run()
        assert exc.value.diagnostics[0].code == code
    monkeypatch.setattr(circuit, "MAX_LIVE", 2)
    with pytest.raises(QnncError) as exc:
        circuit.exact_outcome_distribution(_deferred(), brisbane)
    assert exc.value.diagnostics[0].code == "Q0713"


def test_circuit_level_samples_follow_its_distribution(brisbane):
    """`sample_outcomes` (what `run --simulator qnnc` prints for `deferred`) draws from the
    exact circuit-level distribution."""
    from qnnc.runtime.noise.circuit import exact_outcome_distribution, sample_outcomes

    c = _deferred()
    exact = exact_outcome_distribution(c, brisbane)
    assert abs(sum(exact.values()) - 1) < 1e-12
    out = sample_outcomes(c, brisbane, 20000, seed=4)
    assert out.shape == (20000, 4) and set(np.unique(out)) <= {-1, 1}
    assert tv_distance(out, exact) <= tv_bound(20000, 16)
    se = np.sqrt(np.maximum(1 - out.mean(0) ** 2, 1e-3) / 20000)
    assert np.all(np.abs(out.mean(0) - means_of(exact, 4)) < 4 * se)
