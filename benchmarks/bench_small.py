"""Sampling the hardware network (examples/hardware.qnn, 784-16-16-16-10, a = 0.5) at
small and large sizes: qnnc's `QNNModel` beside a plain vectorised torch sampler and the
best Qiskit Aer set-up, side by side in one run.

    python benchmarks/bench_small.py [--passes 200,2000,150000] [--rounds 30]
                                     [--aer-passes 200,2000] [--threads N] [--json PATH]

A pass is one image through the network with one draw of every measurement; passes are
images x 10 shots (the network's vote). Engines:

* qnnc: `model(x, shots=10)` under no_grad (what `predict` runs).
* plain torch: the same network written directly, z = d W^T, p = cos^2(theta/2) with
  theta = pi/2 (1 - clip(z/a, -1, 1)), d = where(rand < p, +1, -1), all layers batched
  over [images, shots, 16] (the first layer's z once per image). The floor a careful
  torch user would write.
* Aer: one parametrised circuit per layer (16 qubits, RY(theta_i), measure each), one
  `qiskit_aer.primitives.SamplerV2` call per layer binding every pass's angles, the
  matrix-product-state method (the fastest of the settings tried: statevector and
  automatic build a 2^16 state per binding). The host computes each layer's angles
  from the previous layer's bits, as the layered circuits do.

qnnc and plain torch alternate within every round (order flipped each round), so load
from other processes falls on both; the reported figure is the median over rounds of
the per-round time, and the ratio of the medians. Aer runs a few times per size (it is
slow), after the torch rounds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHOTS = 10
A = 0.5


def load():
    from qnnc.compiler import load_program
    from qnnc.runtime.simulator import QNNModel

    program = load_program(str(ROOT / "examples" / "hardware.qnn"))
    model = QNNModel(program, None, seed=0)
    Ws = [model.weight[p.name].detach().clone() for p in model.plans]
    return model, Ws


def plain_sampler(Ws, gen):
    half_pi = math.pi / 2

    def probs(z):
        theta = half_pi * (1 - torch.clamp(z / A, -1.0, 1.0))
        return torch.cos(theta * 0.5) ** 2  # P(+1)

    def run(x, shots):
        B = x.shape[0]
        p = probs(x @ Ws[0].t()).unsqueeze(1).expand(B, shots, Ws[0].shape[0])
        d = torch.where(torch.rand(p.shape, generator=gen) < p, 1.0, -1.0)
        for W in Ws[1:-1]:
            p = probs(d @ W.t())
            d = torch.where(torch.rand(p.shape, generator=gen) < p, 1.0, -1.0)
        return d @ Ws[-1].t()

    return run


def aer_sampler(Ws, seed=0):
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit_aer.primitives import SamplerV2

    width = Ws[0].shape[0]
    thetas = ParameterVector("t", width)
    qc = QuantumCircuit(width)
    for i in range(width):
        qc.ry(thetas[i], i)
    qc.measure_all()
    sampler = SamplerV2(seed=seed, options={"backend_options": {"method": "matrix_product_state"}})
    Wn = [w.double().numpy() for w in Ws]

    def angles(z):
        return np.pi / 2 * (1 - np.clip(z / A, -1, 1))

    def bits_to_pm(result, n):
        bits = result.data.meas.array  # [..., shots, bytes]: bit i of the integer is qubit i
        arr = np.unpackbits(bits, axis=-1, bitorder="big")[..., -n:][..., ::-1]
        return 1.0 - 2.0 * arr

    def run(x, shots):
        # Layer 1: one binding per image, `shots` shots each.
        th = angles(x.double().numpy() @ Wn[0].T)  # [B, width]
        res = sampler.run([(qc, th, shots)]).result()[0]
        d = bits_to_pm(res, width).reshape(-1, width)  # [B*shots, width]
        for W in Wn[1:-1]:
            th = angles(d @ W.T)
            res = sampler.run([(qc, th, 1)]).result()[0]
            d = bits_to_pm(res, width).reshape(-1, width)
        return d @ Wn[-1].T

    return run


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", default="200,2000,150000")
    ap.add_argument("--aer-passes", default="200,2000", help="sizes Aer runs at ('' for none)")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--aer-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: qnnc's default)")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="qnnc and plain torch timed by wall clock (default) or by the thread's CPU time "
                         "(both run on one thread; on a machine shared with other jobs the CPU time is the "
                         "steadier ratio); Aer is always timed by wall clock")
    args = ap.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    model, Ws = load()
    if args.threads:
        os.environ["QNNC_THREADS"] = str(args.threads)  # qnnc keeps it (runtime/threads.py)
        torch.set_num_threads(args.threads)
    gen_q = torch.Generator().manual_seed(1)
    gen_p = torch.Generator().manual_seed(2)
    plain = plain_sampler(Ws, gen_p)
    rng = np.random.default_rng(0)
    out = {"machine": machine(), "rows": []}
    out["machine"]["clock"] = args.clock
    print(f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, clock {args.clock}")
    print(f"{'passes':>8s} {'qnnc ms':>9s} {'plain ms':>9s} {'qnnc/plain speed':>17s} {'Aer ms':>10s} {'x Aer':>9s}")
    aer_sizes = {int(s) for s in args.aer_passes.split(",") if s}
    for passes in (int(s) for s in args.passes.split(",")):
        images = max(1, passes // SHOTS)
        x = torch.from_numpy(rng.random((images, 784), dtype=np.float32))
        rounds = args.rounds if passes <= 20000 else max(5, args.rounds // 6)
        inner = max(1, 2000 // passes)  # several calls per timing at the smallest sizes
        tq, tp = [], []
        with torch.no_grad():
            for _ in range(3):  # warm-up
                model(x, shots=SHOTS, generator=gen_q)
                plain(x, SHOTS)
            for r in range(rounds):
                order = ("q", "p") if r % 2 == 0 else ("p", "q")
                for who in order:
                    t = clock()
                    for _ in range(inner):
                        if who == "q":
                            model(x, shots=SHOTS, generator=gen_q)
                        else:
                            plain(x, SHOTS)
                    (tq if who == "q" else tp).append((clock() - t) / inner)
        row = {"passes": passes, "images": images, "shots": SHOTS, "qnnc_s": statistics.median(tq),
               "plain_s": statistics.median(tp), "rounds": rounds, "calls_per_round": inner}
        row["speed_vs_plain"] = row["plain_s"] / row["qnnc_s"]
        if passes in aer_sizes:
            aer = aer_sampler(Ws)
            aer(x[:2], SHOTS)  # warm-up
            ta = []
            for _ in range(args.aer_repeats):
                t = time.perf_counter()
                aer(x, SHOTS)
                ta.append(time.perf_counter() - t)
            with torch.no_grad():  # qnnc again, right next to Aer
                tq2 = []
                for _ in range(5):
                    t = time.perf_counter()
                    model(x, shots=SHOTS, generator=gen_q)
                    tq2.append(time.perf_counter() - t)
            row["aer_s"] = statistics.median(ta)
            row["qnnc_beside_aer_s"] = statistics.median(tq2)
            row["speed_vs_aer"] = row["aer_s"] / row["qnnc_s"]
        out["rows"].append(row)
        aer_txt = (f"{row['aer_s'] * 1e3:10.1f} {row['speed_vs_aer']:8.0f}x" if "aer_s" in row else "")
        print(f"{passes:8d} {row['qnnc_s'] * 1e3:9.3f} {row['plain_s'] * 1e3:9.3f} "
              f"{row['speed_vs_plain']:16.2f}x {aer_txt}")
    out["machine"]["load_after"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
