"""Hardware-sized networks: the 784-16-16-16-10 network of the hardware paper with each
target's default strategy, and the 784-512-512-10 network, layered and chunked, on each
target's local simulator (a few shots)."""

from __future__ import annotations


import numpy as np
import pytest

from ir_builders_targets import NEURONS, chain_network, hardware_network, random_weights
from qnnc.runtime.targets import compile_network, run_compiled

X = np.random.default_rng(0).uniform(0, 1, 784)


@pytest.fixture(scope="module")
def hardware():
    net = hardware_network()
    return net, random_weights(net, 0)


@pytest.fixture(scope="module")
def mnist512():
    net = chain_network(784, [512, 512], "rotation", {"a": 0.5}, 10, "mnist")
    return net, random_weights(net, 0)


def test_hardware_ibm_default_runs_on_fake_brisbane_noise(hardware):
    net, w = hardware
    c = compile_network(net, NEURONS, w, X, target="ibm")
    assert c.strategy == "layered" and c.backend == "fake_brisbane"
    assert "dynamic" in c.refused[0]  # 16-bit tables are refused, and the summary says so
    assert [ch.copies for ch in c.lowered.chunks] == [7, 7, 7]
    out = run_compiled(c, 12, "noisy", seed=0)  # AerSimulator.from_backend(FakeBrisbane())
    assert out.shape == (12, 48) and set(np.unique(out)) <= {-1, 1}


def test_narrow_dynamic_runs_on_fake_brisbane_noise():
    net = chain_network(784, [5, 5, 5], "rotation", {"a": 0.5, "f": "clip"}, 10, "narrow")
    c = compile_network(net, NEURONS, random_weights(net, 0), X, target="ibm")
    assert c.strategy == "dynamic"
    s = c.summary
    assert s["total"]["conditionals"] > 0 and s["total"]["measurements"] == 15
    out = run_compiled(c, 200, "noisy", seed=1)
    assert out.shape == (200, 15)


def test_hardware_ionq_default(hardware):
    net, w = hardware
    c = compile_network(net, NEURONS, w, X, target="ionq", copies=1)
    assert c.strategy == "layered"  # deferred: 16-bit multiplexers refused
    assert {"gpi2", "measure"} <= set(c.summary["circuits"][0]["ops"])
    out = run_compiled(c, 8, "braket_sv", seed=0)
    assert out.shape == (8, 48)


def test_hardware_quantinuum_default(hardware):
    net, w = hardware
    c = compile_network(net, NEURONS, w, X, target="quantinuum")
    assert c.strategy == "layered"
    assert [ch.copies for ch in c.lowered.chunks] == [3, 3, 3]  # 56 qubits
    out = run_compiled(c, 12, "ideal", seed=0)
    assert out.shape == (12, 48)


def test_mnist512_ibm_layered_chunked(mnist512):
    net, w = mnist512
    c = compile_network(net, NEURONS, w, X, target="ibm")
    assert c.strategy == "layered" and len(c.circuits) == 10
    assert max(ci["qubits"] for ci in c.summary["circuits"]) <= 127
    out = run_compiled(c, 3, "ideal", seed=0)
    assert out.shape == (3, 1024)


@pytest.mark.slow
def test_mnist512_ibm_noisy(mnist512):
    net, w = mnist512
    c = compile_network(net, NEURONS, w, X, target="ibm")
    assert run_compiled(c, 2, "noisy", seed=0).shape == (2, 1024)


def test_mnist512_ionq_and_quantinuum_layered(mnist512):
    net, w = mnist512
    # Braket's state vector simulates every qubit: chunks of at most 16 keep it quick
    c = compile_network(net, NEURONS, w, X, target="ionq", max_qubits=16)
    assert c.strategy == "layered" and len(c.circuits) == 2 * 32
    assert run_compiled(c, 1, "braket_sv", seed=0).shape == (1, 1024)
    c = compile_network(net, NEURONS, w, X, target="quantinuum")
    assert len(c.circuits) == 2 * 10
    assert run_compiled(c, 2, "ideal", seed=0).shape == (2, 1024)
