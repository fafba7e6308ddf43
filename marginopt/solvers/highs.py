"""HiGHS instances that print nothing, and a timed run, for the backends that drive HiGHS directly."""

from __future__ import annotations

import time
from typing import Any, TypeAlias

import highspy

from marginopt.solvers.quiet import guarded_stdout
from marginopt.solvers.status import SolveStatus

# highspy's ``Highs()`` registers its Python callback in the constructor, and from highspy 1.16
# that first call writes the "Running HiGHS ... Copyright" banner on stdout before any option
# can be set. The core object it wraps prints nothing until asked to; every method the backends
# use (addCols, addRows, passModel, run, getSolution, ...) is the core's own.
_CORE: Any = getattr(highspy, "_Highs", None)

Highs: TypeAlias = Any
"""What ``quiet_highs`` returns: the core HiGHS object (or highspy's wrapper of it where the core is not exported)."""


FEASIBLE_SOLUTION = 2  # HiGHS's kSolutionStatusFeasible: a primal solution is there (a MIP's incumbent)


def quiet_highs() -> Highs:
    """A HiGHS instance whose log is off before its first call that could print."""
    if _CORE is not None:
        hs = _CORE()
        hs.setOptionValue("output_flag", False)
        return hs
    with guarded_stdout():  # a highspy without the core class exported: no option precedes the banner
        hs = highspy.Highs()
        hs.setOptionValue("output_flag", False)
    return hs


def run_lp(hs: Highs, seconds: dict[str, float]) -> SolveStatus | None:
    """Run HiGHS, adding its time to ``seconds["lp"]``; None when optimal, else the status to
    report (infeasible or error)."""
    t1 = time.perf_counter()
    hs.run()
    seconds["lp"] += time.perf_counter() - t1
    status = hs.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        return None
    return SolveStatus.INFEASIBLE if status == highspy.HighsModelStatus.kInfeasible else SolveStatus.ERROR
