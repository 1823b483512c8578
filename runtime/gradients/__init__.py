"""Gradients a quantum computer can measure, and fine-tuning with them.

    from qnnc.runtime.gradients import estimate, make_executor
    ex = make_executor("sim", program, network, tensors, seed=0)   # or "aer"
    est = estimate(ex, program, network, tensors, x, y, shots=100, estimator="shift")
    est.grads["h1"], est.stderr["h1"], est.circuits

`estimators.py` derives and computes the parameter-shift and score-function
estimators from recorded outcomes; `executors.py` supplies the outcomes (torch simulator
in shot mode, or a target's circuits on its local simulator); `finetune.py` is SGD with
measured gradients through one executor. docs/hardware-in-the-loop.md has the study.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import torch

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error
from qnnc.runtime.gradients.estimators import (Estimate, Shift, check_labels, exact_gradient, net_view,
                                               parameter_shift, score_function, shifts)
from qnnc.runtime.gradients.executors import EXECUTORS, CircuitExecutor, SimulatorExecutor, make_executor

ESTIMATORS = ("shift", "score")

__all__ = ["ESTIMATORS", "EXECUTORS", "Estimate", "Shift", "CircuitExecutor", "SimulatorExecutor",
           "estimate", "exact_gradient", "make_executor", "net_view", "view_model"]

_VIEW_MODELS: dict = {}


def view_model(program: ir.Program, network: ir.Network, noise=None):
    """A float64 `QNNModel` of the network (under `noise`, a bound noise model), for its
    kernels and exact expectations (cached per program, network and noise model)."""
    from qnnc.runtime.simulator import QNNModel

    key = (id(program), network.name, id(noise))
    if key not in _VIEW_MODELS:
        _VIEW_MODELS[key] = (QNNModel(program, network, dtype=torch.float64, noise=noise), program, noise)
    return _VIEW_MODELS[key][0]


def check_layers(view, layers, exit_code: int = 1) -> list[str]:
    """`layers` (names of layers to estimate the gradient of) checked against the
    network's hidden and output layers (Q0722 for another name or none)."""
    known = list(view.names) + [view.out_name]
    bad = [n for n in layers if n not in known]
    if bad or not layers:
        raise error("Q0722", f"no layer `{bad[0] if bad else ''}` to estimate the gradient of",
                    help="layers: " + ", ".join(f"`{n}`" for n in known), exit_code=exit_code)
    return list(layers)


def estimate(executor, program: ir.Program, network: ir.Network, tensors: dict, x, y, *, shots: int,
             estimator: str = "shift", layers: Optional[Sequence[str]] = None) -> Estimate:
    """One estimate of ∂/∂W of the batch mean of the expected cross-entropy at `tensors`,
    from outcomes the executor samples (`shots` per image and variant). `layers`: the
    layers (hidden or output, by name) whose gradient to estimate, default all; the
    parameter shift then runs only those hidden layers' variants."""
    if estimator not in ESTIMATORS:
        raise error("Q0722", f"unknown estimator `{estimator}`", help="estimators: shift, score")
    if int(shots) < 2:
        raise error("Q0722", f"shots must be at least 2 (for a standard error), not {shots}")
    # The score function's likelihoods: the executor's own model (its noise), else ideal.
    view = net_view(view_model(program, network, getattr(executor, "noise", None)), tensors)
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    y = check_labels(y, x.shape[0], view.w_out.shape[0])
    if layers is not None:
        layers = check_layers(view, layers)
    executor.set_weights(tensors)
    variants: list[Optional[Shift]] = [None] + (shifts(view, layers) if estimator == "shift" else [])
    c0 = executor.circuits
    t0 = time.perf_counter()
    outs = executor.sample(x.numpy(), int(shots), variants)
    if estimator == "shift":
        g, s, loss = parameter_shift(view, x, y, outs[0], dict(zip(variants[1:], outs[1:])))
    else:
        g, s, loss = score_function(view, x, y, outs[0])
    wall = time.perf_counter() - t0
    if layers is not None:
        keep = {n for n in g if n.split(".")[0] in layers}
        g = {n: v for n, v in g.items() if n in keep}
        s = {n: v for n, v in s.items() if n in keep}
    return Estimate(g, s, estimator, int(shots), x.shape[0], len(variants), executor.circuits - c0,
                    len(variants) * x.shape[0] * int(shots), wall, loss)
