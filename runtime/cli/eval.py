"""`qnnc eval FILE [--run DIR] [--checkpoint STEP|last|PATH]`: test accuracy with a
majority vote over shots, and with --plot a confusion matrix."""

from __future__ import annotations

from qnnc.compiler import limits
from qnnc.runtime.cli import output
from qnnc.runtime.cli.device_args import add_device_argument, device_from_args
from qnnc.runtime.cli.flag_types import PATH, SEED, count
from qnnc.runtime.cli.json_output import emit
from qnnc.runtime.cli.noise_args import add_noise_argument, noise_from_args
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network
from qnnc.runtime.cli.weight_args import add_weight_arguments, load_weights


def add_arguments(p) -> None:
    add_program_arguments(p)
    add_weight_arguments(p)
    p.add_argument("--shots", type=count(1, limits.MAX_SHOTS), metavar="S", help="passes voted over (default: the readout's)")
    p.add_argument("--data", metavar="NAME", default="mnist.test", help="data set (default: mnist.test)")
    p.add_argument("--limit", type=count(1), metavar="N", help="evaluate the first N images only")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the measurement outcomes (and of the initialisation without weights)")
    p.add_argument("--plot", type=PATH, metavar="PNG", help="write the confusion matrix as a PNG")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_device_argument(p)
    add_noise_argument(p)


def run(args) -> int:
    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.evaluate import evaluate

    device = device_from_args(args)  # before any work: an unavailable device is Q0634
    program = load_from_args(args)
    network = required_network(args, program)
    shots = args.shots if args.shots is not None else network.readout.shots
    if shots < 1 or (args.limit is not None and args.limit < 1):
        raise error("Q0407", "--shots and --limit must be at least 1", exit_code=2)
    if args.plot:
        output.check_writable(args.plot)
    w = load_weights(args, program, network)
    noise = noise_from_args(args, program, network)
    r = evaluate(program, network, w.tensors, shots=shots, data=args.data, limit=args.limit,
                 seed=args.seed, device=device, noise=noise)
    r = {**r, "checkpoint": str(w.path) if w.path else None, "step": w.step, "weights": w.source,
         "weights_sha256": w.digest}
    if args.plot:
        from qnnc.runtime.plots import confusion_matrix

        output.write_bytes(args.plot, confusion_matrix(r))
    if args.json:
        emit("eval", r)
        return 0
    lo, hi = r["ci95"]
    at = f"step {r['step']}" if r["step"] is not None else "untrained"
    under = f", noise {noise.name}" if noise is not None else ""
    print(f"{r['network']} {at} on {r['data']} ({r['images']} images, vote over {shots} shots{under}):")
    print(f"  accuracy {r['accuracy']:.4f}  (95% CI {lo:.4f}-{hi:.4f}); single pass {r['single_shot_accuracy']:.4f}")
    print("  per class: " + "  ".join(f"{c}:{v['accuracy']:.3f}" for c, v in r["per_class"].items()))
    if args.plot:
        output.announce(args.plot)
    return 0
