"""`qnnc hamiltonian` and `qnnc tap` on runs made by `qnnc train`."""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files

import jsonschema
import numpy as np
import pytest

from qnnc.runtime.cli import main
from qnnc.runtime import checkpoint as ckpt

NET = """
param width: int = 24
network spin {
    input x[28, 28] with scale(1 / 255), pool(4)
    layer h1[width] = sign of dense(x, bias = off, init = normal(0, 1 / sqrt(fan_in)))
    output y[10] = linear of dense(h1, bias = off, init = normal(0, 1 / sqrt(fan_in)))
}
train spin {
    data mnist.train5k
    optimizer sgd(lr = 0.05, momentum = 0.9)
    epochs 1
    checkpoint at log steps and at end
    seed 1
}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("spin")
    f = d / "spin.qnn"
    f.write_text(NET)
    assert main(["train", str(f), "--out", str(d / "run"), "--no-progress"]) == 0
    return f, d / "run"


def _schema():
    return json.loads(files("qnnc.runtime").joinpath("schemas/hamiltonian.schema.json").read_text())


def test_hamiltonian_json_of_a_checkpoint_validates(run, capsys):
    f, r = run
    capsys.readouterr()
    assert main(["hamiltonian", str(f), "--run", str(r), "--checkpoint", "50", "--format", "json",
                 "--temperature", "0.5"]) == 0
    out = json.loads(capsys.readouterr().out)["result"]
    jsonschema.Draft202012Validator(_schema()).validate(out)
    assert out["step"] == 50 and out["model"]["n_spins"] == 49 + 24 + 10
    assert out["phase"]["phase"] in ("paramagnet", "spin glass", "hidden order")



def test_an_ordered_report_validates(run):
    """Weights with a planted rank-one pattern order (λ_min crosses zero); that report
    has the fields of the ordered case and validates too."""
    import dataclasses

    from qnnc.compiler import parse_program
    from qnnc.runtime.spin import analyse, load_weights

    f, r = run
    program = parse_program(f.read_text(), str(f))
    nw = load_weights(program, program.network(), str(r), 0, 0)
    rng = np.random.default_rng(0)
    u, v = rng.choice([-1.0, 1.0], size=nw.sizes[1]), rng.choice([-1.0, 1.0], size=nw.sizes[0])
    planted = nw.weights[0] + 3.0 * np.outer(u, v) / np.sqrt(nw.sizes[0] * nw.sizes[1]) * np.sqrt(nw.sizes[0])
    report = analyse(dataclasses.replace(nw, weights=[planted] + nw.weights[1:]), temperature=0.5)
    jsonschema.Draft202012Validator(_schema()).validate(json.loads(json.dumps(report)))
    assert report["tc"]["kind"] == "cross" and report["spectrum"]["outliers"]
    assert report["phase"]["phase"] == "hidden order"


def test_step_zero_is_the_seeded_initialisation(run, capsys):
    """No --checkpoint: the initialisation from --seed, equal to step 0 of the run."""
    f, r = run
    capsys.readouterr()
    main(["hamiltonian", str(f), "--seed", "1", "--format", "json"])
    a = json.loads(capsys.readouterr().out)["result"]
    main(["hamiltonian", str(f), "--run", str(r), "--checkpoint", "0", "--format", "json"])
    b = json.loads(capsys.readouterr().out)["result"]
    assert a["spectrum"]["eigenvalues"] == b["spectrum"]["eigenvalues"]
    assert a["tc"]["kind"] == "touch"
    assert abs(a["tc"]["tc"] - a["analytic_tc"]) / a["analytic_tc"] < 0.15  # 83 spins: finite-size band


def test_npz_output_round_trips(run, tmp_path, capsys):
    from qnnc.runtime.ising import load_npz

    f, r = run
    out = tmp_path / "j.npz"
    assert main(["hamiltonian", str(f), "--run", str(r), "--checkpoint", "last", "--format", "npz", "-o", str(out)]) == 0
    model = load_npz(out)
    c = ckpt.load_checkpoint(ckpt.resolve_checkpoint(r, "last"))
    J = model.dense()
    np.testing.assert_allclose(J[:49, 49:73], c.tensors["h1"].T, rtol=1e-6)


def test_tap_series_over_the_run(run, capsys, tmp_path):
    f, r = run
    capsys.readouterr()
    assert main(["tap", str(f), "--run", str(r), "--json", "--plot", str(tmp_path / "p")]) == 0
    out = json.loads(capsys.readouterr().out)["result"]
    steps = [s["step"] for s in out["series"]]
    assert steps == ckpt.list_checkpoints(r)
    assert (tmp_path / "p_tc.png").exists() and (tmp_path / "p_spectrum.pdf").exists()


@pytest.mark.parametrize("argv", [["hamiltonian", "--format", "npz", "-o", "{bad}/j.npz"],
                                  ["hamiltonian", "-o", "{bad}/h.txt"],
                                  ["tap", "-o", "{bad}/t.json"],
                                  ["tap", "--plot", "{bad}/p"]])
def test_an_unwritable_output_is_q0405(run, tmp_path, capsys, argv):
    """Every output, plots and .npz included, goes through the one writer."""
    f, r = run
    (tmp_path / "file").write_text("x")
    argv = [a.format(bad=tmp_path / "file") for a in argv]
    capsys.readouterr()
    assert main([argv[0], str(f), "--run", str(r), *(["--no-progress"] if argv[0] == "tap" else []),
                 *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error[Q0405]: cannot write {tmp_path / 'file'}") and "Traceback" not in err


def test_hamiltonian_npz_to_standard_output(run, capsysbinary, tmp_path):
    """`-o -` writes the .npz bytes to standard output, and nothing else."""
    import io

    f, r = run
    assert main(["hamiltonian", str(f), "--run", str(r), "--format", "npz", "-o", str(tmp_path / "j.npz")]) == 0
    capsysbinary.readouterr()
    assert main(["hamiltonian", str(f), "--run", str(r), "--format", "npz", "-o", "-"]) == 0
    piped = np.load(io.BytesIO(capsysbinary.readouterr().out), allow_pickle=False)
    written = np.load(tmp_path / "j.npz", allow_pickle=False)
    assert sorted(piped.files) == sorted(written.files)
    for k in written.files:
        np.testing.assert_array_equal(piped[k], written[k])


@pytest.mark.parametrize("case", ["missing", "other", "nonfinite"])
def test_errors(run, tmp_path, capsys, case):
    f, r = run
    if case == "missing":
        argv = ["hamiltonian", str(f), "--run", str(r), "--checkpoint", "123456"]
        code = "Q0530"
    elif case == "other":
        g = tmp_path / "other.qnn"
        g.write_text(NET.replace("= 24", "= 30"))
        argv = ["hamiltonian", str(g), "--run", str(r), "--checkpoint", "0"]
        code = "Q0532"
    else:
        c = ckpt.load_checkpoint(ckpt.resolve_checkpoint(r, 0))
        t = dict(c.tensors)
        t["h1"] = t["h1"].copy()
        t["h1"][0, 0] = np.nan
        from safetensors.numpy import save_file

        bad = tmp_path / "bad"
        ckpt.save_checkpoint(bad, 0, c.tensors, dict(c.meta))
        save_file(t, str(ckpt.checkpoint_path(bad, 0)))
        side = ckpt.checkpoint_path(bad, 0).with_suffix(".json")
        meta = json.loads(side.read_text())
        meta["sha256"] = hashlib.sha256(ckpt.checkpoint_path(bad, 0).read_bytes()).hexdigest()
        side.write_text(json.dumps(meta))  # consistent, but diverged: the NaN is what is refused
        argv = ["hamiltonian", str(f), "--run", str(bad), "--checkpoint", "0"]
        code = "Q0533"
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error[{code}]") and "Traceback" not in err
