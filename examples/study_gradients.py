"""Measured gradients: estimator variance against shots, and fine-tuning under device noise.

    python examples/study_gradients.py variance --run RUN [--out docs/figures]
    python examples/study_gradients.py finetune --run RUN [--steps 150] [--out docs/figures]

RUN: a noiselessly trained examples/hardware.qnn, e.g.
    qnnc train examples/hardware.qnn --epochs 3 --out runs/hardware-e3     (seed 0)

`variance`: on 4 test images (mnist.test[0:4]) and RUN's weights, the parameter-shift
and the score-function estimates at shots 16..1024 (seed 0, the noiseless fast
executor): the mean standard error of the hidden weights, the passes each took, and the
standard error at equal passes (s.e. x sqrt(passes)). Writes gradient-variance.json/.png.

`finetune`: RUN's weights evaluated on the first 1000 test images, vote over 10 shots,
without and with FakeBrisbane's noise (fast executor, `ibm:fake_brisbane`); then
fine-tuned with parameter-shift gradients measured on the *noisy* fast executor, and,
as a control, the same steps measured on the *ideal* one (same seeds, batches, lr);
both results evaluated under noise and without. Writes gradient-finetune.json/.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(run):
    from qnnc.compiler import load_program
    from qnnc.runtime.checkpoint import resolve_checkpoint
    from qnnc.runtime.weights import load_weights

    prog = load_program(str(ROOT / "examples" / "hardware.qnn"))
    net = prog.network()
    t, _, _ = load_weights(prog, net, resolve_checkpoint(run, "last"), 0)
    return prog, net, t


def variance(args) -> dict:
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.gradients import estimate, make_executor

    prog, net, t = _load(args.run)
    ds = load_dataset("mnist.test")
    x = preprocess(ds.images[:4], net.input).astype(np.float64)
    y = ds.labels[:4].astype(np.int64)
    rows = []
    for est in ("shift", "score"):
        for shots in (16, 64, 256, 1024):
            ex = make_executor("sim", prog, net, t, seed=0)
            e = estimate(ex, prog, net, t, x, y, shots=shots, estimator=est)
            hidden = torch.cat([e.stderr[n].reshape(-1) for n in ("h1", "h2", "h3")])
            se = float(hidden.mean())
            rows.append({"estimator": est, "shots": shots, "stderr": se,
                         "stderr_by_layer": {n: float(e.stderr[n].mean()) for n in ("h1", "h2", "h3", "y")},
                         "variants": e.variants, "passes": e.passes, "seconds": e.wall_s,
                         "stderr_x_sqrt_passes": se * e.passes ** 0.5})
            print(f"{est:>6} {shots:>5} shots: mean s.e. {se:.5f} (h1 {rows[-1]['stderr_by_layer']['h1']:.5f}, "
                  f"h3 {rows[-1]['stderr_by_layer']['h3']:.5f}), {e.passes} passes, "
                  f"s.e. x sqrt(passes) {rows[-1]['stderr_x_sqrt_passes']:.3f}", flush=True)
    return {"rows": rows}


def finetune_study(args) -> dict:
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.gradients import make_executor, net_view, view_model
    from qnnc.runtime.gradients.finetune import finetune, vote_accuracy
    from qnnc.runtime.noise import parse

    prog, net, t = _load(args.run)
    noise = parse("ibm:fake_brisbane", prog, net)
    ds = load_dataset("mnist.test")
    xe = preprocess(ds.images[:args.eval_images], net.input).astype(np.float64)
    ye = ds.labels[:args.eval_images].astype(np.int64)
    view_model(prog, net)

    def evaluate(w, nz, seed):
        ex = make_executor("sim", prog, net, w, seed=seed, noise=nz)
        return vote_accuracy(ex, net_view(view_model(prog, net), w), xe, ye, 10)

    out = {"start": {"ideal": evaluate(t, None, 101), "noisy": evaluate(t, noise, 101)}, "runs": {}}
    print("start:", out["start"], flush=True)
    for label, nz in (("measured under noise", noise), ("measured without noise (control)", None)):
        ex = make_executor("sim", prog, net, t, seed=0, noise=nz)
        r = finetune(prog, net, t, ex, steps=args.steps, batch=args.batch, shots=args.shots, lr=args.lr,
                     momentum=0.9, eval_images=args.eval_images, eval_shots=10, eval_every=args.eval_every,
                     seed=0, progress=lambda m: print(f"  [{label}] {m}", flush=True))
        w = r["weights"]
        out["runs"][label] = {"history": r["history"], "seconds": r["seconds"],
                              "final": {"ideal": evaluate(w, None, 101), "noisy": evaluate(w, noise, 101)}}
        print(label, out["runs"][label]["final"], flush=True)
    out["settings"] = {"steps": args.steps, "batch": args.batch, "shots": args.shots, "lr": args.lr,
                       "momentum": 0.9, "eval_images": args.eval_images, "seed": 0}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("variance", "finetune"))
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--eval-images", type=int, default=1000)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--replot", action="store_true", help="finetune: redraw the figure from its JSON")
    args = ap.parse_args(argv)
    from qnnc.runtime import plots

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        r = json.loads((out / "gradient-finetune.json").read_text())
    if args.part == "variance":
        r = variance(args)
        (out / "gradient-variance.json").write_text(json.dumps(r, indent=2) + "\n")
        (out / "gradient-variance.png").write_bytes(plots.estimator_variance(
            r["rows"], title="hardware.qnn, 4 test images"))
    else:
        if not args.replot:
            r = finetune_study(args)
        (out / "gradient-finetune.json").write_text(json.dumps(r, indent=2) + "\n")
        runs = {k + (" (evaluated under noise)" if "under noise" in k else " (evaluated without)"): v["history"]
                for k, v in r["runs"].items()}
        st = r["start"]
        ref = {m: {"start, ideal": st["ideal"][m], "start, noisy": st["noisy"][m]}
               for m in ("loss", "single_shot_accuracy", "accuracy")}
        (out / "gradient-finetune.png").write_bytes(plots.finetune_curves(
            runs, title="hardware.qnn fine-tuned with measured gradients (fast executor, FakeBrisbane noise)",
            reference=ref, metrics=("loss", "single_shot_accuracy", "accuracy")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
