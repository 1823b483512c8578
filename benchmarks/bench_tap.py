"""Wall time of the spin analysis on a 784-512-512-10 network (1,818 spins).

Measures, on this machine and in one run:
  * one dense eigendecomposition (numpy.linalg.eigh) of the 1,818 × 1,818 bond matrix,
    the yardstick every other row is divided by;
  * `hessian_tc` on one random weight set (std 1/sqrt(fan_in));
  * `solve_tap` with 256 starts at T = 0.9 T_c (glass: the batch runs to max_iter) and
    at T = 1.2 T_c (paramagnet);
  * a series of checkpoints: slightly different weight sets (the random weights plus a
    rank-one chain growing linearly from 0 to `--signal`, plus 1 % fresh noise each),
    so the series goes from a glass ("touch") to hidden order ("cross") as training
    would; each checkpoint's `hessian_tc` beside an eigh of the same matrix.

Targets: T_c ≤ 2 s, solver ≤ 10 s, series of 30 ≤ 60 s.

    .venv/bin/python benchmarks/bench_tap.py --json out/bench_tap.json
    .venv/bin/python benchmarks/bench_tap.py --quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

SIZES = [784, 512, 512, 10]
NAMES = ["input", "h1", "h2", "out"]


def random_weights(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(0.0, 1.0 / math.sqrt(SIZES[k - 1]), (SIZES[k], SIZES[k - 1])) for k in range(1, len(SIZES))]


def checkpoint_weights(base, chain, strength, rng):
    """base + strength · a_k a_{k−1}ᵀ + 1 % noise: one 'training' checkpoint."""
    out = []
    for k in range(1, len(SIZES)):
        noise = rng.normal(0.0, 0.01 / math.sqrt(SIZES[k - 1]), base[k - 1].shape)
        out.append(base[k - 1] + strength * np.outer(chain[k], chain[k - 1]) + noise)
    return out


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 checkpoints, 1 eigh repeat: a smoke run")
    ap.add_argument("--checkpoints", type=int, default=30)
    ap.add_argument("--starts", type=int, default=256)
    ap.add_argument("--signal", type=float, default=1.5, help="rank-one strength at the last checkpoint")
    ap.add_argument("--eigh-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="PATH", help="write the measurements as JSON")
    args = ap.parse_args()
    if args.quick:
        args.checkpoints, args.eigh_repeats = 5, 1

    from qnnc.compiler.fileio import atomic_write_text
    from qnnc.runtime.ising import from_weights
    from qnnc.runtime.tap import analytic_tc, hessian_tc, solve_tap

    rng = np.random.default_rng(args.seed)
    base = random_weights(rng)
    model = from_weights(base, NAMES)
    J = model.dense()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    eigh_times = [timed(np.linalg.eigh, J)[1] for _ in range(args.eigh_repeats)]
    eigh_s = statistics.median(eigh_times)

    tc_res, tc_s = timed(hessian_tc, model)
    tc_ref = analytic_tc(SIZES, 1.0)
    cold, cold_s = timed(solve_tap, model, 0.9 * tc_res.tc, starts=args.starts, seed=args.seed)
    hot, hot_s = timed(solve_tap, model, 1.2 * tc_res.tc, starts=args.starts, seed=args.seed)

    chain = [rng.normal(size=n) for n in SIZES]
    chain = [a / np.linalg.norm(a) for a in chain]
    series = []
    for i in range(args.checkpoints):
        strength = args.signal * i / max(args.checkpoints - 1, 1)
        m = from_weights(checkpoint_weights(base, chain, strength, rng), NAMES)
        res, s = timed(hessian_tc, m)
        _, e = timed(np.linalg.eigh, m.dense())
        series.append({"checkpoint": i, "strength": strength, "tc": res.tc, "kind": res.kind,
                       "hessian_tc_s": s, "eigh_s": e, "eigensolves": res.n_eigensolves})
    series_s = sum(r["hessian_tc_s"] for r in series)
    series_eigh = sum(r["eigh_s"] for r in series)
    per = [r["hessian_tc_s"] for r in series]

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
    rows = [
        ("dense eigh of J (numpy.linalg.eigh, 1818×1818), median of %d" % len(eigh_times), eigh_s, 1.0, "—"),
        ("`hessian_tc`, random weights (%d eigensolves; T_c %.4f, analytic %.4f, %s)"
         % (tc_res.n_eigensolves, tc_res.tc, tc_ref, tc_res.kind), tc_s, tc_s / eigh_s, "≤ 2 s"),
        ("`solve_tap`, %d starts, T = 0.9 T_c (%d iterations; %d solutions, %d not converged)"
         % (args.starts, cold.iterations, cold.n_solutions, cold.n_not_converged), cold_s, cold_s / eigh_s, "≤ 10 s"),
        ("`solve_tap`, %d starts, T = 1.2 T_c (%d iterations; %d solution)"
         % (args.starts, hot.iterations, hot.n_solutions), hot_s, hot_s / eigh_s, "≤ 10 s"),
        ("series of %d checkpoints, `hessian_tc` total (eigh of each: %.2f s)" % (len(series), series_eigh),
         series_s, series_s / series_eigh, "≤ 60 s (30)"),
        ("per checkpoint, median (max %.2f s)" % max(per), statistics.median(per),
         statistics.median(r["hessian_tc_s"] / r["eigh_s"] for r in series), "—"),
    ]
    print(f"Machine: {machine}; load average before the run: {load_before:.2f}\n")
    print("| what | seconds | × one eigh | target |\n|---|---|---|---|")
    for what, s, ratio, target in rows:
        print(f"| {what} | {s:.3f} | {ratio:.2f} | {target} |")
    kinds = {k: sum(r["kind"] == k for r in series) for k in ("touch", "cross")}
    print(f"\nSeries: T_c from {series[0]['tc']:.4f} ({series[0]['kind']}) to {series[-1]['tc']:.4f} "
          f"({series[-1]['kind']}); {kinds['touch']} touch, {kinds['cross']} cross.")

    if args.json:
        out = {
            "machine": machine, "load_average_before": load_before, "sizes": SIZES, "seed": args.seed,
            "eigh_s": eigh_s, "eigh_s_all": eigh_times,
            "hessian_tc": {"seconds": tc_s, "ratio_to_eigh": tc_s / eigh_s, **tc_res.to_json_dict(curve=False)},
            "analytic_tc": tc_ref,
            "solve_tap_cold": {"seconds": cold_s, "ratio_to_eigh": cold_s / eigh_s, **cold.to_json_dict()},
            "solve_tap_hot": {"seconds": hot_s, "ratio_to_eigh": hot_s / eigh_s, **hot.to_json_dict()},
            "series": {"seconds": series_s, "eigh_seconds": series_eigh, "checkpoints": series},
        }
        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
