"""`qnnc eval FILE --checkpoint N`: test accuracy with a majority vote over shots."""

from __future__ import annotations

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import SEED, count
from qnnc.runtime.cli.json_output import print_json
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, network_from_args
from qnnc.runtime.cli.weight_args import add_step_arguments, run_dir_from_args


def add_arguments(p) -> None:
    add_program_arguments(p)
    add_step_arguments(p, default="last", help="step of the run (default: last)")
    p.add_argument("--shots", type=count(1, limits.MAX_SHOTS), metavar="S", help="passes voted over (default: the readout's)")
    p.add_argument("--data", metavar="NAME", default="mnist.test", help="data set (default: mnist.test)")
    p.add_argument("--limit", type=count(1), metavar="N", help="evaluate the first N images only")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the measurement outcomes")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def evaluate(program, network, run_dir, step, shots, data, limit, seed) -> dict:
    import numpy as np
    import torch

    from qnnc.runtime import checkpoint as ckpt
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.train import build_model, predict, wilson_interval

    path = ckpt.resolve_checkpoint(run_dir, step)
    c = ckpt.load_checkpoint(path, network)
    model = build_model(program, network, seed)
    model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in c.tensors.items()})
    ds = load_dataset(data)
    x = torch.from_numpy(preprocess(ds.images, network.input))
    y = torch.from_numpy(ds.labels.astype(np.int64))
    if limit:
        x, y = x[:limit], y[:limit]
    pred, per_shot = predict(model, x, shots, seed)
    correct = (pred == y)
    k, n = int(correct.sum()), len(y)
    lo, hi = wilson_interval(k, n)
    per_class = {}
    for cls in range(int(network.layers[-1].size)):
        mask = y == cls
        m = int(mask.sum())
        if m:
            kc = int(correct[mask].sum())
            per_class[str(cls)] = {"accuracy": kc / m, "n": m, "ci95": list(wilson_interval(kc, m))}
    single = float((per_shot == y.unsqueeze(0)).float().mean())
    return {"file": program.source, "network": network.name, "checkpoint": str(path), "step": c.step,
            "data": data, "images": n, "shots": shots, "seed": seed, "accuracy": k / n, "ci95": [lo, hi],
            "single_shot_accuracy": single, "per_class": per_class,
            "params": {p.name: p.value for p in program.params}}


def run(args) -> int:
    from qnnc.compiler.diagnostics import error

    program = load_from_args(args)
    network = network_from_args(args, program)
    if network is None:
        raise error("Q0232", f"{args.file} defines no network")
    shots = args.shots if args.shots is not None else network.readout.shots
    if shots < 1 or (args.limit is not None and args.limit < 1):
        raise error("Q0407", "--shots and --limit must be at least 1", exit_code=2)
    r = evaluate(program, network, run_dir_from_args(args, network), args.checkpoint, shots, args.data,
                 args.limit, args.seed)
    if args.json:
        print_json(r)
        return 0
    lo, hi = r["ci95"]
    print(f"{r['network']} step {r['step']} on {r['data']} ({r['images']} images, vote over {shots} shots):")
    print(f"  accuracy {r['accuracy']:.4f}  (95% CI {lo:.4f}-{hi:.4f}); single pass {r['single_shot_accuracy']:.4f}")
    print("  per class: " + "  ".join(f"{c}:{v['accuracy']:.3f}" for c, v in r["per_class"].items()))
    return 0
