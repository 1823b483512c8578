"""Benchmark of the circuit targets.

    python benchmarks/bench_targets.py [--images 4] [--samples 96] [--json PATH]

1. Compile time of examples/hardware.qnn (784-16-16-16-10, clip rotation neurons, a = 0.5)
   per target with its default strategy: the first compile in the process (which builds
   the vendor backend object) and the median of warm ones.
2. Samples per second on the same MNIST test images and the same number of samples per
   image: Qiskit Aer running our compiled `layered` circuits (ideal, and with
   FakeBrisbane's noise), Braket's and pytket's local simulators on theirs, against the
   torch simulator `QNNModel` (forward passes of the same network and weights).
3. A narrow network (784-4-4-4-10) that the `dynamic` strategy compiles to one
   mid-circuit-measurement circuit: Qiskit Aer on it, PennyLane's mid-circuit
   measurement simulation of the same neutral circuit (default.qubit, one-shot), and
   `QNNModel`.

Weights are the network's declared initialisation (seed 0): the cost does not depend on
training. Sample rates count forward passes (one sample = every hidden outcome of one
image). Aer's own timings include the host-side binding of the layered strategy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _quiet():
    import warnings

    warnings.filterwarnings("ignore")


def load_hardware():
    from qnnc.compiler import load_program

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return load_program("examples/hardware.qnn")
    finally:
        os.chdir(cwd)


def images(program, network, n):
    from qnnc.runtime.data import load_dataset, preprocess

    ds = load_dataset("mnist.test")
    return preprocess(ds.images[:n], network.input).astype(np.float64)


def narrow(program, width=4):
    from qnnc.compiler import ir

    net = program.network()
    layers = tuple(dataclasses.replace(l, size=width) if l.role == "hidden" else l for l in net.layers)
    net = dataclasses.replace(net, name="narrow", layers=layers)
    return ir.Program(program.source, program.modules, program.params, program.neurons, (net,), ())


def timed(fn, repeats=1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --------------------------------------------------------------------------- parts


def compile_times(program, weights, x, repeats):
    from qnnc.runtime.targets import compile_network

    rows = []
    # each target's default strategy, and Quantinuum's one-circuit `dynamic` with the
    # angles of h2 and h3 computed in real time (weights on the grid a/2^4)
    for target, kw in (("ibm", {}), ("ionq", {}), ("quantinuum", {}),
                       ("quantinuum", {"strategy": "dynamic", "weight_bits": 4})):
        t0 = time.perf_counter()
        c = compile_network(program, None, weights, x, target=target, **kw)
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            compile_network(program, None, weights, x, target=target, **kw)
            warm.append(time.perf_counter() - t0)
        strategy = c.strategy + (f" (real time, --weight-bits {kw['weight_bits']})"
                                 if "weight_bits" in kw else "")
        rows.append({"target": target, "backend": c.backend, "strategy": strategy,
                     "circuits": len(c.circuits), "cold_s": cold, "warm_s": statistics.median(warm)})
    return rows


def torch_rate(program, weights, xs, samples, repeats):
    import torch

    from qnnc.runtime.simulator import QNNModel

    os.environ["QNNC_THREADS"] = "2"  # qnnc keeps this setting (runtime/threads.py)
    torch.set_num_threads(2)
    model = QNNModel(program, program.network().name, seed=0)
    model.load_tensors({k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()})
    x = torch.tensor(xs, dtype=torch.float32)
    with torch.no_grad():
        model(x, shots=samples)  # warm-up
        secs, _ = timed(lambda: model(x, shots=samples), repeats)
    return secs


def circuit_rate(program, weights, xs, samples, target, strategy, simulator, **kw):
    from qnnc.runtime.targets import compile_network, run_compiled

    secs = 0.0
    for i, x in enumerate(xs):
        c = compile_network(program, None, weights, x, target=target, strategy=strategy, **kw)
        t0 = time.perf_counter()
        run_compiled(c, samples, simulator, seed=i)
        secs += time.perf_counter() - t0
    return secs


def pennylane_rate(program, weights, xs, samples):
    """PennyLane's mid-circuit measurements on our neutral dynamic circuit, op by op."""
    import pennylane as qml

    from qnnc.runtime.targets import compile_network

    secs = 0.0
    for x in xs:
        c = compile_network(program, None, weights, x, target="ibm", strategy="dynamic")
        circ = c.circuits[0]
        dev = qml.device("default.qubit", wires=circ.num_qubits)

        @qml.set_shots(shots=samples)
        @qml.qnode(dev, mcm_method="one-shot")
        def run():
            bits = [None] * circ.num_clbits
            ops = list(circ.ops)
            k = 0
            while k < len(ops):
                op = ops[k]
                if op.name == "measure":
                    # a reset right after the measurement is folded into it
                    reset = k + 1 < len(ops) and ops[k + 1].name == "reset" and \
                        ops[k + 1].qubits == op.qubits
                    bits[op.clbit] = qml.measure(op.qubits[0], reset=reset)
                    k += 2 if reset else 1
                    continue
                if op.name == "reset":
                    qml.measure(op.qubits[0], reset=True)
                elif op.name in ("ry", "rx", "rz"):
                    gate = {"ry": qml.RY, "rx": qml.RX, "rz": qml.RZ}[op.name]
                    if op.condition is None:
                        gate(op.angle, wires=op.qubits[0])
                    else:
                        cond = None
                        for j, b in enumerate(op.condition.clbits):
                            term = bits[b] == ((op.condition.value >> j) & 1)
                            cond = term if cond is None else cond & term
                        qml.cond(cond, gate)(op.angle, wires=op.qubits[0])
                k += 1
            return qml.sample([bits[o.clbit] for o in circ.outcomes if o.emit])

        t0 = time.perf_counter()
        run()
        secs += time.perf_counter() - t0
    return secs


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4, help="MNIST test images (default 4)")
    ap.add_argument("--samples", type=int, default=96, help="samples per image (default 96)")
    ap.add_argument("--narrow-samples", type=int, default=500, help="samples per image, narrow net")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true", help="skip the Braket and noisy rows")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = ap.parse_args(argv)
    _quiet()
    from qnnc.runtime.weights import initial_weights

    program = load_hardware()
    net = program.network()
    weights = initial_weights(net, 0)
    xs = images(program, net, args.images)
    result = {"machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                          "cpus": os.cpu_count()},
              "images": args.images, "samples": args.samples}

    result["compile"] = compile_times(program, weights, xs[0], args.repeats)

    n = args.images * args.samples
    rows = []
    t_torch = torch_rate(program, weights, xs, args.samples, args.repeats)
    rows.append(("hardware 784-16-16-16-10", "QNNModel (torch)", n, t_torch))
    rows.append(("hardware 784-16-16-16-10", "Qiskit Aer, layered circuits (ideal)", n,
                 circuit_rate(program, weights, xs, args.samples, "ibm", "layered", "ideal")))
    if not args.skip_slow:
        rows.append(("hardware 784-16-16-16-10", "Qiskit Aer, layered, FakeBrisbane noise", n,
                     circuit_rate(program, weights, xs, args.samples, "ibm", "layered", "noisy")))
        rows.append(("hardware 784-16-16-16-10", "Braket LocalSimulator (sv), layered", n,
                     circuit_rate(program, weights, xs, args.samples, "ionq", "layered", "braket_sv",
                                  copies=1)))
    rows.append(("hardware 784-16-16-16-10", "pytket AerBackend, layered (H2-1 circuits)", n,
                 circuit_rate(program, weights, xs, args.samples, "quantinuum", "layered", "ideal")))

    nprog = narrow(program)
    nnet = nprog.network()
    nweights = initial_weights(nnet, 0)
    m = args.images * args.narrow_samples
    t_ntorch = torch_rate(nprog, nweights, xs, args.narrow_samples, args.repeats)
    nrows = [("narrow 784-4-4-4-10", "QNNModel (torch)", m, t_ntorch),
             ("narrow 784-4-4-4-10", "Qiskit Aer, dynamic circuit (ideal)", m,
              circuit_rate(nprog, nweights, xs, args.narrow_samples, "ibm", "dynamic", "ideal"))]
    try:
        nrows.append(("narrow 784-4-4-4-10", "PennyLane default.qubit, mid-circuit measurement", m,
                      pennylane_rate(nprog, nweights, xs, args.narrow_samples)))
    except ImportError as exc:
        print(f"PennyLane not available: {exc}", file=sys.stderr)

    table = []
    for group, ref in ((rows, t_torch), (nrows, t_ntorch)):
        for name, engine, count, secs in group:
            table.append({"network": name, "engine": engine, "samples": count, "seconds": secs,
                          "samples_per_s": count / secs, "torch_speedup": secs / ref})
    result["rates"] = table

    print("## Compile time, examples/hardware.qnn (default strategy; and real-time dynamic)\n")
    print("| target | backend | strategy | circuits | first (s) | warm median (s) |")
    print("|---|---|---|---:|---:|---:|")
    for r in result["compile"]:
        print(f"| {r['target']} | {r['backend']} | {r['strategy']} | {r['circuits']} | "
              f"{r['cold_s']:.2f} | {r['warm_s']:.3f} |")
    print(f"\n## Samples per second ({args.images} MNIST test images)\n")
    print("| network | engine | samples | seconds | samples/s | QNNModel is faster by |")
    print("|---|---|---:|---:|---:|---:|")
    for r in table:
        print(f"| {r['network']} | {r['engine']} | {r['samples']} | {r['seconds']:.3f} | "
              f"{r['samples_per_s']:,.0f} | {r['torch_speedup']:,.0f}× |")
    if args.json:
        from qnnc.compiler.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
