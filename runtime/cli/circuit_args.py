"""What `qnnc compile` and `qnnc run` share: their flags, and turning a program file,
a checkpoint and a test image into a `CompiledProgram`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

from qnnc.runtime.targets.capabilities import NOISE_KINDS, STRATEGIES, TARGETS
from qnnc.runtime.targets.errors import refuse


def add_compile_arguments(p, outputs: bool = True, backend_help: Optional[str] = None) -> None:
    """The flags of `qnnc compile`. `outputs=False` leaves out `-o` and `--json`, for a
    command that gives them another meaning (`qnnc submit` writes results there)."""
    from qnnc.compiler.cli import add_program_arguments

    add_program_arguments(p)
    p.add_argument("--target", choices=TARGETS, default="ibm", help="vendor (default: ibm)")
    p.add_argument("--backend", metavar="NAME",
                   help=backend_help or "device: an IBM fake backend (default fake_brisbane), an "
                        "IonQ device (forte-1, aria-1), a Quantinuum device (H2-1)")
    p.add_argument("--strategy", choices=STRATEGIES,
                   help="lowering (default: the best one the target runs that fits)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="trained weights: a checkpoint file or a run directory (its last "
                        "checkpoint); default: untrained weights from the declared init")
    p.add_argument("--image", type=int, default=0, metavar="N",
                   help="bind test image N of --data as the input (default: 0)")
    p.add_argument("--data", default="mnist.test", metavar="NAME",
                   help="data set of --image (default: mnist.test)")
    p.add_argument("--copies", type=int, metavar="K",
                   help="layered: image copies per circuit (default: as many as fit)")
    p.add_argument("--max-qubits", type=int, metavar="N",
                   help="use at most N of the device's qubits (default: all)")
    p.add_argument("--max-table-width", type=int, metavar="BITS",
                   help="widest previous layer a table of conditions may span (default: 8)")
    p.add_argument("--weight-bits", type=int, metavar="M",
                   help="dynamic on a target with real-time arithmetic (quantinuum): round the "
                        "weights after the first layer to the grid a/2^M (clip squash; a power "
                        "of two for a = 0) and compute wider layers' angles during the shot; "
                        "the summary reports the change (default: no rounding)")
    p.add_argument("--noise-pairs", type=int, metavar="K",
                   help="insert K identity pairs after each neuron rotation (noise probe); "
                        "0 places the probe's fences only: the baseline of a noise study")
    p.add_argument("--noise-kind", choices=NOISE_KINDS, default="sx",
                   help="pairs of sx·sx† on each qubit, or cz·cz / ms·ms† on neighbours")
    p.add_argument("--seed", type=int, default=0, help="seed (transpiler, untrained weights, shots)")
    if not outputs:
        return
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the circuits: .json for everything in one file; another "
                        "extension writes the target's text format (one file per circuit)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


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


def load_input(args, network) -> tuple[np.ndarray, str]:
    try:
        from qnnc.runtime.data import load_dataset, preprocess
    except ImportError as exc:  # pragma: no cover - the data layer ships with qnnc
        raise refuse("Q0342", f"no data layer to read test images ({exc})")
    ds = load_dataset(args.data)
    if not 0 <= args.image < len(ds):
        raise refuse("Q0342", f"--image {args.image} is not in `{args.data}` ({len(ds)} images)")
    x = preprocess(ds.images[args.image:args.image + 1], network.input)[0].astype(np.float64)
    return x, f"{args.data}[{args.image}] (label {int(ds.labels[args.image])})"


def compile_from_args(args, local_limit: Optional[int] = None):
    """Compile as the flags say. With `local_limit` (the qubits a local simulator holds)
    and no --copies, a layered program too wide for it is packed with one copy."""
    from qnnc.compiler.cli import load_from_args
    from qnnc.runtime.targets.compile import compile_network

    program = load_from_args(args)
    network = program.network(args.network) if args.network else program.network()
    if network is None:
        raise refuse("Q0340", f"{args.file} defines no network")
    weights, wsrc = load_weights(args, program, network)
    x, xsrc = load_input(args, network)
    compiled = compile_network(program, None, weights, x, target=args.target,
                               strategy=args.strategy, backend=args.backend,
                               noise_pairs=args.noise_pairs, noise_kind=args.noise_kind,
                               copies=args.copies, max_table_width=args.max_table_width,
                               max_qubits=args.max_qubits, seed=args.seed, network=network.name,
                               weight_bits=args.weight_bits)
    widest = max(c.num_qubits for c in compiled.circuits)
    if local_limit and args.copies is None and compiled.strategy == "layered" and widest > local_limit:
        compiled = compile_network(program, None, weights, x, target=args.target,
                                   strategy="layered", backend=args.backend,
                                   noise_pairs=args.noise_pairs, noise_kind=args.noise_kind,
                                   copies=1, max_table_width=args.max_table_width,
                                   max_qubits=min(local_limit, args.max_qubits or local_limit),
                                   seed=args.seed, network=network.name,
                                   weight_bits=args.weight_bits)
        compiled.summary["notes"].append(
            f"one copy per circuit, at most {local_limit} qubits: {widest} qubits do not fit "
            f"the local simulator")
    compiled.summary["weights"] = wsrc
    compiled.summary["input"] = xsrc
    compiled.summary["noise"] = {"pairs": args.noise_pairs, "kind": args.noise_kind}
    return compiled


def write_output(compiled, path: str) -> list[str]:
    """Write circuits atomically; returns the paths written."""
    from qnnc.compiler.fileio import atomic_write_text

    p = Path(path)
    if p.suffix == ".json":
        atomic_write_text(p, json.dumps(compiled.to_json(), indent=2) + "\n")
        return [str(p)]
    fmt = compiled.primary_format()
    texts = compiled.texts[fmt]
    if len(texts) == 1:
        atomic_write_text(p, texts[0])
        return [str(p)]
    written = []
    for circ, text in zip(compiled.circuits, texts):
        q = p.with_name(f"{p.stem}.{circ.name}{p.suffix}")
        atomic_write_text(q, text)
        written.append(str(q))
    return written
