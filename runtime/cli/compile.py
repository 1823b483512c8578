"""`qnnc compile FILE --target ibm|ionq|quantinuum`: circuits for a vendor, with a summary
(qubits, depth, two-qubit gates, measurements, conditionals, per layer)."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    from qnnc.runtime.targets.cli import add_compile_arguments

    add_compile_arguments(p)


def run(args) -> int:
    from qnnc.runtime.targets.cli import compile_from_args, write_output
    from qnnc.runtime.targets.compile import render_summary

    compiled = compile_from_args(args)
    written = write_output(compiled, args.output) if args.output else []
    if args.json:
        print(json.dumps({**compiled.summary, "written": written}, indent=2))
        return 0
    print(render_summary(compiled.summary), end="")
    print(f"  weights: {compiled.summary['weights']}; input: {compiled.summary['input']}")
    for w in written:
        print(f"  wrote {w}")
    return 0
