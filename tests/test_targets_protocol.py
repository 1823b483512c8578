"""The target protocol and the registries: every registered target implements
`Target`, lookups by name are lazy, no module outside a target's own branches on its
name, and a target registered from outside runs through `compile_network` and
`run_compiled` like the shipped ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ir_builders_targets import NEURONS, chain_network, random_weights, simulate_neutral
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets import compile_network, exact_distribution, resolve, run_compiled
from qnnc.runtime.targets.capabilities import REQUIREMENTS, Capabilities
from qnnc.runtime.targets.cloud import SubmissionClient
from qnnc.runtime.targets.network import tv_bound, tv_distance
from qnnc.runtime.targets.registry import STRATEGIES, TARGETS
from qnnc.runtime.targets.target import Target, get_target

TARGETS_DIR = Path(__file__).resolve().parents[1] / "runtime" / "targets"


def test_every_registered_target_implements_the_protocol():
    assert list(TARGETS) == ["ibm", "ionq", "quantinuum", "helios"]
    for name in TARGETS:
        target = TARGETS[name]
        assert isinstance(target, Target) and target.name == name
        assert target is get_target(name)  # one instance per name
        client = target.submission_client()
        assert isinstance(client, SubmissionClient) and client.target == name


def test_every_strategy_has_its_requirements():
    assert set(STRATEGIES) == set(REQUIREMENTS)
    assert all(callable(STRATEGIES[s]) for s in STRATEGIES)


def test_unknown_target_is_refused():
    with pytest.raises(QnncError) as e:
        get_target("acme")
    d = e.value.diagnostics[0]
    assert d.code == "Q0301" and "`ibm`" in d.help


def test_listing_the_registry_loads_no_target_module():
    code = ("import sys; from qnnc.runtime.targets.capabilities import TARGETS, STRATEGIES;"
            "names = list(TARGETS) + list(STRATEGIES); assert 'ibm' in TARGETS;"
            "bad = [m for m in ('qnnc.runtime.targets.ibm', 'qnnc.runtime.targets.ionq',"
            " 'qnnc.runtime.targets.quantinuum', 'qnnc.runtime.targets.helios',"
            " 'guppylang', 'selene_sim') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_no_branch_on_a_target_name_outside_the_targets():
    """The vendor-neutral modules ask the target; only its own module knows its name."""
    vendor = {"ibm", "ionq.py", "quantinuum.py", "helios", "registry.py"}
    pattern = re.compile(r'== *"(ibm|ionq|quantinuum|helios)"|in \("(ibm|ionq|quantinuum|helios)"')
    hits = [f"{p.relative_to(TARGETS_DIR)}:{i}" for p in TARGETS_DIR.rglob("*.py")
            if p.relative_to(TARGETS_DIR).parts[0] not in vendor
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


# --------------------------------------------------------------------------- a target from outside


class _ExactSampler:
    """Samples a neutral circuit's exact outcome distribution (the test's simulator)."""

    def __init__(self, circuits, seed):
        self.circuits = circuits
        self.rng = np.random.default_rng(seed)

    def run(self, index, values, shots):
        dist = simulate_neutral(self.circuits[index])
        keys = list(dist)
        probs = np.array([dist[k] for k in keys])
        out = []
        for s in shots:
            picks = self.rng.choice(len(keys), size=int(s), p=probs / probs.sum())
            out.append(np.array([keys[k] for k in picks], dtype=np.uint8))
        return out


class NeutralTarget(Target):
    """A target whose program is the neutral circuits themselves."""

    name = "neutral"
    primary_format = "openqasm3"
    simulators = ("ideal",)

    def capabilities(self, backend=None) -> Capabilities:
        return Capabilities(target="neutral", backend=backend or "neutral-8", max_qubits=8,
                            supports_mid_circuit_measurement=False, supports_feed_forward=False,
                            supports_register_conditions=False, supports_reset=False,
                            supports_realtime_arithmetic=False, native_gates=(),
                            noise_kinds=("sx",), strategies=("dynamic", "deferred"))

    def emit(self, lowered, caps, seed=0):
        return list(lowered.circuits)

    def texts(self, native):
        from qnnc.runtime.targets.qasm import to_openqasm3

        return {"openqasm3": [to_openqasm3(c) for c in native]}

    def statistics(self, native):
        return [c.stats() for c in native]

    def local_executor(self, native, lowered, simulator="ideal", seed=None):
        return _ExactSampler(native, seed)

    def submission_client(self):  # pragma: no cover - no cloud here
        raise NotImplementedError


@pytest.fixture
def neutral_target(monkeypatch):
    monkeypatch.setattr(TARGETS, "_entries", dict(TARGETS._entries))
    monkeypatch.setattr(TARGETS, "_loaded", dict(TARGETS._loaded))
    TARGETS.register("neutral", f"{__name__}:NeutralTarget")
    return TARGETS["neutral"]


def test_a_registered_target_compiles_and_runs(neutral_target):
    net = chain_network(3, [2, 2], n_out=None)
    w = random_weights(net, seed=4)
    x = np.array([0.3, -0.2, 0.9])
    compiled = compile_network(net, NEURONS, w, x, target="neutral")
    # its capabilities rule out `dynamic` (no feed-forward): the default passes over it
    assert compiled.strategy == "deferred" and compiled.summary["passed_over"][0].startswith("`dynamic`")
    assert compiled.primary_format() == "openqasm3" and "OPENQASM 3" in compiled.texts["openqasm3"][0]
    shots = 4000
    out = run_compiled(compiled, shots, seed=1)
    spec = resolve(net, NEURONS, w, x)
    assert out.shape == (shots, 4)
    assert tv_distance(out, exact_distribution(spec)) < tv_bound(shots, 2 ** out.shape[1])
