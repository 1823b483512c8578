"""Replica-exchange Monte Carlo: qnnc's block heat-bath (both engines) against a plain
numpy single-spin Metropolis sampler of the same Hamiltonian, side by side in one run.

The network is examples/spin_binary.qnn untrained (784-512-512-10, 1,818 spins), the
ladder 32 temperatures x 2 replicas (64 chains). The plain version is what a user
writes first: for each spin in turn, its local field for all 64 chains from the bond
matrix's row, a Metropolis flip, vectorised over chains with numpy. A second numpy
version takes, for each spin, only the slice of its row that can be non-zero (the
neighbouring layers): what a careful user of a layered model writes. qnnc is timed with
its default CPU engine ("compiled": fixed-point int8 products on as many worker
processes as torch has threads, the draw fused in one compiled pass) over `--sweeps`,
set-up (the workers' fork included), and with the torch engine (float32 matrix products) over `--torch-sweeps`;
both include the exchange moves and the measurements of every sweep. The numpy
versions run fewer sweeps (their per-sweep time is constant).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_replicas.py --sweeps 10000 --numpy-sweeps 5 --torch-sweeps 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def cpu_seconds() -> float:
    """CPU time of this process and of its ended children (qnnc's worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def plain_numpy_metropolis(J: np.ndarray, betas: np.ndarray, chains_per_t: int, sweeps: int, seed: int,
                           neighbours=None) -> tuple[float, float]:
    """Seconds (wall, CPU) per sweep. `neighbours`: per spin, the (lo, hi) range of its
    row that can be non-zero; None: the whole row."""
    rng = np.random.default_rng(seed)
    n = J.shape[0]
    beta = np.repeat(betas, chains_per_t)  # [C]
    s = rng.choice([-1.0, 1.0], size=(n, beta.size))  # spins x chains
    span = [(0, n)] * n if neighbours is None else neighbours
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(sweeps):
        for i in range(n):
            lo, hi = span[i]
            f = J[i, lo:hi] @ s[lo:hi]  # local field of spin i in every chain
            dE = 2.0 * s[i] * f
            flip = rng.random(beta.size) < np.exp(-beta * np.maximum(dE, 0.0))
            s[i] = np.where(flip, -s[i], s[i])
    return (time.perf_counter() - t0) / sweeps, (time.process_time() - c0) / sweeps


def layer_neighbours(sizes) -> list[tuple[int, int]]:
    """Per spin of a layered model: the columns of the layers before and after its own."""
    edges = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    out = []
    for k, size in enumerate(sizes):
        out += [(int(edges[max(k - 1, 0)]), int(edges[min(k + 2, len(sizes))]))] * int(size)
    return out


def untrained_network(program_path: str, temperatures: int):
    """The program's first network untrained (seed 0) as layered float32 couplings, its
    Ising model, and the geometric ladder 0.4..2.5 of `temperatures` (also
    profile_replicas.py's set-up)."""
    import torch

    from qnnc.compiler import load_program
    from qnnc.runtime.replicas import LayeredCouplings, temperature_ladder
    from qnnc.runtime.spin import ising_model, load_weights

    program = load_program(program_path)
    model = ising_model(load_weights(program, program.networks[0], None, None, 0))
    return LayeredCouplings.from_model(model, dtype=torch.float32), model, temperature_ladder(0.4, 2.5, temperatures)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--program", default="examples/spin_binary.qnn")
    ap.add_argument("--sweeps", type=int, default=10000)
    ap.add_argument("--numpy-sweeps", type=int, default=5)
    ap.add_argument("--torch-sweeps", type=int, default=1000)
    ap.add_argument("--temperatures", type=int, default=32)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()

    import torch

    from qnnc.runtime.replicas import run_replicas

    couplings, model, temps = untrained_network(args.program, args.temperatures)
    run_replicas(couplings, temps, replicas=args.replicas, sweeps=4, seed=0)  # load the compiled kernels
    t0, c0 = time.perf_counter(), cpu_seconds()
    res = run_replicas(couplings, temps, replicas=args.replicas, sweeps=args.sweeps, seed=0)
    ours_total, ours_cpu = time.perf_counter() - t0, (cpu_seconds() - c0) / args.sweeps
    ours = ours_total / args.sweeps
    t0, c0 = time.perf_counter(), time.process_time()
    run_replicas(couplings, temps, replicas=args.replicas, sweeps=args.torch_sweeps, seed=0, engine="torch")
    torch_engine = (time.perf_counter() - t0) / args.torch_sweeps
    torch_cpu = (time.process_time() - c0) / args.torch_sweeps
    J, betas = model.dense(), 1.0 / np.asarray(temps)
    plain, plain_cpu = plain_numpy_metropolis(J, betas, args.replicas, args.numpy_sweeps, 0)
    careful, careful_cpu = plain_numpy_metropolis(J, betas, args.replicas, args.numpy_sweeps, 0,
                                                  layer_neighbours(model.layer_sizes))
    from qnnc.runtime.replicas_samplers import FixedPointBlockSampler

    probe = FixedPointBlockSampler(couplings, np.asarray(temps), args.replicas, 0, None)
    out = {
        "machine": f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}",
        "spins": model.n_spins, "temperatures": args.temperatures, "replicas": args.replicas,
        "qnnc_engine": f"{res.update} / {res.engine}", "qnnc_workers (processes)": probe.workers,
        "qnnc_products": sorted({p.kind for per in probe.products for p in per}),
        "qnnc_sweeps": args.sweeps, "qnnc_seconds_total": ours_total, "qnnc_ms_per_sweep": 1e3 * ours,
        "torch_engine_sweeps": args.torch_sweeps, "torch_engine_ms_per_sweep": 1e3 * torch_engine,
        "numpy_sweeps": args.numpy_sweeps, "numpy_ms_per_sweep": 1e3 * plain,
        "numpy_seconds_for_qnnc_sweeps (extrapolated)": plain * args.sweeps,
        "numpy_neighbour_slices_ms_per_sweep": 1e3 * careful,
        "speedup": plain / ours, "speedup_torch_engine": plain / torch_engine,
        "speedup_vs_numpy_neighbour_slices": careful / ours,
        # CPU seconds (all threads, qnnc's worker processes included): the fairer ratio on a
        # machine shared with other work
        "cpu_ms_per_sweep": {"qnnc": 1e3 * ours_cpu, "torch_engine": 1e3 * torch_cpu, "numpy": 1e3 * plain_cpu,
                             "numpy_neighbour_slices": 1e3 * careful_cpu},
        "speedup_cpu": plain_cpu / ours_cpu, "equilibrated": res.equilibrated,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
