"""`qnnc sweep` on 2 local Dask workers against the same cells one after another.

The model-A spec (examples/sweeps/model_a.toml: 7 values of a x 3 seeds, train with the
papers' recipe, then evaluate on 10,000 test images with a vote over 15 passes) is run
twice, each time into a fresh folder and on a fresh local cluster: with `--workers 2`
(two cells at a time), and with `--workers 1` (the same cells one after another, the
same engine, so the ratio is the engine's parallelism and nothing else). Both sides run
in this one process's session, side by side, and the ratio is printed. The cell results
of the two runs are compared too: the parallel run must compute the same bytes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sweep.py            # the full recipe
    .venv/bin/python benchmarks/bench_sweep.py --epochs 1 --limit 1000      # a lighter variant

`--epochs N` and `--limit N` shrink each cell (train epochs, evaluated images); `--values`
and `--seeds` shrink the grid. On a 2-core machine the ideal ratio is 2; startup of the
cluster and of each worker's imports is in both figures.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "sweeps" / "model_a.toml"


def derived_spec(epochs, limit, values, seeds) -> str:
    text = SPEC.read_text()
    text = text.replace('program = "../mnist.qnn"', f'program = "{ROOT / "examples" / "mnist.qnn"}"')

    def sub(old, new):
        nonlocal text
        assert old in text, old
        text = text.replace(old, new)

    if values:
        text = re.sub(r"^set\.a = \[.*\]$", f"set.a = [{', '.join(repr(float(v)) for v in values)}]", text, flags=re.M)
    if seeds:
        text = re.sub(r"^seed = \[.*\]$", f"seed = [{', '.join(str(s) for s in seeds)}]", text, flags=re.M)
    if epochs is not None:
        sub('args = ["--seed", "{seed}", "--out"', f'args = ["--epochs", "{epochs}", "--seed", "{{seed}}", "--out"')
    if limit is not None:
        sub('"--seed", "{seed+1000}"]', f'"--seed", "{{seed+1000}}", "--limit", "{limit}"]')
    return text


def run(spec: Path, out: Path, workers: int) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "qnnc", "sweep", str(spec), "--workers", str(workers), "--out", str(out),
                        "--no-progress"], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"sweep failed ({workers} workers):\n{p.stderr}")
    return dt


def digests(out: Path) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.glob("units/*/*/result.json"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, help="train epochs per cell (default: the recipe's 10)")
    ap.add_argument("--limit", type=int, help="evaluate on the first N test images (default: all 10,000)")
    ap.add_argument("--values", type=float, nargs="+", help="values of a (default: the spec's 7)")
    ap.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the spec's 3)")
    ap.add_argument("--keep", help="keep the two sweep folders under this folder")
    args = ap.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="qnnc-bench-sweep-"))
    base.mkdir(parents=True, exist_ok=True)
    spec = base / "model_a.toml"
    spec.write_text(derived_spec(args.epochs, args.limit, args.values, args.seeds))
    from qnnc.runtime.sweep.spec import read_spec

    s = read_spec(spec)
    print(f"model-A spec: {len(s.cells)} cells ({len(s.cells) * len(s.steps)} units); epochs "
          f"{args.epochs or 'recipe (10)'}, evaluation on {args.limit or 10000} images; {os.cpu_count()} cores")
    parallel = run(spec, base / "two-workers", 2)
    print(f"2 workers:               {parallel:8.1f} s")
    serial = run(spec, base / "one-worker", 1)
    print(f"1 worker (one by one):   {serial:8.1f} s")
    print(f"speed-up: {serial / parallel:.2f}x")
    same = digests(base / "two-workers") == digests(base / "one-worker")
    print(f"cell results identical: {'yes' if same else 'NO'} ({len(digests(base / 'one-worker'))} units)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
