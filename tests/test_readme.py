"""The README's tour: every `$ command` of its ```sh blocks runs verbatim, in order, in a
fresh folder holding a copy of examples/ and a link to this virtual environment; it
succeeds (or, where the README shows an `error[...]`, fails with that error) and prints
every line the README shows under it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tour() -> list[tuple[str, list[str]]]:
    """(command, lines shown under it) for every `$ ` line of the README's sh blocks."""
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps and line.strip() and not block.lstrip().startswith(line):
                steps[-1][1].append(line.rstrip())
    return steps


def test_the_tour_is_found():
    steps = tour()
    commands = [c for c, _ in steps]
    assert any(c.startswith(".venv/bin/qnnc train examples/hardware.qnn") for c in commands)
    assert any("--bundle bundle-ibm" in c for c in commands)
    assert any(c.startswith(".venv/bin/python bundle-ibm/run_ibm.py") for c in commands)
    assert all(shown for c, shown in steps if "qnnc train" in c or "qnnc eval" in c)


@pytest.mark.slow
def test_readme_tour_runs_verbatim(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    venv = Path(sys.executable).resolve().parents[1] if not (ROOT / ".venv").exists() else ROOT / ".venv"
    (tmp_path / ".venv").symlink_to(venv)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for command, shown in tour():
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=600)
        printed = [l.rstrip() for l in (proc.stdout + proc.stderr).splitlines()]
        fails = bool(shown) and shown[0].startswith("error[")
        assert (proc.returncode != 0) == fails, (command, proc.returncode, proc.stderr[-1500:])
        for line in shown:
            assert line in printed, (command, line, printed[:40])
