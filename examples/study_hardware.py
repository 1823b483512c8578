"""The hardware paper's statistics in ideal simulation (arXiv 2507.21222).

For each a, trains the 784-16-16-16-10 network of examples/hardware.qnn (one network
per a, as the paper does), then:

* 55 random test images (drawn with --image-seed), 10 samples each, the majority label:
  accuracy per a, beside the paper's ideal-simulation numbers;
* the single-image study: test images 6929 (label 2, "borderline") and 0 (label 7,
  "clear"), 96 samples each: how many samples give the right label.

    .venv/bin/python examples/study_hardware.py --out runs/study-hardware
    .venv/bin/python examples/study_hardware.py --noise ibm:fake_brisbane --out runs/study-hardware-noisy

Writes results.json, a markdown table (summary.md) and plots (PNG and PDF).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The paper's ideal-simulation numbers, as summarised in the design notes that accompanied this work.
PAPER_55 = {0: 0.836, 0.1: 0.873, 0.2: 0.909, 0.5: 0.964, 1: 0.909, 1.5: 0.855, 2: 0.873}
PAPER_SINGLE = {(6929, 0): 0, (6929, 0.5): 91, (6929, 5): 17}  # correct out of 96


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="examples/hardware.qnn")
    ap.add_argument("--values", type=float, nargs="+", default=[0, 0.1, 0.2, 0.5, 1, 1.5, 2, 5])
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--image-seed", type=int, default=2025, help="seed of the 55-image draw")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--noise", metavar="MODEL",
                    help="train and evaluate under device noise (e.g. ibm:fake_brisbane; docs/hardware-in-the-loop.md)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from qnnc.compiler import load_program
    from qnnc.compiler.passes import OverrideTraining, PassManager
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.simulator import QNNModel
    from qnnc.runtime.train import train, wilson_interval

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = load_dataset("mnist.test")
    rng = np.random.default_rng(args.image_seed)
    idx55 = np.sort(rng.choice(len(test.labels), size=55, replace=False))
    rows = []
    for a in args.values:
        program = load_program(args.file, {"a": repr(a)})
        overrides = {"seed": args.seed, **({"epochs": args.epochs} if args.epochs is not None else {})}
        program = PassManager([OverrideTraining(overrides)]).run(program)
        net = program.network()
        run_dir = out / f"a={a:g}"
        noise = None
        if args.noise:
            from qnnc.runtime.noise import parse

            noise = parse(args.noise, program, net)
            overrides["noise"] = args.noise
        if not (run_dir / "run.json").exists():
            train(program, net, program.train(net.name), run_dir, flags={"set": {"a": a}, **overrides},
                  progress=False, noise=noise)
        c = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run_dir, "last"), net)
        model = QNNModel(program, net.name, seed=0, noise=noise)
        model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in c.tensors.items()})
        model.eval()
        x = torch.from_numpy(preprocess(test.images, net.input))
        y = torch.from_numpy(test.labels.astype(np.int64))
        gen = torch.Generator().manual_seed(args.image_seed + 1)
        with torch.no_grad():
            vote, _ = model.predict(x[idx55], 10, gen)
            k55 = int((vote == y[idx55]).sum())
            single = {}
            for image in (6929, 0):
                samples = model(x[image:image + 1], shots=96, generator=gen).argmax(-1)[:, 0]
                single[image] = {"correct": int((samples == y[image]).sum()), "of": 96,
                                 "label": int(y[image]),
                                 "counts": np.bincount(samples.numpy(), minlength=10).tolist()}
        lo, hi = wilson_interval(k55, 55)
        row = {"a": a, "accuracy_55": k55 / 55, "ci95_55": [lo, hi], "paper_55": PAPER_55.get(a),
               "single": single, "run": str(run_dir)}
        rows.append(row)
        print(f"a={a:g}: 55-image accuracy {k55}/55 = {k55 / 55:.3f} (paper {PAPER_55.get(a)}); "
              f"image 6929: {single[6929]['correct']}/96, image 0: {single[0]['correct']}/96", file=sys.stderr)
    (out / "results.json").write_text(json.dumps({"images55": idx55.tolist(), "rows": rows}, indent=2))
    lines = ["| a | 55 images, 10 samples, majority (ours) | 95% CI | paper (ideal) | image 6929 correct /96 (paper) | image 0 correct /96 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        p = r["paper_55"]
        ps = PAPER_SINGLE.get((6929, r["a"]))
        lines.append(f"| {r['a']:g} | {r['accuracy_55']:.3f} | {r['ci95_55'][0]:.3f}–{r['ci95_55'][1]:.3f} | "
                     f"{'' if p is None else f'{p:.3f}'} | {r['single'][6929]['correct']}"
                     f"{'' if ps is None else f' ({ps})'} | {r['single'][0]['correct']} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(rows, out)
    return 0


def _plot(rows, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    a = [r["a"] for r in rows]
    axes[0].errorbar(a, [r["accuracy_55"] for r in rows],
                     yerr=[[r["accuracy_55"] - r["ci95_55"][0] for r in rows],
                           [r["ci95_55"][1] - r["accuracy_55"] for r in rows]], marker="o", capsize=3, label="qnnc")
    pa = [x for x in a if x in PAPER_55]
    axes[0].plot(pa, [PAPER_55[x] for x in pa], "s--", label="paper (ideal sim.)")
    axes[0].set_xlabel("a")
    axes[0].set_ylabel("accuracy, 55 images")
    axes[0].set_xscale("symlog", linthresh=0.1)
    axes[0].legend()
    for image, marker in ((6929, "o"), (0, "^")):
        axes[1].plot(a, [r["single"][image]["correct"] / 96 for r in rows], marker=marker, label=f"test image {image}")
    axes[1].plot([0, 0.5, 5], [PAPER_SINGLE[(6929, x)] / 96 for x in (0, 0.5, 5)], "k*", ms=10,
                 label="paper, image 6929")
    axes[1].set_xlabel("a")
    axes[1].set_ylabel("fraction of 96 samples correct")
    axes[1].set_xscale("symlog", linthresh=0.1)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"hardware_study.{ext}", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
