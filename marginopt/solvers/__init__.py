"""Solver choice, status mapping and fallbacks."""

from marginopt.solvers.installed import installed_solvers

__all__ = ["installed_solvers"]
