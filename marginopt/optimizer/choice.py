"""What a caller may ask for as the solver: a backend (how the program is formulated) or a
solver of the cvxpy chain. One enum for ``--solver``, the API's ``solver=`` and batch."""

from __future__ import annotations

from enum import Enum

from marginopt.errors import SolverError


class SolverChoice(str, Enum):
    SCENARIO = "SCENARIO"  # the large-scenario solver (backends/scenario_route.py)
    GENERATE = "GENERATE"  # scenario generation in the whole program (backends/generation.py)
    FULL = "FULL"  # every scenario in one cvxpy program (backends/cvxpy_program.py)
    HIGHS = "HIGHS"
    CLARABEL = "CLARABEL"
    ECOS = "ECOS"
    OSQP = "OSQP"

    @property
    def backend(self) -> str | None:
        """The backend this choice forces, or None where ``choose_backend`` decides."""
        return {"SCENARIO": "scenario", "GENERATE": "generate", "FULL": "cvxpy"}.get(self.value)

    @property
    def solver(self) -> str | None:
        """The solver this choice forces, or None."""
        return None if self.backend is not None else self.value

    @classmethod
    def parse(cls, name: str | SolverChoice | None) -> SolverChoice | None:
        if name is None or isinstance(name, SolverChoice):
            return name
        try:
            return cls(name.upper())
        except ValueError:
            raise SolverError(f"solver {name!r}: expected a solver ({', '.join(SOLVERS)}) or a formulation "
                              f"({', '.join(FORMULATIONS)}), or none to have one chosen", argument="solver") from None


FORMULATIONS = tuple(c.value for c in SolverChoice if c.backend is not None)
SOLVERS = tuple(c.value for c in SolverChoice if c.backend is None)
