"""Evaluation and one training epoch of the 784-512-512-10 network (examples/mnist.qnn,
a = 0.5) on a torch device, beside the same work on the CPU in the same run.

    .venv/bin/python benchmarks/bench_device.py --device cuda            # the BENCHMARKS.md rows
    .venv/bin/python benchmarks/bench_device.py --device cpu --images 1000 --train-images 640

Evaluation: `images` test images x 15 shots, voted (`qnnc.runtime.train.predict`).
Training: one epoch of `train-images` images of mnist.train5k, batch 64, SGD with
momentum, straight-through (`qnnc.runtime.train.train_step`, the loop's step; the loss
and accuracy are read back once per step as the training loop does). Each workload runs
once to warm up, then `--repeat` times; the median is reported. Times include the
device's synchronisation at the end of each run. No GPU was available when this was
written: docs/devices.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure(device_name: str, images: int, train_images: int, repeat: int) -> dict:
    import numpy as np
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.devices import from_host, host_float, resolve_device
    from qnnc.runtime.train import build_model, predict, train_step

    device = resolve_device(device_name)
    program = load_program(str(ROOT / "examples" / "mnist.qnn"), overrides={"a": "0.5", "width": "512"})
    network = program.network()
    test, tr = load_dataset("mnist.test"), load_dataset("mnist.train5k")
    x = from_host(preprocess(test.images[:images], network.input), device)
    xt = from_host(preprocess(tr.images[:train_images], network.input), device)
    yt = from_host(tr.labels[:train_images].astype(np.int64), device)

    def evaluation():
        model = build_model(program, network, 0, device=device)
        predict(model, x, 15, 0)
        _sync(device)

    def epoch():
        model = build_model(program, network, 0, device=device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        gen = torch.Generator().manual_seed(1)
        for b in range(0, train_images, 64):
            loss, acc = train_step(model, opt, xt[b:b + 64], yt[b:b + 64], gen)
            host_float(loss), host_float(acc)
        _sync(device)

    out = {"device": str(device)}
    if device.type == "cuda":
        out["name"] = torch.cuda.get_device_name(device)
    for name, fn in (("evaluation", evaluation), ("training_epoch", epoch)):
        fn()  # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--train-images", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    from qnnc.compiler.diagnostics import QnncError

    try:
        rows = [measure(args.device, args.images, args.train_images, args.repeat)]
    except QnncError as exc:  # e.g. Q0634: no such device here
        print(f"error[{exc.diagnostics[0].code}]: {exc.diagnostics[0].message}", file=sys.stderr)
        return 2
    if rows[0]["device"] != "cpu":
        rows.append(measure("cpu", args.images, args.train_images, args.repeat))
    print(f"evaluation: {args.images} images x 15 shots; training epoch: {args.train_images} images, batch 64")
    for r in rows:
        print(f"  {r['device']:8s} {r.get('name', ''):24s} evaluation {r['evaluation']:.3f} s   "
              f"training epoch {r['training_epoch']:.3f} s")
    if len(rows) == 2:
        print(f"  cpu / {rows[0]['device']}: evaluation {rows[1]['evaluation'] / rows[0]['evaluation']:.2f}x, "
              f"training epoch {rows[1]['training_epoch'] / rows[0]['training_epoch']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
