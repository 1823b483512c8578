"""`qnnc grad` and `qnnc finetune`: output, the JSON envelope (validated against its
schema), a checkpoint in the training's format, and clean refusals."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from cli_harness import assert_clean, run_cli
from qnnc.runtime.cli.json_output import envelope_schema

ROOT = Path(__file__).resolve().parent.parent
NARROW = str(ROOT / "examples" / "hardware_narrow.qnn")


def test_grad_prints_estimate_stderr_and_cost():
    rc, out, err = run_cli(["grad", NARROW, "--shots", "20", "--images", "2", "--exact"])
    assert rc == 0, err
    assert "17 network variant(s), 0 circuit(s) executed, 20 shots each, 680 passes" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert set(rows) == {"h1", "h2", "y"}
    assert "declared initialisation" in err


def test_grad_json_envelope():
    rc, out, err = run_cli(["grad", NARROW, "--shots", "8", "--estimator", "score", "--json"])
    assert rc == 0, err
    env = json.loads(out)
    jsonschema.validate(env, envelope_schema())
    r = env["result"]
    assert env["command"] == "grad" and r["variants"] == 1 and r["estimator"] == "score"
    assert len(r["gradient"]["h1"]) == 4 and len(r["stderr"]["h1"][0]) == 784


def test_finetune_writes_a_checkpoint_that_eval_reads(tmp_path):
    out_dir = tmp_path / "ft"
    rc, out, err = run_cli(["finetune", NARROW, "--steps", "2", "--batch", "2", "--shots", "4",
                            "--eval-images", "20", "--eval-every", "1", "--out", str(out_dir), "--json"])
    assert rc == 0, err
    env = json.loads(out)
    jsonschema.validate(env, envelope_schema())
    hist = env["result"]["history"]
    assert [h["step"] for h in hist] == [0, 1, 2]
    assert (out_dir / "finetune-history.json").exists()
    rc, out, err = run_cli(["eval", NARROW, "--run", str(out_dir), "--limit", "20"])
    assert rc == 0 and "step 2" in out, err


@pytest.mark.parametrize("argv, code", [
    (["grad", NARROW, "--shots", "1"], None),  # argparse: at least 2
    (["grad", NARROW, "--image", "9999", "--images", "2"], "Q0722"),
    (["grad", NARROW, "--target", "ibm", "--noise", "ibm:fake_brisbane"], "Q0725"),
    (["finetune", NARROW, "--executor", "aer", "--noise", "ibm:fake_brisbane"], "Q0725"),
    (["finetune", NARROW, "--momentum", "1.5"], "Q0722"),
    (["finetune", NARROW, "--layers", "h2", "h9"], "Q0722"),  # before any evaluation
])
def test_refusals_are_clean(argv, code):
    rc, out, err = run_cli(argv)
    assert rc in (1, 2)
    assert_clean(rc, err, argv)
    if code:
        assert f"error[{code}]" in err
