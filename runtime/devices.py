"""Torch devices: the one place that turns a device name into a `torch.device`, and the
few places where a value must come back to the host.

    resolve_device("auto")      cuda if torch sees one, else mps, else cpu
    resolve_device("cuda:1")    that device, or Q0634 (not available here) with a hint
    from_host(array, device)    host data (numpy) copied once to the device
    host_float(t), host_bool(t) one value read back from the device (a synchronisation)

The CPU is the default everywhere and is what the tests run on; `meta` (tensors with
shapes and no values) is accepted by the Python API for tests only: it shows that a
computation creates its tensors on the device it was given (tests/test_devices.py).
Values read back to the host (a loss for the metrics log, a finiteness check that
decides whether to raise an error, a progress line) go through `host_float` and
`host_bool`, so every such read is in one of a few named places; on `meta` they
return a placeholder (0.0, True), since a meta tensor has no value to read.

Codes (simulator range): Q0634 the device is not available here; Q0635 the device
cannot run this computation (float64 on mps; a local circuit simulator that runs on the
CPU only). Docs: docs/devices.md.
"""

from __future__ import annotations

from typing import Union

# What `--device` accepts (meta is for the Python API's tests, not the command line).
CHOICES = ("cpu", "cuda", "mps", "auto")
NOT_AVAILABLE = "Q0634"
UNSUPPORTED = "Q0635"

DeviceLike = Union[str, "torch.device", None]  # noqa: F821


def _torch():
    import torch

    return torch


def auto_device() -> str:
    """cuda when torch sees a CUDA device, else mps when Apple's Metal is available, else cpu."""
    torch = _torch()
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(name: DeviceLike = None, *, flag: str = "--device"):
    """The `torch.device` that `name` names (None: cpu), checked to be usable here; an
    unknown name or an unavailable device is Q0634 (exit 2: the command line asked for
    something this machine does not have)."""
    from qnnc.compiler.diagnostics import error

    torch = _torch()
    if name is None:
        return torch.device("cpu")
    if isinstance(name, torch.device):
        text = str(name)
    else:
        text = str(name).strip().lower()
    if text == "auto":
        text = auto_device()
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise error(NOT_AVAILABLE, f"{flag} {name}: not a torch device", exit_code=2,
                    help="give cpu, cuda, cuda:N, mps or auto") from None
    kind = dev.type
    if kind in ("cpu", "meta"):
        return torch.device(kind)
    if kind == "cuda":
        built = torch.backends.cuda.is_built()
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = ("this torch build has no CUDA support (torch " + torch.__version__ + ")" if not built
                   else "torch sees no CUDA device (driver, CUDA_VISIBLE_DEVICES?)")
            raise error(NOT_AVAILABLE, f"{flag} {name}: CUDA is not available here: {why}", exit_code=2,
                        help="use --device cpu, or --device auto to take the best device available")
        if dev.index is not None and dev.index >= count:
            raise error(NOT_AVAILABLE, f"{flag} {name}: there are {count} CUDA device(s) here "
                        f"(cuda:0 to cuda:{count - 1})", exit_code=2, help="give an index below the count")
        return dev
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            why = "this torch build has no MPS support" if mps is None or not mps.is_built() else \
                "the Metal device is not available (macOS 12.3+ on Apple silicon or an AMD GPU)"
            raise error(NOT_AVAILABLE, f"{flag} {name}: MPS is not available here: {why}", exit_code=2,
                        help="use --device cpu, or --device auto to take the best device available")
        return torch.device("mps")
    raise error(NOT_AVAILABLE, f"{flag} {name}: qnnc runs on cpu, cuda or mps, not `{kind}`", exit_code=2,
                help="give cpu, cuda, cuda:N, mps or auto")


def check_dtype(device, dtype, what: str) -> None:
    """Q0635 for a dtype the device does not have (mps has no float64)."""
    torch = _torch()
    if torch.device(device).type == "mps" and dtype == torch.float64:
        from qnnc.compiler.diagnostics import error

        raise error(UNSUPPORTED, f"{what} needs float64, which the mps device does not have", exit_code=2,
                    help="use --device cpu or cuda (or float32 where the API offers it)")


def is_cpu(device) -> bool:
    return device is None or _torch().device(device).type == "cpu"


def from_host(array, device=None, dtype=None):
    """Host data (a numpy array: weights from the one weight source, a data set) as a
    tensor of `dtype` on `device`: one copy (none on the CPU when the dtype matches).
    The only place where host arrays enter torch on their way to a device."""
    torch = _torch()
    t = torch.from_numpy(array) if not isinstance(array, torch.Tensor) else array
    return t.to(device=device, dtype=dtype)


def host_float(t) -> float:
    """float(t) for a one-element tensor: one value read back to the host. A meta tensor
    has no value: 0.0."""
    if t.device.type == "meta":
        return 0.0
    return float(t)


def host_array(t):
    """`t` as a float64 numpy array on the host: the Monte Carlo's torch engine reads its
    energies, exchange decisions and measurement sums back once per sweep (its statistics
    are summed in numpy). A meta tensor has no values: zeros of its shape."""
    if t.device.type == "meta":
        import numpy as np

        return np.zeros(tuple(t.shape))
    return t.detach().double().cpu().numpy()


def host_bool(t) -> bool:
    """bool(t) for a one-element tensor (a check that decides on the host whether to
    raise an error, or which path to take). A meta tensor has no value: True."""
    if t.device.type == "meta":
        return True
    return bool(t)
