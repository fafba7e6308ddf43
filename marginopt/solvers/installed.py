"""Which of the solvers marginopt supports are importable here."""

from __future__ import annotations

import cvxpy as cp

SUPPORTED = ("HIGHS", "CLARABEL", "ECOS", "OSQP")


def installed_solvers() -> tuple[str, ...]:
    """Supported solvers cvxpy can call in this environment, in order of preference."""
    available = set(cp.installed_solvers())
    return tuple(s for s in SUPPORTED if s in available)
