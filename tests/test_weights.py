"""The one weight source: a seed names one network in every command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qnnc.compiler import parse_program
from qnnc.runtime import checkpoint as ckpt
from qnnc.runtime.cli import main
from qnnc.runtime.weights import declared_weights, initial_weights, weights_digest

NET = """
network small {
    input x[28, 28] with scale(1 / 255), pool(4)
    layer h1[3] = rotation(0.5) of dense(x, bias = off, init = normal(0, 1 / sqrt(fan_in)))
    layer h2[3] = rotation(0.5) of dense(h1, bias = on, init = uniform(-0.5, 0.5))
    output y[10] = linear of dense(h2, bias = off, init = normal(0, 1 / sqrt(fan_in)))
    readout argmax, vote over 3 shots
}
train small {
    data mnist.train5k
    optimizer sgd(lr = 0.05)
    epochs 1
    checkpoint at log steps and at end
    seed 5
}
"""


@pytest.fixture
def program_file(tmp_path):
    f = tmp_path / "small.qnn"
    f.write_text("import neurons from stdlib\n" + NET)
    return f


def _json_of(capsys, argv) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)["result"]


@pytest.mark.parametrize("seed", [0, 7])
def test_train_step_zero_hamiltonian_and_compile_hold_the_same_weights(program_file, tmp_path, capsys, seed):
    run = tmp_path / "run"
    assert main(["train", str(program_file), "--seed", str(seed), "--out", str(run), "--no-progress"]) == 0
    step0 = weights_digest(ckpt.load_checkpoint(ckpt.resolve_checkpoint(run, 0)).tensors)
    ham = _json_of(capsys, ["hamiltonian", str(program_file), "--seed", str(seed), "--format", "json"])
    comp = _json_of(capsys, ["compile", str(program_file), "--seed", str(seed), "--target", "ibm", "--json"])
    assert ham["weights_sha256"] == step0 == comp["weights_sha256"]
    other = _json_of(capsys, ["hamiltonian", str(program_file), "--seed", str(seed + 1), "--format", "json"])
    assert other["weights_sha256"] != step0


def test_each_layer_draws_from_its_own_stream():
    program = parse_program("import neurons from stdlib\n" + NET, "<t>")
    net = program.networks[0]
    w = initial_weights(net, 3)
    # Another initialiser for h1 leaves h2's and y's draws as they were.
    other = parse_program("import neurons from stdlib\n" + NET.replace(
        "dense(x, bias = off, init = normal(0, 1 / sqrt(fan_in)))", "dense(x, bias = off, init = zeros)"), "<t>")
    w2 = initial_weights(other.networks[0], 3)
    assert not np.any(w2["h1"]) and np.any(w["h1"])
    assert np.array_equal(w["h2"], w2["h2"]) and np.array_equal(w["y"], w2["y"])
    assert np.array_equal(w["h2.bias"], np.zeros(3))
    assert np.all((w["h2"] >= -0.5) & (w["h2"] <= 0.5))
    assert np.array_equal(w["h1"].astype(np.float32).astype(np.float64), w["h1"])  # float32-exact
    assert weights_digest(declared_weights(program, net, 3)) == weights_digest(w)
    assert weights_digest(initial_weights(net, 4)) != weights_digest(w)


def test_hamiltonian_of_an_untrained_network_imports_no_torch(program_file):
    code = ("import sys, json\n"
            "from qnnc.runtime.cli import main\n"
            f"assert main(['hamiltonian', {str(program_file)!r}, '--format', 'json']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"]["source"] == "declared initialisation, seed 0"
