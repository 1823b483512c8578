"""The landscape study (issue "Replica symmetry breaking and energy landscapes", item 4):
over test images of the trained hardware network, relate the classification energy
landscape of each image (`qnnc landscape`: E(s) = −log P(s | x)) to its sensitivity to
hardware noise.

Per image:
  * the landscape's lowest minimum (its label), the energy gap to the lowest minimum of
    another label and the Hamming distance to it (`Landscape.find_minima`, descent from
    --starts patterns with label probes; exhaustive when the support is small);
  * the ideal label distribution p_ideal from the torch simulator (--ideal-shots shots);
    c* = its most likely label, and the ideal margin p_ideal(c*) − p_ideal(runner-up);
  * the noisy label distribution p_noisy from the compiled IBM circuits (`layered`, as
    `qnnc run --target ibm --simulator noisy`) on Qiskit Aer with FakeBrisbane's noise
    model, --shots shots per image; the images of a batch share one run (one input per
    shot, `host.shot_inputs`), which is what keeps Aer's cost modest;
  * sensitivity Δ = p_ideal(c*) − p_noisy(c*): how much noise takes away from the ideal
    vote's label (unbiased in the noisy shots, unlike a distance between histograms).

Spearman correlations of Δ with the gap, the Hamming distance and the ideal margin, each
with a bootstrap 95% interval over images.

    .venv/bin/qnnc train examples/hardware.qnn --epochs 1 --out runs/landscape-hardware
    OMP_NUM_THREADS=1 .venv/bin/python examples/study_landscape.py --run runs/landscape-hardware --out runs/study-landscape

Writes results.json, summary.md and landscape_noise.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def bootstrap_ci(a, b, resamples: int, seed: int) -> tuple[float, float]:
    import numpy as np

    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    vals = []
    for _ in range(resamples):
        i = rng.integers(0, a.size, a.size)
        vals.append(spearman(a[i], b[i]))
    lo, hi = np.nanpercentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="examples/hardware.qnn")
    ap.add_argument("--run", default="runs/landscape-hardware")
    ap.add_argument("--checkpoint", default="last")
    ap.add_argument("--images", type=int, default=200, help="test images 0 .. N-1")
    ap.add_argument("--shots", type=int, default=48, help="noisy Aer shots per image")
    ap.add_argument("--ideal-shots", type=int, default=4096, help="torch-simulator shots per image")
    ap.add_argument("--batch", type=int, default=25, help="images per Aer run")
    ap.add_argument("--starts", type=int, default=128)
    ap.add_argument("--exhaustive-limit", type=int, default=4096)
    ap.add_argument("--flip", type=float, default=0.0)
    ap.add_argument("--backend", default="fake_brisbane")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.landscape import landscape_of
    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.targets.compile import predictions
    from qnnc.runtime.train import build_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    program = load_program(args.file)
    net = program.network()
    path = ckpt.resolve_checkpoint(Path(args.run), args.checkpoint)
    tensors = {k: np.asarray(v, dtype=np.float64) for k, v in ckpt.load_checkpoint(path, net).tensors.items()}
    test = load_dataset("mnist.test")
    X = preprocess(test.images[:args.images], net.input).astype(np.float64)
    labels = test.labels[:args.images].astype(int)
    n_out = net.layers[-1].size

    # 1. the landscape of each image
    t0 = time.perf_counter()
    rows = []
    for i in range(args.images):
        land = landscape_of(program, net, tensors, X[i], args.flip)
        res = land.find_minima(starts=args.starts, seed=args.seed, exhaustive_limit=args.exhaustive_limit)
        g = res.ground
        rows.append({"image": i, "label": int(labels[i]), "mode": res.mode, "n_minima": len(res.minima),
                     "ground_label": g.label, "ground_energy": g.energy, "gap": g.gap, "hamming": g.hamming,
                     "ground_basin": g.starts})
    t_land = time.perf_counter() - t0
    print(f"landscapes: {args.images} images in {t_land:.0f} s", file=sys.stderr, flush=True)

    # 2. ideal label distributions (torch simulator)
    model = build_model(program, net, args.seed)
    model.load_tensors({k: torch.from_numpy(v) for k, v in tensors.items()})
    with torch.no_grad():
        gen = torch.Generator().manual_seed(args.seed)
        per_shot = model(torch.from_numpy(X).float(), shots=args.ideal_shots, generator=gen).argmax(-1)  # [S, B]
    p_ideal = np.stack([np.bincount(per_shot[:, i].numpy(), minlength=n_out) for i in range(args.images)]) / args.ideal_shots

    # 3. noisy label distributions (compiled circuits on Aer with FakeBrisbane's noise)
    t0 = time.perf_counter()
    compiled = compile_network(program, None, tensors, X[0], target="ibm", backend=args.backend, seed=args.seed)
    p_noisy = np.zeros((args.images, n_out))
    for b0 in range(0, args.images, args.batch):
        idx = list(range(b0, min(args.images, b0 + args.batch)))
        xs = np.repeat(X[idx], args.shots, axis=0)  # image-major: shots of image idx[0] first
        batch = dataclasses.replace(compiled, spec=dataclasses.replace(compiled.spec, x=xs))
        outcomes = run_compiled(batch, xs.shape[0], simulator="noisy", seed=args.seed + b0)
        lab = np.asarray(predictions(batch, outcomes)["labels"]).reshape(len(idx), args.shots)
        for j, i in enumerate(idx):
            p_noisy[i] = np.bincount(lab[j], minlength=n_out) / args.shots
        print(f"  noisy Aer: images {idx[0]}-{idx[-1]} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    t_aer = time.perf_counter() - t0

    for r in rows:
        i = r["image"]
        order = np.argsort(-p_ideal[i], kind="stable")
        c = int(order[0])
        r.update({"ideal_label": c, "p_ideal": p_ideal[i].tolist(), "p_noisy": p_noisy[i].tolist(),
                  "margin": float(p_ideal[i][c] - p_ideal[i][order[1]]),
                  "sensitivity": float(p_ideal[i][c] - p_noisy[i][c])})

    # 4. correlations
    sens = np.array([r["sensitivity"] for r in rows])
    finite = np.array([r["gap"] is not None for r in rows])
    gap = np.array([r["gap"] if r["gap"] is not None else np.inf for r in rows])
    ham = np.array([r["hamming"] if r["hamming"] is not None else 10 ** 6 for r in rows], float)
    margin = np.array([r["margin"] for r in rows])
    stats = {}
    for name, v in (("gap", gap), ("hamming", ham), ("ideal margin", margin),
                    ("ground energy", np.array([r["ground_energy"] for r in rows]))):
        # a gap of +inf (no other label found) ranks above every finite gap
        rho = spearman(sens, np.where(np.isfinite(v), v, np.nanmax(v[np.isfinite(v)]) + 1))
        vv = np.where(np.isfinite(v), v, np.nanmax(v[np.isfinite(v)]) + 1)
        stats[name] = {"spearman": rho, "ci95": bootstrap_ci(sens, vv, args.resamples, args.seed)}
    agree = float(np.mean([r["ground_label"] == r["ideal_label"] for r in rows]))
    doc = {"args": vars(args), "checkpoint": str(path), "seconds": {"landscape": t_land, "aer": t_aer},
           "images_with_other_label_found": int(finite.sum()), "ground_label_is_ideal_vote": agree,
           "correlations": stats, "mean_sensitivity": float(sens.mean()), "rows": rows}
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    text = summary(doc)
    (out / "summary.md").write_text(text)
    print(text)
    figure(rows, stats, out / "landscape_noise.png", args)
    return 0


def summary(doc) -> str:
    a = doc["args"]
    lines = [f"{a['images']} test images, {a['shots']} noisy shots each on Aer ({a['backend']}), "
             f"{a['ideal_shots']} ideal torch shots; landscape flip {a['flip']}, {a['starts']} starts, seed {a['seed']}.",
             f"Time: landscapes {doc['seconds']['landscape']:.0f} s, noisy Aer {doc['seconds']['aer']:.0f} s.",
             f"Mean sensitivity Δ = {doc['mean_sensitivity']:.3f}; another label's minimum found for "
             f"{doc['images_with_other_label_found']} images; the lowest minimum's label is the ideal vote's "
             f"for {100 * doc['ground_label_is_ideal_vote']:.0f} %.", "",
             "| measure | Spearman ρ with Δ | bootstrap 95% CI |", "|---|---|---|"]
    for name, s in doc["correlations"].items():
        lines.append(f"| {name} | {s['spearman']:+.3f} | [{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}] |")
    return "\n".join(lines) + "\n"


def figure(rows, stats, path: Path, args) -> None:
    import numpy as np

    from qnnc.runtime.plots import _bytes, _pyplot

    plt = _pyplot()
    sens = np.array([r["sensitivity"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), sharey=True)
    fin = [r for r in rows if r["gap"] is not None]
    gap = np.array([r["gap"] for r in fin])
    ham = np.array([r["hamming"] for r in fin])
    sc = axes[0].scatter(gap, [r["sensitivity"] for r in fin], c=ham, s=14, cmap="viridis")
    fig.colorbar(sc, ax=axes[0], label="Hamming distance to it")
    # binned means (quintiles of the gap)
    edges = np.quantile(gap, np.linspace(0, 1, 6))
    mids, means, errs = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (gap >= lo) & (gap <= hi)
        s = np.array([r["sensitivity"] for r in fin])[sel]
        mids.append(np.median(gap[sel]))
        means.append(s.mean())
        errs.append(s.std(ddof=1) / np.sqrt(s.size))
    axes[0].errorbar(mids, means, yerr=errs, color="k", marker="s", ms=5, lw=1.5, label="mean per quintile")
    axes[0].set_xlabel("energy gap to the lowest minimum of another label")
    axes[0].set_ylabel("sensitivity Δ = p_ideal(c*) − p_noisy(c*)")
    s = stats["gap"]
    axes[0].set_title(f"Spearman ρ = {s['spearman']:+.2f} [{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}]", fontsize=9)
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[0].legend(fontsize=7)
    margin = np.array([r["margin"] for r in rows])
    axes[1].scatter(margin, sens, s=14, color="C1")
    s = stats["ideal margin"]
    axes[1].set_xlabel("ideal margin p(c*) − p(runner-up)")
    axes[1].set_title(f"baseline: Spearman ρ = {s['spearman']:+.2f} [{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}]",
                      fontsize=9)
    axes[1].axhline(0, color="grey", lw=0.8)
    fig.suptitle(f"{len(rows)} test images, hardware network; noise: FakeBrisbane on Aer, {args.shots} shots each",
                 fontsize=9)
    path.write_bytes(_bytes(fig))


if __name__ == "__main__":
    sys.exit(main())
