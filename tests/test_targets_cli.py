"""`qnnc compile` / `qnnc run` command modules (the lead wires them into the CLI):
flags, summaries, atomic output files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = str(ROOT / "examples" / "hardware.qnn")


def run_cmd(module: str, argv: list[str]) -> int:
    import importlib

    mod = importlib.import_module(f"qnnc.runtime.cli.{module}")
    p = argparse.ArgumentParser()
    mod.add_arguments(p)
    return mod.run(p.parse_args(argv))


def test_compile_summary_json(capsys, tmp_path):
    out = tmp_path / "hw.json"
    assert run_cmd("compile", [HARDWARE, "--target", "ibm", "--json", "-o", str(out)]) == 0
    s = json.loads(capsys.readouterr().out)["result"]
    assert s["strategy"] == "layered" and s["target"] == "ibm" and s["backend"] == "fake_brisbane"
    assert [l["name"] for l in s["layers"]] == ["h1", "h2", "h3"]
    for key in ("qubits", "depth", "two_qubit_gates", "measurements", "conditionals"):
        assert key in s["total"] and key in s["layers"][0] and key in s["circuits"][0]
    bundle = json.loads(out.read_text())
    assert bundle["format"] == "qnnc-circuits/1" and len(bundle["circuits"]) == 3
    assert bundle["circuits"][0]["qasm3"].startswith("OPENQASM 3.0;")


def test_compile_writes_one_file_per_circuit(capsys, tmp_path):
    out = tmp_path / "hw.qasm"
    assert run_cmd("compile", [HARDWARE, "--target", "ionq", "-o", str(out), "--copies", "1",
                                   "--set", "a=0.2"]) == 0
    text = capsys.readouterr().out
    assert "strategy `layered`" in text
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["hw.h1.qasm", "hw.h2.qasm", "hw.h3.qasm"]
    assert "#pragma braket verbatim" in (tmp_path / "hw.h2.qasm").read_text()


def test_compile_dynamic_single_file(tmp_path, capsys):
    out = tmp_path / "w.qasm"
    weak = str(ROOT / "examples" / "weak.qnn")
    assert run_cmd("compile", [weak, "--set", "width=3", "--target", "quantinuum",
                                   "--noise-pairs", "2", "-o", str(out)]) == 0
    assert "strategy `dynamic`" in capsys.readouterr().out
    assert out.read_text().startswith("OPENQASM 2.0;\ninclude \"hqslib1.inc\";")


def test_run_json_and_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "h.png"
    assert run_cmd("run", [HARDWARE, "--target", "quantinuum", "--shots", "10", "--json",
                               "--image", "3", "--plot", str(png)]) == 0
    r = json.loads(capsys.readouterr().out)["result"]
    assert r["shots"] == 10 and sum(r["predictions"]["histogram"]) == 10
    assert set(r["layers"]) == {"h1", "h2", "h3"}
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_run_ionq_fits_the_local_simulator(capsys):
    assert run_cmd("run", [HARDWARE, "--target", "ionq", "--shots", "4"]) == 0
    assert "predictions" in capsys.readouterr().out


def test_run_and_compile_report_quantised_weights(capsys):
    """`--weight-bits` changes the network that runs: both commands say so."""
    pytest.importorskip("pytket.extensions.quantinuum")
    argv = [HARDWARE, "--target", "quantinuum", "--strategy", "dynamic", "--weight-bits", "4"]
    assert run_cmd("compile", argv) == 0
    out = capsys.readouterr().out
    assert out.count("quantised (4 bits)") == 2, out  # layers h2 and h3
    from pytket.extensions.quantinuum import have_pecos

    if have_pecos():
        assert run_cmd("run", argv + ["--shots", "4"]) == 0
        out = capsys.readouterr().out
        assert out.count("note: weights of") == 2, out


def test_compile_output_errors_are_diagnostics(capsys, tmp_path):
    """An unwritable -o is Q0405, as for every command; `-o -` takes one circuit only."""
    from qnnc.compiler.diagnostics import QnncError

    (tmp_path / "file").write_text("x")
    with pytest.raises(QnncError) as exc:
        run_cmd("compile", [HARDWARE, "--target", "ibm", "-o", str(tmp_path / "file" / "hw.json")])
    assert exc.value.diagnostics[0].code == "Q0405" and exc.value.exit_code == 1
    with pytest.raises(QnncError) as exc:
        run_cmd("compile", [HARDWARE, "--target", "ibm", "-o", "-"])
    assert exc.value.diagnostics[0].code == "Q0407" and exc.value.exit_code == 2
