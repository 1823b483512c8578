"""Exact expectation plus gradient of model A (4 inputs, two hidden layers of `rotation`
neurons of width w, a linear output of 2), qnnc beside PennyLane, side by side.

    python benchmarks/bench_exact.py [--widths 2,3,4,5,6,7,8] [--pennylane-widths 2,3,4]
                                     [--rounds 30] [--json PATH]

qnnc: `model.expected_logits(x)` for one input, then the gradient of its sum with
respect to every weight (backward), float64. PennyLane: the same expectation as one
circuit after deferring the measurements: layer 1 is RY(theta_i) on w qubits; neuron j
of layer 2 applies, for each of the 2^w outcome patterns s of layer 1, an RY(theta_j(s))
controlled on the layer-1 qubits being in s (the angle is a nonlinear function of the
pattern, so there is one controlled rotation per pattern); the logits are W_out <Z> of
the layer-2 qubits. Angles are computed from the weights in torch, the circuit runs on
`lightning.qubit` with `diff_method="adjoint"` (the fastest PennyLane set-up we found;
`default.qubit` with backprop is also timed), and the gradient flows back to the
weights through torch. Both compute the same numbers (checked before timing).

Also: a network with 3 hidden layers of width 6 enumerated exactly (expectation and
gradient). Targets (issue 16): >= 100x PennyLane's best at w = 4, < 10 ms at w = 8,
the 3 x 6 network < 1 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import ir_builders as B  # noqa: E402

from qnnc.runtime.simulator import QNNModel  # noqa: E402

F64 = torch.float64
A = 0.7


def model(w: int, hidden: int = 2) -> QNNModel:
    layers = [(w, ("rotation", {"a": A}))] * hidden + [(2, "linear")]
    return QNNModel(B.network(4, layers), dtype=F64, seed=w)


def qnnc_step_factory(m: QNNModel):
    """One expectation plus gradient, with the same bookkeeping as PennyLane's step below:
    the weights are fetched once, their gradients cleared and copied out per step. (Going
    through `m.zero_grad()` and `m.parameters()` every step would add about 15 us of
    torch.nn.Module traversal to qnnc's side only.)"""
    params = list(m.parameters())

    def step(x):
        for p in params:
            p.grad = None
        e = m.expected_logits(x)
        e.sum().backward()
        return e.detach(), [p.grad.clone() for p in params]

    return step


def pennylane_step_factory(m: QNNModel, device: str, diff: str):
    import pennylane as qml

    W1, W2, W3 = (m.weight[n] for n in ("h1", "h2", "y"))
    w = W1.shape[0]
    dev = qml.device(device, wires=2 * w)
    patterns = [[(k >> (w - 1 - i)) & 1 for i in range(w)] for k in range(2 ** w)]
    # emitted value of bit b: +1 for |0>, -1 for |1>
    svals = torch.tensor([[1.0 - 2.0 * b for b in pat] for pat in patterns], dtype=F64)  # [2^w, w]

    def angle(z):  # rotation(a, f = tanh): pi/2 (1 - tanh(z / a))
        return math.pi / 2 * (1 - torch.tanh(z / A))

    @qml.qnode(dev, interface="torch", diff_method=diff)
    def circuit(t1, t2):
        for i in range(w):
            qml.RY(t1[i], wires=i)
        for j in range(w):
            for k, pat in enumerate(patterns):
                qml.ctrl(qml.RY, control=list(range(w)), control_values=pat)(t2[k, j], wires=w + j)
        return [qml.expval(qml.PauliZ(w + j)) for j in range(w)]

    def step(x):
        for p in (W1, W2, W3):
            p.grad = None
        t1 = angle(x[0] @ W1.t())  # [w]
        t2 = angle(svals @ W2.t())  # [2^w, w]
        ez = torch.stack([v.to(F64) for v in circuit(t1, t2)])  # [w]
        e = (W3 @ ez).unsqueeze(0)
        e.sum().backward()
        return e.detach(), [W1.grad.clone(), W2.grad.clone(), W3.grad.clone()]

    return step


CLOCK = time.perf_counter


def median_time(fn, rounds, inner=1):
    ts = []
    for _ in range(rounds):
        t = CLOCK()
        for _ in range(inner):
            fn()
        ts.append((CLOCK() - t) / inner)
    return statistics.median(ts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", default="2,3,4,5,6,7,8")
    ap.add_argument("--pennylane-widths", default="2,3,4")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall clock (default) or the process's CPU time, all threads (steadier on a "
                         "machine shared with other jobs), for both sides")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    if args.threads:
        os.environ["QNNC_THREADS"] = str(args.threads)  # qnnc keeps it (runtime/threads.py)
        torch.set_num_threads(args.threads)
    x = torch.rand(1, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    model(2)  # qnnc applies its thread default when the first model is built
    pl_widths = {int(s) for s in args.pennylane_widths.split(",") if s}
    out = {"threads": torch.get_num_threads(), "load_before": os.getloadavg()[0], "rows": []}
    out["clock"] = args.clock
    print(f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, clock {args.clock}")
    print(f"{'w':>2s} {'qnnc ms':>9s} {'lightning adjoint ms':>21s} {'default.qubit backprop ms':>26s} {'x best PL':>10s}")
    for w in (int(s) for s in args.widths.split(",")):
        m = model(w)
        qnnc_step = qnnc_step_factory(m)
        e_q, g_q = qnnc_step(x)
        row = {"w": w}
        inner = 20 if w <= 6 else 5
        pl = {}
        if w in pl_widths:
            for dev, diff in (("lightning.qubit", "adjoint"), ("default.qubit", "backprop")):
                step = pennylane_step_factory(m, dev, diff)
                e_p, g_p = step(x)
                assert torch.allclose(e_p, e_q, atol=1e-6), (w, dev, e_p, e_q)
                for a, b in zip(g_p, g_q):
                    assert torch.allclose(a, b, atol=1e-6), (w, dev, a, b)
                pl[dev] = step
        # alternate qnnc and PennyLane rounds
        tq, tpl = [], {d: [] for d in pl}
        for r in range(args.rounds if w <= 6 else max(5, args.rounds // 3)):
            tq.append(median_time(lambda: qnnc_step(x), 1, inner))
            for d, step in pl.items():
                tpl[d].append(median_time(lambda: step(x), 1, 1))
            if pl and r >= 4:
                break  # PennyLane is slow; five paired rounds suffice
        row["qnnc_s"] = statistics.median(tq)
        for d in pl:
            row[d + "_s"] = statistics.median(tpl[d])
        if pl:
            best = min(row[d + "_s"] for d in pl)
            row["speed_vs_best_pennylane"] = best / row["qnnc_s"]
        out["rows"].append(row)
        fmt = lambda k: f"{row[k] * 1e3:.2f}" if k in row else "-"
        print(f"{w:2d} {row['qnnc_s'] * 1e3:9.3f} {fmt('lightning.qubit_s'):>21s} {fmt('default.qubit_s'):>26s} "
              f"{(str(round(row['speed_vs_best_pennylane'])) + 'x') if pl else '-':>10s}")
    m3 = model(6, hidden=3)
    step3 = qnnc_step_factory(m3)
    t = CLOCK()
    step3(x)
    cold = CLOCK() - t
    warm = median_time(lambda: step3(x), 5)
    out["three_layers_width_6"] = {"first_s": cold, "median_s": warm}
    print(f"3 hidden layers of width 6: first {cold * 1e3:.2f} ms, median {warm * 1e3:.2f} ms")
    out["load_after"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
