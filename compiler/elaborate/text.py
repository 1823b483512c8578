"""How numbers, ranges and places read in elaboration's messages."""

from __future__ import annotations

import math
from typing import Optional

from qnnc.compiler.elaborate.loader import short_path
from qnnc.compiler.expressions import Number
from qnnc.compiler.ir import Span


def format_number(v: Number) -> str:
    if isinstance(v, float):
        if v == math.inf:
            return "inf"
        return f"{v:.6g}"
    return str(v)


def range_text(lo: Optional[float], hi: Optional[float]) -> str:
    """`[0, pi/2]`; a missing bound is infinite."""
    lo_s = "-inf" if lo is None else _bound_text(lo)
    hi_s = "inf" if hi is None else _bound_text(hi)
    return f"[{lo_s}, {hi_s}]"


def _bound_text(v: float) -> str:
    # Neuron ranges are mostly multiples of pi; show them as written.
    for k, name in ((1.0, "pi"), (0.5, "pi/2"), (0.25, "pi/4"), (2.0, "2 pi")):
        if abs(v - k * math.pi) < 1e-12:
            return name
    return format_number(v)


def where(span: Span) -> str:
    """`file:line:col`, for a note pointing at an earlier declaration."""
    return f"{short_path(span.file)}:{span.line}:{span.col}"
