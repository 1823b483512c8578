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
  * the change of the vote: V(p) = P(the majority of the readout's 10 shots drawn from p
    is not c*); sensitivity S = V(p̂_noisy) − E V(p̂_ideal), the second term the same
    estimator on --shots ideal shots (multinomial draws from p_ideal), so that S measures
    what noise adds, not the sampling of --shots shots;
  * also Δ = p_ideal(c*) − p_noisy(c*), the probability noise takes from c*.

Landscape measures: the lowest minimum's gap and Hamming distance, and the same for the
lowest minimum of the ideal vote's label c* (the gap is signed: negative when another
label has a lower minimum). Spearman correlations with S and Δ, each with a bootstrap 95%
interval over images, beside the ideal margin as a baseline.

--reuse FILE takes p_ideal and p_noisy from an earlier results.json (same images and
shots) and recomputes only the landscapes and the analysis.

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


def _distributions(args, program, net, tensors, X):
    """p_ideal (torch simulator) and p_noisy (compiled circuits on Aer with the backend's
    noise), [images, classes]."""
    import numpy as np
    import torch

    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.targets.compile import predictions
    from qnnc.runtime.train import build_model

    n_out = net.layers[-1].size
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
    return p_ideal, p_noisy, t_aer




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
    ap.add_argument("--reuse", help="results.json whose p_ideal and p_noisy to reuse (no Aer run)")
    ap.add_argument("--replot", action="store_true", help="redraw the figure and summary from OUT/results.json")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.replot:
        doc = json.loads((Path(args.out) / "results.json").read_text())
        (Path(args.out) / "summary.md").write_text(summary(doc))
        figure(doc["rows"], doc["correlations"], Path(args.out) / "landscape_noise.png", args)
        return 0

    import numpy as np

    from qnnc.compiler import load_program
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.landscape import landscape_of

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
                     "ground_basin": g.starts,
                     "minima": [{"label": m.label, "energy": m.energy, "gap": m.gap, "hamming": m.hamming,
                                 "starts": m.starts} for m in res.minima]})
    t_land = time.perf_counter() - t0
    print(f"landscapes: {args.images} images in {t_land:.0f} s", file=sys.stderr, flush=True)

    if args.reuse:
        old = json.loads(Path(args.reuse).read_text())
        if [r["image"] for r in old["rows"]] != list(range(args.images)) or old["args"]["shots"] != args.shots:
            sys.exit(f"{args.reuse}: other images or shots")
        p_ideal = np.array([r["p_ideal"] for r in old["rows"]])
        p_noisy = np.array([r["p_noisy"] for r in old["rows"]])
        t_aer = old["seconds"]["aer"]
    else:
        p_ideal, p_noisy, t_aer = _distributions(args, program, net, tensors, X)

    rng = np.random.default_rng(args.seed)
    votes = net.readout.shots
    for r in rows:
        i = r["image"]
        order = np.argsort(-p_ideal[i], kind="stable")
        c = int(order[0])
        lab = [m for m in r["minima"] if m["label"] == c]  # the lowest minimum of the vote's label
        r.update({"ideal_label": c, "p_ideal": p_ideal[i].tolist(), "p_noisy": p_noisy[i].tolist(),
                  "margin": float(p_ideal[i][c] - p_ideal[i][order[1]]),
                  "delta": float(p_ideal[i][c] - p_noisy[i][c]),
                  "vote_change_noisy": vote_change(p_noisy[i], c, votes, rng),
                  "vote_change_ideal": float(np.mean([vote_change(rng.multinomial(args.shots, p_ideal[i]) / args.shots,
                                                                  c, votes, rng, 400) for _ in range(100)])),
                  "vote_gap": lab[0]["gap"] if lab else None, "vote_hamming": lab[0]["hamming"] if lab else None})
        r["vote_sensitivity"] = r["vote_change_noisy"] - r["vote_change_ideal"]

    # correlations. No minimum of another label: the gap ranks above every finite one (the
    # clearest case). No minimum of the vote's label found: the image is left out there.
    stats = {}
    for target in ("vote_sensitivity", "delta"):
        stats[target] = {}
        for name, key, missing_on_top in (("gap (lowest minimum)", "gap", True),
                                          ("Hamming (lowest minimum)", "hamming", True),
                                          ("gap (lowest minimum of the vote's label)", "vote_gap", False),
                                          ("Hamming (lowest minimum of the vote's label)", "vote_hamming", False),
                                          ("ideal margin (baseline)", "margin", False)):
            v = np.array([np.nan if r[key] is None else r[key] for r in rows], float)
            y = np.array([r[target] for r in rows])
            keep = np.isfinite(v)
            if missing_on_top:
                v = np.where(keep, v, np.nanmax(np.abs(v)) + 1 if keep.any() else 1.0)
                keep = np.ones_like(keep)
            stats[target][name] = {"spearman": spearman(y[keep], v[keep]),
                                   "ci95": bootstrap_ci(y[keep], v[keep], args.resamples, args.seed),
                                   "images": int(keep.sum())}
    agree = float(np.mean([r["ground_label"] == r["ideal_label"] for r in rows]))
    doc = {"args": vars(args), "checkpoint": str(path), "seconds": {"landscape": t_land, "aer": t_aer},
           "images_with_other_label_found": sum(r["gap"] is not None for r in rows),
           "ground_label_is_ideal_vote": agree, "correlations": stats,
           "mean_vote_sensitivity": float(np.mean([r["vote_sensitivity"] for r in rows])),
           "mean_delta": float(np.mean([r["delta"] for r in rows])), "rows": rows}
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    text = summary(doc)
    (out / "summary.md").write_text(text)
    print(text)
    figure(rows, stats, out / "landscape_noise.png", args)
    return 0


def vote_change(p, c: int, votes: int, rng, draws: int = 4000) -> float:
    """P(the majority of `votes` shots drawn from p is not c); ties go to the lowest class,
    as in QNNModel.predict."""
    import numpy as np

    counts = rng.multinomial(votes, np.asarray(p, float) / np.sum(p), size=draws)
    return float((counts.argmax(1) != c).mean())


def summary(doc) -> str:
    a = doc["args"]
    lines = [f"{a['images']} test images, {a['shots']} noisy shots each on Aer ({a['backend']}), "
             f"{a['ideal_shots']} ideal torch shots; landscape flip {a['flip']}, {a['starts']} starts, seed {a['seed']}.",
             f"Time: landscapes {doc['seconds']['landscape']:.0f} s, noisy Aer {doc['seconds']['aer']:.0f} s.",
             f"Mean vote sensitivity S = {doc['mean_vote_sensitivity']:.3f}, mean Δ = {doc['mean_delta']:.3f}; "
             f"a minimum of another label found for {doc['images_with_other_label_found']} images; the lowest "
             f"minimum's label is the ideal vote's for {100 * doc['ground_label_is_ideal_vote']:.0f} %.", ""]
    for target, title in (("vote_sensitivity", "S (change of the vote)"), ("delta", "Δ (probability lost by c*)")):
        lines += [f"| measure | Spearman ρ with {title} | bootstrap 95% CI | images |",
                  "|---|---|---|---|"]
        for name, st in doc["correlations"][target].items():
            lines.append(f"| {name} | {st['spearman']:+.3f} | [{st['ci95'][0]:+.3f}, {st['ci95'][1]:+.3f}] | "
                         f"{st['images']} |")
        lines.append("")
    return "\n".join(lines)


def figure(rows, stats, path: Path, args) -> None:
    import numpy as np

    from qnnc.runtime.plots import _bytes, _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    sel = [r for r in rows if r["vote_gap"] is not None]
    gap = np.array([r["vote_gap"] for r in sel])
    y = np.array([r["vote_sensitivity"] for r in sel])
    sc = axes[0].scatter(gap, y, c=[r["vote_hamming"] if r["vote_hamming"] is not None else np.nan for r in sel],
                         s=14, cmap="viridis")
    fig.colorbar(sc, ax=axes[0], label="Hamming distance to it")
    edges = np.quantile(gap, np.linspace(0, 1, 6))
    mids, means, errs = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (gap >= lo) & (gap <= hi)
        mids.append(np.median(gap[m]))
        means.append(y[m].mean())
        errs.append(y[m].std(ddof=1) / np.sqrt(m.sum()))
    axes[0].errorbar(mids, means, yerr=errs, color="k", marker="s", ms=5, lw=1.5, label="mean per quintile (± s.e.)")
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[0].set_xlabel("gap ΔE from the vote's lowest minimum to another label's")
    axes[0].set_ylabel("S: change of the 10-shot vote (noisy − ideal)")
    st = stats["vote_sensitivity"]["gap (lowest minimum of the vote's label)"]
    axes[0].set_title(f"Spearman ρ = {st['spearman']:+.2f} [{st['ci95'][0]:+.2f}, {st['ci95'][1]:+.2f}]", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].scatter([r["margin"] for r in rows], [r["vote_sensitivity"] for r in rows], s=14, color="C1")
    axes[1].axhline(0, color="grey", lw=0.8)
    st = stats["vote_sensitivity"]["ideal margin (baseline)"]
    axes[1].set_xlabel("ideal margin p(c*) − p(runner-up)")
    axes[1].set_title(f"baseline: Spearman ρ = {st['spearman']:+.2f} [{st['ci95'][0]:+.2f}, {st['ci95'][1]:+.2f}]",
                      fontsize=9)
    fig.suptitle(f"{len(rows)} test images of the hardware network; noise: FakeBrisbane on Aer, {args.shots} shots "
                 "per image", fontsize=9)
    path.write_bytes(_bytes(fig))


if __name__ == "__main__":
    sys.exit(main())
