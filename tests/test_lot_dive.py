"""The dive on the relaxation's working set (optimizer/backends/lot_dive.py): a case where nearest
rounding fails and the dive's re-solve compensates, worked by hand; its model of the terms checked
against expected shortfall computed by a sort (an independent method)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import highspy
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from test_integer_route import scenarios, write_case

import marginopt
from marginopt.optimizer import MarginProblem, run
from marginopt.optimizer.backends.integer_route import IntegerBackend
from marginopt.optimizer.backends.lot_dive import LotDive
from marginopt.optimizer.description import Mode, describe


def sum_case(folder: Path) -> Path:
    """Scenario maximum over four scenarios, hedges H0 and H1 in whole lots (box 2, cost 0.01 a unit):
    losses 10 (h0 + h1) - 8, 8 - 10 (h0 + h1), h0 - h1 and h1 - h0, so the margin is
    max(10 |h0 + h1 - 0.8|, |h0 - h1|)."""
    table = {"H0": [10.0, -10.0, 1.0, -1.0], "H1": [10.0, -10.0, -1.0, 1.0], "BOOK": [-8.0, 8.0, 0.0, 0.0]}
    pq.write_table(pa.table(table), folder / "losses.parquet")
    doc: dict[str, Any] = {
        "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20", "market": {"prices": {"X": 1.0}},
        "instruments": [{"id": i, "kind": "perpetual", "underlying": "X"} for i in ("H0", "H1", "BOOK")],
        "positions": [{"venue": "V", "instrument": "BOOK", "quantity": 1.0}],
        "venues": {"V": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "matrix", "file": "losses.parquet"}}}},
        "hedges": [{"venue": "V", "instrument": i, "max_buy": 2, "max_sell": 2, "cost_per_unit": 0.01, "lot_size": 1}
                   for i in ("H0", "H1")],
        "objective": "min_margin"}
    (folder / "case.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder / "case.yaml"


def test_the_dive_compensates_where_nearest_rounding_cannot(tmp_path: Path) -> None:
    """Continuous: h0 = h1 = 0.4 (margin 0, cost 0.008). The nearest lots (0, 0) leave 10 x 0.8 = 8.
    The dive fixes one hedge at 0 (both are 0.4 from a whole lot) and solves again: the other then
    minimizes max(10 |h - 0.8|, |h|) + 0.01 |h|, at 10 (0.8 - h) = h, h = 0.727..., whose nearest lot is
    1: (0, 1) or (1, 0), margin max(10 x 0.2, 1) = 2, cost 0.01: 2.01, the integer optimum ((1, 1):
    12.02, (1, -1) and the like: at least 8)."""
    case = marginopt.load_case(sum_case(tmp_path))
    d = describe(case, mode=Mode.HEDGE)
    relaxed = IntegerBackend(d).relaxed
    res = relaxed.relaxation()
    assert res.h == pytest.approx([0.4, 0.4], abs=1e-7) and res.objective == pytest.approx(0.008, abs=1e-7)
    assert relaxed.lp is not None
    dive = LotDive(relaxed.lp.terms, d, res.h)
    plan = dive.run(float("inf"))
    assert plan is not None and sorted(plan.tolist()) == pytest.approx([0.0, 1.0], abs=1e-9)
    assert dive.exact(plan) == pytest.approx(2.01, abs=1e-9)
    assert dive.exact(np.zeros(2)) == pytest.approx(8.0, abs=1e-9)

    r = run(MarginProblem(case, mode="hedge", backend="integer", mip_gap=1e-9))
    # The integer optimum, but 2.01 against the relaxation's 0.008 is no proof: feasible, at a local optimum.
    assert r.status == "feasible" and r.verification.passed and r.certificate["stopped"] == "local optimum"
    assert r.objective_value == pytest.approx(2.01, abs=1e-9)
    assert r.certificate["rounding"]["start"] == "dive" and r.certificate["rounding"]["dive_rounds"] == 1
    assert r.certificate["bound"] == pytest.approx(0.008, abs=1e-7)


def _model_value(dive: LotDive, h: np.ndarray) -> tuple[float, float]:
    """The dive's model of the terms at ``h`` (its LP with h+ and h- fixed), cost included, and its c."""
    lp, c_cols = dive._model()
    k = len(h)
    lower, upper = np.asarray(lp.col_lower_).copy(), np.asarray(lp.col_upper_).copy()
    lower[:k] = upper[:k] = np.maximum(h, 0.0)
    lower[k:2 * k] = upper[k:2 * k] = np.maximum(-h, 0.0)
    lp.col_lower_, lp.col_upper_ = lower, upper
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    hs.passModel(lp)
    hs.run()
    assert hs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(hs.getInfo().objective_function_value), float(hs.getSolution().col_value[c_cols[0]])


def test_the_model_is_exact_near_the_relaxation_below_elsewhere_and_exact_again_once_the_band_grows(tmp_path: Path) -> None:
    """20,000 scenarios, ES at 0.9 (a tail of 2,000; the band holds the 1,000 nearest the VaR, the 1,500
    or so above it are folded into one row): at the relaxation's optimum the model is the ES of a sort
    (mean of the 2,000 worst) plus the cost; at a plan far from it, below that; after the scenarios that
    break it at its own c join the band (the cut loop), equal again."""
    m, l0 = scenarios(20_000)
    d = describe(marginopt.load_case(write_case(tmp_path, m, l0, limit=False)), mode=Mode.HEDGE)
    relaxed = IntegerBackend(d).relaxed
    res = relaxed.relaxation()
    assert relaxed.lp is not None
    dive = LotDive(relaxed.lp.terms, d, res.h)
    assert len(dive.bands[0].band) == 1000 and 1000 < len(dive.bands[0].deep) < 2000

    def by_sort(h: np.ndarray) -> float:
        return float(np.sort(l0 + m @ h)[-2000:].mean() + 0.01 * np.abs(h).sum())

    assert _model_value(dive, res.h)[0] == pytest.approx(by_sort(res.h), rel=1e-9)
    far = res.h + np.array([1.5, -2.0, 1.0])
    assert _model_value(dive, far)[0] < by_sort(far) - 1e-3
    for _ in range(10):  # the model's own c says which scenarios break it (a deep one below, a dropped one above)
        value, level = _model_value(dive, far)
        if not dive._grow(far, [level]):
            break
    assert value == pytest.approx(by_sort(far), rel=1e-9)
