"""The one weight source: a network's weights before training, and trained ones from a run.

Every command that needs weights gets them here, so `train --seed S` at step 0,
`hamiltonian --seed S` and `compile --seed S` hold the same network:

* `initial_weights(network, seed)` draws each layer from its declared initialiser with
  numpy, from a stream keyed by (seed, layer index): a layer's draw does not depend on
  the layers before it, nor on the array library that consumes it. Layers declared
  `init = checkpoint(...)` are zeros here; `declared_weights` fills them from their runs.
* `declared_weights(program, network, seed)` is what a command means by "untrained":
  the initialisers, with checkpoint initialisers loaded (paths relative to the program).
* `load_weights(program, network, checkpoint, seed)` is the trained weights of a
  checkpoint file, or the declared weights when there is none, with a line that says
  which.

Arrays are float64 holding float32 values (the precision of training and its
checkpoints), under the checkpoint names (`h1`, `h1.bias`). Nothing here imports
torch: the spin analysis of an untrained network never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from qnnc.compiler import ir

# Mixed into every layer's seed, so these streams differ from any other use of the seed
# (the simulator's sampling stream, the transpiler's).
_INIT_STREAM = 0x1A17


def layer_generator(seed: int, index: int) -> np.random.Generator:
    """The numpy generator of layer `index`'s initial weights."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), _INIT_STREAM, index])))


def initial_weights(network: ir.Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights drawn from the declared initialisers; zeros for checkpoint initialisers
    (see `declared_weights`); biases start at zero."""
    fan_in = network.input.features
    out: dict[str, np.ndarray] = {}
    for index, layer in enumerate(network.layers):
        shape = (layer.size, fan_in)
        init = layer.dense.init
        if isinstance(init, ir.NormalInit):
            w = layer_generator(seed, index).normal(init.mean, init.std, size=shape)
        elif isinstance(init, ir.UniformInit):
            w = layer_generator(seed, index).uniform(init.low, init.high, size=shape)
        else:  # ZerosInit, and CheckpointInit until it is loaded
            w = np.zeros(shape)
        # Rounded to float32, the precision training runs and saves at: a float32 model,
        # a float64 one, a step-0 checkpoint and the circuits then hold the same numbers.
        out[layer.name] = w.astype(np.float32).astype(np.float64)
        if layer.dense.bias:
            out[f"{layer.name}.bias"] = np.zeros(layer.size)
        fan_in = layer.size
    return out


def checkpoint_initialised(network: ir.Network) -> list[str]:
    """The layers whose initial weights come from another run's checkpoint."""
    return [l.name for l in network.layers if isinstance(l.dense.init, ir.CheckpointInit)]


def program_folder(program: ir.Program) -> Path:
    """Where a program's relative checkpoint initialisers are found."""
    return Path(program.source).parent if not program.source.startswith("<") else Path(".")


def declared_weights(program: ir.Program, network: ir.Network, seed: int) -> dict[str, np.ndarray]:
    """The untrained network: its initialisers, checkpoint initialisers loaded."""
    weights = initial_weights(network, seed)
    if checkpoint_initialised(network):
        from qnnc.runtime.checkpoint import checkpoint_init_tensors

        weights.update({k: np.asarray(v, dtype=np.float64)
                        for k, v in checkpoint_init_tensors(network, program_folder(program)).items()})
    return weights


def load_weights(program: ir.Program, network: ir.Network, checkpoint: Optional[os.PathLike | str],
                 seed: int) -> tuple[dict[str, np.ndarray], str, Optional[int]]:
    """(weights, where they came from, the step): checkpoint file `checkpoint` (checked
    against the network and its sha256), or with None the declared weights for `seed`."""
    if checkpoint is not None:
        from qnnc.runtime import checkpoint as ckpt

        c = ckpt.load_checkpoint(Path(checkpoint), network)
        return ({k: np.asarray(v, dtype=np.float64) for k, v in c.tensors.items()},
                f"checkpoint {c.path}", c.step)
    return declared_weights(program, network, seed), f"declared initialisation, seed {seed}", 0


def weights_digest(weights: dict) -> str:
    """sha256 over the weights' names, shapes and float32 values, in name order: equal
    digests mean the same network whichever command or dtype holds it."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(np.asarray(weights[name], dtype=np.float32))
        h.update(f"{name}:{list(a.shape)};".encode())
        h.update(a.tobytes())
    return h.hexdigest()
