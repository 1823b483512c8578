"""The time of each class of refusal of issue 9 (the bound: within 2 s of `main()`, and
500 MB peak memory, which tests/test_refusal_cost.py checks): every adversarial input of
tests/refusal_cases.py run `--repeat` times, each in a fresh interpreter; the median and
the worst time of `main()` alone, and the peak resident memory.

    .venv/bin/python benchmarks/bench_refusals.py [--repeat 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from refusal_cases import cases, run_case  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in cases(Path(tmp)).items():
            runs = [run_case(argv, Path(tmp))[0] for _ in range(args.repeat)]
            times = [r["seconds"] for r in runs]
            rows.append({"case": name, "rc": sorted({r["rc"] for r in runs}), "median_s": statistics.median(times),
                         "worst_s": max(times), "peak_mib": max(r["peak"] for r in runs) / 2 ** 20})
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; {args.repeat} runs a case")
    print(f"{'case':40s} {'rc':>6s} {'median s':>9s} {'worst s':>8s} {'peak MiB':>9s}")
    for r in rows:
        print(f"{r['case']:40s} {','.join(map(str, r['rc'])):>6s} {r['median_s']:9.3f} {r['worst_s']:8.3f} "
              f"{r['peak_mib']:9.0f}")
    print(f"slowest: {max(rows, key=lambda r: r['worst_s'])['case']} "
          f"({max(r['worst_s'] for r in rows):.3f} s); within 2 s: {all(r['worst_s'] <= 2 for r in rows)}; "
          f"within 500 MB: {all(r['peak_mib'] <= 500 for r in rows)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
