"""The `qnnc` command line: commands, exit codes, files written, no tracebacks.

Commands run in-process through `qnnc.runtime.cli.main` (stdout/stderr captured);
one test runs `python -m qnnc` as a real process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from qnnc.compiler import dump_ir, format_source, parse_program
from qnnc.runtime.cli import main, registry
from qnnc.compiler.serialize import shipped_schema

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*.qnn"))
SOURCES = EXAMPLES + sorted(ROOT.glob("stdlib/*.qnn"))
MNIST = ROOT / "examples" / "mnist.qnn"
VALIDATOR = Draft202012Validator(shipped_schema())

BAD_PROGRAM = """import neurons from stdlib
network net {
    input x[4]
    layer h[4] = rotaton(0.5) of dense(x)
    output y[2] = linear of dense(h)
}
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`qnnc ARGV` in-process: (exit status, stdout, stderr). argparse's own exits
    (`--help`) count as returns."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Q0000" not in err and "internal error" not in err, err
    return rc, out, err


@pytest.fixture
def bad_file(tmp_path) -> Path:
    p = tmp_path / "bad.qnn"
    p.write_text(BAD_PROGRAM)
    return p


# --------------------------------------------------------------------------- help


def _listed_commands(help_text: str) -> list[str]:
    section = help_text.split("COMMAND\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^    (\w+)", section, re.M)


def test_help_lists_exactly_the_commands(capsys):
    rc, out, err = run(capsys, "--help")
    assert rc == 0 and err == ""
    listed = _listed_commands(out)
    assert listed == list(registry.COMMANDS)
    assert {"check", "ir", "fmt"} <= set(listed)


def test_every_listed_command_works(capsys):
    """Each listed command has working `--help`, and the compiler's commands run."""
    _, out, _ = run(capsys, "--help")
    for command in _listed_commands(out):
        rc, sub_out, err = run(capsys, command, "--help")
        assert rc == 0, (command, err)
        assert sub_out.startswith(f"usage: qnnc {command}"), command
    for module, _help in registry.COMMANDS.values():
        mod = __import__(module, fromlist=["run"])
        assert callable(mod.run) and callable(mod.add_arguments)
    assert run(capsys, "check", str(MNIST))[0] == 0
    assert run(capsys, "ir", str(MNIST))[0] == 0
    assert run(capsys, "fmt", "--check", str(MNIST))[0] == 0


def test_no_command_prints_help_and_exits_2(capsys):
    rc, out, _ = run(capsys)
    assert rc == 2 and "usage: qnnc" in out


def test_version(capsys):
    from qnnc import __version__

    assert run(capsys, "--version") == (0, f"qnnc {__version__}\n", "")


def test_unknown_command_suggests(capsys):
    rc, out, err = run(capsys, "chek", str(MNIST))
    assert rc == 2 and out == ""
    assert err.startswith("error[Q0407]:") and "did you mean `check`?" in err


def test_unknown_option_exits_2(capsys):
    rc, _, err = run(capsys, "check", "--bogus", str(MNIST))
    assert rc == 2 and "error[Q0407]" in err


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "qnnc", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: qnnc") and proc.stderr == ""


_HEAVY = ("numpy", "torch", "scipy", "matplotlib", "qiskit", "qiskit_aer", "braket", "pytket")


def _modules_loaded_by(*argv: str) -> set[str]:
    """The modules `qnnc ARGV` imports, in a fresh interpreter."""
    code = ("import sys; from qnnc.runtime.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('\\n'.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    return set(proc.stderr.splitlines())


def test_help_imports_no_command_module():
    loaded = _modules_loaded_by("--help")
    commands = {module for module, _help in registry.COMMANDS.values()}
    assert not loaded & commands
    assert not {m for m in loaded if m.split(".")[0] in _HEAVY}


@pytest.mark.parametrize("argv", [["check", str(MNIST)], ["fmt", "--check", str(MNIST)], ["ir", str(MNIST)]])
def test_compiler_commands_import_only_the_compiler(argv):
    loaded = _modules_loaded_by(*argv)
    assert registry.COMMANDS[argv[0]][0] in loaded
    others = {module for name, (module, _help) in registry.COMMANDS.items() if name != argv[0]}
    assert not loaded & others
    assert not {m for m in loaded if m.split(".")[0] in _HEAVY}
    assert not {m for m in loaded if m.startswith("qnnc.runtime.") and not m.startswith("qnnc.runtime.cli")}


def test_compiler_layer_names_no_runtime_module():
    """The compiler core imports nothing from the runtime, not even by a string."""
    pattern = re.compile(r"(import\s+qnnc\.runtime|from\s+qnnc\.runtime|from\s+qnnc\s+import\s+runtime"
                         r"|[\"']qnnc\.runtime)")
    offenders = [f"{path}:{n}" for path in sorted((ROOT / "compiler").rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_real_process_reports_without_traceback(bad_file):
    proc = subprocess.run([sys.executable, "-m", "qnnc", "check", str(bad_file)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error[Q0203]: unknown neuron or activation `rotaton`")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# --------------------------------------------------------------------------- check


def test_check_accepts_every_shipped_file(capsys):
    rc, out, err = run(capsys, "check", *map(str, SOURCES))
    assert rc == 0 and err == ""
    assert [line.split(": ")[1] for line in out.splitlines()] == list(map(str, SOURCES))
    assert all(line.startswith("ok: ") for line in out.splitlines())
    assert f"ok: {MNIST}: network mnist 784-512-512-10\n" in out


def test_check_reports_every_bad_file(capsys, bad_file, tmp_path):
    other = tmp_path / "other.qnn"
    other.write_text("param a = \n")
    rc, out, err = run(capsys, "check", str(MNIST), str(bad_file), str(other))
    assert rc == 1
    assert out == f"ok: {MNIST}: network mnist 784-512-512-10\n"
    assert "error[Q0203]" in err and "error[Q0105]" in err


def test_check_missing_file(capsys, tmp_path):
    rc, out, err = run(capsys, "check", str(tmp_path / "nope.qnn"))
    assert rc == 1 and out == "" and err.startswith("error[Q0404]: no such file")


def test_check_directory(capsys, tmp_path):
    rc, _, err = run(capsys, "check", str(tmp_path))
    assert rc == 1 and err.startswith("error[Q0405]")


def test_check_network_selection(capsys):
    assert run(capsys, "check", "--network", "mnist", str(MNIST))[0] == 0
    rc, _, err = run(capsys, "check", "--network", "mnsit", str(MNIST))
    assert rc == 2 and "error[Q0232]" in err and "did you mean `mnist`?" in err


def test_check_ir_json(capsys, tmp_path):
    path = tmp_path / "mnist.json"
    path.write_text(dump_ir(parse_program(MNIST.read_text(), str(MNIST))))
    rc, out, _ = run(capsys, "check", str(path))
    assert rc == 0 and out.startswith(f"ok: {path}: network mnist")
    rc, _, err = run(capsys, "check", str(path), "--set", "a=1")
    assert rc == 2 and "error[Q0406]" in err


def test_error_format_json(capsys, bad_file):
    rc, out, err = run(capsys, "--error-format", "json", "check", str(bad_file))
    assert rc == 1 and out == ""
    (d,) = json.loads(err)["diagnostics"]
    assert (d["code"], d["file"], d["line"], d["col"]) == ("Q0203", str(bad_file), 4, 18)
    assert d["help"] == "did you mean `rotation`?"
    rc, _, err = run(capsys, "--error-format=json", "chek")
    assert rc == 2 and json.loads(err)["diagnostics"][0]["code"] == "Q0407"


# --------------------------------------------------------------------------- --set


@pytest.mark.parametrize("args,rc,code", [
    (["--set", "a=0"], 0, None),
    (["--set", "a=pi / 4", "--set", "width=8"], 0, None),
    (["--set", "a=abc"], 2, "Q0403"),
    (["--set", "a=-1"], 2, "Q0403"),
    (["--set", "width=2.5"], 2, "Q0403"),
    (["--set", "a=1e999"], 2, "Q0403"),
    (["--set", "alpha=1"], 2, "Q0402"),
    (["--set", "a"], 2, "Q0401"),
    (["--set", "=1"], 2, "Q0401"),
    (["--set", "a=1", "--set", "a=2"], 2, "Q0401"),
    (["--set", "a=" + "(" * 5000], 2, "Q0403"),
])
def test_set(capsys, args, rc, code):
    got, out, err = run(capsys, "check", str(MNIST), *args)
    assert got == rc, err
    if code is None:
        assert err == "" and out.startswith("ok: ")
    else:
        assert out == "" and err.startswith(f"error[{code}]")


def test_set_changes_the_ir(capsys):
    rc, out, _ = run(capsys, "ir", str(MNIST), "--set", "width=8", "--set", "a=0.25")
    assert rc == 0
    doc = json.loads(out)
    assert [l["size"] for l in doc["networks"][0]["layers"]] == [8, 8, 10]
    params = {p["name"]: p for p in doc["params"]}
    assert params["a"]["value"] == 0.25 and params["a"]["overridden"] is True
    assert params["width"]["value"] == 8 and params["width"]["type"] == "int"
    binding = doc["networks"][0]["layers"][0]["activation"]["args"][0]
    assert binding["name"] == "a" and binding["value"] == 0.25


# --------------------------------------------------------------------------- ir


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_ir_validates(capsys, path):
    rc, out, err = run(capsys, "ir", str(path))
    assert rc == 0 and err == ""
    VALIDATOR.validate(json.loads(out))


def test_ir_schema_option(capsys):
    rc, out, _ = run(capsys, "ir", "--schema")
    assert rc == 0 and json.loads(out) == shipped_schema()


def test_ir_needs_a_file(capsys):
    rc, _, err = run(capsys, "ir")
    assert rc == 2 and err.startswith("error[Q0407]")


def test_ir_output_file(capsys, tmp_path):
    out_path = tmp_path / "sub" / "mnist.json"
    rc, out, _ = run(capsys, "ir", str(MNIST), "-o", str(out_path))
    assert rc == 0 and out == f"wrote {out_path}\n"
    assert out_path.read_text() == dump_ir(parse_program(MNIST.read_text(), str(MNIST)))
    assert sorted(p.name for p in out_path.parent.iterdir()) == ["mnist.json"]  # no temporary left


def test_ir_output_is_atomic(capsys, tmp_path, bad_file):
    """A bad program leaves no output file, and an existing one untouched."""
    out_path = tmp_path / "out.json"
    rc, out, err = run(capsys, "ir", str(bad_file), "-o", str(out_path))
    assert rc == 1 and "error[Q0203]" in err
    assert not out_path.exists()
    out_path.write_text("previous contents")
    assert run(capsys, "ir", str(bad_file), "-o", str(out_path))[0] == 1
    assert run(capsys, "ir", str(MNIST), "--set", "a=oops", "-o", str(out_path))[0] == 2
    assert out_path.read_text() == "previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.qnn", "out.json"]


def test_ir_output_to_an_unwritable_path(capsys, tmp_path):
    (tmp_path / "folder").mkdir()
    rc, _, err = run(capsys, "ir", str(MNIST), "-o", str(tmp_path / "folder"))
    assert rc == 1 and err.startswith(f"error[Q0405]: cannot write {tmp_path / 'folder'}")
    (tmp_path / "file").write_text("x")
    rc, _, err = run(capsys, "ir", str(MNIST), "-o", str(tmp_path / "file" / "out.json"))
    assert rc == 1 and err.startswith("error[Q0405]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"] and not any((tmp_path / "folder").iterdir())


def test_ir_output_dash_is_standard_output(capsys, tmp_path):
    assert run(capsys, "ir", str(MNIST), "-o", "-") == run(capsys, "ir", str(MNIST))
    assert not any(tmp_path.iterdir()) and not Path("-").exists()


def test_written_files_get_ordinary_permissions(capsys, tmp_path):
    """Atomic writes go through a private temporary file; the result must not stay 0600."""
    umask = os.umask(0o022)
    os.umask(umask)
    out_path = tmp_path / "new.json"
    assert run(capsys, "ir", str(MNIST), "-o", str(out_path))[0] == 0
    assert out_path.stat().st_mode & 0o777 == 0o666 & ~umask
    source = tmp_path / "prog.qnn"
    source.write_text(MNIST.read_text() + "\n\n")
    source.chmod(0o640)
    assert run(capsys, "fmt", str(source))[0] == 0
    assert source.read_text() == MNIST.read_text() and source.stat().st_mode & 0o777 == 0o640


def test_ir_output_killed_midway_leaves_old_file(capsys, tmp_path, monkeypatch):
    """If writing fails halfway, the old file stays and no temporary remains."""
    out_path = tmp_path / "out.json"
    out_path.write_text("previous contents")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        from qnnc.compiler.fileio import atomic_write_text

        atomic_write_text(out_path, "new contents")
    assert out_path.read_text() == "previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


# --------------------------------------------------------------------------- fmt


def test_fmt_check_accepts_the_shipped_files(capsys):
    rc, out, err = run(capsys, "fmt", "--check", *map(str, SOURCES))
    assert (rc, out, err) == (0, "", "")


@pytest.fixture
def messy_file(tmp_path) -> Path:
    p = tmp_path / "messy.qnn"
    text = MNIST.read_text().replace("param a: real in [0, inf] = 0.5", "param  a :real in[0,inf]=0.5")
    p.write_text(text.replace("    layer h2", "\tlayer   h2"))
    return p


def test_fmt_check_messy_changes_nothing(capsys, messy_file):
    before = messy_file.read_bytes()
    rc, out, err = run(capsys, "fmt", "--check", str(messy_file))
    assert rc == 1 and out == f"would reformat {messy_file}\n" and err == ""
    assert messy_file.read_bytes() == before
    rc, out, _ = run(capsys, "fmt", "--check", "--diff", str(messy_file))
    assert rc == 1 and "-param  a :real in[0,inf]=0.5\n+param a: real in [0, inf] = 0.5\n" in out
    assert messy_file.read_bytes() == before


def test_fmt_rewrites_in_place(capsys, messy_file):
    original = messy_file.read_text()
    rc, out, _ = run(capsys, "fmt", str(messy_file))
    assert rc == 0 and out == f"reformatted {messy_file}\n"
    assert messy_file.read_text() == format_source(original) == MNIST.read_text()
    assert run(capsys, "fmt", "--check", str(messy_file)) == (0, "", "")
    mtime = messy_file.stat().st_mtime_ns
    assert run(capsys, "fmt", str(messy_file)) == (0, "", "")  # already formatted: untouched
    assert messy_file.stat().st_mtime_ns == mtime


def test_fmt_stdout(capsys, messy_file):
    before = messy_file.read_text()
    rc, out, _ = run(capsys, "fmt", "--stdout", str(messy_file))
    assert rc == 0 and out == MNIST.read_text() and messy_file.read_text() == before


def test_fmt_refuses_a_syntax_error_and_keeps_the_file(capsys, tmp_path):
    p = tmp_path / "broken.qnn"
    p.write_text("network n {\n    input x[4]\n")
    rc, _, err = run(capsys, "fmt", str(p))
    assert rc == 1 and err.startswith("error[Q0103]: unterminated block")
    assert p.read_text() == "network n {\n    input x[4]\n"


# --------------------------------------------------------------------------- bad input

GOLDEN_ERRORS = sorted((ROOT / "tests" / "golden" / "errors").glob("*.qnn"))


@pytest.mark.parametrize("argv", [
    ["check", "{tmp}/empty.qnn"], ["check", "{tmp}/binary.qnn"], ["check", "{tmp}/bad.json"],
    ["ir", "{tmp}/binary.qnn"], ["fmt", "{tmp}/binary.qnn"], ["fmt", "--check", "{tmp}/nope.qnn"],
    ["check", "{tmp}"], ["ir", "{tmp}/bad.json", "-o", "{tmp}/x.json"], ["check", "--network"],
    ["fmt", "--check", "--stdout", "{tmp}/empty.qnn"], ["ir", "{tmp}/empty.qnn", "--network", "n"],
])
def test_no_traceback_for_bad_input(capsys, tmp_path, argv):
    (tmp_path / "empty.qnn").write_text("")
    (tmp_path / "binary.qnn").write_bytes(bytes(range(256)))
    (tmp_path / "bad.json").write_text('{"node": "Program", "schema_version": 1}')
    rc, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert rc in (0, 1, 2)
    assert rc == 0 or re.match(r"error\[Q\d{4}\]", err), err


def test_no_traceback_for_any_golden_error(capsys, monkeypatch):
    monkeypatch.chdir(ROOT / "tests" / "golden" / "errors")
    for path in GOLDEN_ERRORS:
        for command in (["check"], ["ir"], ["fmt", "--check"]):
            rc, _, err = run(capsys, *command, path.name)
            assert rc in (0, 1, 2), (path.name, command, err)


def test_internal_error_is_reported_not_raised(capsys, monkeypatch):
    """A bug in qnnc (not a QnncError) is an internal error with exit 3 and no
    traceback, unless QNNC_DEBUG asks for it."""
    def boom(args):
        raise ZeroDivisionError("boom")

    from qnnc.runtime.cli import check as check_command

    monkeypatch.setattr(check_command, "run", boom)
    monkeypatch.delenv("QNNC_DEBUG", raising=False)
    rc = main(["check", str(MNIST)])
    err = capsys.readouterr().err
    assert rc == 3 and err.startswith("error[Q0000]: internal error: ZeroDivisionError: boom")
    assert "Traceback" not in err
    monkeypatch.setenv("QNNC_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["check", str(MNIST)])


@pytest.mark.parametrize("command", ["train", "eval", "hamiltonian", "tap", "replicas", "landscape", "grad",
                                     "finetune"])
def test_a_command_that_needs_a_network_refuses_a_file_without_one(capsys, tmp_path, command):
    path = tmp_path / "nonet.qnn"
    path.write_text("param a: real in [0, inf] = 0.5\n")
    rc, _, err = run(capsys, command, str(path), *(["--image", "0"] if command == "landscape" else []))
    assert rc == 1 and f"error[Q0232]: {path} defines no network" in err and "Traceback" not in err
