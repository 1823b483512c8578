"""Evaluation (784-512-512-10 of examples/mnist.qnn, 10,000 images x 15 shots, majority
vote) quiet, and then beside a competing busy process pinned to one core, for each torch
thread setting. qnnc's default thread setting (`qnnc.runtime.threads.DEFAULT_THREADS`)
is the one this benchmark chooses: the fastest quiet setting whose contended time is at
most 1.5x its quiet time.

    python benchmarks/bench_contention.py [--threads 1,2] [--repeats 3] [--json PATH]

Each measurement runs in a fresh process (`--worker`) with OMP_NUM_THREADS set, so the
thread pools start with that size; it times `QNNModel.predict` (the minimum of
`--repeats` after one warm-up). The competitor is a Python busy loop pinned to CPU 0
(`os.sched_setaffinity`), started before and stopped after the contended measurement;
the measured process is not pinned. Settings alternate quiet / contended per round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(repeats: int) -> None:
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime.simulator import QNNModel

    program = load_program(str(ROOT / "examples" / "mnist.qnn"))
    model = QNNModel(program, None, seed=0)
    x = torch.rand(10_000, 784, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    model.predict(x[:500], 15, gen)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict(x, 15, gen)
        ts.append(time.perf_counter() - t)
    print(json.dumps({"threads": torch.get_num_threads(), "min_s": min(ts), "median_s": statistics.median(ts)}))


def _busy(stop) -> None:
    try:
        os.sched_setaffinity(0, {0})
    except (AttributeError, OSError):
        pass
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def measure(threads: int, repeats: int, contended: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    stop = mp.Event()
    proc = None
    if contended:
        proc = mp.Process(target=_busy, args=(stop,), daemon=True)
        proc.start()
        time.sleep(0.2)
    try:
        r = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(repeats)], env=env,
                           capture_output=True, text=True, check=True)
    finally:
        if proc is not None:
            stop.set()
            proc.join()
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.repeats)
        return 0
    out = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "rows": []}
    settings = [int(s) for s in args.threads.split(",")]
    res = {(t, c): [] for t in settings for c in (False, True)}
    for r in range(args.rounds):
        for t in settings:
            for c in ((False, True) if r % 2 == 0 else (True, False)):
                res[(t, c)].append(measure(t, args.repeats, c)["min_s"])
    best = None
    print(f"load before {out['load_before']:.2f}")
    print(f"{'threads':>7s} {'quiet s':>8s} {'contended s':>12s} {'ratio':>6s}")
    for t in settings:
        q, c = statistics.median(res[(t, False)]), statistics.median(res[(t, True)])
        row = {"threads": t, "quiet_s": q, "contended_s": c, "ratio": c / q}
        out["rows"].append(row)
        print(f"{t:7d} {q:8.3f} {c:12.3f} {c / q:6.2f}")
        if row["ratio"] <= 1.5 and (best is None or q < best["quiet_s"]):
            best = row
    out["chosen_default"] = best["threads"] if best else None
    out["load_after"] = os.getloadavg()[0]
    print("default chosen:", out["chosen_default"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
