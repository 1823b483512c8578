"""Replica-exchange Monte Carlo through training (issue "Replica symmetry breaking and
energy landscapes", item 3: "Through training" and "Binarized and ReLU networks alike,
and the lazy control").

For checkpoints of the runs that `examples/study_spin.py` trains (binarized, ReLU, and the
lazy control), sample the network's Ising Hamiltonian (fields off, 1,818 spins) by
parallel tempering (`qnnc.runtime.replicas`, the engine of `qnnc replicas`) and record,
per temperature, P(q), ⟨|q|⟩ and the overlap ⟨|σ·v₁|⟩/√N with the top eigenvector v₁ of J
(the hidden order once v₁ is an outlier). The melting temperature T_melt is where that
overlap falls fastest with ln T (finite differences on the ladder, refined by a parabola
through the steepest step and its neighbours); it is set beside the TAP T_c(t) that
`study_spin.py` computed for the same checkpoint.

    OMP_NUM_THREADS=1 .venv/bin/python examples/study_spin.py --out runs/train-spin --epochs 5 --per-decade 3 --starts 16
    OMP_NUM_THREADS=1 .venv/bin/python examples/study_replicas_training.py --runs runs/train-spin --out runs/study-replicas-training

Writes results.json, summary.md and two figures (PNG).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

CASES = {"binary": ("examples/spin_binary.qnn", [0, 22, 100, 395]),
         "relu": ("examples/spin_relu.qnn", [22, 46, 100, 395]),
         "binary-lazy": ("examples/spin_binary.qnn", [395])}
# Step 0 is the same J for all three (same seed, same initialisation): sampled once.


def melting_temperature(temps, overlap):
    """T at the steepest fall of the overlap against ln T (a parabola through the
    steepest finite-difference step and its neighbours, in ln T)."""
    import numpy as np

    lt = np.log(np.asarray(temps, float))
    m = np.asarray(overlap, float)
    mid = (lt[1:] + lt[:-1]) / 2
    slope = -np.diff(m) / np.diff(lt)
    k = int(np.argmax(slope))
    if 0 < k < len(slope) - 1:
        x, y = mid[k - 1:k + 2], slope[k - 1:k + 2]
        a, b, _ = np.polyfit(x, y, 2)
        if a < 0:
            xv = -b / (2 * a)
            if x[0] <= xv <= x[-1]:
                return float(math.exp(xv)), float(slope[k])
    return float(math.exp(mid[k])), float(slope[k])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/train-spin", help="the --out folder of study_spin.py")
    ap.add_argument("--out", required=True)
    ap.add_argument("--t-min", type=float, default=0.5)
    ap.add_argument("--t-max", type=float, default=3.5)
    ap.add_argument("--temperatures", type=int, default=16)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--sweeps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--p-q-temperature", type=float, default=0.9,
                    help="the temperature whose P(q) the figure shows (nearest on the ladder)")
    ap.add_argument("--replot", action="store_true", help="redraw the figures and summary from OUT/results.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.replot:
        rows = json.loads((out / "results.json").read_text())["rows"]
        (out / "summary.md").write_text(summary(rows, args))
        figures(rows, out, args.p_q_temperature)
        return 0

    from qnnc.compiler import load_program
    from qnnc.runtime.cli.replicas import _top_eigenvector
    from qnnc.runtime.replicas import LayeredCouplings, run_replicas, temperature_ladder
    from qnnc.runtime.spin import ising_model, load_weights

    out.mkdir(parents=True, exist_ok=True)
    temps = temperature_ladder(args.t_min, args.t_max, args.temperatures)
    rows = []
    for name, (file, steps) in CASES.items():
        program = load_program(file)
        net = program.network()
        tap = {r["step"]: r for r in json.loads((Path(args.runs) / f"{name}.json").read_text())["series"]}
        for step in steps:
            t0 = time.perf_counter()
            nw = load_weights(program, net, str(Path(args.runs) / name), step, args.seed)
            model = ising_model(nw)
            v1 = _top_eigenvector(model)
            res = run_replicas(LayeredCouplings.from_model(model), temps, replicas=args.replicas,
                               sweeps=args.sweeps, seed=args.seed, directions=v1[None, :])
            r = res.to_json_dict()
            overlap = [d[0] for d in r["direction_overlaps"]]
            t_melt, steepest = melting_temperature(r["temperatures"], overlap)
            row = {"network": name, "step": step, "epoch": tap[step]["epoch"], "tap_tc": tap[step]["tc"],
                   "tap_kind": tap[step]["kind"], "outliers": tap[step]["n_outliers"], "t_melt": t_melt,
                   "steepest_slope": steepest, "seconds": time.perf_counter() - t0, "replicas": r}
            rows.append(row)
            print(f"{name} step {step}: T_melt {t_melt:.3f} (TAP T_c {row['tap_tc']:.3f}, {row['tap_kind']}), "
                  f"{'equilibrated' if r['equilibrated'] else 'NOT equilibrated'}, {row['seconds']:.0f} s",
                  file=sys.stderr, flush=True)
            (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    (out / "summary.md").write_text(summary(rows, args))
    figures(rows, out, args.p_q_temperature)
    print(summary(rows, args))
    return 0


def summary(rows, args) -> str:
    lines = [f"Ladder: {args.temperatures} temperatures from {args.t_min} to {args.t_max} (geometric), "
             f"{args.replicas} replicas each, {args.sweeps} sweeps (burn-in half), seed {args.seed}.", "",
             "| network | step | epoch | TAP T_c | kind | outliers | MC T_melt | T_melt / T_c | overlap v₁ at T = 0.5 | "
             "⟨\\|q\\|⟩ at T = 0.5 | equilibrated |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rep = r["replicas"]
        lines.append(f"| {r['network']} | {r['step']} | {r['epoch']:.2f} | {r['tap_tc']:.3f} | {r['tap_kind']} | "
                     f"{r['outliers']} | {r['t_melt']:.3f} | {r['t_melt'] / r['tap_tc']:.3f} | "
                     f"{rep['direction_overlaps'][0][0]:.3f} | {rep['q_abs'][0]:.3f} | "
                     f"{'yes' if rep['equilibrated'] else 'no'} |")
    return "\n".join(lines) + "\n"


def figures(rows, out: Path, t_pq: float) -> None:
    import numpy as np

    from qnnc.runtime.plots import _bytes, _pyplot

    plt = _pyplot()
    names = list(CASES)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), sharey=True)
    for ax, name in zip(axes, names):
        sel = [r for r in rows if r["network"] == name]
        for i, r in enumerate(sel):
            rep = r["replicas"]
            ov = [d[0] for d in rep["direction_overlaps"]]
            ax.plot(rep["temperatures"], ov, marker="o", ms=3, color=f"C{i}", label=f"step {r['step']}")
            ax.axvline(r["tap_tc"], color=f"C{i}", ls=":", lw=1)
            ax.axvline(r["t_melt"], color=f"C{i}", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xticks([0.5, 0.7, 1, 1.5, 2, 3], ["0.5", "0.7", "1", "1.5", "2", "3"])
        ax.set_xticks([], minor=True)
        ax.set_xlabel("T")
        ax.set_title(name)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("⟨|σ·v₁|⟩/√N  (v₁: top eigenvector of J)")
    fig.suptitle("overlap with the hidden order; dotted: TAP T_c, dashed: MC T_melt", fontsize=9)
    (out / "hidden_order_training.png").write_bytes(_bytes(fig))

    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), sharey=True)
    for ax, name in zip(axes, names):
        sel = [r for r in rows if r["network"] == name]
        for i, r in enumerate(sel):
            rep = r["replicas"]
            k = int(np.argmin([abs(t - t_pq) for t in rep["temperatures"]]))
            edges = np.asarray(rep["q_bins"])
            centres = (edges[1:] + edges[:-1]) / 2
            ax.plot(centres, rep["p_q"][k], color=f"C{i}", label=f"step {r['step']}")
        ax.set_xlabel("q")
        ax.set_title(f"{name}, T = {rep['temperatures'][k]:.2f}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("P(q)")
    (out / "p_q_training.png").write_bytes(_bytes(fig))


if __name__ == "__main__":
    sys.exit(main())
