"""Measured gradients: estimator variance against shots, and fine-tuning under device noise.

    python examples/study_gradients.py variance --run RUN [--out docs/figures]
    python examples/study_gradients.py finetune --run RUN [--seeds 0 1 2] [--steps 150] [--out docs/figures]
    python examples/study_gradients.py aer --run RUN --out DIR [--layers y] [--steps N] [--runs ...]
    python examples/study_gradients.py aer-eval --run RUN --out DIR --weights A.npz [B.npz ...]

RUN: a noiselessly trained examples/hardware.qnn, e.g.
    qnnc train examples/hardware.qnn --epochs 3 --out runs/hardware-e3     (seed 0)

`variance`: on 4 test images (mnist.test[0:4]) and RUN's weights, the parameter-shift
and the score-function estimates at shots 16..1024 (seed 0, the noiseless fast
executor): the mean standard error of the hidden weights, the passes each took, and the
standard error at equal passes (s.e. x sqrt(passes)). Writes gradient-variance.json/.png.

`finetune`: RUN's weights evaluated on the first 1000 test images, vote over 10 shots,
without and with FakeBrisbane's noise (fast executor, `ibm:fake_brisbane`); then, for
each seed of --seeds, fine-tuned with parameter-shift gradients measured on the *noisy*
fast executor, and, as a control, the same steps measured on the *ideal* one (same
seeds, batches, lr); both results evaluated under noise and without. Writes
gradient-finetune-seedS.json per seed (a seed whose file exists is read, not rerun), and
gradient-finetune.json/.png (means over seeds with standard errors).

`aer`: fine-tuning with gradients measured on Aer (compiled `layered` circuits, one copy,
FakeBrisbane's noise) beside the same steps on the fast noisy and fast ideal executors
(--runs picks), judged under noise on the fast noisy executor every --eval-every steps
(partial JSON and the latest weights as .npz written as it goes); Aer's own evaluation
of the start and of the Aer-fine-tuned weights at the end. `aer-eval`: RUN's weights and
the given .npz weights under noise on the fast noisy executor and on Aer, with each
one's paired difference from the start.
"""

from __future__ import annotations

import argparse
import json
import time
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
    model = view_model(prog, net)
    out_dir = Path(args.out)

    def evaluate(w, nz, seed):
        ex = make_executor("sim", prog, net, w, seed=seed, noise=nz)
        r = vote_accuracy(ex, net_view(model, w), xe, ye, 10)
        ex = make_executor("sim", prog, net, w, seed=seed, noise=nz)
        r.update({k: v for k, v in _single_pass_se(ex, net_view(model, w), xe, ye, 10).items()
                  if k.endswith("_se")})
        return r

    out = {"start": {"ideal": evaluate(t, None, 101), "noisy": evaluate(t, noise, 101)}, "seeds": {}}
    print("start:", out["start"], flush=True)
    for seed in args.seeds:
        part = out_dir / f"gradient-finetune-seed{seed}.json"
        if part.exists():
            out["seeds"][str(seed)] = json.loads(part.read_text())
            print(f"seed {seed}: read {part}", flush=True)
            continue
        runs = {}
        for label, nz in (("measured under noise", noise), ("measured without noise (control)", None)):
            ex = make_executor("sim", prog, net, t, seed=seed, noise=nz)
            r = finetune(prog, net, t, ex, steps=args.steps, batch=args.batch, shots=args.shots, lr=args.lr,
                         momentum=0.9, eval_images=args.eval_images, eval_shots=10, eval_every=args.eval_every,
                         seed=seed, progress=lambda m, label=label: print(f"  [seed {seed}, {label}] {m}", flush=True))
            w = r["weights"]
            runs[label] = {"history": r["history"], "seconds": r["seconds"],
                           "final": {"ideal": evaluate(w, None, 101), "noisy": evaluate(w, noise, 101)}}
            print(f"seed {seed}", label, runs[label]["final"], flush=True)
        part.write_text(json.dumps(runs, indent=2) + "\n")
        out["seeds"][str(seed)] = runs
    out["summary"] = _summary(out)
    out["settings"] = {"steps": args.steps, "batch": args.batch, "shots": args.shots, "lr": args.lr,
                       "momentum": 0.9, "eval_images": args.eval_images, "eval_seed": 101,
                       "seeds": list(args.seeds)}
    return out


def _summary(out) -> dict:
    """Per run and evaluation: the mean over seeds and its standard error, and the paired
    difference (under noise) between the run measured under noise and the control."""
    seeds = list(out["seeds"].values())
    labels = list(seeds[0])
    summ: dict = {}
    for label in labels:
        for ev in ("noisy", "ideal"):
            for m in ("single_shot_accuracy", "loss", "accuracy"):
                v = np.array([s[label]["final"][ev][m] for s in seeds])
                summ[f"{label} | {ev} | {m}"] = {"mean": float(v.mean()),
                                                 "se": float(v.std(ddof=1) / len(v) ** 0.5) if len(v) > 1 else None,
                                                 "values": v.tolist()}
    for m in ("single_shot_accuracy", "loss", "accuracy"):
        d = np.array([s[labels[0]]["final"]["noisy"][m] - s[labels[1]]["final"]["noisy"][m] for s in seeds])
        summ[f"difference under noise (noise-measured - control) | {m}"] = {
            "mean": float(d.mean()), "se": float(d.std(ddof=1) / len(d) ** 0.5) if len(d) > 1 else None,
            "values": d.tolist()}
    return summ


def _single_pass_se(ex, view, x, y, shots):
    """Single-pass accuracy, its standard error over images (each image's fraction of
    right passes is one sample: the shots of an image are not independent of its
    difficulty), the vote accuracy and the mean loss."""
    from qnnc.runtime.gradients.estimators import shot_loss

    (outs,) = ex.sample(x, shots, [None])
    logits = outs[-1] @ view.w_out.t() + (view.b_out if view.b_out is not None else 0)
    right = (logits.argmax(-1).numpy() == np.asarray(y)[None]).mean(0)  # per image
    loss, _ = shot_loss(view, outs[-1], torch.as_tensor(y))
    per_img_loss = loss.mean(0).numpy()
    return {"single_shot_accuracy": float(right.mean()),
            "single_shot_accuracy_se": float(right.std(ddof=1) / len(right) ** 0.5),
            "loss": float(per_img_loss.mean()), "loss_se": float(per_img_loss.std(ddof=1) / len(right) ** 0.5),
            "images": int(len(right)), "shots": int(shots)}


def aer_finetune(args) -> dict:
    """Fine-tune hardware.qnn with gradients measured on Aer (compiled `layered` circuits,
    one copy, FakeBrisbane's noise); beside it the same steps (settings, seed, batches)
    measured on the fast noisy executor and, as the control, on the fast ideal one.
    Accuracy under the noise on the fast noisy executor every --eval-every steps, and on
    Aer before and after. Writes partial results as it goes."""
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.gradients import CircuitExecutor, make_executor, net_view, view_model
    from qnnc.runtime.gradients.finetune import finetune
    from qnnc.runtime.noise import parse

    out = Path(args.out)
    prog, net, t = _load(args.run)
    noise = parse("ibm:fake_brisbane", prog, net)
    ds = load_dataset("mnist.test")
    xe = preprocess(ds.images[:args.eval_images], net.input).astype(np.float64)
    ye = ds.labels[:args.eval_images].astype(np.int64)
    xa, ya = xe[:args.aer_eval_images], ye[:args.aer_eval_images]
    model = view_model(prog, net)
    part = out / "gradient-finetune-aer.partial.json"
    res = json.loads(part.read_text()) if part.exists() and args.resume else {"runs": {}}
    res["settings"] = {"layers": args.layers or "all", "steps": args.steps, "batch": args.batch, "shots": args.shots, "lr": args.lr,
                       "momentum": 0.9, "seed": args.seed, "eval_images": args.eval_images,
                       "eval_shots": 10, "eval_seed": 101, "aer_eval_images": args.aer_eval_images,
                       "aer": "ibm layered, 1 copy, AerSimulator.from_backend(FakeBrisbane()) noise "
                              "(cut to the circuits' qubits), matrix product states"}

    def save():
        part.write_text(json.dumps(res, indent=2) + "\n")

    def judge(w, seed=101):
        ex = make_executor("sim", prog, net, w, seed=seed, noise=noise)
        return _single_pass_se(ex, net_view(model, w), xe, ye, 10)

    def aer_judge(w, seed=202):
        ex = CircuitExecutor(prog, net, w, target="ibm", strategy="layered", simulator="noisy", seed=seed)
        t0 = time.perf_counter()
        r = _single_pass_se(ex, net_view(model, w), xa, ya, 10)
        r["seconds"] = time.perf_counter() - t0
        return r

    if "start" not in res:
        res["start"] = {"fast noisy": judge(t), "fast ideal": _single_pass_se(
            make_executor("sim", prog, net, t, seed=101), net_view(model, t), xe, ye, 10)}
        print("start:", res["start"], flush=True)
        save()
    kinds = [("fast noisy", "sim", noise), ("fast ideal (control)", "sim", None), ("aer", "aer", None)]
    for label, kind, nz in kinds:
        if label.split(" (")[0] not in args.runs:
            continue
        if label in res["runs"] and res["runs"][label].get("done"):
            continue
        if kind == "sim":
            ex = make_executor("sim", prog, net, t, seed=args.seed, noise=nz)
        else:
            ex = CircuitExecutor(prog, net, t, target="ibm", strategy="layered", simulator="noisy",
                                 seed=args.seed)
        run = res["runs"].setdefault(label, {})
        run["history"] = []

        def on_eval(rec, w, run=run, label=label):
            rec.update({k + "_judged": v for k, v in judge(w).items()})
            run["history"].append(rec)
            slug = label.split(" (")[0].replace(" ", "-")
            np.savez(out / f"gradient-finetune-aer-{slug}.npz", **{k: np.asarray(v) for k, v in w.items()})
            print(f"  [{label}] step {rec['step']}: noisy single pass {rec['single_shot_accuracy_judged']:.4f} "
                  f"± {rec['single_shot_accuracy_se_judged']:.4f}, loss {rec['loss_judged']:.4f}, "
                  f"{rec['seconds']:.0f} s", flush=True)
            save()

        r = finetune(prog, net, t, ex, steps=args.steps, batch=args.batch, shots=args.shots, lr=args.lr,
                     momentum=0.9, eval_images=1, eval_shots=2, eval_every=args.eval_every, seed=args.seed,
                     eval_executor=make_executor("sim", prog, net, t, seed=7), on_eval=on_eval,
                     layers=args.layers)
        run.update(done=True, seconds=r["seconds"], gradient_circuits=r["gradient_circuits"],
                   final=judge(r["weights"]))
        if kind == "aer":
            run["aer_calls"] = getattr(ex._local[1], "calls", None) if ex._local else None
        save()
        if kind == "aer" and args.aer_eval_images:
            res["aer_eval"] = {"start": aer_judge(t), "fine-tuned on Aer": aer_judge(r["weights"])}
            print("Aer evaluation:", res["aer_eval"], flush=True)
            save()
    return res


def aer_eval(args) -> dict:
    """RUN's weights and each --weights .npz (what the `aer` part saved: the weights at
    its last evaluation) under FakeBrisbane's noise, on the fast noisy executor
    (mnist.test[0:--eval-images], 10 shots, seed 101) and on Aer (compiled `layered`
    circuits, one copy; mnist.test[0:--aer-eval-images], 10 shots, seed 202): single-pass
    accuracy and loss, and each one's paired difference from the start over the same
    images and seeds (mean and standard error over images)."""
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.gradients import CircuitExecutor, make_executor, net_view, view_model
    from qnnc.runtime.noise import parse

    prog, net, t = _load(args.run)
    noise = parse("ibm:fake_brisbane", prog, net)
    sets = {"start": t}
    for f in args.weights:
        with np.load(f, allow_pickle=False) as z:
            sets[Path(f).stem] = {k: z[k] for k in z.files}
    ds = load_dataset("mnist.test")
    model = view_model(prog, net)
    out: dict = {"weights": list(args.weights)}
    judges = [("fast noisy", args.eval_images, lambda w: make_executor("sim", prog, net, w, seed=101, noise=noise))]
    if args.aer_eval_images:
        judges.append(("aer", args.aer_eval_images, lambda w: CircuitExecutor(
            prog, net, w, target="ibm", strategy="layered", simulator="noisy", seed=202)))
    for jname, n, make in judges:
        x = preprocess(ds.images[:n], net.input).astype(np.float64)
        y = ds.labels[:n].astype(np.int64)
        per = {}
        res = out.setdefault(jname, {})
        for label, w in sets.items():
            t0 = time.perf_counter()
            per[label] = _per_image(make(w), net_view(model, w), x, y, 10)
            right, loss = per[label]
            res[label] = {"images": n, "shots": 10, "seconds": time.perf_counter() - t0,
                          "single_shot_accuracy": float(right.mean()), "single_shot_accuracy_se": _se(right),
                          "loss": float(loss.mean()), "loss_se": _se(loss)}
            if label != "start":
                dr, dl = right - per["start"][0], loss - per["start"][1]
                res[label].update({"single_shot_accuracy_minus_start": float(dr.mean()),
                                   "single_shot_accuracy_minus_start_se": _se(dr),
                                   "loss_minus_start": float(dl.mean()), "loss_minus_start_se": _se(dl)})
            print(jname, label, res[label], flush=True)
    return out


def _se(v) -> float:
    return float(np.std(v, ddof=1) / len(v) ** 0.5)


def _per_image(ex, view, x, y, shots):
    """Per image: the fraction of right single passes and the mean loss over `shots`."""
    from qnnc.runtime.gradients.estimators import shot_loss

    (outs,) = ex.sample(x, shots, [None])
    logits = outs[-1] @ view.w_out.t() + (view.b_out if view.b_out is not None else 0)
    right = (logits.argmax(-1).numpy() == np.asarray(y)[None]).mean(0)
    loss, _ = shot_loss(view, outs[-1], torch.as_tensor(y))
    return right, loss.mean(0).numpy()


def _aer_plot(r) -> bytes:
    from qnnc.runtime import plots

    runs = {}
    for label, run in r["runs"].items():
        runs[f"measured on {label}"] = [{"step": h["step"], **{k[:-len("_judged")]: v for k, v in h.items()
                                                               if k.endswith("_judged")}}
                                        for h in run["history"]]
    s = r["settings"]
    layers = ("all layers" if s.get("layers", "all") == "all" else
              ("layer " if len(s["layers"]) == 1 else "layers ") + ", ".join(s["layers"]))
    return plots.finetune_curves(
        runs, metrics=("loss", "single_shot_accuracy"),
        title=f"hardware.qnn, {layers} fine-tuned with gradients measured on Aer / the fast executor "
              f"(batch {s['batch']}, {s['shots']} shots, lr {s['lr']}, seed {s['seed']});\n"
              f"evaluated under FakeBrisbane noise (fast noisy executor, mnist.test[0:{s['eval_images']}], "
              f"± 1 s.e.)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("variance", "finetune", "aer", "aer-eval"))
    ap.add_argument("--weights", nargs="+", default=[], help="aer-eval: .npz files of fine-tuned weights")
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--eval-images", type=int, default=1000)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--replot", action="store_true", help="finetune: redraw the figure from its JSON")
    ap.add_argument("--seed", type=int, default=0, help="aer: seed of the batches and shots")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="finetune: seeds of the batches and shots, one pair of runs each (default: 0 1 2)")
    ap.add_argument("--aer-eval-images", type=int, default=300, help="aer: images of the Aer evaluation")
    ap.add_argument("--resume", action="store_true", help="aer: skip the runs the partial JSON has")
    ap.add_argument("--layers", nargs="+", help="aer: fine-tune only these layers (default: all)")
    ap.add_argument("--runs", nargs="+", default=["fast noisy", "fast ideal", "aer"],
                    help="aer: which of the three runs (default: all)")
    args = ap.parse_args(argv)
    from qnnc.runtime import plots

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot and args.part == "finetune":
        r = json.loads((out / "gradient-finetune.json").read_text())
    if args.part == "aer-eval":
        r = aer_eval(args)
        (out / "gradient-finetune-aer-eval.json").write_text(json.dumps(r, indent=2) + "\n")
        return 0
    if args.part == "aer":
        if not args.replot:
            r = aer_finetune(args)
            (out / "gradient-finetune-aer.json").write_text(json.dumps(r, indent=2) + "\n")
        else:  # the finished run's JSON, else the partial one (a run cut short)
            f = out / "gradient-finetune-aer.json"
            r = json.loads((f if f.exists() else out / "gradient-finetune-aer.partial.json").read_text())
        (out / "gradient-finetune-aer.png").write_bytes(_aer_plot(r))
        return 0
    if args.part == "variance":
        r = variance(args)
        (out / "gradient-variance.json").write_text(json.dumps(r, indent=2) + "\n")
        (out / "gradient-variance.png").write_bytes(plots.estimator_variance(
            r["rows"], title="hardware.qnn, 4 test images"))
    else:
        if not args.replot:
            r = finetune_study(args)
        (out / "gradient-finetune.json").write_text(json.dumps(r, indent=2) + "\n")
        seeds = list(r["seeds"].values())
        runs = {}
        for k in seeds[0]:
            hist = []
            for i, h in enumerate(seeds[0][k]["history"]):
                row = {"step": h["step"]}
                for m in ("loss", "single_shot_accuracy", "accuracy"):
                    v = np.array([sd[k]["history"][i][m] for sd in seeds])
                    row[m] = float(v.mean())
                    if len(v) > 1:
                        row[m + "_se"] = float(v.std(ddof=1) / len(v) ** 0.5)
                hist.append(row)
            runs[k + (" (evaluated under noise)" if "under noise" in k else " (evaluated without)")] = hist
        st = r["start"]
        ref = {m: {"start, ideal": st["ideal"][m], "start, noisy": st["noisy"][m]}
               for m in ("loss", "single_shot_accuracy", "accuracy")}
        (out / "gradient-finetune.png").write_bytes(plots.finetune_curves(
            runs, title=f"hardware.qnn fine-tuned with measured gradients (fast executor, FakeBrisbane noise); "
                        f"mean ± s.e. over seeds {', '.join(r['seeds'])}",
            reference=ref, metrics=("loss", "single_shot_accuracy", "accuracy")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
