"""Noise probes of the hardware paper (arXiv 2507.21222) in simulation.

For the networks trained by examples/study_hardware.py (one per a), test images 6929
(label 2, borderline) and 0 (label 7, clear), 96 samples each: the fraction of samples
whose label is right,
  * in ideal simulation (the torch simulator, and the compiled IBM circuits on Qiskit Aer),
  * with FakeBrisbane's noise model on the compiled circuits, K = 0, 5, 10, 20, 50, 100
    pairs (√X, √X†) inserted after every neuron rotation (kept through transpilation).

    .venv/bin/python examples/study_noise.py --runs runs/study-hardware --out runs/study-noise

Writes results.json, summary.md and a plot (PNG and PDF).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PAPER = "design note: ideal 0/96 (a=0), 91/96 (a=0.5), 17/96 (a=5) for image 6929; hardware noise moves a=0 to 11–50 %"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="examples/hardware.qnn")
    ap.add_argument("--runs", default="runs/study-hardware", help="directory of study_hardware.py")
    ap.add_argument("--values", type=float, nargs="+", default=[0, 0.5, 5])
    ap.add_argument("--images", type=int, nargs="+", default=[6929, 0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[0, 5, 10, 20, 50, 100])
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--backend", default="fake_brisbane")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.train import build_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = load_dataset("mnist.test")
    rows = []
    for a in args.values:
        program = load_program(args.file, {"a": repr(a)})
        net = program.network()
        c = ckpt.load_checkpoint(ckpt.resolve_checkpoint(Path(args.runs) / f"a={a:g}", "last"), net)
        weights = {k: np.asarray(v, dtype=np.float64) for k, v in c.tensors.items()}
        out_layer = net.layers[-1]
        w_out = weights[out_layer.name]
        b_out = weights.get(f"{out_layer.name}.bias")
        last_width = net.layers[-2].size
        model = build_model(program, net, seed=args.seed)
        model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in c.tensors.items()})
        model.eval()
        for image in args.images:
            x = preprocess(test.images[image:image + 1], net.input)
            label = int(test.labels[image])
            with torch.no_grad():
                gen = torch.Generator().manual_seed(args.seed + image)
                torch_labels = model(torch.from_numpy(x), shots=args.samples, generator=gen).argmax(-1)[:, 0]
            row = {"a": a, "image": image, "label": label, "samples": args.samples,
                   "torch_ideal_correct": int((torch_labels == label).sum()), "circuits": {}}
            for sim, pairs in [("ideal", 0)] + [("noisy", k) for k in args.pairs]:
                t0 = time.perf_counter()
                compiled = compile_network(program, None, weights, x[0].astype(np.float64), target="ibm",
                                           backend=args.backend, noise_pairs=pairs, noise_kind="sx",
                                           seed=args.seed)
                outcomes = run_compiled(compiled, args.samples, simulator=sim, seed=args.seed + 17 * pairs + image)
                d_last = outcomes[:, -last_width:].astype(np.float64)
                logits = d_last @ w_out.T + (b_out if b_out is not None else 0.0)
                correct = int((logits.argmax(-1) == label).sum())
                row["circuits"][f"{sim}-K{pairs}"] = {"correct": correct, "pairs": pairs, "simulator": sim,
                                                       "strategy": compiled.strategy,
                                                       "seconds": time.perf_counter() - t0}
                print(f"a={a:g} image {image}: {sim} K={pairs}: {correct}/{args.samples} "
                      f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            rows.append(row)
            (out / "results.json").write_text(json.dumps(rows, indent=2))
    keys = ["ideal-K0"] + [f"noisy-K{k}" for k in args.pairs]
    lines = ["| a | image (label) | torch ideal | Aer ideal | " + " | ".join(f"noise K={k}" for k in args.pairs) + " |",
             "|---|---|---|---|" + "---|" * len(args.pairs)]
    for r in rows:
        cells = [f"{r['circuits'][k]['correct']}" for k in keys]
        lines.append(f"| {r['a']:g} | {r['image']} ({r['label']}) | {r['torch_ideal_correct']} | " + " | ".join(cells) + " |")
    lines.append(f"\nEntries: samples (of {args.samples}) with the right label. Backend {args.backend}. {PAPER}.")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(rows, args.pairs, args.samples, out)
    return 0


def _plot(rows, pairs, samples, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(rows):
        ys = [r["circuits"][f"noisy-K{k}"]["correct"] / samples for k in pairs]
        ax.plot(pairs, ys, marker="o", color=f"C{i}", label=f"a={r['a']:g}, image {r['image']}")
        ax.axhline(r["circuits"]["ideal-K0"]["correct"] / samples, color=f"C{i}", ls=":", lw=1)
    ax.set_xlabel("noise pairs K (√X·√X† after each rotation)")
    ax.set_ylabel(f"fraction of {samples} samples correct")
    ax.set_xscale("symlog", linthresh=5)
    ax.legend(fontsize=7)
    ax.set_title("dotted: ideal Aer simulation")
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"noise_probe.{ext}", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
