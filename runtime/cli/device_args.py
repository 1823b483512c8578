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
