"""`qnnc sweep`: the spec's validation (codes, positions, hints), resuming (finished units
kept, a killed unit redone, byte-identical results), a changed spec refused, and, marked
slow, the acceptance test on a real local Dask cluster with 2 worker processes, killed
after its first cell and resumed."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_harness import assert_clean, run_cli
from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.sweep import engine, report
from qnnc.runtime.sweep.spec import read_spec, units
from qnnc.runtime.sweep.unit import RESULT, run_unit

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import neurons from stdlib
param a: real in [0, inf] = 0.5
network tiny {
    input x[28, 28] with scale(1 / 255), pool(4)
    layer h1[16] = rotation(a) of dense(x)
    output y[10] = linear of dense(h1)
    readout argmax, vote over 3 shots
}
train tiny {
    data mnist.train5k
    optimizer sgd(lr = 0.05, momentum = 0.9)
    batch 256
    epochs 1
    checkpoint at end
    seed 5
}
"""

SPEC = """\
[sweep]
name = "tiny"
program = "tiny.qnn"

[[grid]]
set.a = [0.2, 0.5]
seed = [0, 1]

[[step]]
command = "train"
args = ["--seed", "{seed}", "--out", "{dir}/run"]

[[step]]
command = "eval"
args = ["--run", "{dir.train}/run", "--checkpoint", "last", "--seed", "{seed+1000}", "--limit", "300"]

[[table]]
rows = ["a"]
columns = [
    { title = "a", value = "a", format = "g" },
    { title = "test error, vote", value = "1 - eval.accuracy", agg = "mean", format = ".4f" },
    { title = "± s.e.m.", value = "eval.accuracy", agg = "sem", format = ".4f" },
    { title = "seeds", agg = "count" },
]

[[plot]]
file = "error_vs_a.png"
x = "a"
y = ["test error, vote"]
yerr = ["± s.e.m."]
"""


def _write(tmp_path: Path, spec: str = SPEC) -> Path:
    (tmp_path / "tiny.qnn").write_text(PROGRAM)
    p = tmp_path / "spec.toml"
    p.write_text(spec)
    return p


def _results(out: Path) -> dict[str, str]:
    """sha256 of every unit's result.json, by unit."""
    return {str(p.parent.relative_to(out / "units")): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "units").glob(f"*/*/{RESULT}"))}


def _run_in_process(spec, out: Path, only=None) -> list[str]:
    """What the workers do, here, in order: the same `run_unit`; returns the keys run."""
    _, todo = engine.prepare(spec, out)
    ran = []
    for u in todo:
        if only is not None and u.key not in only:
            continue
        r = run_unit(str(out.resolve()), u.program, u.key, u.folder, list(u.argv), u.hash)
        assert r["status"] == "done", r
        ran.append(u.key)
    return ran


# --------------------------------------------------------------------------- the spec


def test_spec_expands_to_units_with_templates(tmp_path):
    spec = read_spec(_write(tmp_path))
    assert spec.axes == ("a", "seed") and spec.params == ("a",) and len(spec.cells) == 4
    us = {u.key: u for u in units(spec)}
    assert list(us)[:4] == ["train/a=0.2,seed=0", "eval/a=0.2,seed=0", "train/a=0.2,seed=1", "eval/a=0.2,seed=1"]
    ev = us["eval/a=0.5,seed=1"]
    assert ev.argv == ("eval", "--set", "a=0.5", "--run", "units/train/a=0.5,seed=1/run", "--checkpoint", "last",
                       "--seed", "1001", "--limit", "300", "--json")
    assert ev.deps == ("train/a=0.5,seed=1",)
    assert us["train/a=0.2,seed=0"].argv[-1] == "--no-progress"
    # the hash chains: a change to train changes eval's hash too
    (tmp_path / "x").mkdir()
    spec2 = read_spec(_write(tmp_path / "x", SPEC.replace('"{seed}", "--out"', '"{seed}", "--epochs", "2", "--out"')))
    us2 = {u.key: u for u in units(spec2)}
    assert us2["eval/a=0.5,seed=1"].argv == ev.argv and us2["eval/a=0.5,seed=1"].hash != ev.hash


def test_grid_blocks_add_up_and_per_shares_a_unit(tmp_path):
    text = SPEC.replace('[[grid]]\nset.a = [0.2, 0.5]\nseed = [0, 1]',
                        '[[grid]]\nset.a = [0.2]\nseed = [0, 1]\n\n[[grid]]\nset.a = [0.5]\nseed = [7]')
    text = text.replace('command = "eval"', 'command = "eval"\nper = ["a"]').replace('"{seed+1000}"', '"3"')
    text = text.replace('"--run", "{dir.train}/run", ', "")
    spec = read_spec(_write(tmp_path, text))
    assert [dict(c) for c in spec.cells] == [{"a": 0.2, "seed": 0}, {"a": 0.2, "seed": 1}, {"a": 0.5, "seed": 7}]
    keys = [u.key for u in units(spec)]
    assert keys == ["train/a=0.2,seed=0", "eval/a=0.2", "train/a=0.2,seed=1", "train/a=0.5,seed=7", "eval/a=0.5"]


BAD = [
    ("[sweep\nprogram = 'tiny.qnn'\n", "Q0740", 1),
    ('[sweep]\nprogram = "tiny.qnn"\nnmae = "x"\n[[step]]\ncommand = "train"\n', "Q0741", 3),
    ('[sweep]\nprogram = "tiny.qnn"\n[[step]]\ncommand = "trian"\n', "Q0743", 4),
    ('[sweep]\nprogram = "tiny.qnn"\n[[grid]]\nseed = [1, 1]\n[[step]]\ncommand = "train"\n', "Q0742", 4),
    ('[sweep]\nprogram = "tiny.qnn"\n[[grid]]\nseed = [1]\n[[step]]\ncommand = "train"\n'
     'args = ["--seed", "{sed}"]\n', "Q0744", 7),
    ('[sweep]\nprogram = "tiny.qnn"\n[[step]]\ncommand = "train"\nargs = ["--json"]\n', "Q0742", 5),
    ('[sweep]\nprogram = "tiny.qnn"\n[[step]]\ncommand = "eval"\nargs = ["--run", "{dir.train}"]\n', "Q0744", 5),
    ('[sweep]\nprogram = "nothere.qnn"\n[[step]]\ncommand = "train"\n', "Q0742", 2),
    ('[sweep]\nprogram = "tiny.qnn"\n[[grid]]\nset.b = [1]\n[[step]]\ncommand = "train"\n', "Q0753", 4),
    ('[sweep]\nprogram = "tiny.qnn"\n[[step]]\ncommand = "train"\n[[table]]\n'
     'columns = [\n  { title = "x", value = "train.steps +" },\n]\n', "Q0745", 7),
    ('[sweep]\nprogram = "tiny.qnn"\n[[step]]\ncommand = "train"\n[[table]]\n'
     'columns = [\n  { title = "x", value = "__import__(1)" },\n]\n', "Q0745", 7),
    ('[sweep]\nprogram = "tiny.qnn"\n[[step]]\ncommand = "train"\n[[table]]\n'
     'columns = [\n  { title = "x", value = "train.steps" },\n  { title = "y", value = "1", agg = "median" },\n]\n',
     "Q0742", 8),
]


@pytest.mark.parametrize("text, code, line", BAD)
def test_bad_specs_are_refused_with_a_code_and_the_line(tmp_path, text, code, line):
    p = _write(tmp_path, text)
    rc, out, err = run_cli(["sweep", str(p), "--out", str(tmp_path / "o")])
    assert_clean(rc, err, text)
    assert rc == 1 and f"error[{code}]" in err, err
    assert f"{p}:{line}:" in err, err
    assert "help:" in err or code == "Q0740", err
    assert not (tmp_path / "o").exists()


def test_unreadable_spec(tmp_path):
    rc, _, err = run_cli(["sweep", str(tmp_path / "none.toml")])
    assert rc == 1 and "error[Q0752]" in err
    (tmp_path / "bin.toml").write_bytes(b"[sweep]\n\xff\n")
    rc, _, err = run_cli(["sweep", str(tmp_path / "bin.toml")])
    assert rc == 1 and "error[Q0752]" in err and "bin.toml:2:" in err


# --------------------------------------------------------------------------- resuming


LIGHT = SPEC.replace("seed = [0, 1]", "seed = [0]")  # 2 cells: the default run's variant


@pytest.fixture(scope="module")
def light_full(tmp_path_factory):
    """An uninterrupted light sweep (2 values of a, 1 seed), run once for the module."""
    d = tmp_path_factory.mktemp("light")
    spec = read_spec(_write(d, LIGHT))
    _run_in_process(spec, d / "full")
    return spec, d / "full"


def test_resume_after_a_kill_gives_byte_identical_results_and_table(light_full, tmp_path):
    """Without a cluster: the same run_unit the workers run. A sweep 'killed' after its
    first cell (the second cell's train unit half-written, no result), resumed, against
    an uninterrupted one."""
    spec, full = light_full
    cut = tmp_path / "cut"
    first = ["train/a=0.2,seed=0", "eval/a=0.2,seed=0"]
    assert _run_in_process(spec, cut, only=first) == first
    half = cut / "units/train/a=0.5,seed=0/run"
    half.mkdir(parents=True)
    (half / "metrics.jsonl").write_text('{"kind": "step", "st')  # what a kill leaves
    ran = _run_in_process(spec, cut)
    assert ran == ["train/a=0.5,seed=0", "eval/a=0.5,seed=0"]  # finished units skipped
    assert _results(cut) == _results(full) and len(_results(full)) == 4
    t_full, _ = report.write_report(spec, full)
    t_cut, _ = report.write_report(spec, cut)
    assert report.no_nan(t_full) == report.no_nan(t_cut)
    for name in ("summary.md", "cells.json", "tables.json"):
        assert (full / name).read_bytes() == (cut / name).read_bytes()
    rows = t_full["summary"]
    assert [r["a"] for r in rows] == [0.2, 0.5] and all(r["seeds"] == 1 for r in rows)
    acc = json.loads((full / f"units/eval/a=0.2,seed=0/{RESULT}").read_text())["result"]["accuracy"]
    assert rows[0]["test error, vote"] == pytest.approx(1 - acc) and math.isnan(rows[0]["± s.e.m."])
    assert "| 0.2 | " in (full / "summary.md").read_text() and (full / "error_vs_a.png").stat().st_size > 1000
    assert engine.prepare(spec, cut)[1] == []  # nothing to do on a third run


def test_changed_spec_is_refused_then_redone_on_request(light_full, tmp_path):
    spec, full = light_full
    out = tmp_path / "o"
    shutil.copytree(full, out)
    d = spec.path.parent
    changed = read_spec(_write(tmp_path, LIGHT.replace('"--limit", "300"', '"--limit", "200"')))
    assert changed.program.read_text() == spec.program.read_text()
    with pytest.raises(QnncError) as exc:
        engine.prepare(changed, out)
    diag = exc.value.diagnostics[0]
    assert diag.code == "Q0747" and "eval/a=0.2,seed=0" in diag.message and "--redo-changed" in diag.help
    _, todo = engine.prepare(changed, out, redo_changed=True)
    assert [u.key for u in todo] == ["eval/a=0.2,seed=0", "eval/a=0.5,seed=0"]
    assert not (out / "units/eval/a=0.2,seed=0").exists() and (out / "units/train/a=0.2,seed=0" / RESULT).exists()
    # a grown grid is not a change: the finished cells are kept
    shutil.rmtree(out)
    shutil.copytree(full, out)
    grown = read_spec(_write(tmp_path, LIGHT.replace("seed = [0]", "seed = [0, 1]")))
    _, todo = engine.prepare(grown, out)
    assert [u.key for u in todo] == ["train/a=0.2,seed=1", "eval/a=0.2,seed=1", "train/a=0.5,seed=1", "eval/a=0.5,seed=1"]
    assert d.exists()


def test_a_folder_that_is_not_a_sweep_is_refused(tmp_path):
    spec = read_spec(_write(tmp_path))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("mine")
    with pytest.raises(QnncError) as exc:
        engine.prepare(spec, tmp_path / "busy")
    assert exc.value.diagnostics[0].code == "Q0748"
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "sweep.json").write_text("{")
    with pytest.raises(QnncError) as exc:
        engine.prepare(spec, tmp_path / "damaged")
    assert exc.value.diagnostics[0].code == "Q0748"


# --------------------------------------------------------------------------- a real cluster


def _sweep(spec: Path, out: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "qnnc", "sweep", str(spec), "--workers", "2", "--out", str(out),
                             "--no-progress"], cwd=spec.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


@pytest.mark.slow
def test_acceptance_dask_cluster_killed_after_first_cell_resumes_identically(tmp_path):
    """A real LocalCluster with 2 worker processes: 2 values of a x 2 seeds, 1 epoch. The
    sweep is killed (its whole process group: client, scheduler, workers) as soon as its
    first cell (train and eval) is written; a second run finishes it. Its unit results
    are byte-identical to an uninterrupted run's, and so is the table."""
    spec = _write(tmp_path)
    full, cut = tmp_path / "full", tmp_path / "cut"
    p = _sweep(spec, full)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert "4 run now" not in out and "8 units, 8 run now" in out

    p = _sweep(spec, cut)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list((cut / "units" / "eval").glob(f"*/{RESULT}")):
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done_before = len(list((cut / "units").glob(f"*/*/{RESULT}")))
    assert 2 <= done_before < 8, done_before  # killed after the first cell, before the last

    p = _sweep(spec, cut)
    out2, err2 = p.communicate(timeout=600)
    assert p.returncode == 0, err2
    assert f"{8 - done_before} run now, {done_before} finished before" in out2
    assert "local cluster with 2 worker(s)" in err2
    assert _results(cut) == _results(full) and len(_results(full)) == 8
    assert (cut / "summary.md").read_bytes() == (full / "summary.md").read_bytes()
    assert (cut / "cells.json").read_bytes() == (full / "cells.json").read_bytes()


# --------------------------------------------------------------------------- fuzz


from hypothesis import given, settings, strategies as st  # noqa: E402

_PIECES = ['"', "[", "]", "{", "}", "=", ",", "\n", "#", "set.", "per = [\"b\"]", "{dir.eval}", "1e999", "-",
           "agg = \"sem\"", "[[step]]", "[[grid]]", "[[table]]", "[[plot]]", "x", "0", "\\", "'''", "é"]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SPEC)), st.integers(0, 12), st.sampled_from(_PIECES)), max_size=4))
def test_mutated_specs_are_read_or_refused_cleanly(tmp_path_factory, edits):
    """Random cuts and insertions into a valid spec: it is read, or refused with a sweep
    or program diagnostic; never another exception."""
    text = SPEC
    for at, cut, piece in edits:
        text = text[:at] + piece + text[at + cut:]
    d = tmp_path_factory.mktemp("fuzz")
    p = _write(d, text)
    try:
        spec = read_spec(p)
        us = units(spec)
    except QnncError as exc:
        assert exc.diagnostics and all(x.code.startswith("Q07") for x in exc.diagnostics), exc
        d0 = exc.diagnostics[0]
        assert d0.span is not None and d0.span.file == str(p) and d0.span.line >= 1
    else:
        assert all(u.argv[0] in ("train", "eval") for u in us)


# --------------------------------------------------------------------------- the engine's refusals


def test_missing_dask_is_a_clear_error(tmp_path, monkeypatch):
    """Without `distributed` the sweep names the extra to install (Q0750), before any work."""
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    spec = read_spec(_write(tmp_path, LIGHT))
    with pytest.raises(QnncError) as exc:
        engine.execute(spec, tmp_path / "o", workers=1, progress=False, say=lambda s: None)
    d = exc.value.diagnostics[0]
    assert d.code == "Q0750" and "[sweep]" in d.help
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_unreachable_scheduler(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = _write(tmp_path, LIGHT)
    rc, _, err = run_cli(["sweep", str(p), "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "o")])
    assert_clean(rc, err, "unreachable scheduler")
    assert rc == 1 and "error[Q0751]" in err and f"127.0.0.1:{port}" in err


def test_a_failing_unit_is_reported_and_what_reads_it_is_not_run(light_full, tmp_path):
    spec, full = light_full
    out = tmp_path / "o"
    shutil.copytree(full, out)
    text = LIGHT.replace('"--checkpoint", "last"', '"--checkpoint", "7"')
    text += '\n[[step]]\nname = "again"\ncommand = "eval"\nargs = ["--run", "{dir.eval}"]\n'
    bad = read_spec(_write(tmp_path, text))
    _, todo = engine.prepare(bad, out, redo_changed=True)
    assert [u.key for u in todo] == ["eval/a=0.2,seed=0", "again/a=0.2,seed=0", "eval/a=0.5,seed=0", "again/a=0.5,seed=0"]
    u = todo[0]
    r = run_unit(str(out.resolve()), u.program, u.key, u.folder, list(u.argv), u.hash)
    assert r["status"] == "failed" and "Q0530" in r["error"] and "no checkpoint at step 7" in r["error"]
    assert not (out / u.folder / RESULT).exists() and "Q0530" in (out / u.folder / "log.txt").read_text()
    r2 = run_unit(str(out.resolve()), todo[1].program, todo[1].key, todo[1].folder, list(todo[1].argv), todo[1].hash, r)
    assert r2["status"] == "failed" and "needs eval/a=0.2,seed=0" in r2["error"]
    rc, _, err = run_cli(["sweep", str(bad.path), "--out", str(out), "--report-only"])
    assert rc == 1 and "error[Q0749]" in err


def test_table_expressions_aggregates_and_nulls(tmp_path):
    """The table language on hand-made cell records: where-filters, sem, count, and a
    null in a result giving no value (not an error), against values computed here."""
    text = SPEC.replace('''    { title = "seeds", agg = "count" },''', '''    { title = "seeds", agg = "count" },
    { title = "fit", value = "train.fit.alpha * 2", agg = "mean" },
    { title = "seed 1 only", value = "eval.per_class[\\"3\\"].n + seed", where = { seed = 1 } },''')
    spec = read_spec(_write(tmp_path, text))
    accs = {(0.2, 0): 0.5, (0.2, 1): 0.7, (0.5, 0): 0.9, (0.5, 1): 0.8}
    records = [{"a": a, "seed": s, "_cell": f"{a},{s}",
                "train": {"fit": None if a == 0.5 else {"alpha": 0.25 + s}},
                "eval": {"accuracy": accs[(a, s)], "per_class": {"3": {"n": 40 + s}}}}
               for a in (0.2, 0.5) for s in (0, 1)]
    rows = report.build_table(spec, spec.tables[0], records)
    assert [r["a"] for r in rows] == [0.2, 0.5]
    assert rows[0]["test error, vote"] == pytest.approx(1 - 0.6)
    assert rows[0]["± s.e.m."] == pytest.approx(0.1) and rows[1]["± s.e.m."] == pytest.approx(0.05)
    assert rows[0]["seeds"] == 2 and rows[0]["fit"] == pytest.approx(2 * 0.75) and rows[1]["fit"] is None
    assert rows[0]["seed 1 only"] == 42
    md = report.markdown(spec.tables[0], rows)
    assert md.splitlines()[3].startswith("| 0.5 | 0.1500 | 0.0500 | 2 | — | 42 |")
    records[0]["eval"].pop("accuracy")
    with pytest.raises(QnncError) as exc:
        report.build_table(spec, spec.tables[0], records)
    d = exc.value.diagnostics[0]
    assert d.code == "Q0746" and "accuracy" in d.message and d.span.line == 21  # the column's line
