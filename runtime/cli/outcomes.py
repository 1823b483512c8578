"""What sampled circuits say, for `qnnc run` and `qnnc submit`: per hidden layer the mean
outcome and the most frequent patterns, and the predictions when the output layer's
weights are known; as a JSON-ready dict and as text."""

from __future__ import annotations


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
    from qnnc.runtime.targets.compile import predictions

    p = predictions(spec, out)
    if p is not None:
        result["predictions"] = {"histogram": p["histogram"], "majority": p["majority"]}
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
