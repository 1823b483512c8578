"""The batched Aer path of measured gradients (issue 12): several networks of one lowered
`layered` program sampled together (`host.run_layered_many`), and the noise model cut to
a circuit's qubits (`ibm.noisy_simulator_on`), checked against exact distributions and
against the whole noise model."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")

from ir_builders_targets import NEURONS, random_case  # noqa: E402
from qnnc.runtime.targets import compile_network, exact_distribution, resolve  # noqa: E402
from qnnc.runtime.targets import host  # noqa: E402
from qnnc.runtime.targets.compile import vendor  # noqa: E402
from qnnc.runtime.targets.network import tv_bound, tv_distance, with_angle_shift  # noqa: E402


@pytest.mark.parametrize("neuron", ["rotation", "weak"])
def test_many_networks_in_one_run_each_match_their_exact_distribution(neuron):
    """Two images and an angle-shifted variant of one network, sampled in one run per
    layer: each one's outcomes follow its own exact distribution (a row sent to the
    wrong network, or a carried state mixed up between them, would fail)."""
    net, w, x = random_case(neuron, 2, 2, 0.5, 0.9, "clip", 11, True)
    x2 = -x[::-1].copy()
    compiled = compile_network(net, NEURONS, w, x, target="ibm", strategy="layered", copies=1)
    base = resolve(net, NEURONS, w, x)
    specs = [base, resolve(net, NEURONS, w, x2), with_angle_shift(base, 1, 0, 0, math.pi / 2)]
    shots = [3000, 2000, 2500]
    ex = vendor("ibm").local_executor(compiled.native, compiled.lowered, "ideal", 3)
    runs = []
    inner = ex.run
    ex.run = lambda index, values, jobs: runs.append(index) or inner(index, values, jobs)
    outs = host.run_layered_many(compiled.lowered, specs, ex, shots, np.random.default_rng(4))
    assert [o.shape for o in outs] == [(s, base.num_outcomes) for s in shots]
    assert runs == [0, 1]  # one executor call per layer for all three networks
    exacts = [exact_distribution(sp) for sp in specs]
    for out, exact, s in zip(outs, exacts, shots):
        assert tv_distance(out, exact) <= tv_bound(s, len(exact) + 1)
    # the three distributions differ, so the check above can tell them apart
    assert tv_distance(outs[1], exacts[0]) > tv_bound(shots[1], len(exacts[0]) + 1)


def test_noise_model_cut_to_the_circuit_qubits_draws_identically():
    """The cut model holds only the errors on the circuit's qubits, and Aer draws the
    same outcomes with it as with the whole device's model, seed for seed."""
    from qnnc.runtime.targets.ibm import active_qubits, noisy_simulator, noisy_simulator_on

    net, w, x = random_case("rotation", 2, 2, 0.5, 0.9, "clip", 5, False)
    compiled = compile_network(net, NEURONS, w, x, target="ibm", strategy="layered", copies=1)
    circ = compiled.native.isa[0]
    qubits = active_qubits(circ)
    assert len(qubits) == 2
    cut = noisy_simulator_on(None, qubits)
    nm = cut.options.noise_model
    assert set(nm._local_readout_errors) == {(q,) for q in qubits}
    assert all(set(q) <= set(qubits) for d in nm._local_quantum_errors.values() for q in d)
    binds = [{p: [0.3, 1.9] for p in circ.parameters}]
    kw = dict(shots=500, seed_simulator=9, memory=True, method="matrix_product_state", parameter_binds=binds)
    whole = noisy_simulator().run(circ, **kw).result()
    mine = cut.run(circ, **kw).result()
    for k in range(2):
        assert whole.get_memory(k) == mine.get_memory(k)
    # and the noise is there: the second bind's outcomes are not all equal
    assert len(set(mine.get_memory(1))) > 1
