"""`qnnc compile FILE --target ibm|ionq|quantinuum`: circuits for a vendor, with a summary
(qubits, depth, two-qubit gates, measurements, conditionals, per layer)."""

from __future__ import annotations

from qnnc.runtime.cli import output
from qnnc.runtime.cli.circuit_args import add_compile_arguments, compile_from_args, write_output
from qnnc.runtime.cli.json_output import print_json


def add_arguments(p) -> None:
    add_compile_arguments(p)


def run(args) -> int:
    from qnnc.runtime.targets.compile import render_summary

    compiled = compile_from_args(args)
    written = write_output(compiled, args.output) if args.output else []
    if args.json:
        print_json({**compiled.summary, "written": written})
        return 0
    print(render_summary(compiled.summary), end="")
    print(f"  weights: {compiled.summary['weights']}; input: {compiled.summary['input']}")
    for w in written:
        output.announce(w, "  ")
    return 0
