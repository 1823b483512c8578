"""The trained weights a command reads. Two kinds of flags today (a later change unifies
them): the analysis commands name a step of a training run (`--checkpoint STEP` and
`--run DIR`), the circuit commands a checkpoint file or run folder (`--checkpoint PATH`,
untrained weights from the declared init and `--seed` without it)."""

from __future__ import annotations

from pathlib import Path

RUN_HELP = "run directory (default: runs/NETWORK)"


def add_run_argument(p) -> None:
    p.add_argument("--run", metavar="DIR", help=RUN_HELP)


def add_step_arguments(p, default=None, help: str = "step of the run (`last` for the latest)") -> None:
    """`--checkpoint STEP` of the run in `--run DIR`."""
    p.add_argument("--checkpoint", metavar="STEP", default=default, help=help)
    add_run_argument(p)


def run_dir_from_args(args, network) -> Path:
    return Path(args.run) if args.run else Path("runs") / network.name


def add_checkpoint_path_argument(p) -> None:
    """`--checkpoint PATH`: read by `load_weights`."""
    p.add_argument("--checkpoint", metavar="PATH",
                   help="trained weights: a checkpoint file or a run directory (its last "
                        "checkpoint); default: untrained weights from the declared init")


def load_weights(args, program, network) -> tuple[dict, str]:
    """The weights to compile: --checkpoint (a file, or a run directory's last), or the
    declared initialisation for --seed, from the one weight source."""
    from qnnc.runtime import weights

    path = None
    if args.checkpoint:
        from qnnc.runtime import checkpoint as ck

        path = Path(args.checkpoint)
        if path.is_dir():
            path = ck.resolve_checkpoint(path, None)
    w, source, _ = weights.load_weights(program, network, path, args.seed)
    return w, source
