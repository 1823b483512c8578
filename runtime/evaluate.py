"""Test accuracy of a network's weights, with a majority vote over shots: what
`qnnc eval` prints, as a function (the Python API's `evaluate`)."""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from qnnc.compiler import ir


def evaluate(program: ir.Program, network: ir.Network, weights: Mapping[str, np.ndarray], *,
             shots: Optional[int] = None, data: str = "mnist.test", limit: Optional[int] = None,
             seed: int = 0, noise=None) -> dict:
    """Accuracy (with a Wilson 95% interval), single-pass accuracy, per-class accuracy
    and the confusion matrix (rows: true class, columns: predicted) of `weights` (names
    as in a checkpoint: `h1`, `h1.bias`) on `data`, voting over `shots` passes (default:
    the network's readout). `noise`: a `qnnc.runtime.noise.NoiseModel` bound to the
    network, for the accuracy under that device's noise."""
    import torch

    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.train import build_model, predict, wilson_interval

    shots = network.readout.shots if shots is None else int(shots)
    model = build_model(program, network, seed, noise=noise)
    model.load_tensors({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    ds = load_dataset(data)
    x = torch.from_numpy(preprocess(ds.images, network.input))
    y = torch.from_numpy(ds.labels.astype(np.int64))
    if limit:
        x, y = x[:limit], y[:limit]
    pred, per_shot = predict(model, x, shots, seed)
    correct = (pred == y)
    k, n = int(correct.sum()), len(y)
    lo, hi = wilson_interval(k, n)
    n_out = int(network.layers[-1].size)
    per_class = {}
    for cls in range(n_out):
        mask = y == cls
        m = int(mask.sum())
        if m:
            kc = int(correct[mask].sum())
            per_class[str(cls)] = {"accuracy": kc / m, "n": m, "ci95": list(wilson_interval(kc, m))}
    confusion = np.zeros((n_out, n_out), dtype=np.int64)
    np.add.at(confusion, (y.numpy(), pred.numpy()), 1)
    single = float((per_shot == y.unsqueeze(0)).float().mean())
    return {"file": program.source, "network": network.name, "data": data, "images": n,
            "shots": shots, "seed": seed, "accuracy": k / n, "ci95": [lo, hi],
            "single_shot_accuracy": single, "per_class": per_class,
            "confusion": confusion.tolist(),
            "params": {p.name: p.value for p in program.params},
            **({"noise": noise.name} if noise is not None else {})}
