"""Where a sweep of the compiled block Monte Carlo goes (the 1,818-spin network of
bench_replicas.py, 32 temperatures x 2 replicas): the sampler's `run_chunk` with each
worker's int8 products, heat-bath draws and waits at the sweep's two meetings timed
separately; one worker against two; and the bare cost of one meeting of two threads.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/profile_replicas.py [--sweeps 1000]
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--program", default="examples/spin_binary.qnn")
    ap.add_argument("--sweeps", type=int, default=1000)
    args = ap.parse_args()

    import qnnc.runtime.replicas_kernel as K
    import qnnc.runtime.replicas_samplers as RS
    from qnnc.compiler import load_program
    from qnnc.runtime.replicas import LayeredCouplings, temperature_ladder
    from qnnc.runtime.spin import ising_model, load_weights

    program = load_program(args.program)
    model = ising_model(load_weights(program, program.networks[0], None, None, 0))
    temps = np.asarray(temperature_ladder(0.4, 2.5, 32))
    couplings = LayeredCouplings.from_model(model, dtype=torch.float32)
    print(f"torch threads {torch.get_num_threads()}, {model.n_spins} spins, 32 x 2 chains")
    for W in (1, 2):
        s = RS.FixedPointBlockSampler(couplings, temps, 2, 0, None, workers=W)
        s.run_chunk(20)
        t0 = time.perf_counter()
        s.run_chunk(args.sweeps)
        print(f"workers {W}: {(time.perf_counter() - t0) / args.sweeps * 1e3:.3f} ms a sweep")

    # the same two workers with their phases timed (the wrappers add ~1 us a call)
    acc: dict = {}

    def timed(name, f):
        def g(*a, **k):
            t0 = time.perf_counter()
            r = f(*a, **k)
            key = (name, threading.get_ident())
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t0
            return r
        return g

    wait, heat_bath = RS._Meeting.wait, K.block_heat_bath
    RS._Meeting.wait, K.block_heat_bath = timed("waiting at the meetings", wait), timed("heat-bath draws", heat_bath)
    try:
        s = RS.FixedPointBlockSampler(couplings, temps, 2, 0, None, workers=2)
        for w in range(2):
            s.products[w] = [timed("int8 products", p) for p in s.products[w]]
        s.run_chunk(20)
        acc.clear()
        s.run_chunk(args.sweeps)
    finally:
        RS._Meeting.wait, K.block_heat_bath = wait, heat_bath
    threads = sorted({t for _, t in acc})
    for name in ("int8 products", "heat-bath draws", "waiting at the meetings"):
        per = [acc.get((name, t), 0.0) / args.sweeps * 1e3 for t in threads]
        print(f"  {name:24s} " + "  ".join(f"worker {i}: {v:.3f} ms" for i, v in enumerate(per)) + " a sweep")

    m, n = RS._Meeting(2), 5000

    def meet(w):
        for _ in range(n):
            m.wait(w)

    t = threading.Thread(target=meet, args=(1,))
    t0 = time.perf_counter()
    t.start()
    meet(0)
    t.join()
    print(f"one meeting of two threads, nothing else running: {(time.perf_counter() - t0) / n * 1e6:.1f} us")


if __name__ == "__main__":
    main()
