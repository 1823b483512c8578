"""The trained weights a command reads, named one way in every command that takes them
(`eval`, `hamiltonian`, `compile`, `run`, `submit`; `tap` reads a whole run):

* `--run DIR`: the training run (default: `runs/NETWORK`);
* `--checkpoint STEP|last|PATH`: a step of that run, its latest, or a checkpoint file
  (a `.safetensors` file, or a run folder, whose latest is taken);
* `--run DIR` alone means its latest checkpoint;
* neither: the declared initialisation for `--seed`, said plainly on standard error.

A step the run lacks is refused with the steps it has. The weights themselves come from
the one weight source, `qnnc.runtime.weights`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

RUN_HELP = "training run folder (default: runs/NETWORK)"
CHECKPOINT_HELP = ("trained weights: a step of the run, `last`, or a checkpoint file "
                   "(.safetensors); without --run/--checkpoint: the declared initialisation "
                   "for --seed")


def add_weight_arguments(p) -> None:
    """`--run DIR` and `--checkpoint STEP|last|PATH`, the same in every command."""
    p.add_argument("--run", metavar="DIR", help=RUN_HELP)
    p.add_argument("--checkpoint", metavar="STEP|last|PATH", help=CHECKPOINT_HELP)


def add_run_argument(p) -> None:
    """`--run DIR` only (`qnnc tap` reads every checkpoint of a run)."""
    p.add_argument("--run", metavar="DIR", help=RUN_HELP)


def run_dir_from_args(args, network) -> Path:
    return Path(args.run) if getattr(args, "run", None) else Path("runs") / network.name


def _is_step(text: str) -> bool:
    return text == "last" or text.isdigit()


def checkpoint_from_args(args, network) -> Optional[Path]:
    """The checkpoint file the flags name, or None for the declared initialisation."""
    from qnnc.compiler.diagnostics import error
    from qnnc.runtime import checkpoint as ck

    choice = getattr(args, "checkpoint", None)
    run = getattr(args, "run", None)
    if choice is None and run is None:
        return None
    if choice is None or _is_step(str(choice)):
        return ck.resolve_checkpoint(run_dir_from_args(args, network), choice)
    path = Path(choice)
    if path.is_dir():
        return ck.resolve_checkpoint(path, "last")
    if path.is_file():
        return path
    run_dir = run_dir_from_args(args, network)
    steps = ck.list_checkpoints(run_dir)
    have = (f"{run_dir} has steps {', '.join(map(str, steps[:12]))}{' …' if len(steps) > 12 else ''} "
            f"and `last`") if steps else f"{run_dir} has no checkpoints"
    raise error(ck.MISSING, f"--checkpoint {choice}: not a step, `last`, or an existing file",
                help=f"give a step number, `last`, or a .safetensors file; {have}")


@dataclass
class Weights:
    tensors: dict  # name -> float64 array (checkpoint names: `h1`, `h1.bias`)
    source: str  # "checkpoint PATH" or "declared initialisation, seed S"
    step: Optional[int]
    path: Optional[Path]
    digest: str  # `weights_digest`


def load_weights(args, program, network, seed: Optional[int] = None) -> Weights:
    """The weights the flags name, from the one weight source. Without --run and
    --checkpoint: the declared initialisation, said on standard error (and in --json's
    diagnostics)."""
    from qnnc.runtime import weights
    from qnnc.runtime.cli.json_output import note

    seed = int(getattr(args, "seed", 0) or 0) if seed is None else seed
    path = checkpoint_from_args(args, network)
    tensors, source, step = weights.load_weights(program, network, path, seed)
    if path is None:
        note(f"weights: the declared initialisation of `{network.name}` with seed {seed} "
             f"(untrained; give --run DIR or --checkpoint STEP|last|PATH for trained weights)")
    return Weights(tensors, source, step if path is not None else None, path,
                   weights.weights_digest(tensors))
