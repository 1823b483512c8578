"""Run this qnnc bundle on IonQ with the Amazon Braket SDK only (no qnnc needed):

    python run_ionq.py --local               # Braket's LocalSimulator (braket_sv)
    python run_ionq.py --device forte-1      # IonQ on Amazon Braket (AWS credentials
                                             # from botocore's own chain)

Each binding is one Braket task of the OpenQASM 3 program with its `inputs`. Braket's
local simulators cannot be seeded: local runs are not reproducible (said on stderr).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import protocol  # noqa: E402

ARNS = {"forte-1": "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1",
        "aria-1": "arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1",
        "aria-2": "arn:aws:braket:us-east-1::device/qpu/ionq/Aria-2"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--local", action="store_true", help="Braket's LocalSimulator, no account")
    ap.add_argument("--device", help="IonQ device (default: the manifest's backend)")
    ap.add_argument("--shots", type=int, help="forward passes (default: the manifest's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from braket.ir.openqasm import Program

    manifest = protocol.load_manifest(HERE)
    if args.local:
        from braket.devices import LocalSimulator

        device = LocalSimulator("braket_sv")
        print("note: Braket's local simulator cannot be seeded; runs are not reproducible",
              file=sys.stderr)
    else:
        from braket.aws import AwsDevice

        device = AwsDevice(ARNS[args.device or manifest["backend"]])
    sources = {}

    def execute(entry, bindings, shots):
        if entry["file"] not in sources:
            text = (HERE / entry["file"]).read_text(encoding="utf-8")
            sources[entry["file"]] = "\n".join(l for l in text.split("\n") if "stdgates.inc" not in l)
        qubit_clbit = entry["measured_qubits"]
        out = []
        for binding, s in zip(bindings, shots):
            res = device.run(Program(source=sources[entry["file"]], inputs=binding), shots=int(s)).result()
            m = np.asarray(res.measurements, dtype=np.uint8)
            col = {int(q): k for k, q in enumerate(res.measured_qubits)}
            bits = np.zeros((m.shape[0], entry["num_clbits"]), dtype=np.uint8)
            for q, cl in qubit_clbit:
                bits[:, cl] = m[:, col[q]]
            out.append(bits)
        return out

    protocol.run_and_print(HERE, execute, args.shots, manifest, args.json)


if __name__ == "__main__":
    main()
