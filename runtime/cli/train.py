"""`qnnc train FILE`: train a network with its recipe; flags override the recipe."""

from __future__ import annotations

import sys
from pathlib import Path

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import PATH, SEED, count, non_negative, positive
from qnnc.runtime.cli import output
from qnnc.runtime.cli.device_args import add_device_argument, device_from_args
from qnnc.runtime.cli.json_output import emit
from qnnc.runtime.cli.noise_args import add_noise_argument, noise_from_args
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, required_network, set_pairs


def add_arguments(p) -> None:
    add_program_arguments(p)
    p.add_argument("--epochs", type=count(0, limits.MAX_EPOCHS), metavar="N", help="override the recipe's epochs")
    p.add_argument("--lr", type=positive(), metavar="LR", help="override the learning rate")
    p.add_argument("--momentum", type=non_negative(), metavar="M", help="override the momentum")
    p.add_argument("--batch", type=count(1, limits.MAX_BATCH), metavar="B", help="override the batch size")
    p.add_argument("--seed", type=SEED, metavar="S", help="override the seed")
    p.add_argument("--out", type=PATH, metavar="DIR", help="run directory (default: runs/NETWORK)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--plot", metavar="PNG", help="write the training curves (loss, accuracy against step)")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    add_device_argument(p)
    add_noise_argument(p)


def run(args) -> int:
    from qnnc.compiler.diagnostics import error
    from qnnc.compiler.passes import OverrideTraining, PassManager
    from qnnc.runtime.train import train

    device = device_from_args(args)  # before any work: an unavailable device is Q0634
    program = load_from_args(args)
    network = required_network(args, program, help="declare one: `network NAME { ... }`")
    overrides = {}
    for key in ("epochs", "lr", "momentum", "batch", "seed"):
        v = getattr(args, key)
        if v is not None:
            if (key in ("epochs", "seed") and v < 0) or (key in ("lr", "batch") and v <= 0) or (key == "momentum" and v < 0):
                raise error("Q0407", f"--{key} {v} is out of range", exit_code=2)
            overrides[key] = v
    if overrides:
        program = PassManager([OverrideTraining(overrides)]).run(program)
    recipe = program.train(network.name)
    if recipe is None:
        raise error("Q0233", f"network `{network.name}` has no train block", network.span,
                    help=f"add `train {network.name} {{ data mnist.train5k }}`")
    out = Path(args.out) if args.out is not None else Path("runs") / network.name
    flags = {"set": set_pairs(args.set), **overrides}
    if device.type != "cpu":  # (a CPU run's files stay as they were)
        flags["device"] = str(device)
    noise = noise_from_args(args, program, network)
    if noise is not None:
        flags["noise"] = args.noise
    with output.writing_into(out):  # the run folder: checkpoints, metrics, run.json
        result = train(program, network, recipe, out, resume=args.resume, flags=flags,
                       progress=not args.no_progress and sys.stderr.isatty(),
                       log=lambda s: print(s, file=sys.stderr), device=device, noise=noise)
    if args.plot:
        from qnnc.runtime.plots import training_curves
        from qnnc.runtime.train import read_metrics

        output.write_bytes(args.plot, training_curves(read_metrics(result.run_dir),
                                                      f"training `{network.name}` ({result.run_dir})"))
    if args.json:
        emit("train", {"run": str(result.run_dir), "steps": result.steps, "checkpoints": result.checkpoints,
                       "final": result.final_metrics, "written": [args.plot] if args.plot else []})
    else:
        print(f"trained {network.name}: {result.steps} steps, {len(result.checkpoints)} checkpoints in {result.run_dir}")
        if "validation_accuracy" in result.final_metrics:
            m = result.final_metrics
            lo, hi = m["validation_ci95"]
            print(f"validation accuracy {m['validation_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}, "
                  f"vote over {m['validation_shots']} shots)")
        if args.plot:
            output.announce(args.plot)
    return 0
