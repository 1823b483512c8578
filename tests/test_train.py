"""Training, resume, evaluation and their error paths (small networks, real MNIST)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from qnnc.compiler import parse_program
from qnnc.runtime.cli import main
from qnnc.runtime import checkpoint as ckpt
from qnnc.runtime.train import checkpoint_steps, log_spaced_steps, train, wilson_interval

SMALL = """
import neurons from stdlib
param a: real in [0, inf] = 0.5
network small {
    input x[28, 28] with scale(1 / 255), pool(4)
    layer h1[16] = rotation(a) of dense(x)
    output y[10] = linear of dense(h1)
    readout argmax, vote over 3 shots
}
train small {
    data mnist.train5k
    optimizer sgd(lr = 0.05, momentum = 0.9)
    batch 64
    epochs EPOCHS
    checkpoint every 10 steps and at end
    seed 5
}
"""


def _write(tmp_path: Path, epochs: int = 1, text: str = SMALL) -> Path:
    p = tmp_path / "small.qnn"
    p.write_text(text.replace("EPOCHS", str(epochs)))
    return p


def _digests(run: Path) -> dict[str, str]:
    """sha256 of every checkpoint file of a run."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((run / "checkpoints").glob("*.safetensors"))}


def _final(run: Path) -> dict:
    c = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run, "last"))
    return {**c.tensors, **c.extra}


def test_log_spaced_schedule():
    assert log_spaced_steps(250) == [0, 1, 2, 5, 10, 20, 50, 100, 200]
    s = checkpoint_steps(parse_program(SMALL.replace("EPOCHS", "1"), "t").trains[0].checkpoints, 79)
    assert s == {0, 10, 20, 30, 40, 50, 60, 70, 79}


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3
    assert wilson_interval(0, 10)[0] == 0.0 and abs(wilson_interval(10, 10)[1] - 1.0) < 1e-12


def test_training_learns_and_writes_metrics_and_checkpoints(tmp_path):
    f = _write(tmp_path)
    program = parse_program(f.read_text(), str(f))
    net = program.network()
    r = train(program, net, program.train(net.name), tmp_path / "run", progress=False)
    assert r.steps == 79 and r.checkpoints == [0, 10, 20, 30, 40, 50, 60, 70, 79]
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [l for l in lines if l["kind"] == "step"]
    assert len(steps) == 79 and [l["kind"] for l in lines].count("epoch") == 1
    first, last = np.mean([l["loss"] for l in steps[:10]]), np.mean([l["loss"] for l in steps[-10:]])
    assert last < first - 0.3, (first, last)  # it learns
    side = json.loads((tmp_path / "run" / "checkpoints" / "step-000079.json").read_text())
    assert side["seed"] == 5 and side["step"] == 79 and side["gradient"] == "straight_through"


def test_resume_after_deleting_later_checkpoints_is_bit_identical(tmp_path):
    f = _write(tmp_path)
    program = parse_program(f.read_text(), str(f))
    net = program.network()
    recipe = program.train(net.name)
    train(program, net, recipe, tmp_path / "full", progress=False)
    train(program, net, recipe, tmp_path / "cut", progress=False)
    assert _digests(tmp_path / "full") == _digests(tmp_path / "cut")  # two uninterrupted runs: same bytes
    for s in (40, 50, 60, 70, 79):  # as if the run had died just after step 30
        p = ckpt.checkpoint_path(tmp_path / "cut", s)
        p.unlink()
        p.with_suffix(".json").unlink()
    train(program, net, recipe, tmp_path / "cut", resume=True, progress=False)
    assert _digests(tmp_path / "full") == _digests(tmp_path / "cut")  # resumed: the same bytes too
    a, b = _final(tmp_path / "full"), _final(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    log_a = (tmp_path / "full" / "metrics.jsonl").read_text()
    log_b = (tmp_path / "cut" / "metrics.jsonl").read_text()
    strip = lambda t: [{k: v for k, v in json.loads(l).items() if k != "elapsed_s"} for l in t.splitlines()]
    assert strip(log_a) == strip(log_b)


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    """A real SIGKILL in the middle of `qnnc train`, then `--resume`."""
    f = _write(tmp_path, epochs=3)
    cmd = [sys.executable, "-m", "qnnc", "train", str(f), "--no-progress"]
    subprocess.run(cmd + ["--out", str(tmp_path / "full")], check=True, capture_output=True)
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any(s >= 30 for s in ckpt.list_checkpoints(tmp_path / "killed")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = ckpt.list_checkpoints(tmp_path / "killed")
    assert done and done[-1] < 237, "the run finished before it could be killed"
    r = subprocess.run(cmd + ["--out", str(tmp_path / "killed"), "--resume"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = _final(tmp_path / "full"), _final(tmp_path / "killed")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # Byte-identical checkpoint files (sha256 equal), not only equal tensors.
    assert _digests(tmp_path / "full") == _digests(tmp_path / "killed")


def test_eval_cli_json(tmp_path, capsys):
    f = _write(tmp_path)
    assert main(["train", str(f), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(f), "--run", str(tmp_path / "run"), "--limit", "500", "--shots", "3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["result"]
    assert r["images"] == 500 and r["shots"] == 3 and 0.3 < r["accuracy"] <= 1
    assert r["ci95"][0] <= r["accuracy"] <= r["ci95"][1]
    assert set(r["per_class"]) == {str(i) for i in range(10)}
    assert sum(v["n"] for v in r["per_class"].values()) == 500


def _one_line_error(capsys, argv, code: str, name: str) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0, err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"error[{code}]") and name in first, err


def test_truncated_checkpoint_other_network_and_corrupted_data(tmp_path, capsys):
    f = _write(tmp_path)
    assert main(["train", str(f), "--out", str(tmp_path / "run"), "--no-progress", "--epochs", "0"]) == 0
    path = ckpt.checkpoint_path(tmp_path / "run", 0)
    # a checkpoint of another network
    other = _write(tmp_path / "o", text=SMALL.replace("h1[16]", "h1[24]")) if (tmp_path / "o").mkdir() is None else None
    _one_line_error(capsys, ["eval", str(other), "--run", str(tmp_path / "run"), "--checkpoint", "0"],
                    "Q0532", str(path))
    # a truncated checkpoint
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    _one_line_error(capsys, ["eval", str(f), "--run", str(tmp_path / "run"), "--checkpoint", "0"],
                    "Q0535", str(path))
    # a corrupted data file
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 28, 28), np.uint8), labels=np.zeros(4, np.int64))
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    raw = raw[: len(raw) - 30]
    bad.write_bytes(bytes(raw))
    g = _write(tmp_path / "d", text=SMALL.replace("data mnist.train5k", f'data "{bad}"')) if (tmp_path / "d").mkdir() is None else None
    _one_line_error(capsys, ["train", str(g), "--out", str(tmp_path / "run2"), "--no-progress"], "Q0520", str(bad))
    assert not (tmp_path / "run2" / "checkpoints").exists()


def test_an_unwritable_run_folder_is_q0405(tmp_path, capsys):
    f = _write(tmp_path)
    (tmp_path / "file").write_text("x")
    _one_line_error(capsys, ["train", str(f), "--out", str(tmp_path / "file" / "run"), "--no-progress",
                             "--epochs", "0"], "Q0405", str(tmp_path / "file"))


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    f = _write(tmp_path)
    assert main(["train", str(f), "--out", str(tmp_path / "run"), "--no-progress", "--epochs", "0"]) == 0
    assert main(["train", str(f), "--out", str(tmp_path / "run"), "--no-progress", "--epochs", "0"]) == 2
    assert "--resume" in capsys.readouterr().err


_CRASH_MID_WRITE = r"""
import os, sys, time
from pathlib import Path
from qnnc.compiler import parse_program
from qnnc.runtime import train as T
src, out, marker = sys.argv[1:4]
real_fsync, seen = os.fsync, []
def fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if "step-000030.safetensors" in name and name.endswith(".tmp"):
        Path(marker).write_text(name)   # the weights of step 30 are half way to disk
        time.sleep(600)                 # ... and the process dies here
    real_fsync(fd)
os.fsync = fsync
program = parse_program(Path(src).read_text(), src)
net = program.network()
T.train(program, net, program.train(net.name), out, progress=False)
"""


def test_a_crash_in_the_middle_of_a_background_checkpoint_write_keeps_the_previous_one(tmp_path):
    """SIGKILL while the writer thread is inside the atomic write of step 30 (temporary
    file written, not yet fsynced or renamed): step 20 stays the latest valid checkpoint,
    nothing of step 30 is listed, and a resume from 20 ends bit-identical to a run that
    was never interrupted."""
    f = _write(tmp_path)
    program = parse_program(f.read_text(), str(f))
    net = program.network()
    train(program, net, program.train(net.name), tmp_path / "full", progress=False)
    marker = tmp_path / "marker"
    # Its own session: the crash takes the trainer and its checkpoint writer (a thread,
    # or a forked process where the platform forks) together, as a power cut would.
    proc = subprocess.Popen([sys.executable, "-c", _CRASH_MID_WRITE, str(f), str(tmp_path / "crash"), str(marker)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not marker.exists() and proc.poll() is None:
        time.sleep(0.01)
    assert marker.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no write of step 30"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run = tmp_path / "crash"
    assert Path(marker.read_text()).exists()  # the torn temporary file is there ...
    assert not ckpt.checkpoint_path(run, 30).exists()  # ... and was never renamed into place
    assert ckpt.list_checkpoints(run)[-1] == 20
    for s in ckpt.list_checkpoints(run):  # every listed checkpoint verifies (hash, shapes)
        ckpt.load_checkpoint(ckpt.checkpoint_path(run, s), net)
    train(program, net, program.train(net.name), run, resume=True, progress=False)
    a, b = _final(tmp_path / "full"), _final(run)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_failed_background_write_is_raised_on_the_training_thread(tmp_path):
    from qnnc.runtime.checkpoint_writer import CheckpointWriter

    written = []

    def save(run_dir, step, tensors, meta, extra):
        if step == 2:
            raise OSError(28, "No space left on device")
        written.append(step)

    w = CheckpointWriter(tmp_path, save=save)
    for s in (0, 1, 2):
        w.submit(s, {}, {}, {})
    try:
        w.flush()
    except OSError as e:
        assert e.errno == 28
    else:
        raise AssertionError("the write error was swallowed")
    w.submit(3, {}, {}, {})  # after a failure nothing more is written
    w.close()
    assert written == [0, 1]


def test_the_writer_process_writes_the_same_bytes_and_reports_errors(tmp_path):
    """Process mode (a forked writer reading the snapshot from shared memory) writes
    byte for byte what `save_checkpoint` writes in the foreground, whether the snapshot
    goes through the arena or, too large for a slot, through the pipe; the caller may
    change its tensors right after submit; a failed write is raised on flush."""
    import multiprocessing as mp

    import pytest
    import torch

    from qnnc.runtime.checkpoint_writer import CheckpointWriter

    if "fork" not in mp.get_all_start_methods() or not sys.platform.startswith("linux"):
        pytest.skip("the writer process needs Linux's fork")
    g = torch.Generator().manual_seed(0)
    tensors = {"h1": torch.randn(7, 5, generator=g), "h1.bias": torch.randn(7, generator=g, dtype=torch.float64)}
    extra = {"optimizer/weight.h1/momentum_buffer": torch.randn(7, 5, generator=g),
             "rng/torch": torch.Generator().manual_seed(3).get_state()}
    meta = {"network": "n", "metrics": {"loss": 1.5}}
    want = tmp_path / "sync"
    ckpt.save_checkpoint(want, 4, {k: v.clone() for k, v in tensors.items()}, meta,
                         {k: v.clone() for k, v in extra.items()})
    originals = [t.clone() for t in list(tensors.values()) + [extra["optimizer/weight.h1/momentum_buffer"]]]
    for slot_bytes in (1 << 20, 64):  # the arena; too small a slot: the pipe
        run = tmp_path / f"bg{slot_bytes}"
        w = CheckpointWriter(run, slot_bytes=slot_bytes, process=True)
        assert w.copies_snapshot
        w.submit(4, tensors, meta, extra)
        for t in list(tensors.values()) + [extra["optimizer/weight.h1/momentum_buffer"]]:
            t.add_(1.0)  # the caller goes on training
        w.close()
        # The tensor data byte for byte (the safetensors header's metadata map comes out
        # in either order from one call to the next, in one process or another: that
        # is the checkpoint format's business, not the writer's).
        a = ckpt.checkpoint_path(want, 4).read_bytes()
        b = ckpt.checkpoint_path(run, 4).read_bytes()
        n = int.from_bytes(a[:8], "little")
        assert a[8 + n:] == b[8 + n:] and len(a) == len(b)
        ca, cb = (ckpt.load_checkpoint(ckpt.checkpoint_path(r, 4)) for r in (want, run))
        for k in {**ca.tensors, **ca.extra}:
            np.testing.assert_array_equal({**ca.tensors, **ca.extra}[k], {**cb.tensors, **cb.extra}[k], err_msg=k)
        sa, sb = (json.loads(ckpt.checkpoint_path(r, 4).with_suffix(".json").read_text()) for r in (want, run))
        sa.pop("sha256"), sb.pop("sha256")
        assert sa == sb
        for t, o in zip(list(tensors.values()) + [extra["optimizer/weight.h1/momentum_buffer"]], originals):
            t.copy_(o)
    (tmp_path / "file").write_text("x")
    w = CheckpointWriter(tmp_path / "file" / "run", slot_bytes=1 << 20, process=True)
    w.submit(0, tensors, meta, extra)
    with pytest.raises(OSError):
        w.flush()
    w.close()
