"""The trained weights a command reads. Two kinds of flags today (a later change unifies
them): the analysis commands name a step of a training run (`--checkpoint STEP` and
`--run DIR`), the circuit commands a checkpoint file or run folder (`--checkpoint PATH`,
untrained weights from the declared init and `--seed` without it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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
    from qnnc.runtime.targets.network import initial_weights

    if args.checkpoint:
        from qnnc.runtime import checkpoint as ck

        path = Path(args.checkpoint)
        if path.is_dir():
            path = ck.resolve_checkpoint(path, None)
        c = ck.load_checkpoint(path, network)
        return {k: np.asarray(v) for k, v in c.tensors.items()}, f"checkpoint {path}"
    from qnnc.compiler import ir

    if any(isinstance(l.dense.init, ir.CheckpointInit) for l in network.layers):
        from qnnc.runtime.checkpoint import checkpoint_init_tensors

        base = os.path.dirname(program.source) or "."
        w = initial_weights_with(network, args.seed, checkpoint_init_tensors(network, base))
        return w, "checkpoint initialisers"
    return initial_weights(network, args.seed), f"untrained (declared init, seed {args.seed})"


def initial_weights_with(network, seed, given: dict) -> dict:
    from qnnc.compiler import ir
    from qnnc.runtime.targets.network import initial_weights

    stub = network.__class__(network.name, network.input, tuple(
        l if not isinstance(l.dense.init, ir.CheckpointInit) else
        l.__class__(l.name, l.size, l.role, l.dense.__class__(l.dense.source, l.dense.bias,
                                                             ir.ZerosInit()), l.activation, l.span)
        for l in network.layers), network.readout, network.span)
    w = initial_weights(stub, seed)
    w.update({k: np.asarray(v) for k, v in given.items()})
    return w
