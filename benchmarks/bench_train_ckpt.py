"""One training epoch of examples/mnist.qnn (784-512-512-10, 5,000 images, batch 64,
79 steps) with the papers' checkpoint schedule (every 100 steps, at log steps, at end:
steps 0, 1, 2, 5, 10, 20, 50 and 79 in the first epoch) beside the same loop without
checkpoints, same threads.

    python benchmarks/bench_train_ckpt.py [--rounds 7] [--sync] [--json PATH]

Both arms call `qnnc.runtime.train.train` (what `qnnc train` runs) with the recipe of
the example, epochs = 1 and no validation pass (it is the same in both arms and would
only dilute the ratio); the second arm has an empty checkpoint schedule. The arms
alternate within each round (order flipped every round) in fresh run folders on the
same file system; reported are the medians and the median of per-round ratios.
`--sync` also times the old way (every checkpoint written on the training thread), and
`--thread` the background writer as a thread of the training process instead of its
own process (QNNC_CHECKPOINT_THREAD=1), for comparison. Target (issue 16): at most 1.1x.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sync", action="store_true", help="also time checkpoints written on the training thread")
    ap.add_argument("--thread", action="store_true", help="also time the writer as a thread, not a process")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dir", default=None, help="where run folders go (default: a temporary folder)")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if args.threads:
        os.environ["QNNC_THREADS"] = str(args.threads)  # qnnc keeps it (runtime/threads.py)
        torch.set_num_threads(args.threads)

    from qnnc.compiler import load_program, ir
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime import train as T

    program = load_program(str(ROOT / "examples" / "mnist.qnn"))
    net = program.network()
    base = dataclasses.replace(program.train(net.name), epochs=1, validate=None)
    none = dataclasses.replace(base, checkpoints=ir.CheckpointSchedule(None, False, (), False))
    arms = {"checkpoints": base, "none": none}

    class SyncWriter(T.CheckpointWriter):  # the old behaviour: write on the training thread
        def __init__(self, run_dir, **kw):
            super().__init__(run_dir, process=False)
            self.copies_snapshot = False

        def submit(self, step, tensors, meta, extra=None):
            ckpt.save_checkpoint(self.run_dir, step, tensors, meta, extra)

    root = Path(args.dir or tempfile.mkdtemp(prefix="qnnc-bench-train-"))
    times: dict[str, list[float]] = {"checkpoints": [], "none": [], "sync": [], "thread": []}
    counter = 0

    def run(name):
        nonlocal counter
        counter += 1
        out = root / f"run{counter}"
        recipe = arms["checkpoints" if name in ("sync", "thread") else name]
        saved = T.CheckpointWriter
        if name == "sync":
            T.CheckpointWriter = SyncWriter
        if name == "thread":
            os.environ["QNNC_CHECKPOINT_THREAD"] = "1"
        try:
            t = time.perf_counter()
            r = T.train(program, net, recipe, out, progress=False)
            times[name].append(time.perf_counter() - t)
        finally:
            T.CheckpointWriter = saved
            os.environ.pop("QNNC_CHECKPOINT_THREAD", None)
        return r

    r = run("checkpoints")  # warm-up (data set, page cache)
    print("checkpoints written in the epoch:", r.checkpoints)
    run("none")
    times = {k: [] for k in times}
    names = ["checkpoints", "none"] + (["thread"] if args.thread else []) + (["sync"] if args.sync else [])
    for i in range(args.rounds):
        order = names if i % 2 == 0 else names[::-1]
        for n in order:
            run(n)
    out = {"threads": torch.get_num_threads(), "load_before": os.getloadavg()[0], "rounds": args.rounds,
           "checkpoint_steps": r.checkpoints, "rows": {}}
    for n in names:
        ratios = [a / b for a, b in zip(times[n], times["none"])]
        out["rows"][n] = {"median_s": statistics.median(times[n]), "min_s": min(times[n]),
                          "ratio_to_none_median": statistics.median(ratios)}
        print(f"{n:12s} median {statistics.median(times[n]):.3f} s  min {min(times[n]):.3f} s  "
              f"x no-checkpoint loop {statistics.median(ratios):.3f}")
    out["load_after"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
