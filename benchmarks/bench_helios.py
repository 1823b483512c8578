"""Benchmark of the three Quantinuum paths for one network, side by side in one run.

    python benchmarks/bench_helios.py [--image 0] [--shots 400] [--le-shots 40] [--json PATH]

examples/hardware.qnn (784-16-16-16-10, clip rotation neurons, a = 0.5), its declared
initialisation (seed 0: the cost does not depend on training), one MNIST test image:

- `helios` (`program`): the whole network as one Guppy program, compiled to HUGR by
  guppylang, built by Selene (LLVM, once per program) and sampled on Selene's Quest
  state vector;
- `quantinuum` `dynamic --weight-bits 4`: the weights after the first layer rounded to
  a/2^4, the angles computed during the shot by pytket ClExpr integer arithmetic, compiled
  for H2-1 and sampled on pytket-quantinuum's local emulator H2-1LE (pytket-pecos);
- `quantinuum` `layered`: one parametrised circuit per layer, the host binding each shot's
  angles, sampled on pytket-qiskit's AerBackend.

Reported: compile time (the first in the process, and the median of 3 more), the per
shot counts of the compiled program, and emulator shots per second (one forward pass per
shot; Selene's build time apart), with the ratios Selene / H2-1LE and Selene / Aer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def setup(image: int):
    from qnnc.compiler import load_program
    from qnnc.runtime import weights as weight_source
    from qnnc.runtime.data import load_dataset, preprocess

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        program = load_program("examples/hardware.qnn")
    finally:
        os.chdir(cwd)
    net = program.network("hardware")
    w, _, _ = weight_source.load_weights(program, net, None, 0)
    x = preprocess(load_dataset("mnist.test").images[image:image + 1], net.input)[0].astype(np.float64)
    return program, net, w, x


def timed(fn, reps: int = 3):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    warm = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        warm.append(time.perf_counter() - t0)
    return out, first, statistics.median(warm)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=int, default=0)
    ap.add_argument("--shots", type=int, default=400, help="shots on Selene and on Aer")
    ap.add_argument("--le-shots", type=int, default=40, help="shots on H2-1LE (slow)")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from qnnc.runtime.targets import compile_network, run_compiled
    from qnnc.runtime.targets.helios.selene import SeleneRunner

    program, net, w, x = setup(args.image)
    paths = {
        "helios program (Guppy on Selene)": dict(target="helios"),
        "quantinuum dynamic, --weight-bits 4 (ClExpr on H2-1LE)":
            dict(target="quantinuum", strategy="dynamic", weight_bits=4),
        "quantinuum layered (pytket AerBackend)": dict(target="quantinuum", strategy="layered"),
    }
    shots = {"helios": args.shots, "dynamic": args.le_shots, "layered": args.shots}
    rows = []
    for label, kw in paths.items():
        compiled, first, warm = timed(lambda: compile_network(program, None, w, x, network="hardware",
                                                              **kw))
        kind = "helios" if kw["target"] == "helios" else kw["strategy"]
        n = shots[kind]
        build = None
        if kind == "helios":
            t0 = time.perf_counter()
            SeleneRunner(compiled.native.package, 1).instance()
            build = time.perf_counter() - t0
        run_compiled(compiled, 2, "ideal", seed=0)  # warm-up (backends, emulator start)
        t0 = time.perf_counter()
        out = run_compiled(compiled, n, "ideal", seed=1)
        dt = time.perf_counter() - t0
        tot = compiled.summary["total"]
        c0 = compiled.summary["circuits"]
        row = {"path": label, "compile_first_s": first, "compile_warm_s": warm,
               "selene_build_s": build, "circuits": tot["circuits"], "qubits": tot["qubits"],
               "two_qubit_gates": tot["two_qubit_gates"], "measurements": tot["measurements"],
               "conditionals": tot["conditionals"],
               "ops": [c["ops"] for c in c0], "shots": n, "run_s": dt, "shots_per_s": n / dt,
               "outcome_shape": list(out.shape)}
        rows.append(row)
        print(f"{label}:\n  compile {first:.2f} s first, {warm:.2f} s warm"
              + (f"; Selene build {build:.2f} s" if build is not None else "")
              + f"\n  {tot['circuits']} circuit(s), {tot['qubits']} qubits, "
              f"{tot['measurements']} measurements, {tot['conditionals']} conditionals, "
              f"{tot['two_qubit_gates']} two-qubit gates\n  {n} shots in {dt:.2f} s: "
              f"{n / dt:.1f} shots/s", flush=True)
    sel, le, aer = (r["shots_per_s"] for r in rows)
    ratios = {"selene_over_h2le": sel / le, "selene_over_aer_layered": sel / aer,
              "compile_warm_helios_over_dynamic": rows[0]["compile_warm_s"] / rows[1]["compile_warm_s"]}
    print(f"ratios: Selene / H2-1LE shots/s = {ratios['selene_over_h2le']:.1f}; Selene / Aer "
          f"(layered) = {ratios['selene_over_aer_layered']:.2f}; compile (warm) helios / "
          f"dynamic = {ratios['compile_warm_helios_over_dynamic']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                        "cpus": os.cpu_count()},
            "args": vars(args), "rows": rows, "ratios": ratios}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
