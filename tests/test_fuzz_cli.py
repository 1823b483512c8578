"""Fuzzing the command line in-process: every command's flags with values drawn per flag
(negative, zero, huge, NaN/inf, empty, unicode, wrong type), output paths (unwritable,
special files, symbolic links, an existing file where a folder is needed), and secrets
that must never reach a diagnostic.

A value a flag refuses is bad usage (exit 2, Q0407); a value it accepts reaches the
program file, which here does not exist (exit 1, Q0404). Either way: a diagnostic with
a code, never Q0000, never a traceback.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from cli_harness import assert_clean, run_cli, without_notes
from qnnc.runtime.cli import output

ROOT = Path(__file__).resolve().parent.parent
VALUES = ["-1", "0", "1", "7", str(2 ** 63), str(2 ** 64 + 1), "1" + "0" * 12, "9" * 5000, "nan", "inf",
          "-inf", "", "é", "\ud800", "abc", "1.5", "1e999", "0x10", "\x00", " 3 ", "--", "-"]

FLAGS: dict[str, list[str]] = {
    "check": ["--set", "--network"],
    "ir": ["--set", "--network", "-o"],
    "fmt": [],
    "train": ["--epochs", "--lr", "--momentum", "--batch", "--seed", "--out", "--set", "--network"],
    "eval": ["--shots", "--limit", "--seed", "--data", "--checkpoint", "--run"],
    "hamiltonian": ["--seed", "--temperature", "-o", "--format", "--checkpoint", "--run"],
    "tap": ["--temperature", "--starts", "--window", "--plot", "-o", "--run"],
    "compile": ["--image", "--copies", "--max-qubits", "--max-table-width", "--weight-bits", "--noise-pairs",
                "--seed", "-o", "--target", "--strategy", "--backend", "--data", "--checkpoint", "--noise-kind"],
    "run": ["--shots", "--plot", "--simulator", "--image", "--noise-pairs", "--seed"],
    "submit": ["--shots", "-o", "--target", "--seed"],
}
FLAG_CASES = sum(len(f) for f in FLAGS.values()) * len(VALUES) + len(VALUES) * 3  # + global and data
OUTPUT_CASES = 9 * 4  # path kinds x writers
PATH_CASES = 6 * 3




def _starts_with_error(err: str, code: str) -> bool:
    """The first thing said, after any `note:` lines, is the error with this code."""
    return without_notes(err).startswith(f"error[{code}]")

def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "no-such-program.qnn")


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_flag_values(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for flag in FLAGS[command]:
        for value in VALUES:
            extra = [value, "5"] if flag == "--window" else [value]
            argv = [command, _missing(tmp_path), flag, *extra]
            rc, out, err = run_cli(argv)
            assert_clean(rc, err, argv)
            assert rc in (1, 2), (argv, rc)
            assert ("Q0404" in err) == (rc == 1) or "Q0401" in err, (argv, err)


def test_global_and_data_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for value in VALUES:
        for argv in (["--error-format", value, "check", "x.qnn"], ["data", "info", value or "x"],
                     ["data", "verify", "--dir", value]):
            rc, out, err = run_cli(argv)
            assert_clean(rc, err, argv)


def test_seeds_and_counts_are_bounded_at_parse_time(tmp_path):
    """The issue's examples: negative or too large seeds, NaN learning rate, huge counts."""
    f = _missing(tmp_path)
    for argv in (["eval", f, "--seed", "-1"], ["hamiltonian", f, "--seed", "-1"], ["train", f, "--seed", str(2 ** 64)],
                 ["train", f, "--lr", "nan"], ["train", f, "--epochs", str(10 ** 12)], ["eval", f, "--shots", str(10 ** 12)],
                 ["run", f, "--shots", str(10 ** 12)], ["compile", f, "--noise-pairs", str(10 ** 6)],
                 ["train", f, "--out", ""], ["tap", f, "--window", "5", "1"], ["tap", f, "--window", "nan", "inf"]):
        rc, out, err = run_cli(argv)
        assert rc == 2 and _starts_with_error(err, "Q0407"), (argv, err)


# --------------------------------------------------------------------------- output paths

PROGRAM = """
network tiny {
    input x[2, 2]
    layer h1[3] = sign of dense(x, bias = off)
    output y[2] = linear of dense(h1, bias = off)
}
"""


def _path_kinds(tmp_path: Path) -> dict[str, tuple[str, bool]]:
    """name -> (path, whether a write may succeed)."""
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    (tmp_path / "link.txt").symlink_to(target)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "made-by-link.txt")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    return {"proc": ("/proc/qnnc/out.txt", False), "device": ("/dev/null", False),
            "fifo": (str(tmp_path / "fifo"), False), "folder": (str(tmp_path / "folder"), False),
            "under a file": (str(target) + "/sub.txt", False), "link": (str(tmp_path / "link.txt"), True),
            "dangling": (str(tmp_path / "dangling.txt"), True), "sys": ("/sys/qnnc.txt", False),
            "plain": (str(tmp_path / "new" / "out.txt"), True)}


def test_output_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    program = tmp_path / "tiny.qnn"
    program.write_text(PROGRAM)
    kinds = _path_kinds(tmp_path)
    for name, (path, writable) in kinds.items():
        for argv in (["ir", str(program), "-o", path], ["hamiltonian", str(program), "-o", path],
                     ["hamiltonian", str(program), "--format", "npz", "-o", path],
                     ["tap", str(program), "--run", str(tmp_path / "no-run"), "-o", path]):
            rc, out, err = run_cli(argv)
            assert_clean(rc, err, (name, argv))
            if argv[0] != "tap":
                assert (rc == 0) == writable, (name, argv, err)
                if not writable:
                    assert _starts_with_error(err, "Q0405"), (name, argv, err)
    assert os.path.islink(tmp_path / "link.txt") and (tmp_path / "target.txt").read_bytes().startswith(b"PK")
    assert os.path.islink(tmp_path / "dangling.txt") and (tmp_path / "made-by-link.txt").is_file()
    assert Path("/dev/null").is_char_device()


def test_fmt_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real.qnn"
    real.write_text("network   tiny {\n input x[2]\n output y[2] = linear of dense(x)\n}\n")
    link = tmp_path / "link.qnn"
    link.symlink_to(real)
    rc, out, err = run_cli(["fmt", str(link)])
    assert rc == 0, err
    assert link.is_symlink() and real.read_text().startswith("network tiny {")


def test_library_writer_refuses_special_files(tmp_path):
    kinds = _path_kinds(tmp_path)
    for name, (path, writable) in kinds.items():
        for write in (lambda p: output.write_text(p, "x\n"), lambda p: output.write_bytes(p, b"x")):
            try:
                write(path)
                assert writable, name
            except Exception as exc:  # noqa: BLE001
                from qnnc.compiler.diagnostics import QnncError

                assert isinstance(exc, QnncError) and not writable, (name, exc)
                assert exc.diagnostics[0].code == "Q0405"


def test_a_full_disk_is_a_clean_error(tmp_path):
    """`ulimit -f`: a write past the limit fails (EFBIG) and leaves nothing behind."""
    import subprocess
    import sys

    program = tmp_path / "tiny.qnn"
    program.write_text(PROGRAM)
    code = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))\n"
            "from qnnc.runtime.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    for argv in (["ir", str(program), "-o", str(tmp_path / "big.json")],
                 ["hamiltonian", str(program), "--format", "npz", "-o", str(tmp_path / "big.npz")]):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and _starts_with_error(r.stderr, "Q0405"), r.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.qnn"]


# --------------------------------------------------------------------------- secrets

SECRET = "qnnc-fuzz-secret-7f3a9c"


def test_no_secret_reaches_a_diagnostic(tmp_path, monkeypatch):
    """A secret in the environment and in a credentials file: an import of
    /proc/self/environ, an import of the credentials file, and IR whose spans name
    either file all fail, and the secret appears nowhere in stdout or stderr."""
    monkeypatch.setenv("QNNC_TEST_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    creds = tmp_path / "credentials"
    creds.write_text(f"[default]\naws_secret_access_key = {SECRET}\n" * 3)
    from qnnc.compiler import dump_ir, parse_program
    import json

    doc = json.loads(dump_ir(parse_program(PROGRAM, "tiny.qnn")))
    cases = []
    for target in ("/proc/self/environ", str(creds)):
        q = tmp_path / f"imports-{len(cases)}.qnn"
        q.write_text(f'import e from "{target}"\n' + PROGRAM)
        cases.append(["check", str(q)])

        def spans(obj):
            if isinstance(obj, dict):
                if "end_col" in obj:
                    obj["file"] = target
                    obj["line"] = 1
                for v in obj.values():
                    spans(v)
            elif isinstance(obj, list):
                for v in obj:
                    spans(v)

        bad = json.loads(json.dumps(doc))
        spans(bad)
        bad["networks"][0]["layers"][0]["size"] = 0  # the verifier reports, pointing at a span
        ir_file = tmp_path / f"spans-{len(cases)}.json"
        ir_file.write_text(json.dumps(bad))
        cases.append(["check", str(ir_file)])
        cases.append(["--error-format", "json", "check", str(ir_file)])
    for argv in cases:
        rc, out, err = run_cli(argv)
        assert rc == 1, (argv, err)
        assert_clean(rc, err, argv)
        assert SECRET not in out and SECRET not in err, (argv, err)
        assert "aws_secret" not in err and "QNNC_TEST_SECRET" not in err, (argv, err)


def test_special_files_as_sources(tmp_path):
    fifo = tmp_path / "fifo.qnn"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo), "/proc/self/environ", str(tmp_path)):
        for command in ("check", "fmt", "ir"):
            rc, out, err = run_cli([command, path])
            assert rc == 1 and _starts_with_error(err, "Q0405"), (path, err)


def test_case_count():
    """The default run fuzzes at least 5,000 cases over every input kind."""
    import test_fuzz
    import test_fuzz_files

    qnn = test_fuzz.CASES_PER_KIND * len(test_fuzz.KINDS) * len(test_fuzz.SOURCES)
    total = qnn + test_fuzz_files.FILE_CASES + FLAG_CASES + OUTPUT_CASES + PATH_CASES
    assert total >= 5000, total
    np.testing.assert_equal(total > 0, True)
