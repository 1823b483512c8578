"""The `--noise MODEL` flag (train, eval, run with --simulator qnnc): device noise in the
torch simulator. MODEL: `ibm:BACKEND`, `ionq:aria`, `quantinuum:h1`, or a JSON file
written by `qnnc noise show --json` (docs/hardware-in-the-loop.md, "Noise models")."""

from __future__ import annotations


def add_noise_argument(p) -> None:
    p.add_argument("--noise", metavar="MODEL",
                   help="device noise in the torch simulator: ibm:BACKEND (e.g. ibm:fake_brisbane), "
                        "ionq:aria, quantinuum:h1, or a JSON file from `qnnc noise show --json`")


def noise_from_args(args, program, network):
    """The noise model of `--noise`, bound to the network (None without the flag)."""
    spec = getattr(args, "noise", None)
    if spec is None:
        return None
    from qnnc.runtime.noise import parse

    return parse(spec, program, network)
