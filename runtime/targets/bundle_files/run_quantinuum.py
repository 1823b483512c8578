"""Run this qnnc bundle with pytket only (no qnnc needed):

    python run_quantinuum.py --local   # pytket-qiskit's AerBackend on this machine

The circuits are pytket JSON compiled for the manifest's Quantinuum device; bindings map
each symbol to an angle in radians (the gates take symbol / pi half-turns). For the
device itself, submit the same circuits with their bindings through qnexus (an account).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import protocol  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--local", action="store_true", help="pytket-qiskit's AerBackend")
    ap.add_argument("--shots", type=int, help="forward passes (default: the manifest's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not args.local:
        sys.exit("only --local runs here: Quantinuum hardware is reached through qnexus (an account)")
    import sympy
    from pytket import Bit, Circuit
    from pytket.extensions.qiskit import AerBackend

    manifest = protocol.load_manifest(HERE)
    width = 0
    for entry in manifest["circuits"]:
        width = max(width, Circuit.from_dict(json.loads((HERE / entry["file"]).read_text())).n_qubits)
    # matrix product states hold the wide, unentangled circuits of the layered protocol
    backend = AerBackend(simulation_method="matrix_product_state", n_qubits=max(40, width))
    seeds = np.random.SeedSequence(args.seed)
    cache = {}

    def execute(entry, bindings, shots):
        if entry["file"] not in cache:
            cache[entry["file"]] = Circuit.from_dict(json.loads((HERE / entry["file"]).read_text()))
        cbits = [None] * entry["num_clbits"]
        for reg in entry["cregs"]:
            for k, cl in enumerate(reg["clbits"]):
                cbits[cl] = Bit(reg["name"], k)
        circuits = []
        for binding in bindings:
            c = cache[entry["file"]].copy()
            if binding:
                c.symbol_substitution({sympy.Symbol(n): v for n, v in binding.items()})
            circuits.append(backend.get_compiled_circuit(c, optimisation_level=0))
        seed = int(seeds.spawn(1)[0].generate_state(1)[0] & 0x7FFFFFFF)
        handles = backend.process_circuits(circuits, n_shots=[int(s) for s in shots], seed=seed)
        return [np.asarray(backend.get_result(h).get_shots(cbits=cbits), dtype=np.uint8) for h in handles]

    protocol.run_and_print(HERE, execute, args.shots, manifest, args.json)


if __name__ == "__main__":
    main()
