"""Values as the docker CLI turns them into text (Go's fmt %v), for environment and label values
written as numbers."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


def go_string(value: Any) -> str:
    """str(value), but a float as Go prints it: 1.0 -> "1", 1e3 -> "1000", 1.5e300 -> "1.5e+300"."""
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    magnitude = abs(value)
    if magnitude == 0 or 1e-4 <= magnitude < 1e21:
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exponent = f"{value:e}".partition("e")
    shortest = repr(value)
    mantissa = shortest.partition("e")[0] if "e" in shortest else mantissa.rstrip("0").rstrip(".")
    sign, digits = exponent[0], exponent[1:].lstrip("0")
    return f"{mantissa}e{sign}{digits.zfill(2)}"
