"""The fast noisy simulator against Aer on a narrow network (docs/hardware-in-the-loop.md,
"Correctness against Aer"): 3 inputs, hidden widths [3, 3] of `rotation` (a = 0) or
`weak` (a = 0.5, g = 1) neurons, random weights (seed 1), input (0.3, -0.2, 0.9), compiled
for FakeBrisbane with STRATEGY; Aer (`AerSimulator.from_backend`) samples SHOTS passes
(seed 5); the fast simulator gives the exact distribution under the same noise model on
the qubits the compiled circuits use (per neuron for `dynamic` and `layered`, whose
carried qubits the host re-prepares from its record; per transpiled circuit for
`deferred`, runtime/noise/circuit.py).

    .venv/bin/python examples/noise_vs_aer.py rotation layered 20000 [A]

(A: the neurons' a, default 0 for rotation and 0.5 for weak.)

Prints the TV distances (to the noisy and to the ideal distribution), the TV bound, and
each neuron's z-score of Aer's mean against the exact one."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main(argv=None) -> int:
    import numpy as np

    from ir_builders_targets import NEURONS, chain_network, random_weights
    from noise_helpers import exact_codes, means_of, torch_model
    from qnnc.runtime.noise import with_layout
    from qnnc.runtime.noise.ibm import from_fake_backend, layout_from_compiled
    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.targets.network import tv_bound, tv_distance

    argv = sys.argv[1:] if argv is None else argv
    kind, strategy, shots = argv[0], argv[1], int(argv[2])
    args = {"a": 0.0} if kind == "rotation" else {"a": 0.5, "g": 1.0}
    if len(argv) > 3:  # another a
        args["a"] = float(argv[3])
    net = chain_network(3, [3, 3], kind, args, None, name="probe")
    w = random_weights(net, 1)
    x = np.array([0.3, -0.2, 0.9])
    c = compile_network(net, NEURONS, w, x, target="ibm", strategy=strategy,
                        copies=1 if strategy == "layered" else None)
    brisbane = from_fake_backend("fake_brisbane")
    t = time.perf_counter()
    if strategy == "deferred":  # not per neuron: the transpiled circuit's exact distribution
        from qnnc.runtime.noise.circuit import exact_outcome_distribution

        lay = "the transpiled circuit's qubits"
        noisy = exact_outcome_distribution(c, brisbane)
    else:  # per neuron, on the compiled qubits, carried qubits as the strategy carries them
        lay = layout_from_compiled(c)
        noisy = exact_codes(torch_model(net, w, with_layout(brisbane, lay, strategy, strategy)), x)
    t_model = time.perf_counter() - t
    ideal = exact_codes(torch_model(net, w), x)
    t = time.perf_counter()
    out = run_compiled(c, shots, "noisy", seed=5)
    H = out.shape[1]
    print(f"{kind} (a = {args['a']:g}) {strategy}: layout {lay}; noisy model (exact) in {t_model:.2f} s; "
          f"Aer {shots} shots in {time.perf_counter() - t:.1f} s")
    print(f"  TV(Aer, fast noisy) {tv_distance(out, noisy):.4f}  TV(Aer, ideal) {tv_distance(out, ideal):.4f}  "
          f"bound {tv_bound(shots, 2 ** H):.4f}")
    se = np.sqrt(np.maximum(1 - out.mean(0) ** 2, 1e-9) / shots)
    print("  z (noisy):", np.round((out.mean(0) - means_of(noisy, H)) / se, 2))
    print("  z (ideal):", np.round((out.mean(0) - means_of(ideal, H)) / se, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
