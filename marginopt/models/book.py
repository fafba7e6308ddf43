"""One venue's book: its instruments, positions, bound margin measures and scenario matrices."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from marginopt.models.case import Case
from marginopt.models.collateral import CollateralLine, credited_values
from marginopt.models.margin import BindContext, Measure
from marginopt.models.pricing import PricingInputs, price_inputs
from marginopt.models.scenarios import ScenarioContext, ScenarioLosses, ScenarioSpec
from marginopt.models.venues import FractionOfInitial, Venue
from marginopt.typing import FloatArray


class VenueBook:
    """A venue's instrument universe (positions and hedge candidates there, in
    instrument-table order), the position vector ``q`` over it, and its measures.

    Each scenario set is built once per venue and shared by every measure that
    names it (the initial and maintenance margin often scan the same grid).
    """

    def __init__(self, case: Case, venue: str, extra: tuple[str, ...] = ()) -> None:
        self.case = case
        self.venue: Venue = case.venues[venue]
        held = case.positions.at_venue(venue)
        hedged = {h.instrument for h in case.hedges if h.venue == venue} | set(extra)
        self.ids = tuple(i.id for i in case.instruments if i.id in held or i.id in hedged)
        self.q: FloatArray = np.array([held.get(i, 0.0) for i in self.ids])
        self.inputs: PricingInputs = price_inputs(self.ids, case.instruments, case.market, case.valuation_date)
        self._scenarios: dict[ScenarioSpec, ScenarioLosses] = {}
        self._ctx = ScenarioContext(self.inputs, case.market, case.valuation_date, frozenset(case.instruments.index))

    _TERMS = ("_flat", "cost_terms")  # caches that depend on the venue's and treasury's terms only

    def moved(self, case: Case) -> VenueBook:
        """This venue's book at ``case``'s market, keeping what depends only on unchanged terms."""
        new = VenueBook(case, self.venue.name)
        if case.venues[self.venue.name] is self.venue and case.treasury is self.case.treasury:
            for name in self._TERMS:
                if name in self.__dict__:
                    new.__dict__[name] = self.__dict__[name]
        return new

    @cached_property
    def cost_terms(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Eligible assets held in the treasury: funding rates, transfer rates, units posted now."""
        t = self.case.treasury
        assets = [a for a in self.venue.collateral if a in t]
        return (assets, np.array([t[a].cost for a in assets]), np.array([t[a].transfer_cost for a in assets]),
                np.array([self.venue.posted.get(a, 0.0) for a in assets]))

    def scenarios(self, spec: ScenarioSpec) -> ScenarioLosses:
        if spec not in self._scenarios:
            self._scenarios[spec] = spec.build(self._ctx)
        return self._scenarios[spec]

    def column(self, instrument: str) -> int:
        return self._columns[instrument]

    @cached_property
    def _columns(self) -> dict[str, int]:
        return {iid: j for j, iid in enumerate(self.ids)}

    @cached_property
    def initial(self) -> Measure:
        return self.venue.initial_margin.bind(BindContext(self.inputs, self.scenarios))

    @cached_property
    def maintenance(self) -> Measure | FractionOfInitial | None:
        mm = self.venue.maintenance_margin
        if mm is None or isinstance(mm, FractionOfInitial):
            return mm
        return mm.bind(BindContext(self.inputs, self.scenarios))

    def maintenance_margin(self, q: FloatArray, initial: float) -> float:
        """Maintenance margin at ``q``; equal to the initial margin when the venue sets none."""
        mm = self.maintenance
        if mm is None:
            return initial
        if isinstance(mm, FractionOfInitial):
            return mm.fraction * initial
        return mm.evaluate(q)

    @cached_property
    def _flat(self) -> tuple[list[str], np.ndarray, list[str]]:
        """Assets with a flat haircut and their value rates; assets with tiers."""
        sched = self.venue.collateral
        flat = [a for a, s in sched.items() if s.haircut is not None]
        return flat, np.array([1.0 - (sched[a].haircut or 0.0) for a in flat]), [a for a, s in sched.items() if s.haircut is None]

    def credited_total(self, quantities: dict[str, float]) -> float:
        """Total credited value of ``quantities`` (units per asset), as ``collateral()`` sums it, vectorized."""
        prices = self.case.market.prices
        flat, rates, tiered = self._flat
        after = dict(zip(flat, (np.array([quantities.get(a, 0.0) for a in flat]) * np.array([prices[a] for a in flat])
                                * rates).tolist(), strict=True))
        for a in tiered:
            after[a] = self.venue.collateral[a].value(quantities.get(a, 0.0) * prices[a])
        if not self.venue.concentration:
            return float(sum(after.values()))
        return float(sum(credited_values(after, self.venue.concentration).values()))

    def collateral(self, quantities: dict[str, float] | None = None) -> tuple[CollateralLine, ...]:
        """Value of posted collateral (or of ``quantities``): gross, after haircut, credited after concentration."""
        posted = dict(self.venue.posted if quantities is None else quantities)
        prices = self.case.market.prices
        gross = {a: qty * prices[a] for a, qty in posted.items()}
        after = {a: self.venue.collateral[a].value(g) for a, g in gross.items()}
        credited = credited_values(after, self.venue.concentration)
        return tuple(CollateralLine(a, posted[a], gross[a], after[a], credited[a]) for a in posted)


def whole_book_losses(case: Case, spec: ScenarioSpec, ids: tuple[str, ...]) -> ScenarioLosses:
    """A scenario set over instruments of every venue together (for whole-book limits)."""
    inputs = price_inputs(ids, case.instruments, case.market, case.valuation_date)
    return spec.build(ScenarioContext(inputs, case.market, case.valuation_date, frozenset(case.instruments.index)))
