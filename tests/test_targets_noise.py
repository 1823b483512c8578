"""Noise probes survive each vendor's compiler: K identity pairs after every neuron
rotation raise the native gate counts by exactly 2K per rotation (one-qubit pairs) or
2K two-qubit gates per neighbouring pair."""

from __future__ import annotations

import numpy as np
import pytest

from ir_builders_targets import NEURONS, chain_network, random_weights
from qnnc.runtime.targets import compile_network, exact_distribution, resolve, run_compiled
from qnnc.runtime.targets.network import tv_bound, tv_distance

NET = chain_network(3, [4, 4], "rotation", {"a": 0.5}, None, name="probe")
W = random_weights(NET, 1)
X = np.array([0.3, -0.2, 0.9])
ROTATIONS = 8  # one R_y per neuron
PAIRS = 4  # neurons (0, 1) and (2, 3) of each layer
K = 3

# target, strategy, noise kind, native op that counts one noise gate
CASES = [
    ("ibm", "dynamic", "sx", "sx"), ("ibm", "layered", "sx", "sx"),
    ("ibm", "dynamic", "cz", "ecr"), ("ibm", "layered", "cz", "ecr"),
    ("ionq", "deferred", "sx", "gpi2"), ("ionq", "layered", "sx", "gpi2"),
    ("ionq", "deferred", "ms", "ms"), ("ionq", "layered", "ms", "ms"),
    ("quantinuum", "dynamic", "sx", "PhasedX"), ("quantinuum", "layered", "sx", "PhasedX"),
    ("quantinuum", "deferred", "sx", "PhasedX"),
    ("quantinuum", "dynamic", "cz", "ZZPhase"), ("quantinuum", "layered", "ms", "ZZPhase"),
    ("quantinuum", "deferred", "cz", "ZZPhase"),
]


def _ops(compiled) -> dict:
    tot: dict = {}
    for c in compiled.summary["circuits"]:
        for k, v in c["ops"].items():
            tot[k] = tot.get(k, 0) + v
    return tot


@pytest.mark.parametrize("target,strategy,kind,op", CASES)
def test_noise_pairs_rise_by_exactly_2k(target, strategy, kind, op):
    base = _ops(compile_network(NET, NEURONS, W, X, target=target, strategy=strategy, copies=1))
    probed = compile_network(NET, NEURONS, W, X, target=target, strategy=strategy, copies=1,
                             noise_pairs=K, noise_kind=kind)
    per = ROTATIONS if kind == "sx" else PAIRS
    assert _ops(probed).get(op, 0) - base.get(op, 0) == 2 * K * per


def test_noise_pairs_keep_the_ideal_distribution():
    c = compile_network(NET, NEURONS, W, X, target="ibm", strategy="dynamic", noise_pairs=5,
                        noise_kind="cz")
    out = run_compiled(c, 4000, "ideal", seed=1)
    exact = exact_distribution(resolve(NET, NEURONS, W, X))
    assert tv_distance(out, exact) <= tv_bound(4000, len(exact) + 1)


def test_noise_pairs_add_noise_on_a_noisy_simulator():
    """On FakeBrisbane's noise model, 20 pairs per rotation move a deterministic (a = 0)
    network's outcomes away from the classical ones."""
    net = chain_network(3, [4], "rotation", {"a": 0.0}, None, name="det")
    w = random_weights(net, 2)
    exact = exact_distribution(resolve(net, NEURONS, w, X))
    flips = []
    for k in (0, 40):
        c = compile_network(net, NEURONS, w, X, target="ibm", strategy="dynamic", noise_pairs=k)
        flips.append(tv_distance(run_compiled(c, 2000, "noisy", seed=3), exact))
    assert flips[1] > flips[0] + 0.02
