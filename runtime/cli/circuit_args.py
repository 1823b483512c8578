"""What `qnnc compile`, `qnnc run` and `qnnc submit` share: their flags, turning a
program file, a checkpoint and a test image into a `CompiledProgram`, and writing its
circuits."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from qnnc.compiler import limits
from qnnc.runtime.cli.flag_types import PATH, SEED, count
from qnnc.compiler.diagnostics import error
from qnnc.runtime.cli import output
from qnnc.runtime.cli.json_output import json_text
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args, network_from_args
from qnnc.runtime.cli.weight_args import add_weight_arguments, load_weights
from qnnc.runtime.targets.capabilities import NOISE_KINDS, STRATEGIES, TARGETS
from qnnc.runtime.targets.errors import refuse


def add_compile_arguments(p, outputs: bool = True, backend_help: Optional[str] = None) -> None:
    """The flags of `qnnc compile`. `outputs=False` leaves out `-o` and `--json`, for a
    command that gives them another meaning (`qnnc submit` writes results there)."""
    add_program_arguments(p)
    p.add_argument("--target", choices=TARGETS, default="ibm", help="vendor (default: ibm)")
    p.add_argument("--backend", metavar="NAME",
                   help=backend_help or "device: an IBM fake backend (default fake_brisbane), an "
                        "IonQ device (forte-1, aria-1), a Quantinuum device (H2-1), Helios-1 (helios)")
    p.add_argument("--strategy", choices=STRATEGIES,
                   help="lowering (default: the best one the target runs that fits)")
    add_weight_arguments(p)
    p.add_argument("--image", type=count(0), default=0, metavar="N",
                   help="bind test image N of --data as the input (default: 0)")
    p.add_argument("--data", default="mnist.test", metavar="NAME",
                   help="data set of --image (default: mnist.test)")
    p.add_argument("--copies", type=count(1, limits.MAX_COPIES), metavar="K",
                   help="layered: image copies per circuit (default: as many as fit)")
    p.add_argument("--max-qubits", type=count(1), metavar="N",
                   help="use at most N of the device's qubits (default: all)")
    p.add_argument("--max-table-width", type=count(0), metavar="BITS",
                   help="widest previous layer a table of conditions may span (default: 8)")
    p.add_argument("--weight-bits", type=count(0), metavar="M",
                   help="dynamic on a target with real-time arithmetic (quantinuum): round the "
                        "weights after the first layer to the grid a/2^M (clip squash; a power "
                        "of two for a = 0) and compute wider layers' angles during the shot; "
                        "the summary reports the change (default: no rounding)")
    p.add_argument("--noise-pairs", type=count(0, limits.MAX_NOISE_PAIRS), metavar="K",
                   help="insert K identity pairs after each neuron rotation (noise probe); "
                        "0 places the probe's fences only: the baseline of a noise study")
    p.add_argument("--noise-kind", choices=NOISE_KINDS, default="sx",
                   help="pairs of sx·sx† on each qubit, or cz·cz / ms·ms† on neighbours")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed (transpiler, shots, and the initialisation without --run/--checkpoint)")
    if not outputs:
        return
    p.add_argument("-o", "--output", type=PATH, metavar="FILE",
                   help="write the circuits: .json for everything in one file; another "
                        "extension writes the target's text format (one file per circuit)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


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


def x_label(args) -> int:
    from qnnc.runtime.data import load_dataset

    return int(load_dataset(args.data).labels[args.image])


def compile_from_args(args, local_limit: Optional[int] = None):
    """Compile as the flags say. With `local_limit` (the qubits a local simulator holds)
    and no --copies, a layered program too wide for it is packed with one copy."""
    from qnnc.runtime.targets.compile import compile_network

    program = load_from_args(args)
    network = network_from_args(args, program)
    if network is None:
        raise refuse("Q0340", f"{args.file} defines no network")
    w = load_weights(args, program, network)
    weights, wsrc = w.tensors, w.source
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
    compiled.summary["weights_sha256"] = w.digest
    compiled.summary["input"] = xsrc
    compiled.summary["image"] = {"data": args.data, "index": args.image, "label": x_label(args)}
    compiled.summary["noise"] = {"pairs": args.noise_pairs, "kind": args.noise_kind}
    return compiled


def write_output(compiled, path: str) -> list[str]:
    """Write the circuits (atomically); returns the paths written. `-` writes one
    circuit's text, or the JSON of all, to standard output."""
    p = Path(path)
    if p.suffix == ".json":
        output.write_text(p, json_text(compiled.to_json()))
        return [str(p)]
    from qnnc.runtime.targets.compile import vendor

    target = vendor(compiled.target)
    fmt = target.suffix_formats().get(p.suffix, compiled.primary_format())
    texts = compiled.texts[fmt] if fmt in compiled.texts else target.text(compiled.native, fmt)
    if path == output.STDOUT:
        if len(texts) > 1:
            raise error("Q0407", f"`-o -` writes one circuit to standard output, and this program "
                        f"compiles to {len(texts)}", help="give -o FILE.json for all of them in one file",
                        exit_code=2)
        output.write_text(path, texts[0])
        return [path]
    if len(texts) == 1:
        output.write_text(p, texts[0])
        written = [str(p)]
        for suffix, data in target.companions(compiled.native).items():
            q = p.with_suffix(suffix)  # e.g. the compiled HUGR package beside a Guppy source
            output.write_bytes(q, data)
            written.append(str(q))
        return written
    from qnnc.runtime.cli.json_output import note

    note(f"{len(texts)} circuits: one file each, named {p.stem}.CIRCUIT{p.suffix} "
         f"(-o FILE.json writes them all in one file; --bundle DIR writes a runnable bundle)")
    written = []
    for circ, text in zip(compiled.circuits, texts):
        q = p.with_name(f"{p.stem}.{circ.name}{p.suffix}")
        output.write_text(q, text)
        written.append(str(q))
    return written
