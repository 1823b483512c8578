"""qnnc's runtime: the simulator, training, the spin analysis and the circuit targets.

The Python API mirrors the commands (docs/api.md). Names are imported on first use, so
`import qnnc.runtime` loads neither torch nor a vendor SDK:

    load_program          qnnc check / ir       (from qnnc.compiler)
    train                 qnnc train            (qnnc.runtime.train.train)
    evaluate              qnnc eval             (qnnc.runtime.evaluate.evaluate)

(`train` and `evaluate` are imported from their modules, whose names they share.)
    load_weights          --run / --checkpoint  (runtime.weights: one weight source)
    load_checkpoint, resolve_checkpoint, list_checkpoints          (runtime.checkpoint)
    QNNModel              the network as a torch.nn.Module          (runtime.simulator)
    network_weights, analyse, ising_model       qnnc hamiltonian    (runtime.spin)
    analyse_run           qnnc tap              (runtime.tap)
    compile_network, run_compiled, predictions  qnnc compile / run  (runtime.targets.compile)
    write_bundle          qnnc compile --bundle (runtime.targets.bundle)
    submit                qnnc submit           (runtime.targets.submit)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_program": "qnnc.compiler",
    "build_model": "qnnc.runtime.train",
    "initial_weights": "qnnc.runtime.weights",
    "declared_weights": "qnnc.runtime.weights",
    "load_weights": "qnnc.runtime.weights",
    "weights_digest": "qnnc.runtime.weights",
    "load_checkpoint": "qnnc.runtime.checkpoint",
    "resolve_checkpoint": "qnnc.runtime.checkpoint",
    "list_checkpoints": "qnnc.runtime.checkpoint",
    "QNNModel": "qnnc.runtime.simulator",
    "analyse": "qnnc.runtime.spin",
    "ising_model": "qnnc.runtime.spin",
    "analyse_run": "qnnc.runtime.tap",
    "compile_network": "qnnc.runtime.targets.compile",
    "run_compiled": "qnnc.runtime.targets.compile",
    "predictions": "qnnc.runtime.targets.compile",
    "write_bundle": "qnnc.runtime.targets.bundle",
    "submit": "qnnc.runtime.targets.submit",
}

__all__ = sorted(_EXPORTS) + ["spin_weights"]


def spin_weights(program, network, weights: dict, source: str = "weights", step=None):
    """The spin analysis' view of a weights dict (`analyse` and `ising_model` take it)."""
    from qnnc.runtime.spin import _network_weights

    return _network_weights(network, weights, source, step)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qnnc.runtime' has no attribute {name!r}")


def __dir__():
    return __all__
