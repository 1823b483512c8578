"""Golden diagnostics: each `tests/golden/errors/NAME.qnn` is checked with the CLI
in-process and its stderr must equal `NAME.err` byte for byte.

The case runs from inside `tests/golden/errors` with a relative path, so the goldens
name `NAME.qnn`, not a machine's checkout. A case's first lines may hold
`# args: ...` (extra command-line arguments, e.g. `--set a=abc`) and `# exit: N` (the
expected exit status; 1 when absent). Helper modules that cases import live in `lib/`.

Regenerate after an intended change with `QNNC_UPDATE_GOLDEN=1 pytest
tests/test_golden_errors.py`, then read every changed `.err`: the message, the caret,
the label and the help must be right.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from qnnc.runtime.cli import main

GOLDEN = Path(__file__).parent / "golden" / "errors"
CASES = sorted(p.stem for p in GOLDEN.glob("*.qnn"))
UPDATE = bool(os.environ.get("QNNC_UPDATE_GOLDEN"))


def _header(name: str) -> tuple[list[str], int]:
    args: list[str] = []
    exit_code = 1
    with open(GOLDEN / f"{name}.qnn", "rb") as fh:
        head = fh.read(400).decode("utf-8", errors="replace").split("\n")[:3]
    for line in head:
        if line.startswith("# args:"):
            args = shlex.split(line[len("# args:"):])
        elif line.startswith("# exit:"):
            exit_code = int(line[len("# exit:"):])
    return args, exit_code


def _run(name: str, capsys, monkeypatch, *global_args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(GOLDEN)
    args, _ = _header(name)
    rc = main([*global_args, "check", f"{name}.qnn", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_enough_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_golden(name, capsys, monkeypatch):
    rc, out, err = _run(name, capsys, monkeypatch)
    golden = GOLDEN / f"{name}.err"
    if UPDATE:
        golden.write_text(err, encoding="utf-8")
    assert rc == _header(name)[1], err
    assert out == ""  # nothing is reported as checked
    assert "Traceback" not in err and "internal error" not in err and "Q0000" not in err
    assert err == golden.read_text(encoding="utf-8")


def test_no_orphan_goldens():
    """Every `.err` belongs to a case (a renamed case must not leave a stale golden)."""
    assert sorted(p.stem for p in GOLDEN.glob("*.err")) == CASES


# The codes the goldens must keep covering: the list of user errors.
REQUIRED = {
    "unexpected_token": "Q0101", "unterminated_block": "Q0103", "unterminated_string": "Q0104",
    "unexpected_character": "Q0102", "unexpected_end": "Q0105", "invalid_utf8": "Q0106",
    "unknown_layer": "Q0201", "unknown_parameter": "Q0202", "unknown_activation": "Q0203",
    "unknown_gate": "Q0204", "unknown_stdlib_module": "Q0205", "import_not_found": "Q0225",
    "duplicate_param": "Q0206", "duplicate_layer": "Q0206", "carried_width_mismatch": "Q0207",
    "pool_not_dividing": "Q0207", "negative_a": "Q0208", "g_out_of_range": "Q0208",
    "no_emit": "Q0209", "undeclared_ancilla": "Q0210", "circular_import": "Q0211",
    "huge_layer": "Q0212", "type_mismatch": "Q0213", "unknown_function": "Q0215",
    "gate_arity": "Q0223", "last_without_carried": "Q0227", "output_not_last": "Q0216",
    "skip_connection": "Q0216", "unknown_dataset": "Q0230", "unknown_optimizer": "Q0219",
    "unknown_type": "Q0220", "division_by_zero": "Q0221", "reserved_name": "Q0206",
    "set_bad_value": "Q0403", "set_unknown_parameter": "Q0402", "set_bad_syntax": "Q0401",
}
DID_YOU_MEAN = ["unknown_layer", "unknown_parameter", "unknown_gate", "unknown_stdlib_module",
                "import_not_found", "unknown_function", "unknown_dataset", "unknown_optimizer",
                "unknown_type", "unknown_readout", "unknown_init", "unknown_neuron_argument",
                "train_unknown_network"]


@pytest.mark.parametrize("name,code", sorted(REQUIRED.items()))
def test_required_case(name, code):
    text = (GOLDEN / f"{name}.err").read_text(encoding="utf-8")
    assert text.startswith(f"error[{code}]: ")


@pytest.mark.parametrize("name", DID_YOU_MEAN)
def test_did_you_mean(name):
    assert re.search(r"= help: did you mean `[^`]+`\?", (GOLDEN / f"{name}.err").read_text(encoding="utf-8"))


def test_multiple_errors_in_one_run():
    text = (GOLDEN / "multiple_errors.err").read_text(encoding="utf-8")
    codes = re.findall(r"^error\[(Q\d{4})\]", text, re.M)
    assert len(codes) >= 3 and len(set(codes)) >= 3
    assert text.endswith(f"error: aborting due to {len(codes)} previous errors\n")
    lines = [int(n) for n in re.findall(r"--> multiple_errors\.qnn:(\d+):", text)]
    assert lines == sorted(lines)  # reported in source order


def test_cli_cases_exit_2():
    """Command-line misuse exits 2, errors in the program 1."""
    for name in CASES:
        text = (GOLDEN / f"{name}.err").read_text(encoding="utf-8")
        cli_error = re.match(r"error\[Q04", text) is not None
        assert _header(name)[1] == (2 if cli_error else 1), name


def _text_diagnostics(err: str) -> list[tuple]:
    """(code, message, file, line, col) of each diagnostic of a text rendering."""
    out = []
    for block in err.split("\n\n"):
        m = re.match(r"error\[(Q\d{4})\]: (.*)", block)
        if not m:
            continue
        loc = re.search(r"--> (.+):(\d+):(\d+)$", block, re.M)
        out.append((m.group(1), m.group(2)) + ((loc.group(1), int(loc.group(2)), int(loc.group(3))) if loc else ()))
    return out


@pytest.mark.parametrize("name", ["multiple_errors", "unknown_layer", "circular_import", "set_bad_value",
                                  "unterminated_block", "huge_layer"])
def test_json_format(name, capsys, monkeypatch):
    """`--error-format json` reports the same diagnostics as the text golden."""
    rc, out, err = _run(name, capsys, monkeypatch, "--error-format", "json")
    assert rc == _header(name)[1]
    diags = json.loads(err)["diagnostics"]
    got = [(d["code"], d["message"]) + ((d["file"], d["line"], d["col"]) if "file" in d else ())
           for d in diags]
    assert got == _text_diagnostics((GOLDEN / f"{name}.err").read_text(encoding="utf-8"))
    for d in diags:
        assert d["severity"] == "error"
        if "file" in d:
            assert d["end_line"] >= d["line"] and (d["end_line"], d["end_col"]) > (d["line"], d["col"])


def test_a_span_without_source_shows_no_snippet_of_a_program_parsed_under_the_same_name():
    """IR built by code carries NO_SPAN ("<generated>", 1:1); a program parsed under that
    pseudo-name earlier in the process must not lend it a line it never had."""
    from qnnc.compiler import parse_program
    from qnnc.compiler.diagnostics import Diagnostic, render
    from qnnc.compiler.ir import NO_SPAN

    parse_program("param unrelated = 1\n", "<generated>")
    text = render(Diagnostic("Q0311", "from generated IR", NO_SPAN))
    assert "unrelated" not in text and " --> <generated>:1:1" in text
