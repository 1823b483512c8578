"""Lowering IR (+ weights) -> Ising model, and the analyses `qnnc hamiltonian` and
`qnnc tap` report.

Every neuron, inputs included, is a spin; only the weights enter the Hamiltonian
(activations do not). Weights come from a checkpoint of a `qnnc train` run, or, with
no checkpoint, from the network's initialisation drawn from the seed: the same weights
as step 0 of `qnnc train` with that seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error

NON_FINITE = "Q0533"


@dataclass(frozen=True)
class NetworkWeights:
    network: ir.Network
    layer_names: list[str]  # spin layers: input first
    sizes: list[int]
    weights: list[np.ndarray]  # W_k [N_k, N_{k-1}]
    biases: list[Optional[np.ndarray]]
    gains: list[float]  # C_k of the initialisation (variance x fan-in), per weight layer
    source: str  # "checkpoint PATH" or "declared initialisation, seed S"
    step: Optional[int]
    digest: str  # qnnc.runtime.weights.weights_digest of every tensor


def init_gain(layer: ir.Layer, fan_in: int) -> float:
    init = layer.dense.init
    if isinstance(init, ir.NormalInit):
        return init.gain
    if isinstance(init, ir.UniformInit):
        # Variance of U(low, high) is (high - low)^2 / 12 (mean ignored: a shift is a field).
        return (init.high - init.low) ** 2 / 12.0 * fan_in
    if isinstance(init, ir.ZerosInit):
        return 0.0
    return float("nan")  # from a checkpoint: no analytic random-network reference


def load_weights(program: ir.Program, network: ir.Network, run_dir: Optional[str], step, seed: int) -> NetworkWeights:
    """Weights of `network`: checkpoint `step` of `run_dir`, or the declared initialisation
    for `seed` (the one weight source, `qnnc.runtime.weights`; no torch)."""
    from qnnc.runtime import weights as source

    path = None
    if step is not None:
        from qnnc.runtime import checkpoint as ckpt

        path = ckpt.resolve_checkpoint(run_dir or Path("runs") / network.name, step)
    tensors, source_text, at = source.load_weights(program, network, path, seed)
    return _network_weights(network, tensors, source_text, at)


def network_weights(network: ir.Network, w) -> NetworkWeights:
    """The spin analysis' view of the weights a command's flags named
    (`qnnc.runtime.cli.weight_args.Weights`)."""
    return _network_weights(network, w.tensors, w.source, w.step)


def _network_weights(network: ir.Network, tensors: dict, source_text: str, at) -> NetworkWeights:
    from qnnc.runtime import weights as source

    weights, biases, names, sizes, gains = [], [], [network.input.name], [network.input.features], []
    fan_in = network.input.features
    for layer in network.layers:
        w = np.asarray(tensors[layer.name], dtype=np.float64)
        if not np.all(np.isfinite(w)):
            raise error(NON_FINITE, f"{source_text}: layer `{layer.name}` has non-finite weights",
                        help="the run diverged at or before this step; analyse an earlier checkpoint")
        weights.append(w)
        b = tensors.get(f"{layer.name}.bias")
        biases.append(np.asarray(b, dtype=np.float64) if b is not None else None)
        names.append(layer.name)
        sizes.append(layer.size)
        gains.append(init_gain(layer, fan_in))
        fan_in = layer.size
    return NetworkWeights(network, names, sizes, weights, biases, gains, source_text, at,
                          source.weights_digest(tensors))


def ising_model(nw: NetworkWeights, fields: bool = False):
    from qnnc.runtime.ising import IsingModel

    if fields and all(b is None for b in nw.biases):
        raise error("Q0605", "--fields needs biases, and this network has none",
                    help="declare `bias = on` in the dense layers, or drop --fields")
    return IsingModel.from_weights(nw.weights, nw.layer_names, nw.biases if fields else None,
                                   fields=fields, source=nw.source)


def analyse(nw: NetworkWeights, fields: bool = False, temperature: Optional[float] = None) -> dict:
    """What `qnnc hamiltonian` reports: sizes, norms, spectrum against the random bulk,
    the TAP T_c of this instance and the analytic T_c of the random network."""
    from qnnc.runtime import tap

    model = ising_model(nw, fields)
    spectrum = tap.spectral_outliers(model)
    tc = tap.hessian_tc(model)
    gains = nw.gains
    analytic = tap.analytic_tc(nw.sizes, gains) if all(math.isfinite(g) for g in gains) else None
    out = {
        "format": "qnnc-hamiltonian", "version": 1,
        "network": nw.network.name, "source": nw.source, "step": nw.step, "weights_sha256": nw.digest,
        "model": model.to_json_dict(),
        "spectrum": spectrum.to_json_dict(),
        "tc": tc.to_json_dict(curve=False),
        "analytic_tc": analytic, "init_gains": [g if math.isfinite(g) else None for g in gains],
        "phase": None,
    }
    if temperature is not None:
        out["phase"] = {"T": temperature, "phase": tc.phase_at(temperature)}
    return out
