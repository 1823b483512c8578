"""Benchmark of one measured gradient, fast executor beside Aer, in one run.

    python benchmarks/bench_gradients.py [--shots 100] [--images 1] [--aer-shots 100]
                                         [--aer-variants N] [--narrow-shots 32] [--narrow-dynamic]

1. examples/hardware.qnn (784-16-16-16-10; weights: the declared initialisation, seed 0):
   one parameter-shift estimate (1 unshifted + 2 x 48 shifted network variants), the
   first --images MNIST test images, --shots shots per image and variant:
   - on the fast executor: the torch simulator in shot mode, with FakeBrisbane's noise
     (`--noise ibm:fake_brisbane`) and without;
   - on Aer: the compiled `layered` circuits (one copy, the noise model's qubits) on
     `AerSimulator.from_backend(FakeBrisbane())`'s noise, the whole estimate (every
     variant and image in one Aer call per layer), --aer-shots shots per image and variant;
     --aer-variants N runs only the first N variants and projects (marked as such).
2. examples/hardware_narrow.qnn (784-4-4-10, same initialisation rule): the whole
   estimate (17 variants) on both (Aer: `layered`; with --narrow-dynamic also the
   `dynamic` circuits, one compilation per image and variant), with --narrow-shots shots,
   and the cosine between each estimate and the fast executor's exact noisy gradient
   (same noise model).

Printed: variants, circuits (per image and variant, as `qnnc grad` counts them), Aer run
calls, passes, wall seconds per side and their ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _setup(path, images):
    from qnnc.compiler import load_program
    from qnnc.runtime.data import load_dataset, preprocess
    from qnnc.runtime.weights import initial_weights

    prog = load_program(str(ROOT / "examples" / path))
    net = prog.network()
    t = initial_weights(net, 0)
    ds = load_dataset("mnist.test")
    x = preprocess(ds.images[:images], net.input).astype(np.float64)
    return prog, net, t, x, ds.labels[:images].astype(np.int64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=int, default=100)
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--aer-variants", type=int, default=None)
    ap.add_argument("--aer-shots", type=int, default=100)
    ap.add_argument("--narrow-shots", type=int, default=32)
    ap.add_argument("--narrow-dynamic", action="store_true")
    ap.add_argument("--skip-narrow", action="store_true")
    args = ap.parse_args(argv)

    from qnnc.runtime.gradients import CircuitExecutor, estimate, exact_gradient, make_executor, view_model
    from qnnc.runtime.gradients.estimators import net_view, shifts
    from qnnc.runtime.noise import parse

    prog, net, t, x, y = _setup("hardware.qnn", args.images)
    noise = parse("ibm:fake_brisbane", prog, net)
    print(f"hardware.qnn, {args.images} image(s), parameter shift")
    rows = []
    for label, nz in (("fast executor, ideal", None), ("fast executor, FakeBrisbane noise", noise)):
        ex = make_executor("sim", prog, net, t, seed=0, noise=nz)
        estimate(ex, prog, net, t, x, y, shots=args.shots)  # warm-up
        e = estimate(ex, prog, net, t, x, y, shots=args.shots)
        rows.append((label, e.variants, e.circuits, e.passes, e.wall_s))
    view = net_view(view_model(prog, net), t)
    variants = [None] + shifts(view)
    ex = CircuitExecutor(prog, net, t, target="ibm", strategy="layered", simulator="noisy", seed=0)
    t0 = time.perf_counter()
    ex.sample(x[:1], 2, [None])  # compile (transpile) once, cut the noise model to the circuits' qubits
    compile_s = time.perf_counter() - t0
    run = variants if args.aer_variants is None else variants[:args.aer_variants]
    c0, k0 = ex.circuits, ex._local[1].calls
    t0 = time.perf_counter()
    ex.sample(x, args.aer_shots, run)
    dt = time.perf_counter() - t0
    calls = ex._local[1].calls - k0
    part = "" if len(run) == len(variants) else f", {len(run)} of {len(variants)} variants"
    rows.append((f"Aer + FakeBrisbane noise, layered{part}", len(run), ex.circuits - c0,
                 len(run) * args.images * args.aer_shots, dt))
    print(f"  {'executor':<58} {'variants':>8} {'circuits':>8} {'passes':>8} {'seconds':>9}")
    for r in rows:
        print(f"  {r[0]:<58} {r[1]:>8} {r[2]:>8} {r[3]:>8} {r[4]:>9.2f}")
    print(f"  Aer: compile once {compile_s:.1f} s; {calls} Aer run calls for the estimate")
    if len(run) < len(variants):
        print(f"  Aer: projected {dt / len(run) * len(variants):.0f} s for the {len(variants)} variants "
              "(projection, not run)")
    fast = rows[1]
    print(f"  per pass: fast noisy {fast[4] / fast[3] * 1e6:.2f} us, Aer {dt / rows[2][3] * 1e6:.0f} us, "
          f"ratio {dt / rows[2][3] / (fast[4] / fast[3]):.0f}x")

    if args.skip_narrow:
        return 0
    prog, net, t, x, y = _setup("hardware_narrow.qnn", args.images)
    noise = parse("ibm:fake_brisbane", prog, net)
    print(f"\nhardware_narrow.qnn (784-4-4-10), {args.images} image(s), {args.narrow_shots} shots, parameter shift")
    ex_f = make_executor("sim", prog, net, t, seed=0, noise=noise)
    ef = estimate(ex_f, prog, net, t, x, y, shots=args.narrow_shots)
    aer = []
    for strat in ("layered",) + (("dynamic",) if args.narrow_dynamic else ()):
        ex_a = CircuitExecutor(prog, net, t, target="ibm", strategy=strat, simulator="noisy", seed=0)
        if strat == "layered":
            ex_a.sample(x[:1], 2, [None])  # compile once (dynamic compiles per image and variant)
        aer.append((f"Aer + FakeBrisbane noise ({strat})", estimate(ex_a, prog, net, t, x, y, shots=args.narrow_shots)))
    m = view_model(prog, net, noise)
    m.load_tensors({k: torch.as_tensor(v) for k, v in t.items()})
    g = exact_gradient(m, torch.as_tensor(x), torch.as_tensor(y))
    names = sorted(g)
    ge = torch.cat([g[n].reshape(-1) for n in names])
    print(f"  {'executor':<40} {'variants':>8} {'circuits':>8} {'passes':>8} {'seconds':>9} {'cos(est, exact noisy)':>22}")
    for label, e in [("fast executor, FakeBrisbane noise", ef)] + aer:
        v = torch.cat([e.grads[n].reshape(-1) for n in names])
        cos = float(v @ ge / (v.norm() * ge.norm()))
        print(f"  {label:<40} {e.variants:>8} {e.circuits:>8} {e.passes:>8} {e.wall_s:>9.2f} {cos:>22.3f}")
    for label, e in aer:
        print(f"  wall-time ratio {label} / fast: {e.wall_s / ef.wall_s:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
