"""`qnnc noise show [--target T] [--backend NAME] [--model MODEL] [--file FILE]`: print a
device's noise model as the torch simulator uses it (per-qubit T1, T2 and readout errors,
native gate errors and durations, how each neuron gate runs on the device); with
`--file`, also the physical qubits of the network's neurons. `--json` writes the model
in the form `--noise FILE.json` reads."""

from __future__ import annotations

from qnnc.runtime.cli.flag_types import PATH
from qnnc.runtime.cli.json_output import emit

_DEFAULT_BACKEND = {"ibm": "fake_brisbane", "ionq": "aria", "quantinuum": "h1"}


def add_arguments(p) -> None:
    p.add_argument("action", choices=["show"], help="show: print the model")
    p.add_argument("--target", choices=sorted(_DEFAULT_BACKEND), default="ibm", help="vendor (default: ibm)")
    p.add_argument("--backend", metavar="NAME",
                   help="ibm: a fake backend (default fake_brisbane); ionq: aria; quantinuum: h1")
    p.add_argument("--model", metavar="MODEL", help="a MODEL spelling or JSON file instead of --target/--backend")
    p.add_argument("--file", type=PATH, metavar="FILE", help="bind the model to this program's network (layout)")
    p.add_argument("--network", metavar="NAME", help="which network of --file (default: the first)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[], help="override a param of --file")
    p.add_argument("--all", action="store_true", help="list every qubit")
    p.add_argument("--json", action="store_true", help="print the model as JSON (the `--noise FILE` format)")


def run(args) -> int:
    from qnnc.runtime.noise import parse, render

    spec = args.model or f"{args.target}:{args.backend or _DEFAULT_BACKEND[args.target]}"
    program = network = None
    if args.file:
        from qnnc.runtime.cli.program_args import load_from_args, network_from_args

        program = load_from_args(args)
        network = network_from_args(args, program)
    model = parse(spec, program, network)
    if args.json:
        emit("noise", model.to_json())
    else:
        print(render(model, None if args.all else 8), end="")
    return 0
