"""The numbers behind a report's scenario and collateral charts, computed from the case."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.margin import Measure
from marginopt.models.margin.composite import Composite
from marginopt.models.margin.scenario_max import ScenarioMeasure
from marginopt.models.scenarios.base import NumberedLabels
from marginopt.optimizer.result import OptimizationResult
from marginopt.typing import FloatArray

Worst = list[tuple[str, float]]  # (scenario label, weighted loss), largest first


def scenario_terms(measure: Measure) -> list[ScenarioMeasure]:
    """The scenario-based terms of a (composite) measure, in order."""
    if isinstance(measure, ScenarioMeasure):
        return [measure]
    if isinstance(measure, Composite):
        return [s for t in measure.terms for s in scenario_terms(t)]
    return []


def largest(labels: Sequence[str] | np.ndarray | NumberedLabels, losses: FloatArray, n: int) -> Worst:
    """The ``n`` largest losses with their labels, largest first (a partial sort: sets can
    hold a million scenarios)."""
    k = min(n, len(losses))
    top = np.argpartition(-losses, k - 1)[:k]
    top = top[np.argsort(-losses[top], kind="stable")]
    return [(str(labels[i]), float(losses[i])) for i in top]


def top_scenarios(book: VenueBook, q: FloatArray, n: int) -> Worst:
    """The ``n`` largest weighted scenario losses (weight x loss, as ``Measure.worst_scenario``
    ranks them) of the venue's initial-margin scenario terms at positions ``q``. With several
    terms each label is prefixed with its term's name."""
    terms = scenario_terms(book.initial)
    out: Worst = []
    for t in terms:
        weighted = t.losses.weights * t.losses.losses(q)
        prefix = f"{t.name}: " if len(terms) > 1 else ""
        out += [(prefix + label, loss) for label, loss in largest(t.losses.labels, weighted, n)]
    return sorted(out, key=lambda x: -x[1])[:n]


def positions_after(book: VenueBook, hedges: pd.DataFrame | None) -> FloatArray:
    """The venue's positions plus the plan's hedges there (every candidate is a column of the book)."""
    q = book.q.copy()
    if hedges is None or hedges.empty:
        return q
    for r in hedges[hedges["venue"] == book.venue.name].itertuples():
        q[book.column(str(r.instrument))] += float(r.quantity)  # type: ignore[arg-type]
    return q


def worst_by_venue(case: Case, n: int, hedges: pd.DataFrame | None = None) -> dict[str, Worst]:
    """Each scenario-based venue's ``n`` largest weighted losses, at the book as it is or with ``hedges``."""
    out: dict[str, Worst] = {}
    for name in case.venues:
        book = VenueBook(case, name)
        if scenario_terms(book.initial):
            out[name] = top_scenarios(book, positions_after(book, hedges), n)
    return out



def visible_hedges(result: OptimizationResult) -> pd.DataFrame:
    """The trades people see, as the terminal table shows them: interior-point solvers leave
    round-off (1e-8 contracts) on trades they do not want, so a trade shows above a millionth
    of its candidate's bound."""
    hedges = result.table("hedges")  # quantities snapped, costs of the snapped quantities
    bound = pd.Series([max(c.max_buy, c.max_sell, 1.0) for c in result.candidates], index=hedges.index, dtype=float)
    return hedges[hedges["quantity"].abs() > 1e-6 * bound]


def whole_lots(quantity: float, lot_size: float) -> int:
    """``quantity`` as a signed whole number of lots of ``lot_size`` (an executable plan's are whole)."""
    return round(quantity / lot_size)


def hedge_lots(result: OptimizationResult, trades: pd.DataFrame) -> pd.DataFrame:
    """Each of ``trades`` (``visible_hedges``: indexed by candidate) with its lot size and its quantity
    in lots, signed as the quantity; NaN where the hedge has no lot size."""
    sizes = [result.candidates[int(k)].lot_size for k in trades.index]
    lots = [float("nan") if size is None else float(whole_lots(float(q), size)) for q, size in zip(trades["quantity"], sizes, strict=True)]
    return pd.DataFrame({"lot_size": [float("nan") if size is None else size for size in sizes], "lots": lots}, index=trades.index)


def allocation_rows(result: OptimizationResult, case: Case) -> pd.DataFrame:
    """venue, asset, posted_before, quantity, change, value_before, value (gross market values),
    without the round-off on assets not posted before and not wanted after."""
    alloc = result.table("allocation")  # quantities as the plan shows them (snapped)
    if alloc.empty:
        return pd.DataFrame(columns=["venue", "asset", "posted_before", "quantity", "change", "value_before", "value"])
    before = alloc["posted_before"].astype(float)
    q = alloc["quantity"].astype(float).where(alloc["quantity"].abs() > 1e-6 * before.clip(lower=1.0), 0.0)
    prices = alloc["asset"].map(lambda a: case.market.prices[str(a)]).astype(float)
    out = pd.DataFrame({"venue": alloc["venue"], "asset": alloc["asset"], "posted_before": before, "quantity": q,
                        "change": q - before, "value_before": before * prices, "value": q * prices})
    return out[(out["quantity"] != 0.0) | (out["posted_before"] != 0.0)].reset_index(drop=True)
