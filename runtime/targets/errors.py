"""The Q03xx diagnostics of the circuit targets (listed in the package docstring)."""

from __future__ import annotations

from typing import Iterable, Optional

from qnnc.compiler.diagnostics import QnncError, error
from qnnc.compiler.ir import Span

CODES: dict[str, str] = {
    "Q0301": "unknown target",
    "Q0302": "unknown strategy",
    "Q0303": "the target cannot run the strategy (a capability is missing)",
    "Q0304": "unknown backend for the target",
    "Q0305": "the circuit needs more qubits than the device has",
    "Q0306": "a table of conditions (or multiplexed rotation) is wider than the limit",
    "Q0307": "noise kind not available on the target",
    "Q0308": "bad noise-pair count, copies count or weight bits",
    "Q0310": "a vendor SDK (an optional extra) is not installed",
    "Q0311": "the network cannot be lowered to circuits (no quantum hidden layer, or a classical one between them)",
    "Q0312": "a carried layer has a different width from the layer it continues",
    "Q0313": "weights missing or of the wrong shape",
    "Q0314": "the input vector has the wrong length",
    "Q0315": "no strategy the target can run fits this network",
    "Q0316": "the local simulator cannot hold the circuit",
    "Q0317": "unknown simulator for the target",
    "Q0320": "the vendor compiler rejected the circuit",
    "Q0330": "a neuron definition cannot be lowered (unbound name, unknown function)",
    "Q0331": "a neuron angle is not finite",
    "Q0332": "a gate of the neuron has no lowering",
    "Q0333": "a neuron angle has no exact real-time (integer) realisation",
    "Q0334": "a real-time register would be wider than the target's classical registers",
    "Q0340": "the program has no such network",
    "Q0341": "a checkpoint cannot be read",
    "Q0342": "a test image cannot be bound",
    "Q0350": "no credentials for the vendor's cloud client (nothing was submitted)",
    "Q0351": "the vendor's cloud client failed (authentication, network, unknown device, failed job)",
    "Q0352": "the target has no submission path here, or its offline substitute cannot execute",
}


def refuse(code: str, message: str, span: Optional[Span] = None, *, help: Optional[str] = None,
           notes: Iterable[str] = (), label: str = "") -> QnncError:
    assert code in CODES, code
    return error(code, message, span, help=help, notes=notes, label=label)


def missing_extra(package: str, extra: str, exc: BaseException) -> QnncError:
    return refuse("Q0310", f"the `{extra}` target needs `{package}`, which is not installed",
                  help=f"install it with `pip install 'qnnc[{extra}]'`",
                  notes=(f"import failed: {exc}",))
