"""The program a command reads: FILE, `--set NAME=VALUE` and `--network NAME`, and the
loaded program they describe. Shared by every command that reads a program."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from qnnc.runtime.cli.flag_types import PATH
from qnnc.compiler.diagnostics import error


def set_pairs(values: Optional[Sequence[str]]) -> dict[str, str]:
    """The `--set` flags as {name: value}; a malformed or repeated pair is misuse."""
    out: dict[str, str] = {}
    for v in values or ():
        name, sep, value = v.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value or not name.isidentifier():
            raise error("Q0401", f"`--set {v}` is not of the form NAME=VALUE",
                        help="e.g. `--set a=0.5` (no spaces around `=`, or quote the pair)", exit_code=2)
        if name in out:
            raise error("Q0401", f"`--set {name}` is given twice", exit_code=2)
        out[name] = value
    return out


def add_program_arguments(p: argparse.ArgumentParser, many: bool = False) -> None:
    """FILE plus `--set` and `--network`."""
    if many:
        p.add_argument("files", nargs="+", type=PATH, metavar="FILE", help=".qnn program(s) or IR JSON")
    else:
        p.add_argument("file", type=PATH, metavar="FILE", help=".qnn program or IR JSON")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="override a `param` (repeatable), e.g. --set a=0.5")
    p.add_argument("--network", metavar="NAME", help="which network (default: the first)")


def load_from_args(args, path: Optional[str] = None):
    """The program named on the command line, `--set` applied, one network selected."""
    from qnnc.compiler import load_program
    from qnnc.compiler.passes import PassManager, SelectNetwork

    program = load_program(path or args.file, set_pairs(args.set))
    if getattr(args, "network", None):
        program = PassManager([SelectNetwork(args.network)]).run(program)
    return program


def network_from_args(args, program):
    """The network `--network` names, else the program's first; None when it has none."""
    return program.network(args.network) if args.network else program.network()


def required_network(args, program, help=None):
    """`network_from_args`, for a command that needs a network: Q0232 when the file
    defines none."""
    network = network_from_args(args, program)
    if network is None:
        raise error("Q0232", f"{args.file} defines no network", help=help)
    return network
