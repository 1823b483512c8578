"""One training epoch of examples/mnist.qnn (784-512-512-10, 5,000 images, batch 64,
79 steps) with the papers' checkpoint schedule (every 100 steps, at log steps, at end)
beside the same loop without checkpoints, same threads.

    python benchmarks/bench_train_ckpt.py [--rounds 7] [--mode first|single] [--sync]
                                          [--process] [--json PATH]

Both arms call `qnnc.runtime.train.train` (what `qnnc train` runs) with the example's
recipe and no validation pass (the same in both arms; it would only dilute the ratio);
the second arm has an empty checkpoint schedule. Two ways to count an epoch:

* `--mode first` (default): the first epoch of the example's 10-epoch run, timed from
  the call to the end of epoch 1 (the run is stopped there): the schedule writes steps
  0, 1, 2, 5, 10, 20 and 50 in it, as the issue describes.
* `--mode single`: a run of 1 epoch, timed to the return of `train`, which waits until
  the final checkpoint (step 79, "at end") is on disk: 8 checkpoints, the last one not
  overlapped by anything.

The arms alternate within each round (order flipped every round) in fresh run folders on
the same file system; reported are the medians and the median of per-round ratios.
`--sync` also times the old way (every checkpoint written on the training thread), and
`--process` the background writer as a forked process (QNNC_CHECKPOINT_PROCESS=1)
instead of the default thread, for comparison. Target (issue 16): at most 1.1x.
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
    ap.add_argument("--mode", choices=("first", "single"), default="first")
    ap.add_argument("--sync", action="store_true", help="also time checkpoints written on the training thread")
    ap.add_argument("--process", action="store_true", help="also time the writer as a forked process")
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
    epochs = 1 if args.mode == "single" else program.train(net.name).epochs
    base = dataclasses.replace(program.train(net.name), epochs=epochs, validate=None)
    none = dataclasses.replace(base, checkpoints=ir.CheckpointSchedule(None, False, (), False))
    arms = {"checkpoints": base, "none": none}

    class SyncWriter(T.CheckpointWriter):  # the old behaviour: write on the training thread
        def __init__(self, run_dir, **kw):
            super().__init__(run_dir, process=False)
            self.copies_snapshot = False

        def submit(self, step, tensors, meta, extra=None):
            ckpt.save_checkpoint(self.run_dir, step, tensors, meta, extra)

    root = Path(args.dir or tempfile.mkdtemp(prefix="qnnc-bench-train-"))
    times: dict[str, list[float]] = {"checkpoints": [], "none": [], "sync": [], "process": []}
    counter = 0

    def run(name):
        nonlocal counter
        counter += 1
        out = root / f"run{counter}"
        recipe = arms["checkpoints" if name in ("sync", "process") else name]
        saved = T.CheckpointWriter
        if name == "sync":
            T.CheckpointWriter = SyncWriter
        if name == "process":
            os.environ["QNNC_CHECKPOINT_PROCESS"] = "1"
        class EndOfFirstEpoch(Exception):
            pass

        def log(line):
            if args.mode == "first" and line.startswith("epoch 1/"):
                times[name].append(time.perf_counter() - t)
                raise EndOfFirstEpoch

        try:
            t = time.perf_counter()
            try:
                T.train(program, net, recipe, out, progress=False, log=log)
                times[name].append(time.perf_counter() - t)
            except EndOfFirstEpoch:
                pass
        finally:
            T.CheckpointWriter = saved
            os.environ.pop("QNNC_CHECKPOINT_PROCESS", None)
        return ckpt.list_checkpoints(out)

    written = run("checkpoints")  # warm-up (data set, page cache)
    print(f"mode {args.mode}: checkpoints written in the epoch:", written)
    run("none")
    times = {k: [] for k in times}
    names = ["checkpoints", "none"] + (["process"] if args.process else []) + (["sync"] if args.sync else [])
    for i in range(args.rounds):
        order = names if i % 2 == 0 else names[::-1]
        for n in order:
            run(n)
    out = {"threads": torch.get_num_threads(), "load_before": os.getloadavg()[0], "rounds": args.rounds,
           "mode": args.mode, "checkpoint_steps": written, "rows": {}}
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
