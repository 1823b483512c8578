"""Start-up: whole-process wall times of `qnnc --help` and `qnnc check`, beside a bare
`python -c "import lark"` (the floor: an interpreter that loads the parser library).

    python benchmarks/bench_startup.py [--rounds 20] [--json PATH]

Paired: each round runs the three commands one after the other (in a rotating order),
so a busy machine slows all three alike; reported are the medians over rounds and the
median of the per-round ratios. Target (issue 16): both at most 3x the floor. The
parser tables ship as JSON with the package, so every run, the first included, loads them.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def commands() -> dict[str, list[str]]:
    qnnc = str(BIN / "qnnc")
    return {
        "python -c 'import lark'": [sys.executable, "-c", "import lark"],
        "qnnc --help": [qnnc, "--help"],
        "qnnc check examples/mnist.qnn": [qnnc, "check", str(ROOT / "examples" / "mnist.qnn")],
    }


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    cmds = commands()
    names = list(cmds)
    for n in names:  # warm the page cache
        wall(cmds[n])
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % 3:] + names[:r % 3]
        for n in order:
            times[n].append(wall(cmds[n]))
    floor = names[0]
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "load_before": os.getloadavg()[0]}, "rounds": args.rounds, "rows": []}
    print(f"{'command':34s} {'median s':>9s} {'min s':>7s} {'x floor':>8s}")
    for n in names:
        ratios = [t / f for t, f in zip(times[n], times[floor])]
        row = {"command": n, "median_s": statistics.median(times[n]), "min_s": min(times[n]),
               "ratio_median": statistics.median(ratios)}
        out["rows"].append(row)
        print(f"{n:34s} {row['median_s']:9.3f} {row['min_s']:7.3f} {row['ratio_median']:7.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
