"""The Q03xx diagnostics of the circuit targets: `refuse`, and `CODES`, the targets' rows
of the central table (`qnnc.compiler.codes`; docs/diagnostics.md documents them)."""

from __future__ import annotations

from typing import Iterable, Optional

from qnnc.compiler import codes
from qnnc.compiler.diagnostics import QnncError, error
from qnnc.compiler.ir import Span

# code -> title, for the target and submission areas (Q0301-Q0359).
CODES: dict[str, str] = codes.in_area(codes.TARGET, codes.SUBMISSION)


def refuse(code: str, message: str, span: Optional[Span] = None, *, help: Optional[str] = None,
           notes: Iterable[str] = (), label: str = "") -> QnncError:
    if code not in CODES:
        # A target refuses only with a target code; anything else is a bug here.
        raise ValueError(f"{code!r} is not a target diagnostic code (Q03xx in qnnc.compiler.codes)")
    return error(code, message, span, help=help, notes=notes, label=label)


def missing_extra(package: str, extra: str, exc: BaseException) -> QnncError:
    return refuse("Q0310", f"the `{extra}` target needs `{package}`, which is not installed",
                  help=f"install it with `pip install 'qnnc[{extra}]'`",
                  notes=(f"import failed: {exc}",))
