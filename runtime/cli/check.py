"""`qnnc check FILE...`: parse, elaborate and verify programs; one line per good file.
Imports only the compiler core."""

from __future__ import annotations

import time

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.cli.program_args import add_program_arguments, load_from_args


def add_arguments(p) -> None:
    add_program_arguments(p, many=True)
    p.add_argument("--timing", action="store_true", help="print the time each file took")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    failed: list = []
    exit_code = 0
    checked: list = []
    for path in args.files:
        t0 = time.perf_counter()
        try:
            program = load_from_args(args, path)
        except QnncError as exc:
            if exc.exit_code == 2 or len(args.files) == 1:
                raise
            failed.extend(exc.diagnostics)  # keep going: report every file's errors
            exit_code = max(exit_code, exc.exit_code)
            continue
        dt = time.perf_counter() - t0
        parts = []
        for net in program.networks:
            sizes = [str(net.input.features)] + [str(l.size) for l in net.layers]
            parts.append(f"network {net.name} {'-'.join(sizes)}")
        if not program.networks:
            parts.append(f"{len(program.neurons)} neuron(s)")
        checked.append({"file": path, "ok": True, "seconds": dt,
                        "networks": [{"name": n.name, "sizes": [n.input.features] + [l.size for l in n.layers]}
                                     for n in program.networks], "neurons": len(program.neurons)})
        if not args.json:
            print(f"ok: {path}: " + "; ".join(parts) + (f" ({dt * 1000:.0f} ms)" if args.timing else ""))
    if failed:
        raise QnncError(failed, exit_code)
    if args.json:
        from qnnc.runtime.cli.json_output import emit

        emit("check", {"files": checked})
    return 0
