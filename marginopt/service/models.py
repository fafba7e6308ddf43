"""The service's request and response schemas (pydantic), for validation and the OpenAPI spec.

A case itself is taken as a JSON object and validated by the case reader, which names
the field, row and what was expected (CASE_FORMAT.md); repeating its rules in pydantic
would give two sets of rules and worse messages. Request models are strict: no value is
converted from another JSON type. Response models document the JSON of
CASE_FORMAT.md; tests check real answers against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from marginopt.models.magnitude import MAX_MAGNITUDE

CASE_DOC = ("A case: the keys of the case file (CASE_FORMAT.md, format marginopt/1) as JSON. Tables (instruments, "
            "positions, hedges, market.history) are lists of row objects; the service reads no files, so a path "
            "where a table belongs, a matrix scenario set or a preset that reads a venue's snapshot is refused (422).")

EXAMPLE_CASE: dict[str, Any] = {
    "format": "marginopt/1",
    "base_currency": "USD",
    "valuation_date": "2026-11-20",
    "market": {"prices": {"BTC": 91000, "USDC": 1.0}, "vols": {"BTC": 0.55}},
    "instruments": [
        {"id": "BTC-PERP", "kind": "perpetual", "underlying": "BTC"},
        {"id": "BTC-C100", "kind": "option", "underlying": "BTC", "expiry": "2026-12-25", "strike": 100000, "right": "call"},
    ],
    "positions": [{"venue": "pm", "instrument": "BTC-C100", "quantity": -10}],
    "hedges": [{"venue": "pm", "instrument": "BTC-PERP", "max_buy": 20, "max_sell": 20, "cost_per_unit": 20}],
    "venues": {"pm": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "grid", "price_moves": [-0.1, 0, 0.1]}},
                      "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 200000}}},
    "objective": "min_margin",
}


class _Request(BaseModel):
    """Strict: a field takes its own JSON type only ("10" or true is no number, 5 no text), as the case
    reader's rules do (a number given as text in a case's table is refused in ``cases``); unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LegIn(_Request):
    venue: str = Field(min_length=1, description="The venue the leg is traded at.")
    instrument: str = Field(min_length=1, description="An instrument id of the case.")
    quantity: float = Field(allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE,
                            description="Signed contracts (negative: sell), at most 1e15 either way.")


class RouteLegIn(_Request):
    instrument: str = Field(min_length=1, description="An instrument id of the case.")
    quantity: float = Field(allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE,
                            description="Signed contracts (negative: sell), at most 1e15 either way.")


LEGS_DOC = ("The legs of one trade (a spread, a strategy), all traded together; instead of venue, instrument "
            "and quantity (the one-leg form).")


class WhatIfRequest(_Request):
    """One leg (``venue``, ``instrument``, ``quantity``) or several (``legs``), not both."""

    case: dict[str, Any] = Field(description=CASE_DOC)
    venue: str | None = Field(default=None, min_length=1, description="The venue the trade is made at.")
    instrument: str | None = Field(default=None, min_length=1, description="An instrument id of the case.")
    quantity: float | None = Field(default=None, allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE,
                            description="Signed contracts (negative: sell), at most 1e15 either way.")
    legs: list[LegIn] | None = Field(default=None, min_length=1, max_length=1000, description=LEGS_DOC)


class RouteRequest(_Request):
    """One leg (``instrument``, ``quantity``) or several (``legs``), not both: every leg is routed to the
    same venue, each venue that lists all their instruments."""

    case: dict[str, Any] = Field(description=CASE_DOC)
    instrument: str | None = Field(default=None, min_length=1, description="An instrument id of the case.")
    quantity: float | None = Field(default=None, allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE,
                            description="Signed contracts (negative: sell), at most 1e15 either way.")
    legs: list[RouteLegIn] | None = Field(default=None, min_length=1, max_length=1000, description=LEGS_DOC)


class VenueMarginOut(BaseModel):
    venue: str
    initial_margin: float
    maintenance_margin: float
    collateral_value: float
    excess: float = Field(description="collateral_value - initial_margin; negative is a shortfall")
    worst_scenario: str | None
    components: dict[str, float]


class LimitOut(BaseModel):
    limit: str
    value: float
    lower: float | None
    upper: float | None
    unit: str
    use: float | None = Field(description="value / the bound on its side")
    binding: str | None = Field(description="upper or lower when the value is on that bound")
    worth: float | None = Field(description="A continuous plan's objective saving per unit of the bound relaxed (its dual)")


class MarginOut(BaseModel):
    base_currency: str
    venues: list[VenueMarginOut]
    total_initial_margin: float
    total_shortfall: float = Field(description="Negative excesses summed (not netted against surpluses)")
    total_surplus: float = Field(description="Positive excesses summed")
    limits: list[LimitOut] | None = None


class CrossingOut(BaseModel):
    move: float | None = Field(description="Smallest relative move that breaches the level (null: none in the scan)")
    prices: dict[str, float] = Field(description="The moved underlyings' prices at that move")
    breached_now: bool


class DistanceOut(BaseModel):
    direction: str
    underlyings: list[str]
    call: CrossingOut = Field(description="Margin balance below initial margin")
    liquidation: CrossingOut = Field(description="Margin balance below maintenance margin")


class VenueHealthOut(BaseModel):
    venue: str
    margin_balance: float = Field(description="collateral + unrealized_pnl + option_value")
    collateral: float
    unrealized_pnl: float
    option_value: float
    long_option_value: float
    short_option_value: float
    long_options_counted: bool
    initial_margin: float
    maintenance_margin: float
    margin_ratio: float | None = Field(description="maintenance_margin / margin_balance; null without a positive balance")
    excess_initial: float
    excess_maintenance: float
    distance: list[DistanceOut]


class ScanOut(BaseModel):
    down: float
    up: float
    step_down: float
    step_up: float
    tolerance: float


class MarginHealthOut(BaseModel):
    base_currency: str
    valuation_date: str
    scan: ScanOut
    venues: list[VenueHealthOut]


class HedgeOut(BaseModel):
    venue: str
    instrument: str
    quantity: float
    cost: float


class AllocationOut(BaseModel):
    venue: str
    asset: str
    quantity: float
    value: float


class MarginChangeOut(BaseModel):
    venue: str
    before: float
    after: float


class VerificationOut(BaseModel):
    passed: bool
    max_violation: float | None


class SolverOut(BaseModel):
    name: str | None
    build_seconds: float | None
    solve_seconds: float | None


class ShortfallOut(BaseModel):
    constraint: str
    shortfall: float


class PlanMarginOut(BaseModel):
    venue: str
    after: float
    collateral_after: float


class ContinuousOut(BaseModel):
    status: str = Field(description="optimal, infeasible or failed: the case without its execution terms")
    objective_value: float | None = Field(description="The continuous optimum: a lower bound on the executable plan's cost")
    margins: list[PlanMarginOut] | None = None


class ExecutableOut(BaseModel):
    objective_value: float
    over_continuous: float | None = Field(description="The executable plan's cost less the continuous optimum")


class FailedCheckOut(BaseModel):
    check: str
    violation: float


class RoundedHedgeOut(BaseModel):
    venue: str
    instrument: str
    quantity: float


class RoundedAllocationOut(BaseModel):
    venue: str
    asset: str
    quantity: float
    posted_before: float


class NaiveRoundingOut(BaseModel):
    """The continuous plan rounded by hand (nearest lots, 0 under min_trade; moves to the nearest
    rounding, dropped under the minimum transfer), verified against the case."""

    objective_value: float
    feasible: bool
    failed_checks: list[FailedCheckOut]
    hedges: list[RoundedHedgeOut]
    allocation: list[RoundedAllocationOut]
    margins: list[PlanMarginOut]


class ExecutabilityOut(BaseModel):
    """An executable plan (a case with execution terms) beside the continuous optimum and its naive rounding."""

    continuous: ContinuousOut
    executable: ExecutableOut
    naive_rounding: NaiveRoundingOut | None


class PlanOut(BaseModel):
    """The JSON of ``marginopt optimize --format json``. ``status``: optimal (verified plan; an executable one
    proven optimal), feasible (an executable plan, verified, not proven optimal: ``status_detail`` says what
    stopped its search, such as the time limit, and the gap left), infeasible (no plan exists;
    ``infeasibility`` says what is short and by how much) or failed (no verified plan)."""

    status: str
    status_detail: str | None = Field(default=None, description="An executable plan's status in words: proven optimal "
                                      "within the gap asked for, or what stopped the search and the relative gap to the bound")
    objective: str
    objective_value: float | None
    hedges: list[HedgeOut]
    allocation: list[AllocationOut]
    margins: list[MarginChangeOut]
    shadow_prices: dict[str, dict[str, float | None]]
    verification: VerificationOut
    solver: SolverOut
    tolerance: dict[str, float] = Field(description="Quantities, shadow prices and max_violation within absolute + "
                                                    "relative x |x| of a whole number (zero included) are reported as it")
    certificate: dict[str, Any] | None = None
    executability: ExecutabilityOut | None = None
    safety: dict[str, Any] | None = Field(default=None, description="A stress-safe plan (the case's safety): the plan "
                                          "beside the cheapest one without the constraint, each under the stress set "
                                          "and with its nearest liquidation (CASE_FORMAT.md, Stress-safe plans)")
    infeasibility: list[ShortfallOut] | None = None
    excess: dict[str, Any] | None = Field(default=None, description="total_shortfall and total_surplus after the plan, apart")
    limits: list[LimitOut] | None = None


class LegOut(BaseModel):
    venue: str
    instrument: str
    quantity: float


class VenueChangeOut(BaseModel):
    venue: str
    initial_margin_before: float
    initial_margin_after: float
    maintenance_margin_before: float
    maintenance_margin_after: float
    collateral_value: float = Field(description="Credited value of the collateral posted (the trade does not move it)")
    excess_before: float = Field(description="collateral_value - initial_margin_before")
    excess_after: float = Field(description="collateral_value - initial_margin_after")
    incremental_margin: float


class WhatIfOut(BaseModel):
    """A trade's effect. ``instrument`` and ``quantity`` are the single leg's (null for several legs), ``venue``
    the legs' venue (null when they are at several); margins are initial margin summed over the venues touched."""

    venue: str | None
    instrument: str | None
    quantity: float | None
    legs: list[LegOut]
    margin_before: float
    margin_after: float
    incremental_margin: float
    venues: list[VenueChangeOut]


class PositionsOut(BaseModel):
    positions: list[dict[str, Any]] = Field(description="Rows venue, instrument, quantity[, account], ready for a case.")


class ErrorItem(BaseModel):
    loc: list[str | int]
    field: str = Field(description="The field at fault, dotted from the top of the request body.")
    msg: str
    type: str


class ErrorOut(BaseModel):
    detail: list[ErrorItem]


class HealthOut(BaseModel):
    status: str
    version: str
    solve_threads: int
    pending: int
    max_body_bytes: int
    read_timeout_s: float
    solve_timeout_s: float
