"""`qnnc compile FILE --target ibm|ionq|quantinuum`: circuits for a vendor, with a summary
(qubits, depth, two-qubit gates, measurements, conditionals, per layer). `-o FILE`
writes the circuits; `--bundle DIR` writes a self-contained hardware bundle (circuits,
the image's bindings for --shots, a manifest, and a driver that needs only the vendor's
SDK; `runtime/targets/bundle.py`)."""

from __future__ import annotations

from qnnc.runtime.cli import output
from qnnc.runtime.cli.circuit_args import add_compile_arguments, compile_from_args, write_output
from qnnc.runtime.cli.json_output import emit


def add_arguments(p) -> None:
    add_compile_arguments(p)
    p.add_argument("--bundle", metavar="DIR",
                   help="write a hardware bundle into DIR: circuits, bindings, bundle.json, "
                        "and run_TARGET.py, which runs it with only the vendor's SDK")
    p.add_argument("--shots", type=int, default=100, metavar="S",
                   help="forward passes the bundle's bindings are written for (default: 100)")


def run(args) -> int:
    from qnnc.runtime.targets.compile import render_summary
    from qnnc.runtime.targets.errors import refuse

    if args.shots < 1:
        raise refuse("Q0308", f"--shots must be at least 1, not {args.shots}")
    compiled = compile_from_args(args)
    written = write_output(compiled, args.output) if args.output else []
    if args.bundle:
        from qnnc.runtime.targets.bundle import write_bundle

        with output.writing_into(args.bundle):
            written += write_bundle(compiled, args.bundle, args.shots, [compiled.summary["image"]])
    if args.json:
        emit("compile", {**compiled.summary, "written": written})
        return 0
    print(render_summary(compiled.summary), end="")
    print(f"  weights: {compiled.summary['weights']}; input: {compiled.summary['input']}")
    if args.bundle:
        print(f"  bundle: {args.bundle} ({len(written)} files; run it with "
              f"`python {args.bundle}/run_{args.target}.py --local`)")
        written = [w for w in written if w.endswith("bundle.json")] + \
            [w for w in written if not w.startswith(str(args.bundle))]
    for w in written:
        output.announce(w, "  ")
    return 0
