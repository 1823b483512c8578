"""Benchmark of device noise in the torch simulator, side by side in one run.

    python benchmarks/bench_noise.py [--images 64] [--shots 1000] [--aer-images 2] [--aer-shots 200]

On examples/hardware.qnn (784-16-16-16-10, clip rotation neurons, a = 0.5; weights: the
declared initialisation, seed 0, unless --checkpoint) and the first MNIST test images:

1. noiseless qnnc: `QNNModel` forward passes (no autograd), samples per second;
2. noisy qnnc: the same with FakeBrisbane's noise model (`--noise ibm:fake_brisbane`,
   the neurons on the qubits of the compiled `layered` circuits, one copy);
3. Aer: the compiled `layered` circuits (one copy, the same qubits) on
   `AerSimulator.from_backend(FakeBrisbane())`, the same noise model, on the first
   --aer-images of the same images (compile time reported apart; sampling time includes
   the host-side binding of the layered strategy).

A sample is one forward pass of one image (every hidden outcome). Printed: each rate and
the ratios noisy/noiseless (acceptance: >= 0.5) and noisy qnnc / Aer (>= 1000). Also the
per-layer mean outcome of Aer and of the noisy simulator on the Aer images, with
standard errors (the two must agree), since a fast simulator that is wrong is no use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--shots", type=int, default=1000)
    ap.add_argument("--aer-images", type=int, default=2)
    ap.add_argument("--aer-shots", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", help="a checkpoint of hardware.qnn (default: declared initialisation)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    import warnings

    warnings.filterwarnings("ignore")
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.noise.ibm import bind_network, from_fake_backend
    from qnnc.runtime.simulator import QNNModel
    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.weights import initial_weights

    os.chdir(ROOT)
    program = load_program("examples/hardware.qnn")
    net = program.network()
    if args.checkpoint:
        from qnnc.runtime import checkpoint as ckpt

        weights = {k: np.asarray(v, dtype=np.float64) for k, v in
                   ckpt.load_checkpoint(ckpt.resolve_checkpoint(args.checkpoint, "last"), net).tensors.items()}
    else:
        weights = initial_weights(net, 0)
    ds = load_dataset("mnist.test")
    x = preprocess(ds.images[:args.images], net.input).astype(np.float32)

    t0 = time.perf_counter()
    noise = bind_network(from_fake_backend("fake_brisbane"), program, net)
    t_bind = time.perf_counter() - t0

    def model(noisy: bool):
        m = QNNModel(program, net.name, seed=0, noise=noise if noisy else None)
        m.load_tensors({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
        return m

    rates = {}
    xt = torch.from_numpy(x)
    models = {"noiseless": model(False), "noisy": model(True)}
    with torch.no_grad():
        for name, m in models.items():
            m(xt[:2], shots=8)  # warm-up
        best = {k: float("inf") for k in models}
        for _ in range(args.repeats):  # interleaved: both sides see the same load
            for name, m in models.items():
                t = time.perf_counter()
                m(xt, shots=args.shots, generator=torch.Generator().manual_seed(1))
                best[name] = min(best[name], time.perf_counter() - t)
    for name, dt in best.items():
        rates[name] = args.images * args.shots / dt

    # Aer on the same network, noise model and qubits
    t_compile = t_aer = 0.0
    aer_rows, fast_rows = [], []
    for i in range(args.aer_images):
        t = time.perf_counter()
        c = compile_network(net, program.neurons, weights, x[i].astype(np.float64), target="ibm",
                            strategy="layered", copies=1)
        t_compile += time.perf_counter() - t
        t = time.perf_counter()
        out = run_compiled(c, args.aer_shots, "noisy", seed=10 + i)
        t_aer += time.perf_counter() - t
        aer_rows.append(out)
        with torch.no_grad():
            rec = models["noisy"].sample(xt[i:i + 1].double().float(), 20000,
                                         generator=torch.Generator().manual_seed(20 + i))
        fast_rows.append(torch.cat([rec[p][:, 0] for p in ("h1", "h2", "h3")], -1).numpy())
    rates["aer"] = args.aer_images * args.aer_shots / t_aer

    print(f"bench_noise: hardware.qnn, {args.images} images x {args.shots} shots (qnnc); "
          f"Aer: {args.aer_images} images x {args.aer_shots} shots; python {platform.python_version()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  noise model bound (FakeBrisbane, layout of the compiled layered circuits): {t_bind:.2f} s")
    print(f"  noiseless qnnc   {rates['noiseless']:>14,.0f} samples/s")
    print(f"  noisy qnnc       {rates['noisy']:>14,.0f} samples/s   ratio to noiseless {rates['noisy'] / rates['noiseless']:.2f} (>= 0.5)")
    print(f"  Aer (noisy)      {rates['aer']:>14,.1f} samples/s   noisy qnnc / Aer {rates['noisy'] / rates['aer']:,.0f}x (>= 1000); "
          f"compile {t_compile / args.aer_images:.2f} s per image (not counted)")
    agree = []
    for i, (a, f) in enumerate(zip(aer_rows, fast_rows)):
        for li, name in enumerate(("h1", "h2", "h3")):
            sl = slice(16 * li, 16 * li + 16)
            am, fm = a[:, sl].mean(1), f[:, sl].mean(1)  # per shot: the layer's mean outcome
            se = float(np.sqrt(am.var() / am.size + fm.var() / fm.size))
            diff = float(am.mean() - fm.mean())
            agree.append({"image": i, "layer": name, "aer": float(am.mean()), "qnnc": float(fm.mean()),
                          "se": se, "z": diff / se})
            print(f"  image {i} {name}: mean outcome Aer {am.mean():+.4f}  noisy qnnc {fm.mean():+.4f}  "
                  f"difference {diff:+.4f} (SE {se:.4f}, z {diff / se:+.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rates": rates, "agreement": agree, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
