"""The spin-model study (arXiv 2408.06421): T_c through training, for the binarized
and the ReLU network, and a lazy-training control.

Trains each network with its recipe but with denser log-spaced checkpoints than the
1-2-5 schedule (`--per-decade` per factor of ten, default 8), so a power law of T_c in
training time has enough points; then runs the TAP analysis of every checkpoint
(`qnnc.runtime.tap.analyse_run`) and writes JSON, plots and a markdown summary.

    .venv/bin/python examples/study_spin.py --out runs/study-spin

The lazy control is the binarized network with the learning rate divided by --lazy-factor.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def geometric_steps(total: int, per_decade: int) -> tuple[int, ...]:
    import numpy as np

    k = np.arange(0, int(np.ceil(per_decade * np.log10(max(total, 1)))) + 1)
    steps = {0, total} | {int(round(10 ** (x / per_decade))) for x in k}
    return tuple(sorted(s for s in steps if s <= total))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--per-decade", type=int, default=8)
    ap.add_argument("--lazy-factor", type=float, default=100.0)
    ap.add_argument("--temperature", type=float, default=1.05,
                    help="count TAP solutions at this T (just below the random network's T_c)")
    ap.add_argument("--starts", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import math

    from qnnc.compiler import load_program
    from qnnc.compiler.passes import OverrideTraining, PassManager
    from qnnc.runtime.cli.tap import plot, table
    from qnnc.runtime.tap import analyse_run
    from qnnc.runtime.train import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = [("binary", "examples/spin_binary.qnn", 1.0), ("relu", "examples/spin_relu.qnn", 1.0),
             ("binary-lazy", "examples/spin_binary.qnn", 1.0 / args.lazy_factor)]
    results = {}
    for name, file, lr_scale in cases:
        program = load_program(file)
        net = program.network()
        recipe = program.train(net.name)
        overrides = {"epochs": args.epochs, "seed": args.seed, "lr": recipe.optimizer.lr * lr_scale}
        program = PassManager([OverrideTraining(overrides)]).run(program)
        recipe = program.train(net.name)
        total = math.ceil(5000 / recipe.batch) * recipe.epochs
        schedule = dataclasses.replace(recipe.checkpoints, steps=geometric_steps(total, args.per_decade),
                                       log_steps=False, every=None, at_end=True)
        recipe = dataclasses.replace(recipe, checkpoints=schedule)
        run_dir = out / name
        if not (run_dir / "run.json").exists():
            train(program, net, recipe, run_dir, flags={"study": "spin", **overrides}, progress=False)
        r = analyse_run(program, net, run_dir, args.temperature, args.starts, None, progress=False)
        r["lr"] = recipe.optimizer.lr
        results[name] = r
        plot(r, str(out / name))
        (out / f"{name}.json").write_text(json.dumps(r, indent=2))
        (out / f"{name}.md").write_text(table(r))
        print(table(r), file=sys.stderr)
    _overview(results, out)
    return 0


def _overview(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, r) in enumerate(results.items()):
        s = [x for x in r["series"] if x["step"] > 0]
        axes[0].loglog([x["step"] for x in s], [x["tc"] for x in s], "o-", ms=3, color=f"C{i}", label=name)
        axes[1].semilogx([x["step"] for x in s], [x["top_eigenvalues"][0] - x["bulk_edge"] for x in s],
                         "o-", ms=3, color=f"C{i}", label=name)
    first = next(iter(results.values()))
    if first["analytic_tc_random"]:
        axes[0].axhline(first["analytic_tc_random"], color="gray", ls=":", label="random network (analytic)")
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("T_c (TAP Hessian)")
    axes[0].legend(fontsize=8)
    axes[1].axhline(0, color="gray", ls=":")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("λ_max(J) − random-bulk edge")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"overview.{ext}", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
