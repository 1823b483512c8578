"""`--device cpu|cuda|mps|auto`, the same flag in every command that runs torch or a
local simulator (`train`, `eval`, `tap`, `replicas`, `run`): defined here once.

The name is checked when the command line is parsed (Q0407 for one that is no device);
whether the device is available here is checked when the command runs
(`qnnc.runtime.devices.resolve_device`: Q0634 with a hint, exit 2). See docs/devices.md."""

from __future__ import annotations

from qnnc.runtime.cli.flag_types import DEVICE

HELP = ("where the computation runs: cpu (default), cuda, cuda:N, mps, or auto (cuda, then mps, "
        "then cpu)")


def add_device_argument(p, help: str = HELP) -> None:
    p.add_argument("--device", type=DEVICE, default="cpu", metavar="DEVICE", help=help)


def device_from_args(args):
    """The `torch.device` of `--device`, checked to be available (Q0634 otherwise)."""
    from qnnc.runtime.devices import resolve_device

    return resolve_device(getattr(args, "device", None) or "cpu")


def circuit_device(target: str, name: str) -> str:
    """`qnnc run`: the device of the target's local circuit simulator, as Aer names it
    ("CPU" or "GPU"). Only the ibm target's Aer can run on a GPU (a CUDA build of
    qiskit-aer, `qiskit-aer-gpu`); Braket's LocalSimulator and the Quantinuum path run
    on the CPU only (Q0635 when asked for another device); cuda without a GPU-enabled
    Aer is Q0634; auto takes the GPU when Aer has one."""
    from qnnc.compiler.diagnostics import error
    from qnnc.runtime.devices import NOT_AVAILABLE, UNSUPPORTED

    name = (name or "cpu").lower()
    if name == "cpu":
        return "CPU"
    if target != "ibm":
        if name == "auto":
            return "CPU"
        raise error(UNSUPPORTED, f"--device {name}: the local simulators of target `{target}` run on the "
                    "CPU only", exit_code=2, help="use --device cpu (or auto), or --target ibm for Aer on a GPU")
    if name == "mps":
        raise error(UNSUPPORTED, "--device mps: Aer (the ibm target's local simulator) has no Metal backend",
                    exit_code=2, help="use --device cpu, or cuda with qiskit-aer-gpu")
    try:
        from qiskit_aer import AerSimulator

        have = tuple(AerSimulator().available_devices())
    except ImportError:
        have = ()
    if "GPU" in have:
        return "GPU"
    if name == "auto":
        return "CPU"
    raise error(NOT_AVAILABLE, f"--device {name}: qiskit-aer here runs on {', '.join(have) or 'no device'} only",
                exit_code=2, help="install qiskit-aer-gpu on a CUDA machine, or use --device cpu")
