"""Values as JSON can carry them, for every writer of a document (the CLI's --format json, the service)."""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: such a number (an amount the solver could not compute, a duality
    gap not reached) becomes null, never an invalid token. A numpy scalar (an iteration count, a
    flag) becomes the Python value ``json`` can write."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
