"""Running a sweep on Dask's distributed scheduler, resumably.

The sweep folder holds everything:

    sweep.json                      the manifest: spec and program digests, every unit's hash
    spec.toml                       a copy of the spec the folder was last run with
    units/STEP/CELL/result.json     a finished unit (written last, atomically)
    units/STEP/CELL/...             what its command wrote (run folders, plots), log.txt, timing.json
    cells.json, TABLE.md, tables.json, PLOT.png     the report, rewritten on every run

Each unit is one Dask task whose arguments are strings (paths, the command line) and
whose return value is a small dict; its inputs and outputs are files in this folder, so
with `--scheduler ADDRESS` the folder must be on a file system the workers share, at the
same path. A unit whose `result.json` carries its current hash is skipped; any other
unit folder is removed and the unit redone. A unit whose hash changed (the spec's steps,
grid values or the program changed under an existing result) is refused unless
`redo_changed`, which removes and redoes it (and what reads it: the hashes chain).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from qnnc.compiler.diagnostics import error
from qnnc.compiler.fileio import atomic_write_text
from qnnc.runtime.sweep import spec as S
from qnnc.runtime.sweep.unit import RESULT, finished, run_unit

MANIFEST = "sweep.json"
MANIFEST_VERSION = 1


@dataclass
class Outcome:
    out: Path
    total: int
    ran: list = field(default_factory=list)
    skipped: int = 0
    failed: list = field(default_factory=list)  # (key, message)
    dashboard: Optional[str] = None
    workers: int = 0
    seconds: float = 0.0


def import_distributed():
    """`dask.distributed`, or Q0750 with the install line."""
    try:
        import distributed  # noqa: F401
        from dask import distributed as dd
    except ImportError as exc:
        raise error("Q0750", f"`qnnc sweep` runs on Dask's distributed scheduler, which is not installed ({exc})",
                    help="install it: pip install -c constraints.txt -e '.[sweep]'", exit_code=1) from None
    return dd


def prepare(spec: S.Spec, out: Path, redo_changed: bool = False) -> tuple[list[S.Unit], list[S.Unit]]:
    """Check the folder against the spec, write the manifest; (all units, units to run)."""
    if out.exists() and not out.is_dir():
        raise error("Q0748", f"sweep folder {out} is a file", help="give --out a folder")
    units = S.units(spec)
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text("utf-8"))
            if not isinstance(old, dict) or old.get("version") != MANIFEST_VERSION or not isinstance(old.get("units"), dict):
                raise ValueError("not a qnnc sweep manifest")
        except (OSError, ValueError) as exc:
            raise error("Q0748", f"{manifest} is not a qnnc sweep manifest ({exc})",
                        help="give --out a new folder, or remove the damaged one") from None
    elif out.exists() and any(out.iterdir()):
        raise error("Q0748", f"{out} is not empty and holds no sweep ({MANIFEST} is missing)",
                    help="give --out a new or empty folder")
    changed = []
    for u in units:
        p = out / u.folder / RESULT
        if p.exists():
            try:
                h = json.loads(p.read_text("utf-8")).get("hash")
            except (OSError, ValueError, AttributeError):
                h = None  # a damaged result is redone
            if h is not None and h != u.hash:
                changed.append(u)
    if changed and not redo_changed:
        names = ", ".join(u.key for u in changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise error("Q0747", f"the spec (or its program) changed since {out} was run: {len(changed)} finished "
                    f"unit(s) would now be computed differently ({names})",
                    help="run it into a new --out folder, or add --redo-changed to recompute those units",
                    notes=[f"the folder was last run with {out / 'spec.toml'}"])
    for u in changed:
        shutil.rmtree(out / u.folder, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(manifest, json.dumps({
        "version": MANIFEST_VERSION, "name": spec.name, "spec": str(spec.path), "spec_sha256": S.spec_digest(spec),
        "program": str(spec.program), "program_sha256": {str(p): S.program_digest(p) for p in spec.programs()},
        "units": {u.key: u.hash for u in units}}, indent=2) + "\n")
    atomic_write_text(out / "spec.toml", spec.text)
    todo = [u for u in units if not finished(str(out), u.folder, u.hash)]
    return units, todo


def _local_cluster(dd, workers: int):
    try:
        import bokeh  # noqa: F401  (the dashboard needs it)
        has_dashboard = True
    except ImportError:
        has_dashboard = False
    # ":0": any free port for the scheduler's HTTP server (a second sweep on the machine
    # does not collide with the first on 8787).
    cluster = dd.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0", silence_logs=logging.ERROR)
    return cluster, has_dashboard


def execute(spec: S.Spec, out: Path, *, scheduler: Optional[str] = None, workers: Optional[int] = None,
            redo_changed: bool = False, progress: bool = True, say: Callable[[str], None] = None) -> Outcome:
    """Run every unfinished unit of the sweep; the report is `report.write_report`'s."""
    say = say or (lambda s: print(s, file=sys.stderr))
    t0 = time.perf_counter()
    out = out.resolve()
    dd = import_distributed()  # before anything is written
    units, todo = prepare(spec, out, redo_changed)
    result = Outcome(out, len(units), skipped=len(units) - len(todo))
    if not todo:
        say(f"sweep {spec.name}: all {len(units)} units finished in {out}")
        return result
    cluster = None
    if scheduler:
        try:
            client = dd.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise error("Q0751", f"cannot reach the Dask scheduler at {scheduler}: {exc}",
                        help="start one (`dask scheduler` and `dask worker ADDRESS`) or leave out --scheduler "
                             "for a local cluster", exit_code=1) from None
        has_dashboard = True
    else:
        n = workers or os.cpu_count() or 1
        try:
            cluster, has_dashboard = _local_cluster(dd, n)
            client = dd.Client(cluster)
        except (OSError, TimeoutError) as exc:
            raise error("Q0754", f"the local Dask cluster ({n} worker processes) did not start: "
                        f"{type(exc).__name__}: {exc}",
                        help="a loaded machine can be slow to start workers: run the same command again "
                             "(finished units are kept), or give fewer --workers") from None
    try:
        info = client.scheduler_info()
        result.workers = len(info.get("workers", {}))
        link = getattr(client, "dashboard_link", None) if has_dashboard else None
        result.dashboard = link
        where = f"scheduler {scheduler}" if scheduler else "a local cluster"
        say(f"sweep {spec.name}: {len(todo)} of {len(units)} units to run on {where} with {result.workers} worker(s)"
            + (f"; {len(units) - len(todo)} finished before" if len(todo) < len(units) else ""))
        say(f"dashboard: {link}" if link else "dashboard: none (install bokeh>=2.4.2 for Dask's dashboard)")
        futures = {}
        todo_keys = {u.key for u in todo}
        for i, u in enumerate(todo):  # units are in dependency order, cell by cell
            deps = [futures[d] for d in u.deps if d in todo_keys]
            # an explicit priority: the scheduler runs ready units in this order, so whole
            # cells finish early (left to itself it may take the last submitted first)
            futures[u.key] = client.submit(run_unit, str(out), u.program, u.key, u.folder, list(u.argv),
                                           u.hash, *deps, key=f"qnnc-sweep-{u.key}-{u.hash}", pure=False,
                                           priority=len(todo) - i)
        bar = None
        if progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=len(units), initial=len(units) - len(todo), desc=f"sweep {spec.name}", unit="unit",
                           file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                bar = None
        emit = bar.write if bar is not None else say
        by_future = {f.key: k for k, f in futures.items()}
        for fut in dd.as_completed(list(futures.values())):
            key = by_future[fut.key]
            try:
                r = fut.result()
            except Exception as exc:  # a worker died, or the task raised: the unit failed
                r = {"key": key, "status": "failed", "seconds": 0.0, "error": f"{type(exc).__name__}: {exc}"}
            if r["status"] == "failed":
                result.failed.append((key, r["error"]))
                emit(f"  {key}: FAILED: {r['error'].splitlines()[-1] if r['error'] else ''}")
            elif r["status"] == "skipped":
                result.skipped += 1
            else:
                result.ran.append(key)
                emit(f"  {key}: done in {r['seconds']:.1f} s")
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        _shut_down(client, cluster, say)
    result.seconds = time.perf_counter() - t0
    return result


def _shut_down(client, cluster, say) -> None:
    """Close the client and the local cluster. Every result is on disk by now, so a
    shutdown that times out (a loaded machine) is reported, not an error."""
    quiet = [logging.getLogger(n) for n in ("tornado.application", "distributed", "asyncio")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        client.close(timeout=60)
        if cluster is not None:
            cluster.close(timeout=60)
    except Exception as exc:  # noqa: BLE001 - shutdown only; results are written
        say(f"note: the Dask cluster did not shut down cleanly ({type(exc).__name__}); every result is written")
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
