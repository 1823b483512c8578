"""Merge the results of several study_sweep.py directories into one table and plot.

    .venv/bin/python examples/merge_sweeps.py runs/study-g runs/study-g-fine runs/study-g-high \
        --param g --out runs/study-g-all
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--param", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import numpy as np

    rows = []
    for d in args.dirs:
        rows += json.loads((Path(d) / "results.json").read_text())
    values = sorted({r["value"] for r in rows})
    summary = []
    for v in values:
        acc = np.array([r["accuracy"] for r in rows if r["value"] == v])
        single = np.array([r["single_shot_accuracy"] for r in rows if r["value"] == v])
        sem = acc.std(ddof=1) / math.sqrt(len(acc)) if len(acc) > 1 else float("nan")
        summary.append({"value": v, "error_mean": 1 - acc.mean(), "error_sem": sem,
                        "single_shot_error_mean": 1 - single.mean(), "seeds": len(acc)})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    lines = [f"| {args.param} | test error (vote) | ± s.e.m. over seeds | single-pass error | seeds |",
             "|---|---|---|---|---|"]
    for s in summary:
        sem = "—" if math.isnan(s["error_sem"]) else f"{s['error_sem']:.4f}"
        lines.append(f"| {s['value']:.4g} | {s['error_mean']:.4f} | {sem} | {s['single_shot_error_mean']:.4f} | {s['seeds']} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [s["value"] for s in summary]
    ax.errorbar(xs, [s["error_mean"] for s in summary],
                yerr=[0 if math.isnan(s["error_sem"]) else s["error_sem"] for s in summary],
                marker="o", capsize=3, label="majority vote")
    ax.plot(xs, [s["single_shot_error_mean"] for s in summary], "s--", label="single pass")
    ax.set_xlabel(args.param)
    ax.set_ylabel("test error (10,000 images)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"error_vs_{args.param}.{ext}", dpi=150)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
