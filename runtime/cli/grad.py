"""`qnnc grad FILE --target T --shots N`: one measured estimate of the gradient of the
expected cross-entropy at the given weights, on test images: its value, standard error
and cost (circuits, shots, wall time). `--target sim` (default) samples the torch
simulator in shot mode; a vendor target runs its compiled circuits on its local
simulator (`--simulator noisy`: the backend's noise; ideal without). `--estimator
shift` (parameter shift, default) or `score` (REINFORCE with baseline);
`--exact` also prints the exact branch-enumeration gradient (narrow networks)."""

from __future__ import annotations

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import SEED, count
from qnnc.runtime.cli.json_output import emit
from qnnc.runtime.cli.noise_args import add_noise_argument, noise_from_args
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network
from qnnc.runtime.cli.weight_args import add_weight_arguments, load_weights
from qnnc.runtime.targets.capabilities import STRATEGIES, TARGETS


def add_arguments(p) -> None:
    add_program_arguments(p)
    add_weight_arguments(p)
    p.add_argument("--target", choices=("sim",) + tuple(TARGETS), default="sim",
                   help="sim: the torch simulator in shot mode (default); a vendor: its compiled circuits "
                        "on its local simulator")
    add_noise_argument(p)
    p.add_argument("--simulator", choices=("ideal", "noisy"), default="noisy",
                   help="circuits only: the local simulator with the backend's noise (default) or without")
    p.add_argument("--backend", metavar="NAME", help="circuits only: device (default: the target's)")
    p.add_argument("--strategy", choices=STRATEGIES, help="circuits only: lowering (default: the best that fits)")
    p.add_argument("--shots", type=count(2, limits.MAX_SHOTS), default=100, metavar="N",
                   help="shots per image and circuit variant (default: 100)")
    p.add_argument("--estimator", choices=("shift", "score"), default="shift",
                   help="parameter shift (default) or score function (REINFORCE with baseline)")
    p.add_argument("--image", type=count(0), default=0, metavar="I", help="first image of --data (default: 0)")
    p.add_argument("--images", type=count(1, 4096), default=1, metavar="B", help="images in the batch (default: 1)")
    p.add_argument("--data", default="mnist.test", metavar="NAME", help="data set (default: mnist.test)")
    p.add_argument("--exact", action="store_true",
                   help="also compute the exact gradient by branch enumeration (narrow networks)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the shots (and of the initialisation without weights)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    import numpy as np
    import torch

    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.gradients import estimate, exact_gradient, make_executor, view_model

    program = load_from_args(args)
    network = required_network(args, program)
    w = load_weights(args, program, network)
    ds = load_dataset(args.data)
    if args.image + args.images > len(ds):
        raise error("Q0722", f"images {args.image}..{args.image + args.images - 1} are not all in "
                    f"`{args.data}` ({len(ds)} images)", exit_code=2)
    sl = slice(args.image, args.image + args.images)
    x = preprocess(ds.images[sl], network.input).astype(np.float64)
    y = ds.labels[sl].astype(np.int64)
    noise = noise_from_args(args, program, network)
    if args.target == "sim":
        ex = make_executor("sim", program, network, w.tensors, seed=args.seed, noise=noise)
        where = "simulator (shot mode" + (f", noise {args.noise})" if noise is not None else ")")
    else:
        if noise is not None:
            raise error("Q0725", f"--noise {args.noise} applies to the simulator (--target sim); the circuits' "
                        "own simulator brings its noise (--simulator noisy)", exit_code=2)
        from qnnc.runtime.gradients import CircuitExecutor

        ex = CircuitExecutor(program, network, w.tensors, target=args.target, strategy=args.strategy,
                             backend=args.backend, simulator=args.simulator, seed=args.seed)
        where = f"{args.target} circuits on its `{args.simulator}` local simulator"
    est = estimate(ex, program, network, w.tensors, x, y, shots=args.shots, estimator=args.estimator)
    exact = None
    if args.exact:
        m = view_model(program, network, noise)
        m.load_tensors({k: torch.as_tensor(v) for k, v in w.tensors.items()})
        exact = {k: v.numpy() for k, v in exact_gradient(m, torch.as_tensor(x), torch.as_tensor(y)).items()}
    layers = {}
    order = [l.name + sfx for l in network.layers for sfx in ("", ".bias")]
    for name in sorted(est.grads, key=order.index):
        g, s = est.grads[name].numpy(), est.stderr[name].numpy()
        row = {"shape": list(g.shape), "norm": float(np.linalg.norm(g)), "mean_stderr": float(s.mean()),
               "max_abs": float(np.abs(g).max())}
        if exact is not None:
            z = np.abs(g - exact[name]) / np.where(s > 0, s, np.inf)
            row.update(exact_norm=float(np.linalg.norm(exact[name])), max_z=float(z.max()))
        layers[name] = row
    result = {"network": network.name, "weights": w.source, "target": args.target, "executor": where,
              "estimator": est.estimator, "images": est.images, "shots": est.shots, "variants": est.variants,
              "circuits": est.circuits, "passes": est.passes, "seconds": est.wall_s, "loss": est.loss,
              "seed": args.seed, "layers": layers}
    if ex.__class__.__name__ == "CircuitExecutor":
        result["compilations"] = ex.compilations
    if args.json:
        result["gradient"] = {k: v.numpy().tolist() for k, v in est.grads.items()}
        result["stderr"] = {k: v.numpy().tolist() for k, v in est.stderr.items()}
        emit("grad", result)
        return 0
    print(f"{network.name}: {est.estimator} gradient on {where}, {est.images} image(s) of {args.data} "
          f"from {args.image}, seed {args.seed}")
    print(f"  {est.variants} network variant(s), {est.circuits} circuit(s) executed, {est.shots} shots each, "
          f"{est.passes} passes, {est.wall_s:.2f} s; sampled loss {est.loss:.4f}")
    head = "  tensor      shape        |grad|    mean s.e.    max|grad|"
    print(head + ("    |exact|   max |est-exact|/s.e." if exact is not None else ""))
    for name, r in layers.items():
        line = (f"  {name:<10} {str(tuple(r['shape'])):<12} {r['norm']:>8.4f}  {r['mean_stderr']:>10.5f}  "
                f"{r['max_abs']:>10.5f}")
        if exact is not None:
            line += f"  {r['exact_norm']:>9.4f}  {r['max_z']:>8.2f}"
        print(line)
    return 0
