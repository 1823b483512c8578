"""Run this qnnc bundle on IBM with qiskit only (no qnnc needed):

    python run_ibm.py --local            # qiskit-aer's SamplerV2 on this machine
    python run_ibm.py --backend ibm_NAME # IBM Quantum, qiskit-ibm-runtime's SamplerV2,
                                         # with the account of its standard configuration

Each layer is one sampler job: one pub (circuit, parameter values [bindings, parameters],
shots) per distinct shot count. Prints the label distribution (--json: as JSON).
"""

import argparse
import io
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import protocol  # noqa: E402  (the bundle's own, numpy only)


def bits_of(data, circuit, n):
    """[bindings..., shots, num_clbits] from a pub result's registers."""
    out = None
    for reg in circuit["cregs"]:
        b = getattr(data, reg["name"]).to_bool_array(order="little")  # [..., shots, bits]
        if out is None:
            out = np.zeros(b.shape[:-1] + (n,), dtype=np.uint8)
        out[..., reg["clbits"]] = b[..., :len(reg["clbits"])]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--local", action="store_true", help="qiskit-aer's SamplerV2, no account")
    ap.add_argument("--backend", help="IBM device (default: the manifest's, without `fake_`)")
    ap.add_argument("--shots", type=int, help="forward passes (default: the manifest's)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the local simulator")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from qiskit import qpy

    manifest = protocol.load_manifest(HERE)
    seeds = np.random.SeedSequence(args.seed)
    cache = {}

    def circuit_of(entry):
        if entry["file"] not in cache:
            with open(HERE / entry["file"], "rb") as fh:
                cache[entry["file"]] = qpy.load(fh)[0]
        return cache[entry["file"]]

    if args.local:
        from qiskit_aer.primitives import SamplerV2

        def sampler():
            # a fresh seed per job: a fixed seed repeats its draws in every run
            seed = int(seeds.spawn(1)[0].generate_state(1)[0] & 0x7FFFFFFF)
            return SamplerV2(seed=seed, options={"backend_options": {"method": "matrix_product_state"}})
    else:
        from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2 as RuntimeSampler

        name = args.backend or manifest["backend"].replace("fake_", "ibm_")
        device = QiskitRuntimeService().backend(name)
        sampler = lambda: RuntimeSampler(mode=device)

    def execute(entry, bindings, shots):
        qc = circuit_of(entry)
        order = [p.name for p in qc.parameters]
        groups = {}
        for k, s in enumerate(shots):
            groups.setdefault(int(s), []).append(k)
        pubs = [(qc, np.array([[bindings[k][n] for n in order] for k in ks]) if order else None, s)
                for s, ks in groups.items()]
        job = sampler().run(pubs)
        out = [None] * len(shots)
        for (s, ks), res in zip(groups.items(), job.result()):
            bits = bits_of(res.data, entry, entry["num_clbits"]).reshape(-1, s, entry["num_clbits"])
            for i, k in enumerate(ks):
                out[k] = bits[i if bits.shape[0] > 1 else 0]
        return out

    protocol.run_and_print(HERE, execute, args.shots, manifest, args.json)


if __name__ == "__main__":
    main()
