"""`qnnc finetune FILE --run DIR --steps N`: fine-tune trained weights with measured
gradients through one executor: the torch simulator in shot mode (`--executor sim`,
default) or a target's compiled circuits on Aer with the backend's noise (`--executor
aer`, the local stand-in for a device). Real hardware takes the same executor interface
with the vendor's submission client (docs/hardware-in-the-loop.md); it is not exercised
here. Writes a checkpoint in the training's format to --out."""

from __future__ import annotations

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import PATH, SEED, count, non_negative, positive
from qnnc.runtime.cli.json_output import emit
from qnnc.runtime.cli.noise_args import add_noise_argument, noise_from_args
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network
from qnnc.runtime.cli.weight_args import add_weight_arguments, load_weights
from qnnc.runtime.targets.capabilities import STRATEGIES, TARGETS


def add_arguments(p) -> None:
    add_program_arguments(p)
    add_weight_arguments(p)
    p.add_argument("--executor", choices=("sim", "aer"), default="sim",
                   help="sim: the torch simulator in shot mode (default); aer: the compiled circuits on "
                        "the target's local simulator with the backend's noise")
    add_noise_argument(p)
    p.add_argument("--target", choices=TARGETS, default="ibm", help="--executor aer: vendor (default: ibm)")
    p.add_argument("--backend", metavar="NAME", help="--executor aer: device (default: fake_brisbane)")
    p.add_argument("--strategy", choices=STRATEGIES, help="--executor aer: lowering (default: the best that fits)")
    p.add_argument("--ideal", action="store_true", help="--executor aer: without the backend's noise")
    p.add_argument("--steps", type=count(1, 100000), default=20, metavar="N", help="SGD steps (default: 20)")
    p.add_argument("--batch", type=count(1, limits.MAX_BATCH), default=8, metavar="B",
                   help="training images per step (default: 8)")
    p.add_argument("--shots", type=count(2, limits.MAX_SHOTS), default=32, metavar="S",
                   help="shots per image and circuit variant (default: 32)")
    p.add_argument("--lr", type=positive(), default=0.05, metavar="LR", help="learning rate (default: 0.05)")
    p.add_argument("--momentum", type=non_negative(), default=0.9, metavar="M", help="momentum (default: 0.9)")
    p.add_argument("--estimator", choices=("shift", "score"), default="shift",
                   help="parameter shift (default) or score function")
    p.add_argument("--data", default="mnist.train5k", metavar="NAME", help="training data (default: mnist.train5k)")
    p.add_argument("--eval-data", default="mnist.test", metavar="NAME", help="evaluation data (default: mnist.test)")
    p.add_argument("--eval-images", type=count(1), default=200, metavar="N",
                   help="first N images of --eval-data, voted over --eval-shots (default: 200)")
    p.add_argument("--eval-shots", type=count(1, limits.MAX_SHOTS), default=10, metavar="S",
                   help="shots voted over in evaluation (default: 10)")
    p.add_argument("--eval-every", type=count(1), default=5, metavar="K", help="evaluate every K steps (default: 5)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the batches and shots")
    p.add_argument("--layers", nargs="+", metavar="NAME",
                   help="fine-tune only these layers (the parameter shift runs only their variants; "
                        "the output layer's gradient needs none); default: all")
    p.add_argument("--out", type=PATH, metavar="DIR", help="write the fine-tuned checkpoint and history here")
    p.add_argument("--plot", type=PATH, metavar="PNG", help="write accuracy against step")
    p.add_argument("--json", action="store_true", help="print the history as JSON")


def run(args) -> int:
    import sys

    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.cli import output
    from qnnc.runtime.gradients import make_executor
    from qnnc.runtime.gradients.finetune import finetune

    program = load_from_args(args)
    network = required_network(args, program)
    if args.momentum >= 1:
        raise error("Q0722", f"--momentum {args.momentum} must be below 1", exit_code=2)
    if args.plot:
        output.check_writable(args.plot)
    w = load_weights(args, program, network)
    noise = noise_from_args(args, program, network)
    if noise is not None and args.executor != "sim":
        raise error("Q0725", f"--noise {args.noise} applies to --executor sim; Aer brings the backend's noise",
                    exit_code=2)
    ex = make_executor(args.executor, program, network, w.tensors, seed=args.seed, target=args.target,
                       strategy=args.strategy, backend=args.backend, noisy=not args.ideal, noise=noise)
    progress = None if args.json else (lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    r = finetune(program, network, w.tensors, ex, steps=args.steps, batch=args.batch, shots=args.shots,
                 lr=args.lr, momentum=args.momentum, estimator=args.estimator, data=args.data,
                 eval_data=args.eval_data, eval_images=args.eval_images, eval_shots=args.eval_shots,
                 eval_every=args.eval_every, seed=args.seed, out_dir=args.out, progress=progress,
                 layers=args.layers)
    where = (f"simulator (shot mode{', noise ' + args.noise if noise is not None else ''})" if args.executor == "sim" else
             f"{args.target} circuits on Aer{' (ideal)' if args.ideal else ' with the backend noise'}")
    if args.plot:
        from qnnc.runtime.plots import finetune_curves

        output.write_bytes(args.plot, finetune_curves({where: r["history"]}, title=network.name))
    result = {"network": network.name, "weights": w.source, "executor": where, "history": r["history"],
              "checkpoint": r["checkpoint"], "seconds": r["seconds"], "gradient_circuits": r["gradient_circuits"],
              "seed": args.seed}
    if args.json:
        emit("finetune", result)
        return 0
    h0, h1 = r["history"][0], r["history"][-1]
    print(f"{network.name}: fine-tuned {args.steps} steps on {where}, {args.estimator} gradients, "
          f"batch {args.batch}, {args.shots} shots, lr {args.lr}, seed {args.seed}")
    print(f"  accuracy {h0['accuracy']:.4f} -> {h1['accuracy']:.4f} on {args.eval_images} images of "
          f"{args.eval_data} (vote over {args.eval_shots} shots); loss {h0['loss']:.4f} -> {h1['loss']:.4f}")
    print(f"  {r['gradient_circuits']} gradient circuit(s), {r['seconds']:.1f} s")
    if r["checkpoint"]:
        print(f"  wrote {r['checkpoint']}")
    if args.plot:
        output.announce(args.plot, "  ")
    return 0
