"""Hardware in the loop, on the fast noisy simulator (docs/hardware-in-the-loop.md).

For examples/hardware.qnn (784-16-16-16-10, clip rotation neurons) and FakeBrisbane's
noise model (`--noise ibm:fake_brisbane`: the neurons on the qubits of the compiled
`layered` circuits):

1. accuracy against a: one network per a trained without noise, one trained with the
   noise (straight-through gradients through noisy samples), each evaluated on the torch
   simulator without and with noise (--images test images, vote over 10 shots);
2. noise-aware training checked on Aer: the a = --aer-a pair evaluated on Aer running
   the compiled `layered` circuits with `AerSimulator.from_backend(FakeBrisbane())`
   (--aer-images images, 10 shots each; Aer is slow, ~30 s an image here);
3. noise probes at scale: K identity pairs (√X, √X†) after every rotation, on the fast
   simulator: images 6929 and 0 with 96 samples (the Aer table of
   docs/hardware-results.md) and the accuracy on --images test images.

    OMP_NUM_THREADS=1 .venv/bin/python examples/study_noise_sim.py --out runs/study-noise-sim

Writes results.json, summary.md and plots (PNG).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="examples/hardware.qnn")
    ap.add_argument("--values", type=float, nargs="+", default=[0, 0.1, 0.5, 1, 2, 5])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--aer-a", type=float, default=0.5)
    ap.add_argument("--aer-images", type=int, default=10)
    ap.add_argument("--aer-copies", type=int, default=1,
                    help="image copies per layered circuit on Aer (default 1: the qubits the noise model binds; "
                         "0: fill the device, as `qnnc compile` does)")
    ap.add_argument("--sections", nargs="*", choices=["aer", "probes"], default=["aer", "probes"],
                    help="what to run after the accuracy table (training is skipped where a run exists); "
                         "none: the accuracy table only")
    ap.add_argument("--tag", default="", help="suffix of the output files")
    ap.add_argument("--pairs", type=int, nargs="+", default=[0, 5, 10, 20, 50, 100])
    ap.add_argument("--probe-values", type=float, nargs="+", default=[0, 0.5, 5])
    ap.add_argument("--backend", default="fake_brisbane")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import torch

    from qnnc.compiler import load_program
    from qnnc.compiler.passes import OverrideTraining, PassManager
    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.evaluate import evaluate
    from qnnc.runtime.noise.ibm import bind_network, from_fake_backend
    from qnnc.runtime.plots import noise_accuracy_vs_a, noise_probes
    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.train import build_model, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = load_dataset("mnist.test")
    base = from_fake_backend(args.backend)
    t_start = time.perf_counter()
    results: dict = {"args": vars(args), "accuracy": [], "aer": [], "probes": [], "probes_scale": []}
    nets = {}
    for a in args.values:
        program = load_program(args.file, {"a": repr(a)})
        program = PassManager([OverrideTraining({"epochs": args.epochs, "seed": args.seed})]).run(program)
        net = program.network()
        noise = bind_network(base, program, net)
        for trained in ("ideal", "noisy"):
            run_dir = out / f"a={a:g}-{trained}"
            if not ckpt.list_checkpoints(run_dir):
                t = time.perf_counter()
                train(program, net, program.train(net.name), run_dir,
                      flags={"set": {"a": a}, "epochs": args.epochs, "seed": args.seed,
                             **({"noise": noise.name} if trained == "noisy" else {})},
                      progress=False, noise=noise if trained == "noisy" else None)
                print(f"trained a={a:g} ({trained}) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            c = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run_dir, "last"), net)
            weights = {k: np.asarray(v) for k, v in c.tensors.items()}
            nets[(a, trained)] = (program, net, weights, noise)
            row = {"a": a, "trained": trained}
            for ev in ("ideal", "noisy"):
                r = evaluate(program, net, weights, shots=10, limit=args.images, seed=args.seed,
                             noise=noise if ev == "noisy" else None)
                row[ev] = r["accuracy"]
                row[ev + "_ci95"] = r["ci95"]
                row[ev + "_single_pass"] = r["single_shot_accuracy"]
            results["accuracy"].append(row)
            print(f"a={a:g} trained {trained}: accuracy ideal {row['ideal']:.3f}, under noise {row['noisy']:.3f}",
                  file=sys.stderr)

    # 2. Aer on the compiled circuits, the same noise model
    for trained in (("ideal", "noisy") if "aer" in args.sections else ()):
        program, net, weights, noise = nets[(args.aer_a, trained)]
        wts = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
        x = preprocess(test.images[:args.aer_images], net.input).astype(np.float64)
        labels = test.labels[:args.aer_images]
        right = 0
        t = time.perf_counter()
        for i in range(args.aer_images):
            comp = compile_network(program, None, wts, x[i], target="ibm", backend=args.backend, seed=args.seed,
                                   strategy="layered", copies=args.aer_copies or None)
            o = run_compiled(comp, 10, "noisy", seed=args.seed + i)
            logits = o[:, -net.layers[-2].size:].astype(np.float64) @ wts[net.layers[-1].name].T
            votes = np.bincount(logits.argmax(1), minlength=10)
            right += int(votes.argmax() == labels[i])
        fast = {ev: evaluate(program, net, weights, shots=10, limit=args.aer_images, seed=args.seed,
                             noise=noise if ev == "noisy" else None)["accuracy"] for ev in ("ideal", "noisy")}
        results["aer"].append({"a": args.aer_a, "trained": trained, "images": args.aer_images,
                               "copies": args.aer_copies or "fill",
                               "aer_noisy_correct": right, "fast_ideal": fast["ideal"], "fast_noisy": fast["noisy"],
                               "seconds": time.perf_counter() - t})
        print(f"Aer a={args.aer_a:g} trained {trained}: {right}/{args.aer_images}", file=sys.stderr)

    # 3. noise probes on the fast simulator
    for a in (args.probe_values if "probes" in args.sections else ()):
        if (a, "ideal") not in nets:
            continue
        program, net, weights, noise = nets[(a, "ideal")]
        model = build_model(program, net, args.seed)
        model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        for k in args.pairs:
            probed = dataclasses.replace(noise, probe_pairs=k)
            m = build_model(program, net, args.seed, noise=probed)
            m.load_tensors({kk: torch.from_numpy(np.array(v)) for kk, v in weights.items()})
            for image in (6929, 0):
                xi = torch.from_numpy(preprocess(test.images[image:image + 1], net.input))
                with torch.no_grad():
                    lab = m(xi, shots=96, generator=torch.Generator().manual_seed(args.seed + image)).argmax(-1)[:, 0]
                results["probes"].append({"a": a, "image": image, "label": int(test.labels[image]), "pairs": k,
                                          "correct": int((lab == int(test.labels[image])).sum()), "samples": 96})
            r = evaluate(program, net, weights, shots=10, limit=args.images, seed=args.seed, noise=probed)
            results["probes_scale"].append({"a": a, "pairs": k, "accuracy": r["accuracy"], "ci95": r["ci95"]})
            print(f"probes a={a:g} K={k}: accuracy {r['accuracy']:.3f}", file=sys.stderr)

    results["seconds"] = time.perf_counter() - t_start
    tag = args.tag
    (out / f"results{tag}.json").write_text(json.dumps(results, indent=2))
    (out / f"accuracy_vs_a{tag}.png").write_bytes(noise_accuracy_vs_a(results["accuracy"], args.backend))
    if results["probes_scale"]:
        (out / f"noise_probes{tag}.png").write_bytes(noise_probes(results["probes_scale"], args.backend))
    lines = ["| a | trained | accuracy, ideal simulator | accuracy, under noise |", "|---|---|---|---|"]
    for r in results["accuracy"]:
        lines.append(f"| {r['a']:g} | {r['trained']} | {r['ideal']:.3f} ({r['ideal_ci95'][0]:.3f}–{r['ideal_ci95'][1]:.3f}) "
                     f"| {r['noisy']:.3f} ({r['noisy_ci95'][0]:.3f}–{r['noisy_ci95'][1]:.3f}) |")
    lines += ["", "| a | trained | images | copies | Aer (noisy circuits) | fast, ideal | fast, noisy | Aer seconds |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results["aer"]:
        lines.append(f"| {r['a']:g} | {r['trained']} | {r['images']} | {r['copies']} | {r['aer_noisy_correct']}/{r['images']} | "
                     f"{r['fast_ideal']:.2f} | {r['fast_noisy']:.2f} | {r['seconds']:.0f} |")
    lines += ["", "| a | image (label) | " + " | ".join(f"K = {k}" for k in args.pairs) + " |",
              "|---|---|" + "---|" * len(args.pairs)]
    for a in args.probe_values:
        for image in (6929, 0):
            cells = [next((p["correct"] for p in results["probes"] if p["a"] == a and p["image"] == image
                           and p["pairs"] == k), None) for k in args.pairs]
            if cells[0] is None:
                continue
            lab = int(test.labels[image])
            lines.append(f"| {a:g} | {image} ({lab}) | " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", f"| a | " + " | ".join(f"K = {k}" for k in args.pairs) + " |", "|---|" + "---|" * len(args.pairs)]
    for a in args.probe_values:
        cells = [next((p["accuracy"] for p in results["probes_scale"] if p["a"] == a and p["pairs"] == k), None)
                 for k in args.pairs]
        if cells[0] is not None:
            lines.append(f"| {a:g} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    lines.append(f"\ntotal {results['seconds']:.0f} s")
    (out / f"summary{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
