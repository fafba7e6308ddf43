"""Integer hedges over large scenario sets (optimizer/backends/integer_route.py): rounding and
repair on the scenario solver's relaxation, against every lot combination enumerated here (an
independent method: each combination's ES is the mean of its worst scenarios, by a sort)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import marginopt
from marginopt.optimizer import MarginProblem, run
from marginopt.optimizer.backends import choose_backend

ALPHA = 0.9
COST = 0.01
LOTS = (0.5, 1.0, 2.0)
BOUND = 6.0
MIN_TRADE = 1.5  # on H1: 0 or at least 2 lots of 1.0
LIMIT = 2.3  # H0 + H1 <= 2.3


def scenarios(s: int, k: int = 3, seed: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Three instruments on two Student-t factors and their own noise; the book holds about
    (2.3, -1.7, 3.1) of them and a risk of its own, so the best hedge is a partial one, between lots."""
    rng = np.random.default_rng(seed)
    m = rng.standard_t(5, (s, 2)) @ rng.normal(size=(2, k)) + 0.4 * rng.standard_t(5, (s, k))
    l0 = m @ np.array([2.3, -1.7, 3.1])[:k] + 0.8 * rng.standard_t(5, s)
    return m, l0


def write_case(folder: Path, m: np.ndarray, l0: np.ndarray, limit: bool = True, max_tickets: int | None = None) -> Path:
    ids = [f"H{j}" for j in range(m.shape[1])]
    table = {i: m[:, j] for j, i in enumerate(ids)} | {"BOOK": l0}
    pq.write_table(pa.table(table), folder / "losses.parquet")
    hedges = [{"venue": "V", "instrument": i, "max_buy": BOUND, "max_sell": BOUND, "cost_per_unit": COST,
               "lot_size": lot} for i, lot in zip(ids, LOTS, strict=False)]
    hedges[1]["min_trade"] = MIN_TRADE
    doc = {"format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
           "market": {"prices": {"X": 1.0}},
           "instruments": [{"id": i, "kind": "perpetual", "underlying": "X"} for i in [*ids, "BOOK"]],
           "positions": [{"venue": "V", "instrument": "BOOK", "quantity": 1.0}],
           "venues": {"V": {"initial_margin": {"kind": "expected_shortfall", "alpha": ALPHA,
                                               "scenarios": {"kind": "matrix", "file": "losses.parquet"}}}},
           "hedges": hedges, "objective": "min_margin",
           "limits": {"linear": [{"coefficients": {"H0": 1.0, "H1": 1.0}, "upper": LIMIT}]} if limit else {}}
    if max_tickets is not None:
        doc["execution"] = {"max_tickets": max_tickets}
    (folder / "case.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder / "case.yaml"


def brute_force(m: np.ndarray, l0: np.ndarray, limit: bool = True, max_tickets: int | None = None) -> tuple[float, np.ndarray]:
    """The best whole-lot plan by enumeration: ES_alpha as the mean of the worst (1 - alpha) S
    losses (S (1 - alpha) a whole number here), floored at 0, plus the trading cost; with
    ``max_tickets``, over the plans with at most that many non-zero lines."""
    s = len(l0)
    tail = round((1 - ALPHA) * s)
    assert tail == pytest.approx((1 - ALPHA) * s)
    grids = []
    for j, lot in enumerate(LOTS):
        n = np.arange(-round(BOUND / lot), round(BOUND / lot) + 1)
        h = n * lot
        if j == 1:
            h = h[(h == 0) | (np.abs(h) >= MIN_TRADE)]
        grids.append(h)
    plans = np.array(list(itertools.product(*grids)))
    if limit:
        plans = plans[plans[:, 0] + plans[:, 1] <= LIMIT]
    if max_tickets is not None:
        plans = plans[(plans != 0).sum(axis=1) <= max_tickets]
    es = np.empty(len(plans))
    for lo in range(0, len(plans), 200):  # 200 plans at a time: 32 MB of losses at 20,000 scenarios
        losses = l0[:, None] + m @ plans[lo:lo + 200].T
        es[lo:lo + 200] = np.partition(losses, s - tail, axis=0)[s - tail:].mean(axis=0)
    total = np.maximum(es, 0.0) + COST * np.abs(plans).sum(axis=1)
    best = int(np.argmin(total))
    return float(total[best]), plans[best]


@pytest.mark.parametrize("limit", [True, False])
@pytest.mark.parametrize("seed", [17, 23, 31])
def test_rounding_and_repair_matches_enumeration(tmp_path: Path, seed: int, limit: bool) -> None:
    m, l0 = scenarios(300, seed=seed)
    case = marginopt.load_case(write_case(tmp_path, m, l0, limit))
    problem = MarginProblem(case, mode="hedge", backend="integer")
    r = run(problem)
    assert r.verification.passed
    # The integer optimum (by enumeration), but the gap to the relaxation's bound does not close within
    # 1e-6: not proven, so feasible, stopped at a local optimum of the search (never the bare word optimal).
    cert = r.certificate
    if cert["proven_optimal"]:
        assert r.status == "optimal" and cert["stopped"] == "gap closed"
    else:
        assert r.status == "feasible" and cert["stopped"] == "local optimum", r.solver.attempts
        assert r.status_detail.startswith("the lot search ended at a local optimum") and "not proven optimal" in r.status_detail
    best, plan = brute_force(m, l0, limit)
    assert r.objective_value == pytest.approx(best, rel=1e-7, abs=1e-9), (r.hedges, plan)
    h = r.hedges["quantity"].to_numpy()
    for q, lot in zip(h, LOTS, strict=True):
        assert q / lot == pytest.approx(round(q / lot), abs=1e-12)
    assert h[1] == 0.0 or abs(h[1]) >= MIN_TRADE
    if limit:
        assert h[0] + h[1] <= LIMIT + 1e-9


def test_certificate_bound_below_plan(tmp_path: Path) -> None:
    m, l0 = scenarios(300)
    case = marginopt.load_case(write_case(tmp_path, m, l0))
    r = run(MarginProblem(case, mode="hedge", backend="integer"))
    cert = r.certificate
    assert cert is not None and r.objective_value is not None
    tol = 1e-7 * abs(r.objective_value)
    assert cert["bound"] <= r.objective_value + tol
    assert cert["bound"] <= cert["rounding"]["continuous_optimum"] + tol
    assert cert["incumbent"] == pytest.approx(r.objective_value, rel=1e-9)
    assert cert["gap"] == pytest.approx(r.objective_value - cert["bound"], abs=tol)
    assert cert["proven_optimal"] == (cert["relative_gap"] <= cert["requested_gap"])
    assert "proven optimal only when the gap closes" in cert["rounding"]["guarantee"]
    assert isinstance(cert["rounding"]["naive_feasible"], bool)


def test_large_lotted_hedge_goes_to_rounding(tmp_path: Path) -> None:
    """From 20,000 scenarios a lotted hedge program the scenario solver holds is rounded and
    repaired (the mip backend refuses it), with the gap to the relaxation's bound."""
    m, l0 = scenarios(20_000)
    case = marginopt.load_case(write_case(tmp_path, m, l0))
    problem = MarginProblem(case, mode="hedge")
    assert choose_backend(problem.description) == "integer"
    r = run(problem)
    assert r.succeeded and r.verification.passed
    cert = r.certificate
    assert cert is not None and cert["bound"] <= r.objective_value
    assert r.status == ("optimal" if cert["proven_optimal"] else "feasible")
    best, plan = brute_force(m, l0)
    assert r.objective_value == pytest.approx(best, rel=1e-7), (r.hedges, plan)


def test_infeasible_relaxation_names_the_shortfall(tmp_path: Path) -> None:
    """A limit no hedge within its box can meet: the relaxation is infeasible, and the elastic LP
    on the limits says which is short and by how much (H0 <= 6 against H0 >= 10: 4)."""
    m, l0 = scenarios(300)
    path = write_case(tmp_path, m, l0)
    doc = yaml.safe_load(path.read_text())
    doc["limits"] = {"linear": [{"coefficients": {"H0": 1.0}, "lower": 10.0}]}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = run(MarginProblem(marginopt.load_case(path), mode="hedge", backend="integer"))
    assert r.status == "infeasible"
    assert any("linear limit 1" in name and short == pytest.approx(4.0, rel=1e-6) for name, short in r.shortfalls), r.shortfalls


def test_the_route_s_relaxation_is_the_continuous_optimum_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost of executability beside a rounded plan reuses the route's relaxation: nothing is
    solved again (a continuous MarginProblem built would fail here), its continuous optimum is the
    certificate's, and its naive rounding is the certificate's, by the one rule (nearest lot inside
    the box, a trade under its minimum dropped), checked by hand here."""
    import marginopt.optimizer.api as api
    from marginopt.optimizer.executability import naive_rounding
    from marginopt.optimizer.verify import Plan

    m, l0 = scenarios(300)
    case = marginopt.load_case(write_case(tmp_path, m, l0))
    problem = MarginProblem(case, mode="hedge", backend="integer")

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the continuous problem was solved again")

    monkeypatch.setattr(api, "MarginProblem", refused)
    r = run(problem)
    ex, cert = r.executability, r.certificate
    assert ex is not None and cert is not None and ex.continuous_status == "optimal"
    assert ex.continuous_value == pytest.approx(cert["rounding"]["continuous_optimum"], rel=1e-7)
    assert ex.rounded is not None and ex.rounded_plan is not None
    assert ex.rounded.objective_value == cert["rounding"]["naive_objective"]
    assert ex.rounded.passed == cert["rounding"]["naive_feasible"]
    # By hand: 0.74 in lots of 0.5 -> 0.5; 1.4 in lots of 1 -> 1, under the 1.5 minimum -> 0; -7.9 in
    # lots of 2 -> -8, past the box of 6 -> -6.
    rounded = naive_rounding(problem.description, Plan(np.array([0.74, 1.4, -7.9]), {})).hedges
    assert list(rounded) == [0.5, 0.0, -6.0]


# -- a cap on tickets (execution.max_tickets) ---------------------------------------------------
@pytest.mark.parametrize("max_tickets", [1, 2])
@pytest.mark.parametrize("seed", [17, 23])
def test_max_tickets_matches_enumeration(tmp_path: Path, seed: int, max_tickets: int) -> None:
    """Expected shortfall over 300 scenarios, lots, a minimum trade, a limit and a cap on lines: the
    MIP over generated scenarios against every whole-lot plan with at most that many lines."""
    m, l0 = scenarios(300, seed=seed)
    case = marginopt.load_case(write_case(tmp_path, m, l0, max_tickets=max_tickets))
    r = run(MarginProblem(case, mode="hedge", backend="integer"))
    assert r.status == "optimal" and r.verification.passed, r.solver.attempts
    best, plan = brute_force(m, l0, max_tickets=max_tickets)
    assert r.objective_value == pytest.approx(best, rel=1e-7, abs=1e-9), (r.hedges, plan)
    assert int((r.hedges["quantity"] != 0).sum()) <= max_tickets
    cert = r.certificate
    assert cert is not None and cert["proven_optimal"] is True
    assert cert["bound"] <= best + 1e-7 * abs(best)

MOVES = 7_001  # price moves per underlying: three underlyings scanned apart, 21,003 scenarios
MOVES = 7_001  # price moves per underlying: three underlyings scanned apart, 21,003 scenarios


def tickets_case(max_tickets: int | None) -> dict[str, object]:
    """Perpetuals on A, B, C at 100; the book holds +2.3 A, -1.6 B, +0.9 C at venue V, whose margin
    is the scenario maximum of a grid of price moves from -12% to +8% (7,001 of them) applied to
    each underlying apart, summed over underlyings. A perpetual loses -100 m per contract under a
    move m, so the worst move of a net position x is an end of the grid: margin 12 x for x >= 0
    (the -12% move), 8 |x| for x < 0 (the +8% move). Hedges: each perpetual, whole contracts,
    |h| <= 5, 0.5 a contract."""
    ids = ["A", "B", "C"]
    return {"format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
            "market": {"prices": dict.fromkeys(ids, 100.0)},
            "instruments": [{"id": f"{u}-PERP", "kind": "perpetual", "underlying": u} for u in ids],
            "positions": [{"venue": "V", "instrument": f"{u}-PERP", "quantity": q} for u, q in zip(ids, (2.3, -1.6, 0.9), strict=True)],
            "venues": {"V": {"initial_margin": {"kind": "scenario_max", "scenarios": {
                "kind": "grid", "price_moves": np.linspace(-0.12, 0.08, MOVES).tolist()}}}},
            "hedges": [{"venue": "V", "instrument": f"{u}-PERP", "max_buy": 5, "max_sell": 5, "cost_per_unit": 0.5,
                        "lot_size": 1} for u in ids],
            "objective": "min_margin",
            **({"execution": {"max_tickets": max_tickets}} if max_tickets is not None else {})}


def test_max_tickets_binds_on_the_integer_route() -> None:
    """By hand, each underlying apart (margin 12 x long, 8 |x| short, plus 0.5 |h|):
    A (+2.3): h = -2 leaves 0.3: 3.6 + 1.0 = 4.6 (h = -3: 5.6 + 1.5 = 7.1; none: 27.6), saves 23.0;
    B (-1.6): h = +1 leaves -0.6: 4.8 + 0.5 = 5.3 (h = +2: 4.8 + 1.0 = 5.8; none: 12.8), saves 7.5;
    C (+0.9): h = -1 leaves -0.1: 0.8 + 0.5 = 1.3 (none: 10.8), saves 9.5.
    Without a cap all three: 4.6 + 5.3 + 1.3 = 11.2. Two tickets keep the two largest savings, A and
    C: 4.6 + 12.8 + 1.3 = 18.7. The continuous relaxation hedges everything (each contract saves 8
    or 12 for 0.5): margin 0, cost 0.5 x 4.8 = 2.4, far below; so the proof is the MIPs' bound, not
    the relaxation's. The naive rounding (-2, +2, -1) costs 4.6 + 5.8 + 1.3 = 11.7 on three lines."""
    from marginopt.models.case import load_case_data

    case = load_case_data(tickets_case(2))
    problem = MarginProblem(case, mode="hedge")
    assert choose_backend(problem.description) == "integer"
    r = run(problem)
    assert r.status == "optimal" and r.verification.passed, r.solver.attempts
    assert r.hedges["quantity"].tolist() == [-2.0, 0.0, -1.0]
    assert r.objective_value == pytest.approx(18.7, abs=1e-6)
    cert = r.certificate
    assert cert is not None and cert["proven_optimal"] is True
    assert 18.7 - 1e-5 <= cert["bound"] <= r.objective_value + 1e-9
    assert cert["outer_rounds"] >= 1 and cert["converged"] is True
    assert cert["rounding"]["continuous_optimum"] == pytest.approx(2.4, abs=1e-6)
    assert cert["rounding"]["naive_objective"] == pytest.approx(11.7, abs=1e-6)
    assert cert["rounding"]["naive_feasible"] is False
    assert "non-zero hedge lines <= max_tickets 2" in cert["rounding"]["naive_failures"]
    uncapped = run(MarginProblem(load_case_data(tickets_case(None)), mode="hedge"))
    assert uncapped.objective_value == pytest.approx(11.2, abs=1e-6)
    one = run(MarginProblem(load_case_data(tickets_case(1)), mode="hedge"))  # A alone: 4.6 + 12.8 + 10.8
    assert one.hedges["quantity"].tolist() == [-2.0, 0.0, 0.0]
    assert one.objective_value == pytest.approx(28.2, abs=1e-6)


def test_max_tickets_without_a_big_m_or_within_no_limit_says_why() -> None:
    """A hedge with no finite bound gives the ticket's binaries no big-M: refused with the reason,
    never solved without the cap. A limit that needs a line the cap leaves none for (no ticket, yet
    A's hedge at least 1) is infeasible, and the elastic MIP (the cap kept) says it is short by 1."""
    import dataclasses
    import math

    from marginopt.errors import OptimizationError
    from marginopt.models.case import load_case_data

    case = load_case_data(tickets_case(2))
    unbounded = dataclasses.replace(case, hedges=(dataclasses.replace(case.hedges[0], max_buy=math.inf), *case.hedges[1:]))
    with pytest.raises(OptimizationError, match="hedge V:A-PERP has no finite bound to take a big-M from"):
        run(MarginProblem(unbounded, mode="hedge"))
    raw = tickets_case(0)
    raw["limits"] = {"linear": [{"coefficients": {"A-PERP": 1.0}, "lower": 1.0}]}
    r = run(MarginProblem(load_case_data(raw), mode="hedge"))
    assert r.status == "infeasible"
    assert r.shortfalls == (("linear limit 1 below 1", pytest.approx(1.0)),)
