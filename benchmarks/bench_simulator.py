"""Benchmark of the torch simulator against its floor, the bare matrix products.

    python benchmarks/bench_simulator.py [--json PATH] [--repeats 3]

1. Evaluation: the 784-512-512-10 rotation network (a = 0.5, random weights from the IR
   init) on 10,000 images x 15 shots (majority vote included). Floor: the dense products
   it cannot avoid, one [10000,784]@[784,512], then 15 x [10000,512]@[512,512] and
   15 x [10000,512]@[512,10]. Targets: <= 3 s and <= 2x the floor.
2. One training epoch of the papers' recipe: 5,000 images, batch 64, SGD(lr 0.01,
   momentum 0.9), straight-through gradient, one shot per image. Floor: the same
   forward and backward products on plain tensors (3 forward, 5 backward per batch).
   Targets: <= 2 s and <= 3x the floor.

Inputs are uniform random pixels in [0, 1] and random labels: the cost does not depend on
the data. Timings are the minimum over repeats, each workload timed next to its floor so
that a busy machine slows both. Peak memory: each workload runs once more in a fresh
process, after its inputs are built; reported is its resident-set high-water mark
(Linux: reset through /proc/self/clear_refs, read from VmHWM) above the resident set
just before it ran, i.e. the memory the workload itself added. torch runs on 2 threads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

TARGETS = {"eval": (3.0, 2.0), "train": (2.0, 3.0)}  # (seconds, ratio to the floor)


# --------------------------------------------------------------------------- measurement helpers


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """Resident memory a block adds at its peak, in MiB (above the resident set at entry)."""

    def __enter__(self):
        self.reset = False
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets VmHWM to the current RSS
            self.reset = True
        except OSError:
            pass
        self.start = _status_kib("VmRSS") or 0
        return self

    def __exit__(self, *exc):
        if self.reset and _status_kib("VmHWM") is not None:
            peak = _status_kib("VmHWM")
        else:  # no reset possible: the process high-water mark, an upper bound
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.mib = max(0, peak - self.start) / 1024
        return False


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "load_average_1m": round(load[0], 2)}


# --------------------------------------------------------------------------- the network


def build_model(a: float, seed: int):
    from qnnc.runtime.simulator import QNNModel

    try:
        from qnnc.compiler import load_program

        prog = load_program(str(ROOT / "examples" / "mnist.qnn"), overrides={"a": repr(a), "width": "512"})
        source = "examples/mnist.qnn"
    except ImportError:  # before the front end existed: the same IR, built by hand
        sys.path.insert(0, str(ROOT / "tests"))
        import ir_builders as B

        prog = B.network(784, [(512, ("rotation", {"a": a})), (512, ("rotation", {"a": a})), (10, "linear")])
        source = "tests/ir_builders.py"
    return QNNModel(prog, seed=seed), source


# --------------------------------------------------------------------------- workloads


def eval_run(model, x, shots, gen):
    model.predict(x, shots, generator=gen)


def eval_floor(x, W, D, shots):
    W1, W2, W3 = W
    x @ W1.T
    for _ in range(shots):
        D @ W2.T
        D @ W3.T


def train_epoch(model, x, y, batch, gen, opt):
    perm = torch.randperm(x.shape[0], generator=gen)
    for i in range(0, x.shape[0], batch):
        idx = perm[i:i + batch]
        opt.zero_grad(set_to_none=True)
        logits = model(x[idx], shots=1, generator=gen)[0]
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        loss.backward()
        opt.step()


def train_floor(x, W, D1, D2, batch):
    W1, W2, W3 = W
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        b = xb.shape[0]
        s1, s2 = D1[:b], D2[:b]
        xb @ W1.T                  # forward
        s1 @ W2.T
        y = s2 @ W3.T
        gy = y                     # backward: dlogits -> W3, d2 -> W2, d1 -> W1
        gz2 = gy @ W3
        gy.T @ s2
        g1 = gz2 @ W2
        gz2.T @ s1
        g1.T @ xb


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def setup(args, phase: str):
    """The inputs of a phase and its two workloads (simulator, floor) as closures."""
    gen = torch.Generator().manual_seed(0)
    model, source = build_model(args.a, seed=0)
    W = tuple(model.weight[p.name].detach().clone() for p in model.plans)
    width = W[1].shape[0]
    if phase == "eval":
        x = torch.rand(args.images, model.features, generator=gen)
        D = torch.randint(0, 2, (args.images, width), generator=gen).float() * 2 - 1
        eval_run(model, x[:64], args.shots, gen)  # warm-up: thread pools, first-call costs
        work = lambda: eval_run(model, x, args.shots, gen)
        floor = lambda: eval_floor(x, W, D, args.shots)
        label = f"evaluation: {args.images} images x {args.shots} shots, 784-{width}-{width}-10, a={args.a:g}"
    else:
        xt = torch.rand(args.train_images, model.features, generator=gen)
        yt = torch.randint(0, 10, (args.train_images,), generator=gen)
        D1 = torch.randint(0, 2, (args.batch, width), generator=gen).float() * 2 - 1
        D2 = torch.randint(0, 2, (args.batch, width), generator=gen).float() * 2 - 1
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        train_epoch(model, xt[:2 * args.batch], yt[:2 * args.batch], args.batch, gen, opt)  # warm-up
        work = lambda: train_epoch(model, xt, yt, args.batch, gen, opt)
        floor = lambda: train_floor(xt, W, D1, D2, args.batch)
        label = (f"training epoch: {args.train_images} images, batch {args.batch}, SGD momentum, "
                 "straight-through")
    return label, source, work, floor


def memory_probe(args, phase: str, which: str) -> float:
    """Run once in this (fresh) process; the resident memory it added, in MiB."""
    _, _, work, floor = setup(args, phase)
    with PeakRSS() as mem:
        (work if which == "work" else floor)()
    return mem.mib


def probe_in_subprocess(argv, phase: str, which: str) -> float:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--memory-probe", f"{phase}:{which}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=dict(os.environ))
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--shots", type=int, default=15)
    ap.add_argument("--train-images", type=int, default=5_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--a", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the targets are for 2)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--memory-probe", help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    os.environ["QNNC_THREADS"] = str(args.threads)  # qnnc keeps this setting (runtime/threads.py)
    torch.set_num_threads(args.threads)

    if args.memory_probe:
        phase, which = args.memory_probe.split(":")
        print(memory_probe(args, phase, which))
        return 0

    passthrough = [a for a in argv if not a.startswith("--json")]
    if args.json:  # drop the path that follows a bare --json
        i = passthrough.index(args.json) if args.json in passthrough else -1
        if i >= 0:
            passthrough.pop(i)
    rows = []
    source = ""
    for phase in ("eval", "train"):
        label, source, work, floor = setup(args, phase)
        t_work, t_floor = math.inf, math.inf
        for _ in range(args.repeats):  # interleaved: a busy machine slows both alike
            t_floor = min(t_floor, timed(floor))
            t_work = min(t_work, timed(work))
        del work, floor
        row = dict(workload=label, key=phase, seconds=t_work, floor_seconds=t_floor,
                   peak_mib=math.nan, floor_peak_mib=math.nan)
        if not args.no_memory:
            row["peak_mib"] = probe_in_subprocess(passthrough, phase, "work")
            row["floor_peak_mib"] = probe_in_subprocess(passthrough, phase, "floor")
        rows.append(row)

    mach = machine()
    for r in rows:
        r["ratio"] = r["seconds"] / r["floor_seconds"]
        secs, ratio = TARGETS[r["key"]]
        r["target_seconds"], r["target_ratio"] = secs, ratio
        r["meets_target"] = r["seconds"] <= secs and r["ratio"] <= ratio

    print(f"qnnc simulator benchmark ({source}); machine: {mach['cpu']}, {mach['cores']} cores, "
          f"torch {mach['torch']} on {mach['torch_threads']} threads, 1-min load average "
          f"{mach['load_average_1m']} at the end")
    print()
    print("| workload | time (s) | floor (s) | ratio | target | peak memory added (MiB) | floor's (MiB) |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for r in rows:
        ok = "met" if r["meets_target"] else "MISSED"
        print(f"| {r['workload']} | {r['seconds']:.3f} | {r['floor_seconds']:.3f} | {r['ratio']:.2f}x | "
              f"<= {r['target_seconds']:g} s and <= {r['target_ratio']:g}x: {ok} | {r['peak_mib']:.0f} | "
              f"{r['floor_peak_mib']:.0f} |")
    if args.json:
        out = {"machine": mach, "source": source, "rows": rows,
               "args": {k: v for k, v in vars(args).items() if k not in ("json", "memory_probe")}}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
