"""Noise probes survive each vendor's compiler: K identity pairs after every neuron
rotation raise the native gate counts by exactly 2K per rotation (one-qubit pairs) or
2K two-qubit gates per neighbouring pair, against the same probe with K = 0 (its
fences, and on a coupling map the routing that makes each pair's qubits neighbours)."""

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
    # deferred circuits are routed (multiplexers span layers): the pairs join after routing
    ("ibm", "deferred", "sx", "sx"), ("ibm", "deferred", "cz", "ecr"),
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
    base = _ops(compile_network(NET, NEURONS, W, X, target=target, strategy=strategy, copies=1,
                                noise_pairs=0, noise_kind=kind))
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


def test_ibm_noise_pairs_sit_on_the_probed_qubits():
    """The pairs join after routing, on the physical qubits that then hold the probed
    logical ones: for layer 1 of a deferred circuit (no SWAP precedes its probes) these
    are the initial layout's images of the probed qubits, each with 2K sx gates."""
    k = 2
    c = compile_network(NET, NEURONS, W, X, target="ibm", strategy="deferred", copies=1,
                        noise_pairs=k, noise_kind="sx")
    isa = c.native.isa[0]
    physical = {v._index: p for v, p in
                isa.layout.initial_virtual_layout(filter_ancillas=True).get_virtual_bits().items()}
    probed = [op.qubits[0] for op in c.circuits[0].ops if op.role == "probe" and op.layer == 0]
    assert len(probed) == 4
    for q in probed:
        wire = isa.qubits[physical[q]]
        ops = [inst.operation.name for inst in isa.data if wire in inst.qubits]
        # the wire's first barrier opens the probe: then sx, sxdg (as rz sx rz), ... K times
        start = ops.index("barrier")
        block = [o for o in ops[start:start + 8 * k] if o != "barrier"]
        assert block[:4 * k] == ["sx", "rz", "sx", "rz"] * k, (q, ops[:start + 8 * k])
