"""One unit of a sweep, run where a worker runs it: the existing `qnnc` command, in this
process, in the sweep's folder.

Everything that crosses to the worker is plain: the sweep folder, the program path and
the unit's folder as strings, its command line as a list of strings, its hash. Everything
that comes back is a small dict of plain values. The unit's outputs are files in its
folder; `result.json` (the command's envelope result, wall-clock times removed, written
atomically, last) marks it finished, so a unit either has it or is redone from scratch.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

RESULT = "result.json"
TIMING = "timing.json"
LOG = "log.txt"
# Wall-clock times in the commands' results: kept apart (timing.json), so that a unit's
# result is the same bytes however and whenever it ran.
VOLATILE = {"seconds", "elapsed_s"}

_LOCK = threading.Lock()  # the command runs in the sweep's folder: one unit at a time per process


def strip_volatile(value):
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def volatile_of(value, prefix: str = "") -> dict:
    out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            if k in VOLATILE and isinstance(v, (int, float)):
                out[prefix + k] = v
            else:
                out.update(volatile_of(v, f"{prefix}{k}."))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(volatile_of(v, f"{prefix}{i}."))
    return out


def finished(sweep_dir: str, folder: str, unit_hash: str) -> bool:
    p = Path(sweep_dir) / folder / RESULT
    try:
        return json.loads(p.read_text("utf-8")).get("hash") == unit_hash
    except (OSError, ValueError, AttributeError):
        return False


def run_unit(sweep_dir: str, program: str, key: str, folder: str, argv: list, unit_hash: str, *deps) -> dict:
    """Run one unit; returns {"key", "status": "done"|"skipped"|"failed", "seconds", "error"}.
    `deps` are the results of the units it reads (only their order matters here)."""
    failed = [d["key"] for d in deps if isinstance(d, dict) and d.get("status") == "failed"]
    if failed:
        return {"key": key, "status": "failed", "seconds": 0.0, "error": f"needs {failed[0]}, which failed"}
    if finished(sweep_dir, folder, unit_hash):
        return {"key": key, "status": "skipped", "seconds": 0.0, "error": ""}
    from qnnc.compiler.fileio import atomic_write_text
    from qnnc.runtime.cli.entry import main

    root = Path(sweep_dir)
    target = root / folder
    if target.exists():  # what a killed or failed attempt left: start the unit afresh
        shutil.rmtree(target)
    target.mkdir(parents=True)
    full = [argv[0], program, *argv[1:]]
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with _LOCK:
        here = os.getcwd()
        os.chdir(root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(full)
        except SystemExit as exc:  # pragma: no cover - main returns its status
            rc = exc.code if isinstance(exc.code, int) else 1
        finally:
            os.chdir(here)
    seconds = time.perf_counter() - t0
    log = f"$ qnnc {' '.join(full)}\n{err.getvalue()}"
    atomic_write_text(target / LOG, log)
    envelope = None
    try:
        envelope = json.loads(out.getvalue())
    except ValueError:
        pass
    if rc != 0 or not isinstance(envelope, dict) or envelope.get("result") is None:
        tail = err.getvalue().strip().splitlines()[-12:]
        return {"key": key, "status": "failed", "seconds": seconds,
                "error": "\n".join(tail) or f"exit status {rc}"}
    record = {"unit": key, "hash": unit_hash, "argv": list(argv), "result": strip_volatile(envelope["result"]),
              "diagnostics": envelope.get("diagnostics", [])}
    atomic_write_text(target / TIMING, json.dumps({"seconds": seconds, **volatile_of(envelope["result"])}, indent=2) + "\n")
    atomic_write_text(target / RESULT, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return {"key": key, "status": "done", "seconds": seconds, "error": ""}
