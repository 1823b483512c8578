"""Noise-aware training against noiseless training over several seeds
(docs/hardware-in-the-loop.md, "Noise-aware training").

    OMP_NUM_THREADS=1 .venv/bin/python examples/study_noise_seeds.py --seeds 0 1 2 3 4 --out runs

For each seed S, `examples/study_noise_sim.py --values 0.5 --seed S --sections
--out OUT/noise-aware-seedS` (skipped where its results.json exists): hardware.qnn at
a = 0.5 trained 3 epochs without noise and with FakeBrisbane's noise (training seed S),
each evaluated on mnist.test[0:1000] with and without the noise (10 shots, evaluation
seed S). Prints and writes OUT/noise-aware-seeds.json: per seed the vote and single-pass
accuracies, their means over seeds with standard errors, and the paired difference
(noise-trained − noiseless) under noise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs")
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = []
    for s in args.seeds:
        d = out / f"noise-aware-seed{s}"
        if not (d / "results.json").exists():
            subprocess.run([sys.executable, str(ROOT / "examples" / "study_noise_sim.py"), "--values", "0.5",
                            "--seed", str(s), "--sections", "--out", str(d)], check=True)
        r = json.loads((d / "results.json").read_text())
        for row in r["accuracy"]:
            rows.append({"seed": s, "trained": row["trained"],
                         "ideal vote": row["ideal"], "ideal single pass": row["ideal_single_pass"],
                         "noisy vote": row["noisy"], "noisy single pass": row["noisy_single_pass"]})
    summary: dict = {"rows": rows, "seeds": args.seeds}
    cols = ("ideal vote", "ideal single pass", "noisy vote", "noisy single pass")

    def stat(v):
        v = np.asarray(v, dtype=float)
        return {"mean": float(v.mean()), "se": float(v.std(ddof=1) / len(v) ** 0.5) if len(v) > 1 else None,
                "values": v.tolist()}

    for trained in ("ideal", "noisy"):
        for c in cols:
            summary[f"trained {trained} | {c}"] = stat([r[c] for r in rows if r["trained"] == trained])
    for c in cols:
        d = [next(r[c] for r in rows if r["seed"] == s and r["trained"] == "noisy")
             - next(r[c] for r in rows if r["seed"] == s and r["trained"] == "ideal") for s in args.seeds]
        summary[f"noise-trained - noiseless | {c}"] = stat(d)
    (out / "noise-aware-seeds.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        if isinstance(v, dict):
            se = f" ± {v['se']:.4f}" if v["se"] is not None else ""
            print(f"{k:<55} {v['mean']:.4f}{se}   {['%.3f' % x for x in v['values']]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
