"""Paper studies: validation error versus a (model A) or g (model B).

Trains one network per (value, seed) with the program's recipe, evaluates each on the
10,000 MNIST test images with a majority vote over the readout's shots, and writes a
JSON table, a plot (PNG and PDF) and a markdown table. Every run directory is kept, so
the checkpoints can be analysed later (`qnnc hamiltonian`, `qnnc tap`).

    # model A, arXiv 2503.15482: error versus a
    .venv/bin/python examples/study_sweep.py examples/mnist.qnn --param a \
        --values 0 0.1 0.2 0.5 1 2 5 --seeds 0 1 2 --out runs/study-a

    # model B: error versus g (locates g_c)
    .venv/bin/python examples/study_sweep.py examples/weak.qnn --param g \
        --values 0 0.2 0.4 0.6 0.8 1.0 1.2 1.4 1.5708 --seeds 0 1 2 --out runs/study-g

`--epochs`, `--set NAME=VALUE` and `--limit-train N` shrink a study for a quick look.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--param", required=True, help="the `param` to sweep (a or g)")
    ap.add_argument("--values", type=float, nargs="+", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, help="override the recipe's epochs")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--shots", type=int, help="vote over this many passes (default: the readout's)")
    ap.add_argument("--out", required=True, help="study directory")
    args = ap.parse_args(argv)

    import numpy as np

    from qnnc.compiler import load_program
    from qnnc.compiler.passes import OverrideTraining, PassManager
    from qnnc.runtime.cli.eval import evaluate
    from qnnc.runtime.train import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = dict(s.split("=", 1) for s in args.set)
    rows = []
    for value in args.values:
        for seed in args.seeds:
            program = load_program(args.file, {**base, args.param: repr(value)})
            overrides = {"seed": seed, **({"epochs": args.epochs} if args.epochs is not None else {})}
            program = PassManager([OverrideTraining(overrides)]).run(program)
            net = program.network()
            recipe = program.train(net.name)
            run_dir = out / f"{args.param}={value:g}" / f"seed{seed}"
            t0 = time.perf_counter()
            if not (run_dir / "run.json").exists():
                train(program, net, recipe, run_dir, flags={"set": {args.param: value}, **overrides},
                      progress=False)
            shots = args.shots or net.readout.shots
            r = evaluate(program, net, run_dir, "last", shots, "mnist.test", None, seed=1000 + seed)
            rows.append({"param": args.param, "value": value, "seed": seed, "accuracy": r["accuracy"],
                         "ci95": r["ci95"], "single_shot_accuracy": r["single_shot_accuracy"],
                         "shots": shots, "seconds": time.perf_counter() - t0, "run": str(run_dir)})
            print(f"{args.param}={value:g} seed={seed}: accuracy {r['accuracy']:.4f} "
                  f"(single pass {r['single_shot_accuracy']:.4f})", file=sys.stderr)
            (out / "results.json").write_text(json.dumps(rows, indent=2))

    # Per value: mean over seeds and its standard error; the per-run Wilson intervals are in the JSON.
    summary = []
    for value in args.values:
        accs = np.array([r["accuracy"] for r in rows if r["value"] == value])
        singles = np.array([r["single_shot_accuracy"] for r in rows if r["value"] == value])
        sem = accs.std(ddof=1) / math.sqrt(len(accs)) if len(accs) > 1 else float("nan")
        summary.append({"value": value, "error_mean": 1 - accs.mean(), "error_sem": sem,
                        "single_shot_error_mean": 1 - singles.mean(), "seeds": len(accs)})
    (out / "summary.json").write_text(json.dumps({"file": args.file, "param": args.param, "rows": rows,
                                                  "summary": summary}, indent=2))
    lines = [f"| {args.param} | test error (vote) | ± s.e.m. over seeds | single-pass error | seeds |",
             "|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['value']:g} | {s['error_mean']:.4f} | {s['error_sem']:.4f} | "
                     f"{s['single_shot_error_mean']:.4f} | {s['seeds']} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(summary, args.param, out)
    return 0


def _plot(summary, param: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [s["value"] for s in summary]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(xs, [s["error_mean"] for s in summary], yerr=[s["error_sem"] for s in summary],
                marker="o", capsize=3, label="majority vote")
    ax.plot(xs, [s["single_shot_error_mean"] for s in summary], marker="s", ls="--", label="single pass")
    ax.set_xlabel(param)
    ax.set_ylabel("test error (10,000 images)")
    if param == "a" and min(xs) >= 0 and max(xs) > 10 * (sorted(set(xs))[1] if len(set(xs)) > 1 else 1):
        ax.set_xscale("symlog", linthresh=0.1)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"error_vs_{param}.{ext}", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
