"""Shared by the noise tests: a torch model of a hand-built network under a noise model,
its exact outcome distribution as codes, and Aer samples of the compiled circuits."""

from __future__ import annotations

import numpy as np

from ir_builders_targets import NEURONS
from qnnc.compiler import ir


def torch_model(net, w, noise=None, dtype=None):
    import torch

    from qnnc.runtime.simulator import QNNModel

    prog = ir.Program("<test>", (), (), tuple(NEURONS.values()), (net,), ())
    m = QNNModel(prog, net.name, seed=0, dtype=dtype or torch.float64, noise=noise)
    m.load_tensors({k: torch.as_tensor(np.asarray(v), dtype=m.dtype) for k, v in w.items()}, strict=False)
    return m


def exact_codes(model, x) -> dict[int, float]:
    """The exact outcome distribution keyed like `network.outcomes_to_codes` (bit k set
    when hidden column k is -1)."""
    import torch

    with torch.no_grad():
        table, probs = model.exact_outcome_distribution(torch.as_tensor(np.asarray(x, dtype=float)))
    bits = (table < 0).long().numpy()
    codes = (bits << np.arange(bits.shape[1])).sum(1)
    out: dict[int, float] = {}
    for c, p in zip(codes.tolist(), probs.double().numpy().tolist()):
        if p > 0:
            out[c] = out.get(c, 0.0) + p
    return out


def means_of(exact: dict[int, float], width: int) -> np.ndarray:
    m = np.zeros(width)
    for c, p in exact.items():
        for k in range(width):
            m[k] += p * (-1.0 if c >> k & 1 else 1.0)
    return m
