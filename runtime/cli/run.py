"""`qnnc run FILE --target T --shots S --simulator ideal|noisy|...`: compile, then sample
the circuits on a local simulator (Qiskit Aer, Braket LocalSimulator, pytket's Aer
backend). Results: outcome counts per hidden layer, and predictions when the output
layer's weights are known; as JSON with --json, and a histogram with --plot."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    from qnnc.runtime.targets.cli import add_compile_arguments

    add_compile_arguments(p)
    p.add_argument("--shots", type=int, default=96, metavar="S", help="forward passes (default: 96)")
    p.add_argument("--simulator", default="ideal",
                   help="ideal | noisy (all targets); braket_sv | braket_dm (ionq)")
    p.add_argument("--plot", metavar="PNG", help="write a histogram of the predictions (or outcomes)")


def run(args) -> int:
    import time

    from qnnc.runtime.targets.cli import compile_from_args, write_output
    from qnnc.runtime.targets.compile import run_compiled
    from qnnc.runtime.targets.errors import refuse

    if args.shots < 1:
        raise refuse("Q0308", f"--shots must be at least 1, not {args.shots}")
    from qnnc.runtime.targets.compile import vendor

    compiled = compile_from_args(args, vendor(args.target).local_qubit_limit(args.simulator))
    if args.output:
        write_output(compiled, args.output)
    t0 = time.perf_counter()
    out = run_compiled(compiled, args.shots, args.simulator, args.seed)
    dt = time.perf_counter() - t0
    result = {"summary": compiled.summary, "simulator": args.simulator, "shots": args.shots,
              "seconds": dt, **outcome_report(compiled.spec, out)}
    if args.plot:
        _plot(result, args.plot)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    s = compiled.summary
    print(f"{s['network']} on {s['target']} ({s['backend']}), strategy `{s['strategy']}`, "
          f"{args.shots} shots on `{args.simulator}` in {dt:.2f} s; input {s['input']}")
    for note in s.get("notes", []):  # e.g. quantised weights: the network that ran
        print(f"  note: {note}")
    print(render_outcomes(result), end="")
    return 0


def outcome_report(spec, out) -> dict:
    """Per hidden layer: mean outcome and the most frequent patterns; the predictions
    when the output layer's weights are known. (`qnnc run` and `qnnc submit`.)"""
    import numpy as np

    result: dict = {"layers": {}}
    for li, (off, h) in enumerate(zip(spec.offsets(), spec.hidden)):
        block = out[:, off:off + h.size]
        keys, counts = np.unique(block, axis=0, return_counts=True)
        top = sorted(zip(counts.tolist(), ["".join("+" if v > 0 else "-" for v in k) for k in keys]),
                     reverse=True)[:16]
        result["layers"][h.name] = {"mean": block.mean(0).round(4).tolist(),
                                    "top_patterns": [{"pattern": p, "count": c} for c, p in top]}
    if spec.output is not None:
        name, w, b = spec.output
        logits = out[:, -spec.hidden[-1].size:].astype(float) @ w.T + b
        pred = logits.argmax(1)
        hist = np.bincount(pred, minlength=w.shape[0])
        result["predictions"] = {"histogram": hist.tolist(), "majority": int(hist.argmax())}
    return result


# A wider layer's means are summarised in text (all of them are in `--json`).
SHOWN_MEANS = 24


def _means(means: list) -> str:
    if len(means) <= SHOWN_MEANS:
        return " ".join(f"{m:+.2f}" for m in means)
    head = " ".join(f"{m:+.2f}" for m in means[:SHOWN_MEANS])
    return f"{head} … ({len(means)} neurons; all in --json)"


def render_outcomes(result: dict) -> str:
    lines = [f"  {name}: mean outcome " + _means(r["mean"]) for name, r in result["layers"].items()]
    if "predictions" in result:
        p = result["predictions"]
        lines.append(f"  predictions: {p['histogram']} -> majority {p['majority']}")
    return "\n".join(lines) + "\n"


def _plot(result: dict, path: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qnnc.compiler.fileio import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 3))
    if "predictions" in result:
        h = result["predictions"]["histogram"]
        ax.bar(range(len(h)), h)
        ax.set_xlabel("predicted class")
    else:
        name, r = list(result["layers"].items())[-1]
        ax.bar(range(len(r["mean"])), r["mean"])
        ax.set_xlabel(f"neuron of {name}")
    ax.set_ylabel("count")
    s = result["summary"]
    ax.set_title(f"{s['network']} · {s['target']} · {result['simulator']} · {result['shots']} shots")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
