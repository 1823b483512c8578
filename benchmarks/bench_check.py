"""Wall time of `qnnc check` on a program, after start-up.

Start-up (the interpreter and the imports) is measured separately from the check
itself: parse, import resolution, elaboration and verification of the program.

    .venv/bin/python benchmarks/bench_check.py examples/mnist.qnn --repeat 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default="examples/mnist.qnn")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import qnnc.compiler  # noqa: F401  (start-up: imports)
    from qnnc.compiler import load_program
    from qnnc.compiler.parser import _parser

    _parser()  # grammar tables are built once per process
    startup = time.perf_counter() - t0

    first_t = time.perf_counter()
    load_program(args.file)
    first = time.perf_counter() - first_t
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        load_program(args.file)
        times.append(time.perf_counter() - t)

    # The whole command, as a user runs it, for reference.
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qnnc", "check", args.file], check=True, capture_output=True)
    whole = time.perf_counter() - t

    result = {
        "file": args.file,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "startup_s": startup,
        "first_check_s": first,
        "median_check_s": statistics.median(times),
        "max_check_s": max(times),
        "whole_command_s": whole,
    }
    print("| what | seconds |\n|---|---|")
    print(f"| start-up (imports, grammar tables) | {startup:.3f} |")
    print(f"| first check after start-up | {first:.4f} |")
    print(f"| check, median of {args.repeat} | {result['median_check_s']:.4f} |")
    print(f"| check, worst of {args.repeat} | {result['max_check_s']:.4f} |")
    print(f"| whole `python -m qnnc check` command | {whole:.3f} |")
    print(f"\nmachine: {result['machine']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
