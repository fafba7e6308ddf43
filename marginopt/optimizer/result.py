"""The result of an optimization: plan tables, margins, shadow prices, verification, solver report."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from marginopt.errors import InfeasibleError, OptimizationError
from marginopt.models.enums import Objective
from marginopt.models.hedges import HedgeCandidate
from marginopt.models.limit_use import LimitUse
from marginopt.models.report import excess_apart
from marginopt.optimizer.executability import CUT_ROUNDS, GAP_CLOSED, LOCAL_OPTIMUM, TIME_LIMIT, Executability
from marginopt.optimizer.safety import SafetyCost
from marginopt.optimizer.verify import Verification
from marginopt.solvers import SolveReport

# Solver dust: the solvers stop at relative tolerances near 1e-8 (HiGHS's primal and dual feasibility
# 1e-7, Clarabel's 1e-8), so a plan's quantities and duals carry round-off such as 3.12e-08 contracts,
# -17.99999999999897 or a shadow price of 3.6e-14. On output only (verification runs on the solver's
# numbers), a quantity or dual within SNAP_ABSOLUTE + SNAP_RELATIVE * |x| of a whole number (zero
# included) is reported as that number; 0.5 or 1e-3 contracts are real and kept.
SNAP_ABSOLUTE = 1e-6
SNAP_RELATIVE = 1e-8
TOLERANCE = {"absolute": SNAP_ABSOLUTE, "relative": SNAP_RELATIVE}

# The statuses of a verified plan: ``optimal`` (proven, or a continuous program solved to its optimum) and
# ``feasible`` (an executable plan whose search stopped before its gap closed: a time limit, a local optimum;
# its certificate says which and how far from the bound). Never the bare word optimal for an unproven plan.
PLAN_STATUSES = ("optimal", "feasible")


def plan_status(certificate: dict[str, Any] | None) -> str:
    """``feasible`` for a verified plan whose certificate does not prove it optimal, else ``optimal``."""
    return "feasible" if certificate is not None and certificate.get("proven_optimal") is False else "optimal"


def status_detail(certificate: dict[str, Any] | None) -> str | None:
    """An executable plan's status in words: proven within the gap asked for, or what stopped the search
    and the gap left ("time limit reached (60 s): relative gap 0.021 to the bound 39,681.67, above the
    0.0001 asked for; not proven optimal"). None for a plan without an incumbent and bound."""
    if certificate is None or certificate.get("incumbent") is None:
        return None
    rel, asked = certificate["relative_gap"], certificate["requested_gap"]
    if certificate["proven_optimal"]:
        return f"proven optimal: relative gap {rel:.3g} to the bound {certificate['bound']:,.6g}, within the {asked:g} asked for"
    stopped = certificate.get("stopped") or "stopped"
    why = {TIME_LIMIT: f"time limit reached ({certificate['time_limit']:g} s)",
           LOCAL_OPTIMUM: "the lot search ended at a local optimum (no one- or two-lot move improves it)",
           CUT_ROUNDS: "the rounds of impact cuts ran out (the impact cost still understated)",
           GAP_CLOSED: "the solver's gap closed, the plan's recomputed cost above its bound"}.get(stopped, stopped)
    return (f"{why}: relative gap {rel:.3g} to the bound {certificate['bound']:,.6g}, above the {asked:g} asked for; "
            "not proven optimal")


def snap(x: float) -> float:
    """``x`` within the plan's output tolerance of a whole number (or zero) is that number; else ``x``.
    Never -0.0; a non-finite ``x`` is returned as it is."""
    x = float(x)
    if not math.isfinite(x):
        return x
    whole = float(round(x))
    if abs(x - whole) <= SNAP_ABSOLUTE + SNAP_RELATIVE * abs(x):
        return whole + 0.0  # -0.0 + 0.0 is 0.0
    return x


def snapped(frame: pd.DataFrame, columns: tuple[str, ...] = ("quantity",),
            candidates: tuple[HedgeCandidate, ...] = ()) -> pd.DataFrame:
    """A copy of a plan table with ``columns`` snapped, and what is derived from a snapped quantity
    computed from the quantity as shown, so that the table is consistent with itself:

    - a hedge's ``cost`` is ``cost_per_unit * |q| + impact * q^2`` of the shown ``q`` (``candidates``,
      one per row, as the plan's hedges table is built); without them a hedge snapped to no trade
      costs nothing;
    - an allocation's ``value`` (gross market value, ``q * price``) is the shown ``q`` times the price
      recovered as ``value / q`` of the solver's ``q`` (the table does not carry the price). That
      ratio is within one rounding of the price; 15 significant digits, which a decimal price from a
      case file round-trips through, take it back to the price itself.
    """
    out = frame.copy()
    if not len(out):
        return out
    raw = {col: out[col].astype(float).tolist() for col in columns if col in out}
    for col, values in raw.items():
        out[col] = [snap(v) for v in values]
    if "quantity" not in raw:
        return out
    before, shown = raw["quantity"], out["quantity"].tolist()
    if "cost" in out:
        if len(candidates) == len(out):
            out["cost"] = [c.cost_per_unit * abs(q) + c.impact * q * q if q != r else cost
                           for c, q, r, cost in zip(candidates, shown, before, out["cost"], strict=True)]
        else:
            out.loc[out["quantity"] == 0.0, "cost"] = 0.0
    if "value" in out:
        out["value"] = [value if q == r else 0.0 if q == 0.0 else q * float(f"{value / r:.15g}")
                        for q, r, value in zip(shown, before, out["value"].astype(float), strict=True)]
    return out


@dataclass(frozen=True)
class OptimizationResult:
    """``status`` is ``optimal`` for a plan that a solver found and verification passed, proven optimal
    where it is an executable plan (its certificate's gap within the gap asked for).

    ``feasible``: an executable plan, verified, whose search stopped before its gap closed (the time
    limit, a local optimum of the lot search): ``status_detail`` and the certificate's ``stopped`` say
    what stopped it and the gap left. ``infeasible``: no plan exists; ``shortfalls`` says what is short
    and by how much. ``failed``: no solver produced a plan that passed verification.
    """

    status: str
    objective: Objective
    mode: str
    objective_value: float | None
    hedges: pd.DataFrame  # venue, instrument, quantity, cost
    allocation: pd.DataFrame  # venue, asset, quantity, value (gross market value), posted_before
    margins: pd.DataFrame  # venue, before, after, collateral_after, excess_after
    shadow_prices: dict[str, dict[str, float]]
    verification: Verification | None
    solver: SolveReport
    shortfalls: tuple[tuple[str, float], ...] = ()
    costs: dict[str, float] = field(default_factory=dict)
    candidates: tuple[HedgeCandidate, ...] = ()
    # Scenario generation: method, rounds, lower_bound, gap, scenarios_in_program (per venue) and, where an
    # expected shortfall is held as cuts, cuts_in_program (per venue).
    certificate: dict[str, Any] | None = None
    # An executable plan (a case with execution terms): the continuous optimum and the naive rounding beside it.
    executability: Executability | None = None
    safety: SafetyCost | None = None  # a stress-safe plan: what safety costs (optimizer.safety)
    limits: tuple[LimitUse, ...] = ()  # each limit's use after the plan, and its worth (models.limit_use)
    attribution_of: Callable[[], pd.DataFrame] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def attribution(self) -> pd.DataFrame | None:
        """Euler allocation of each venue's margin after the plan: venue, instrument, position,
        contribution (computed when first asked for)."""
        return self.attribution_of() if self.attribution_of is not None else None

    @property
    def succeeded(self) -> bool:
        """A verified plan: ``optimal`` or ``feasible`` (not proven optimal: ``status_detail``)."""
        return self.status in PLAN_STATUSES

    @property
    def status_detail(self) -> str | None:
        """An executable plan's status in words (``status_detail``): proven, or what stopped it and its gap."""
        return status_detail(self.certificate) if self.succeeded else None

    def raise_for_status(self) -> OptimizationResult:
        """This result when it has a verified plan (``optimal``, or ``feasible``: not proven optimal,
        ``status_detail`` says why), for callers who prefer an exception to reading ``status``: ``InfeasibleError`` (its ``shortfalls``, each named in the message) when
        no plan exists, ``OptimizationError`` naming every solver attempt when none was verified.

            plan = marginopt.optimize(case).raise_for_status()
        """
        if self.succeeded:
            return self
        if self.status == "infeasible":
            short = "; ".join(f"{name} short by {amount:,.6g}" for name, amount in self.shortfalls)
            raise InfeasibleError(f"no plan satisfies the case ({self.mode}, {self.objective.value}): {short or 'nothing short'}; "
                                  "relax these (more collateral posted or eligible, wider hedge or limit bounds)",
                                  shortfalls=self.shortfalls)
        attempts = "; ".join(f"{a.solver} {a.status.value}" + (f" ({a.note})" if a.note else "") for a in self.solver.attempts)
        failed = "" if self.verification is None else "; ".join(
            f"{c.name} violated by {c.violation:.6g}" for c in self.verification.failures[:3])
        raise OptimizationError(f"no verified plan ({self.mode}, {self.objective.value}): solver attempts: {attempts or 'none'}"
                                + (f"; verification failed: {failed}" if failed else "")
                                + "; naming another solver (the solver argument) may succeed")

    def table(self, name: str) -> pd.DataFrame:
        """A plan table as shown (``hedges``, ``allocation``, ``margins``): quantities snapped (``snap``),
        and each hedge's cost and each allocation's value computed from the snapped quantity (``snapped``)."""
        frame: pd.DataFrame = getattr(self, name)
        if name == "hedges":
            return snapped(frame, candidates=self.candidates)
        return snapped(frame) if name == "allocation" else frame

    @property
    def shown_shadow_prices(self) -> dict[str, dict[str, float]]:
        """The shadow prices as shown: each snapped (``snap``)."""
        return {group: {k: snap(v) if v is not None else v for k, v in values.items()}
                for group, values in self.shadow_prices.items()}

    def to_dict(self, details: bool = False) -> dict[str, Any]:
        """Exactly the JSON of ``marginopt optimize --format json`` (CASE_FORMAT.md), with ``details`` (``--details``)
        each limit's use and worth (``limits``) and the excess after the plan apart (``excess``), plus
        ``infeasibility`` when no plan exists, and ``status_detail``, ``certificate`` and ``executability`` for an executable plan. Quantities, shadow prices and the largest violation
        are snapped to whole numbers within ``tolerance`` (``snap``), which the JSON states."""
        verification: dict[str, Any] = {"passed": False, "max_violation": None}
        if self.verification is not None:
            verification = {**self.verification.to_dict(), "max_violation": snap(self.verification.max_violation)}
        out: dict[str, Any] = {
            "status": self.status,
            **({"status_detail": self.status_detail} if self.status_detail is not None else {}),
            "objective": self.objective.value,
            "objective_value": self.objective_value,
            "hedges": _records(self.table("hedges"), ["venue", "instrument", "quantity", "cost"]),
            "allocation": _records(self.table("allocation"), ["venue", "asset", "quantity", "value"]),
            "margins": _records(self.margins, ["venue", "before", "after"]),
            "shadow_prices": self.shown_shadow_prices,
            "verification": verification,
            "solver": self.solver.to_dict(),
            "tolerance": dict(TOLERANCE),
        }
        if self.certificate is not None:
            out["certificate"] = self.certificate
        if self.executability is not None:
            out["executability"] = self.executability.to_dict()
        if self.safety is not None:
            out["safety"] = self.safety.to_dict()
        if details:  # only when asked: the document's keys stay the documented ones for every other reader
            out["limits"] = [u.to_dict() for u in self.limits]
            out["excess"] = (excess_apart(self.margins["collateral_after"] - self.margins["after"], self.margins["venue"])
                             if self.succeeded else None)
        if self.status == "infeasible":
            out["infeasibility"] = [{"constraint": name, "shortfall": amount} for name, amount in self.shortfalls]
        return out


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame[columns].to_dict("records")]
