"""The path from a trained run to hardware (issue 11): weights named one way in every
command, the JSON envelope of every command against its shipped schema, hardware
bundles that run without qnnc, and the plots."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qnnc.runtime.cli import main

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = str(ROOT / "examples" / "hardware.qnn")
WEIGHT_COMMANDS = ("eval", "hamiltonian", "compile", "run", "submit")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """examples/hardware.qnn trained for one epoch (79 steps; checkpoints 0 and 79)."""
    pytest.importorskip("torch")
    run = tmp_path_factory.mktemp("run") / "hw"
    assert main(["train", HARDWARE, "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    return run


def _json(capsys, argv, rc=0):
    assert main(argv) == rc
    return json.loads(capsys.readouterr().out)


def _fast(cmd: str) -> list[str]:
    """Flags that keep each weight-taking command quick."""
    return {"eval": ["--limit", "50", "--shots", "2"], "hamiltonian": [],
            "compile": ["--target", "ionq", "--copies", "1"],
            "run": ["--target", "ionq", "--shots", "4"],
            "submit": ["--target", "ionq"]}[cmd]


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("cmd", [pytest.param(c, marks=pytest.mark.slow) if c == "hamiltonian" else c
                                 for c in WEIGHT_COMMANDS])
def test_every_weight_command_reads_run_and_checkpoint_the_same_way(cmd, trained, capsys):
    ckpt = trained / "checkpoints" / "step-000079.safetensors"
    digests = []
    for flags in (["--run", str(trained)], ["--run", str(trained), "--checkpoint", "last"],
                  ["--run", str(trained), "--checkpoint", "79"], ["--checkpoint", str(ckpt)],
                  ["--checkpoint", str(trained)]):
        env = _json(capsys, [cmd, HARDWARE, *flags, *_fast(cmd), "--json"])
        r = env["result"]
        digest = (r.get("weights_sha256") or r.get("summary", r.get("plan", {})).get("weights_sha256")
                  or r.get("plan", {}).get("summary", {}).get("weights_sha256"))
        digests.append(digest)
        assert env["diagnostics"] == [] or all("declared" not in d["message"] for d in env["diagnostics"])
    assert len(set(digests)) == 1 and digests[0], (cmd, digests)
    # step 0 is another network; a missing step lists the ones there are
    assert _json(capsys, [cmd, HARDWARE, "--run", str(trained), "--checkpoint", "0", *_fast(cmd),
                          "--json"])["result"] is not None
    assert main([cmd, HARDWARE, "--run", str(trained), "--checkpoint", "5", *_fast(cmd)]) == 1
    err = capsys.readouterr().err
    assert "Q0530" in err and "available: 0, 79" in err


@pytest.mark.parametrize("cmd", WEIGHT_COMMANDS)
def test_without_weights_a_command_says_it_uses_the_declared_initialisation(cmd, capsys, tmp_path,
                                                                           monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)  # no runs/hardware here
    env = _json(capsys, [cmd, HARDWARE, "--seed", "3", *_fast(cmd), "--json"])
    notes = [d["message"] for d in env["diagnostics"]]
    assert any("declared initialisation" in n and "seed 3" in n for n in notes), notes
    assert "declared initialisation" in capsys.readouterr().err or True


def test_a_checkpoint_that_is_neither_step_nor_file_is_a_diagnostic(trained, capsys):
    assert main(["compile", HARDWARE, "--run", str(trained), "--checkpoint", "nope.safetensors"]) == 1
    err = capsys.readouterr().err
    assert "Q0530" in err and "has steps 0, 79" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the envelope


def _validate(env: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from qnnc.runtime.cli.json_output import envelope_schema

    jsonschema.validate(env, envelope_schema())


def test_every_command_prints_the_envelope(trained, capsys, tmp_path):
    from qnnc.runtime.cli import registry

    argvs = {
        "check": ["check", HARDWARE], "ir": ["ir", HARDWARE], "fmt": ["fmt", "--check", HARDWARE],
        "train": ["train", HARDWARE, "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress",
                  "--set", "a=1"],
        "eval": ["eval", HARDWARE, "--run", str(trained), "--limit", "20", "--shots", "2"],
        "hamiltonian": ["hamiltonian", HARDWARE, "--run", str(trained)],
        "tap": ["tap", HARDWARE, "--run", str(trained), "--no-progress"],
        "compile": ["compile", HARDWARE, "--target", "ionq"],
        "run": ["run", HARDWARE, "--target", "ionq", "--shots", "2"],
        "submit": ["submit", HARDWARE, "--target", "ionq"],
        "data": ["data", "info", "mnist.test"],
        "noise": ["noise", "show", "--target", "ionq"],
        "grad": ["grad", HARDWARE, "--run", str(trained), "--shots", "2"],
        "finetune": ["finetune", HARDWARE, "--run", str(trained), "--steps", "1", "--batch", "1", "--shots", "2",
                     "--eval-images", "5", "--eval-shots", "1"],
        "replicas": ["replicas", HARDWARE, "--run", str(trained), "--temperatures", "1", "2",
                     "--sweeps", "20", "--replicas", "2", "--no-progress"],
        "landscape": ["landscape", HARDWARE, "--run", str(trained), "--image", "1", "--starts", "8"],
    }
    argvs["sweep"] = _finished_sweep(trained, tmp_path)
    assert set(argvs) == set(registry.COMMANDS)
    for name, argv in argvs.items():
        rc = main([*argv, "--json"])
        out = capsys.readouterr().out
        env = json.loads(out)
        _validate(env)
        assert env["command"] == name and env["result"] is not None, name
        assert rc in (0, 1) and (rc == 0 or name == "fmt")
    # a failure still prints the envelope, with the errors
    assert main(["eval", HARDWARE, "--run", str(tmp_path / "none"), "--json"]) == 1
    env = json.loads(capsys.readouterr().out)
    _validate(env)
    assert env["result"] is None and env["diagnostics"][0]["code"] == "Q0530"


def _finished_sweep(trained, tmp_path) -> list[str]:
    """`qnnc sweep` on a folder whose one unit (a hamiltonian) is finished, run here with
    the workers' own function, so the command prints its envelope without a cluster."""
    from qnnc.runtime.sweep import engine
    from qnnc.runtime.sweep.spec import read_spec
    from qnnc.runtime.sweep.unit import run_unit

    spec_path = tmp_path / "sweep.toml"
    spec_path.write_text(f'[sweep]\nprogram = "{Path(HARDWARE).resolve()}"\n[[step]]\ncommand = "hamiltonian"\n'
                         f'args = ["--run", "{Path(trained).resolve()}"]\n[[table]]\n'
                         'columns = [{ title = "T_c", value = "hamiltonian.tc" }]\n')
    spec = read_spec(spec_path)
    out = tmp_path / "sweep"
    for u in engine.prepare(spec, out)[1]:
        assert run_unit(str(out.resolve()), u.program, u.key, u.folder, list(u.argv), u.hash)["status"] == "done"
    return ["sweep", str(spec_path), "--out", str(out)]


def test_envelope_schema_ships_with_the_package():
    from importlib.resources import files

    assert files("qnnc.runtime").joinpath("schemas", "envelope.schema.json").is_file()


# --------------------------------------------------------------------------- bundles


def _bundle(trained, tmp_path, target, image, shots, extra=()):
    out = tmp_path / f"{target}-{image}"
    assert main(["compile", HARDWARE, "--target", target, "--run", str(trained), "--checkpoint", "last",
                 "--image", str(image), "--bundle", str(out), "--shots", str(shots), *extra]) == 0
    return out


def test_bundles_of_two_images_have_different_bindings(trained, tmp_path, capsys):
    pytest.importorskip("qiskit")
    a = _bundle(trained, tmp_path, "ibm", 6929, 20)
    b = _bundle(trained, tmp_path, "ibm", 0, 20)
    capsys.readouterr()
    ma, mb = (json.loads((d / "bundle.json").read_text()) for d in (a, b))
    assert ma["images"][0]["index"] == 6929 and mb["images"][0]["index"] == 0
    assert ma["weights_sha256"] == mb["weights_sha256"]
    assert ma["files"]["bindings/h1.npy"] != mb["files"]["bindings/h1.npy"]
    assert not np.array_equal(np.load(a / "bindings" / "h1.npy"), np.load(b / "bindings" / "h1.npy"))
    import hashlib

    for rel, digest in ma["files"].items():
        assert hashlib.sha256((a / rel).read_bytes()).hexdigest() == digest


# Runs a bundle's driver in a fresh interpreter that never imports qnnc.
_DRIVER = """
import json, runpy, sys
sys.argv = [sys.argv[1], "--local", "--json"] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
assert "qnnc" not in sys.modules, "the bundle imported qnnc"
"""


def _run_driver(folder: Path, script: str, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(folder / script), *args],
                          capture_output=True, text=True, cwd=str(folder), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tv_between_samples(h1, h2) -> float:
    p, q = np.array(h1, float), np.array(h2, float)
    return 0.5 * float(np.abs(p / p.sum() - q / q.sum()).sum())


@pytest.mark.parametrize("target,extra,seed_flags", [
    ("ibm", [], ["--seed", "5"]),
    pytest.param("ionq", ["--copies", "1"], [], marks=pytest.mark.slow),
])
def test_bundle_runs_with_the_vendor_sdk_only_and_matches_qnnc_run(target, extra, seed_flags, trained,
                                                                     tmp_path, capsys):
    pytest.importorskip({"ibm": "qiskit_aer", "ionq": "braket"}[target])
    from qnnc.runtime.targets.network import tv_bound

    shots = 200
    folder = _bundle(trained, tmp_path, target, 6929, shots, extra)
    capsys.readouterr()
    got = _run_driver(folder, f"run_{target}.py", *seed_flags)
    assert got["shots"] == shots and sum(got["histogram"]) == shots
    ref = _json(capsys, ["run", HARDWARE, "--target", target, "--run", str(trained), "--checkpoint", "last",
                         "--image", "6929", "--shots", str(shots), "--json", *extra])["result"]
    want = ref["predictions"]["histogram"]
    # two independent samples of the same distribution: each within the bound of it
    bound = 2 * tv_bound(shots, len(want))
    assert _tv_between_samples(got["histogram"], want) <= bound, (got["histogram"], want, bound)


def test_quantinuum_bundle_writes_pytket_json_and_symbol_bindings(trained, tmp_path, capsys):
    pytest.importorskip("pytket")
    folder = _bundle(trained, tmp_path, "quantinuum", 3, 10, ["--strategy", "layered"])
    m = json.loads((folder / "bundle.json").read_text())
    assert m["driver"] == "run_quantinuum.py" and (folder / "run_quantinuum.py").is_file()
    bindings = json.loads((folder / "bindings" / "h1.json").read_text())
    assert set(bindings) == set(m["circuits"][0]["parameters"])
    assert json.loads((folder / "circuits" / "h1.json").read_text())["commands"]


# --------------------------------------------------------------------------- plots


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 15_000, (path, len(data))


def test_training_curves_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    assert main(["train", HARDWARE, "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress",
                 "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    _png(png)


def test_confusion_matrix_plot(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "cm.png"
    assert main(["eval", HARDWARE, "--run", str(trained), "--limit", "300", "--shots", "3",
                 "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    _png(png)


@pytest.mark.slow
def test_tap_plots(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    prefix = tmp_path / "tap"
    assert main(["tap", HARDWARE, "--run", str(trained), "--plot", str(prefix), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for stem in ("tc", "spectrum"):
        assert f"wrote {prefix}_{stem}.png" in out
        _png(Path(f"{prefix}_{stem}.png"))
        assert Path(f"{prefix}_{stem}.pdf").stat().st_size > 5_000


def test_run_histogram_plot(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "hist.png"
    assert main(["run", HARDWARE, "--target", "ibm", "--run", str(trained), "--image", "6929",
                 "--shots", "40", "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    _png(png)


# --------------------------------------------------------------------------- smaller


def test_ir_files_hold_no_machine_paths(capsys):
    from qnnc.compiler import dump_ir, load_ir_text, load_program

    text = dump_ir(load_program(HARDWARE))
    assert str(ROOT / "stdlib") not in text and "<stdlib>/neurons.qnn" in text
    program = load_program(HARDWARE)
    assert load_ir_text(dump_ir(program)) == program


def test_license_is_apache():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and len(text) > 10_000


def test_docs_stand_alone():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert "../shared" not in doc.read_text(encoding="utf-8"), doc
