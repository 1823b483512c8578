"""Where a sweep of the compiled block Monte Carlo goes (the 1,818-spin network of
bench_replicas.py, 32 temperatures x 2 replicas): one worker against two worker
processes; worker 0's int8 products, heat-bath draws, end of sweep (energies, exchange,
measurements) and waits at the sweep's two meetings timed separately (for one worker
and for two); and the bare cost of one meeting of two processes in shared memory.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/profile_replicas.py [--sweeps 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--program", default="examples/spin_binary.qnn")
    ap.add_argument("--sweeps", type=int, default=1000)
    args = ap.parse_args()

    import qnnc.runtime.replicas_samplers as RS
    from bench_replicas import untrained_network
    from qnnc.runtime.atomic_flags import Meeting
    from qnnc.runtime.replicas_workers import WorkerProcesses, shared_array

    couplings, model, temps = untrained_network(args.program, 32)
    temps = np.asarray(temps)
    print(f"torch threads {torch.get_num_threads()}, {model.n_spins} spins, 32 x 2 chains")
    accepted = np.zeros(31, dtype=np.int64)
    for W in (1, 2):
        s = RS.FixedPointBlockSampler(couplings, temps, 2, 0, None, workers=W)
        s.run_chunk(20, 0, accepted)
        t0 = time.perf_counter()
        s.run_chunk(args.sweeps, 0, accepted)
        print(f"workers {W}: {(time.perf_counter() - t0) / args.sweeps * 1e3:.3f} ms a sweep, "
              f"{s.refined / (args.sweeps + 20):.1f} draws a sweep redone exactly")
        s.close()

    # worker 0's phases (the wrappers add ~1 us a call; children are not timed)
    for W in (1, 2):
        acc: dict = {}

        def timed(name, f):
            def g(*a, **k):
                t0 = time.perf_counter()
                r = f(*a, **k)
                acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0
                return r
            return g

        s = RS.FixedPointBlockSampler(couplings, temps, 2, 0, None, workers=W)
        s.run_chunk(20, 0, accepted)
        s.products[0] = [timed("int8 products", p) for p in s.products[0]]
        s._draw = timed("heat-bath draws", s._draw)
        s.measure = timed("end of sweep: measurements", s.measure)
        wait = s._meeting.wait
        s._meeting.wait = timed("meetings (end of sweep included)", wait)
        s.run_chunk(args.sweeps, 0, accepted, np.zeros((args.sweeps, 64)), np.zeros((args.sweeps, 64)),
                    np.zeros((args.sweeps, 64, 0)), np.zeros((args.sweeps, 32, 1)))
        s.close()
        print(f"  worker 0 of {W}: " + ", ".join(f"{k} {v / args.sweeps * 1e3:.3f} ms" for k, v in acc.items())
              + " a sweep")

    n = 20000
    meeting = Meeting(shared_array((Meeting.flags_for(2),), np.int64), 2)

    def meet(w, count, base):
        for i in range(count):
            meeting.wait(w, base + i + 1)

    pool = WorkerProcesses(meeting, lambda w, count, base, _: meet(w, count, base))
    try:
        pool.start(200, 0, 0)
        meet(0, 200, 0)
        t0 = time.perf_counter()
        pool.start(n, 200, 0)
        meet(0, n, 200)
        print(f"one meeting of two processes, nothing else running: {(time.perf_counter() - t0) / n * 1e6:.2f} us")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
