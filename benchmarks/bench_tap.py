"""Wall time of the spin analysis on a 784-512-512-10 network (1,818 spins).

Measures, on this machine and in one run (each single-weight-set row `--repeat` times,
each time right after a dense eigendecomposition, numpy.linalg.eigh, of the same
1,818 × 1,818 bond matrix: the yardstick; the ratio column is the median of the
per-run ratios, which keeps them comparable when other work loads the machine):
  * `hessian_tc` on one random weight set (std 1/sqrt(fan_in));
  * `solve_tap` with 256 starts at T = 0.9 T_c (glass) and at T = 1.2 T_c (paramagnet)
    on those weights, and at 0.8 T_c on the last checkpoint of the series (hidden order);
  * a series of checkpoints: slightly different weight sets (the random weights plus a
    rank-one chain growing linearly from 0 to `--signal`, plus 1 % fresh noise each),
    so the series goes from a glass ("touch") to hidden order ("cross") as training
    would; each checkpoint's `hessian_tc` beside an eigh of the same matrix.

Targets: T_c ≤ 2 s, solver ≤ 10 s, series of 30 ≤ 60 s.

    .venv/bin/python benchmarks/bench_tap.py --json out/bench_tap.json
    .venv/bin/python benchmarks/bench_tap.py --quick
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_tap.py --json out/bench_tap_1thread.json

On a machine shared with other work, multi-threaded BLAS (dsyevd above all) slows down
erratically when a core is taken; one BLAS thread gives reproducible single-core figures.
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
    ap.add_argument("--quick", action="store_true", help="5 checkpoints, 1 repetition: a smoke run")
    ap.add_argument("--checkpoints", type=int, default=30)
    ap.add_argument("--starts", type=int, default=256)
    ap.add_argument("--signal", type=float, default=1.5, help="rank-one strength at the last checkpoint")
    ap.add_argument("--repeat", type=int, default=3,
                    help="repetitions of the single-weight-set rows (each beside its own eigh)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="PATH", help="write the measurements as JSON")
    args = ap.parse_args()
    if args.quick:
        args.checkpoints, args.repeat = 5, 1

    from qnnc.compiler.fileio import atomic_write_text
    from qnnc.runtime.ising import from_weights
    from qnnc.runtime.tap import analytic_tc, hessian_tc, solve_tap

    rng = np.random.default_rng(args.seed)
    base = random_weights(rng)
    model = from_weights(base, NAMES)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    # Each repetition times an eigh of the same matrix right before the measured call,
    # so a ratio compares the two under the same machine load.
    def measure(name, fn, J_dense):
        runs = []
        for _ in range(args.repeat):
            _, e = timed(np.linalg.eigh, J_dense)
            result, s = timed(fn)
            runs.append((s, e, result))
        secs = [r[0] for r in runs]
        return {"name": name, "median_s": statistics.median(secs), "min_s": min(secs),
                "ratio": statistics.median(r[0] / r[1] for r in runs),
                "eigh_s": [r[1] for r in runs], "seconds": secs}, runs[-1][2]

    J = model.dense()
    tc_row, tc_res = measure("hessian_tc", lambda: hessian_tc(model), J)
    tc_ref = analytic_tc(SIZES, 1.0)
    cold_row, cold = measure("solve_tap_cold", lambda: solve_tap(model, 0.9 * tc_res.tc, starts=args.starts,
                                                                 seed=args.seed), J)
    hot_row, hot = measure("solve_tap_hot", lambda: solve_tap(model, 1.2 * tc_res.tc, starts=args.starts,
                                                              seed=args.seed), J)

    chain = [rng.normal(size=n) for n in SIZES]
    chain = [a / np.linalg.norm(a) for a in chain]
    series = []
    for i in range(args.checkpoints):
        strength = args.signal * i / max(args.checkpoints - 1, 1)
        m = from_weights(checkpoint_weights(base, chain, strength, rng), NAMES)
        _, e = timed(np.linalg.eigh, m.dense())
        res, s = timed(hessian_tc, m)
        series.append({"checkpoint": i, "strength": strength, "tc": res.tc, "kind": res.kind,
                       "hessian_tc_s": s, "eigh_s": e, "eigensolves": res.n_eigensolves})
    ord_row, ordered = measure("solve_tap_ordered", lambda: solve_tap(m, 0.8 * res.tc, starts=args.starts,
                                                                      seed=args.seed), m.dense())
    series_s = sum(r["hessian_tc_s"] for r in series)
    series_eigh = sum(r["eigh_s"] for r in series)
    per = [r["hessian_tc_s"] for r in series]
    eigh_all = tc_row["eigh_s"] + cold_row["eigh_s"] + hot_row["eigh_s"] + ord_row["eigh_s"]

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
    rows = [
        (f"dense eigh of J (numpy.linalg.eigh, 1818×1818), {len(eigh_all)} runs",
         statistics.median(eigh_all), min(eigh_all), 1.0, "—"),
        (f"`hessian_tc`, random weights ({tc_res.n_eigensolves} eigensolves; T_c {tc_res.tc:.4f}, "
         f"analytic {tc_ref:.4f}, {tc_res.kind})", tc_row["median_s"], tc_row["min_s"], tc_row["ratio"], "≤ 2 s"),
        (f"`solve_tap`, {args.starts} starts, T = 0.9 T_c, random weights ({cold.iterations} iterations; "
         f"{cold.n_solutions} accepted, {cold.n_rejected_plefka} Plefka-rejected, {cold.n_not_converged} not converged)",
         cold_row["median_s"], cold_row["min_s"], cold_row["ratio"], "≤ 10 s"),
        (f"`solve_tap`, {args.starts} starts, T = 1.2 T_c, random weights ({hot.iterations} iterations; "
         f"{hot.n_solutions} solution, m = 0)", hot_row["median_s"], hot_row["min_s"], hot_row["ratio"], "≤ 10 s"),
        (f"`solve_tap`, {args.starts} starts, last checkpoint ({res.kind}) at T = 0.8 T_c ({ordered.iterations} "
         f"iterations; {ordered.n_solutions} solution, overlap with top eigenvector "
         f"{ordered.top_overlap[0] if ordered.n_solutions else float('nan'):.3f})",
         ord_row["median_s"], ord_row["min_s"], ord_row["ratio"], "≤ 10 s"),
        (f"series of {len(series)} checkpoints, `hessian_tc` total (eigh of each: {series_eigh:.2f} s in all)",
         series_s, float("nan"), series_s / series_eigh, "≤ 60 s (30)"),
        ("series, per checkpoint", statistics.median(per), min(per),
         statistics.median(r["hessian_tc_s"] / r["eigh_s"] for r in series), "—"),
    ]
    print(f"Machine: {machine}; load average before the run: {load_before:.2f}\n")
    print("| what | median s | min s | × one eigh | target |\n|---|---|---|---|---|")
    for what, med, low, ratio, target in rows:
        low_s = "—" if low != low else f"{low:.3f}"
        print(f"| {what} | {med:.3f} | {low_s} | {ratio:.2f} | {target} |")
    kinds = {k: sum(r["kind"] == k for r in series) for k in ("touch", "cross")}
    print(f"\nSeries: T_c from {series[0]['tc']:.4f} ({series[0]['kind']}) to {series[-1]['tc']:.4f} "
          f"({series[-1]['kind']}); {kinds['touch']} touch, {kinds['cross']} cross. "
          f"Ratios: median over runs of (time / eigh timed just before it).")

    if args.json:
        out = {
            "machine": machine, "load_average_before": load_before, "sizes": SIZES, "seed": args.seed,
            "repeat": args.repeat, "eigh_s_all": eigh_all,
            "hessian_tc": {**tc_row, "result": tc_res.to_json_dict(curve=False)},
            "analytic_tc": tc_ref,
            "solve_tap_cold": {**cold_row, "result": cold.to_json_dict()},
            "solve_tap_hot": {**hot_row, "result": hot.to_json_dict()},
            "solve_tap_ordered": {**ord_row, "result": ordered.to_json_dict()},
            "series": {"seconds": series_s, "eigh_seconds": series_eigh, "checkpoints": series},
        }
        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
