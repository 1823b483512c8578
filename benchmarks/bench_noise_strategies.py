"""What modelling each IBM strategy's noise costs, side by side in one run (ratios).

    python benchmarks/bench_noise_strategies.py [--shots 2000] [--repeats 7] [--aer-shots 2000]

1. Model B (`weak` neurons, a = 0.5, g = 1), 3 inputs, hidden widths [16, 16], random
   weights (seed 1), FakeBrisbane's noise on qubits 0.. in pairs: noisy sampling with the
   carried qubit kept on the device (`dynamic`'s semantics) against the same with the
   host's re-preparation (`layered`'s: one more ideal neuron evolution per sample and the
   preparation channels). Printed: samples per second of each, ratio layered/dynamic.
2. Model A (`rotation`, a = 0.5): the fast path is the same code for both bindings; the
   ratio checks it stays so.
3. `deferred`, widths [3, 3] of each model (the acceptance's narrow networks): seconds
   for the circuit-level exact distribution against seconds for --aer-shots Aer shots of
   the same compiled circuit.
Timings are wall clock on this machine; state whether it was contended.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _rates(models: dict, x, shots, repeats) -> dict:
    """Samples per second of each model, best of `repeats`, the models interleaved in
    every repeat (so that contention hits both alike)."""
    import torch

    best = {k: float("inf") for k in models}
    for r in range(repeats):
        for k, model in models.items():
            t = time.perf_counter()
            with torch.no_grad():
                model.sample(x, shots, generator=torch.Generator().manual_seed(r))
            best[k] = min(best[k], time.perf_counter() - t)
    return {k: shots * x.shape[0] / v for k, v in best.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--aer-shots", type=int, default=2000)
    args = ap.parse_args(argv)

    import torch

    from ir_builders_targets import NEURONS, chain_network, random_weights
    from noise_helpers import torch_model
    from qnnc.runtime.noise import with_layout
    from qnnc.runtime.noise.circuit import exact_outcome_distribution
    from qnnc.runtime.noise.ibm import from_fake_backend
    from qnnc.runtime.targets import compile_network, run_compiled

    bris = from_fake_backend("fake_brisbane")
    x = torch.tensor([[0.3, -0.2, 0.9]] * 4, dtype=torch.float64)
    pairs = [tuple(g.qubits) for g in bris.gates if g.gate == "ecr"]
    used: set = set()
    disjoint = []
    for p in pairs:
        if not used & set(p):
            disjoint.append(p)
            used |= set(p)
    for kind, args_ in (("weak", {"a": 0.5, "g": 1.0}), ("rotation", {"a": 0.5})):
        net = chain_network(3, [16, 16], kind, args_, None, name="b")
        w = random_weights(net, 1)
        lay = [disjoint[:16]] * 2 if kind == "weak" else [[(q,) for q in range(16)], [(q,) for q in range(16, 32)]]
        rates = _rates({s: torch_model(net, w, with_layout(bris, lay, "bench", s)) for s in ("dynamic", "layered")},
                       x, args.shots, args.repeats)
        print(f"{kind} [16, 16], {x.shape[0]} inputs x {args.shots} shots: dynamic {rates['dynamic']:.3g}/s, "
              f"layered {rates['layered']:.3g}/s, ratio layered/dynamic {rates['layered'] / rates['dynamic']:.2f}")
    xs = np.array([0.3, -0.2, 0.9])
    for kind, args_ in (("rotation", {"a": 0.0}), ("weak", {"a": 0.5, "g": 1.0})):
        net = chain_network(3, [3, 3], kind, args_, None, name="d")
        w = random_weights(net, 1)
        c = compile_network(net, NEURONS, w, xs, target="ibm", strategy="deferred")
        t = time.perf_counter()
        exact_outcome_distribution(c, bris)
        t_exact = time.perf_counter() - t
        run_compiled(c, 10, "noisy", seed=0)  # builds the noisy simulator once
        t = time.perf_counter()
        run_compiled(c, args.aer_shots, "noisy", seed=0)
        t_aer = time.perf_counter() - t
        print(f"deferred {kind} [3, 3]: exact circuit-level distribution {t_exact:.2f} s; "
              f"Aer {args.aer_shots} shots {t_aer:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
