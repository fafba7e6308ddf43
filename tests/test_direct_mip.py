"""The direct collateral MIP (optimizer/backends/direct_mip.py): the hand-solved collateral cases of
tests/test_executable.py give their hand-derived optima on it (and on the cvxpy mip backend, named
explicitly), and on random collateral cases it agrees with the cvxpy mip backend, an independent
formulation (units, cvxpy's canonicalization) of the same executable problem."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from test_executable import BASE, _venue, lots_case, moves_case, transfer_case

from marginopt.models.case import load_case_data
from marginopt.optimizer.api import run
from marginopt.optimizer.backends import choose_backend
from marginopt.optimizer.description import Mode, describe
from marginopt.optimizer.problem import MarginProblem

BACKENDS = ("direct_mip", "mip")


def _solve(raw: dict[str, Any], backend: str, **options: Any) -> Any:
    return run(MarginProblem(load_case_data(raw), mode="allocate", backend=backend, **options))


def _allocation(result: Any) -> dict[tuple[str, str], float]:
    return {(r["venue"], r["asset"]): r["quantity"] for r in result.table("allocation").to_dict("records")}


def test_a_collateral_only_case_with_execution_terms_goes_to_the_direct_mip() -> None:
    raw = moves_case()
    raw["execution"] = {"max_moves": 1}
    assert MarginProblem(load_case_data(raw), mode="allocate").backend.name == "direct_mip"
    # Hedges traded: the cvxpy mip backend.
    assert choose_backend(describe(load_case_data(lots_case(F=1.0)), mode=Mode.HEDGE)) == "mip"


@pytest.mark.parametrize("backend", BACKENDS)
def test_minimum_transfer(backend: str) -> None:
    """test_executable.py: B's minimum transfer of 5,000 makes its swap not worth it: 550 (continuous 510)."""
    result = _solve(transfer_case(5000), backend)
    assert result.status == "optimal" and result.certificate["method"].startswith(backend)
    assert result.objective_value == pytest.approx(550.0, abs=1e-6)
    assert result.certificate["proven_optimal"] is True
    assert result.certificate["incumbent"] == pytest.approx(550.0, abs=1e-6)
    assert result.certificate["bound"] <= result.certificate["incumbent"] + 1e-9
    alloc = _allocation(result)
    assert alloc[("A", "USDC")] == pytest.approx(10000.0) and alloc[("B", "USDC")] == 1000.0
    assert alloc.get(("B", "TBILL"), 0.0) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_moves(backend: str) -> None:
    """test_executable.py: execution.max_moves 1 gives 550 (A takes 6,000 USDC, B keeps its 5,000);
    venues.A.max_moves 1 gives 310; execution.max_moves 0 leaves A short its 6,000."""
    raw = moves_case()
    raw["execution"] = {"max_moves": 1}
    result = _solve(raw, backend)
    assert result.status == "optimal" and result.objective_value == pytest.approx(550.0, abs=1e-6)
    alloc = _allocation(result)
    assert alloc[("A", "USDC")] == pytest.approx(6000.0) and alloc[("B", "USDC")] == 5000.0
    raw = moves_case()
    raw["venues"]["A"]["max_moves"] = 1
    assert _solve(raw, backend).objective_value == pytest.approx(310.0, abs=1e-6)
    raw = moves_case()
    raw["execution"] = {"max_moves": 0}
    short = _solve(raw, backend)
    assert short.status == "infeasible"
    assert short.shortfalls == (("A: initial margin not covered", pytest.approx(6000.0)),)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rounding(backend: str) -> None:
    """test_executable.py: USDC in multiples of 3,000: A takes 3,000 USDC and 30 T-bills, B withdraws
    3,000: 150 + 30 + 100 = 280, each move a whole multiple (read through whole_multiple)."""
    raw = moves_case()
    raw["treasury"]["USDC"]["rounding"] = 3000
    result = _solve(raw, backend)
    assert result.status == "optimal" and result.objective_value == pytest.approx(280.0, abs=1e-6)
    alloc = _allocation(result)
    assert alloc[("A", "USDC")] == 3000.0 and alloc[("B", "USDC")] == 2000.0
    assert alloc[("A", "TBILL")] == pytest.approx(30.0)


def single_cover_case(btc: float) -> dict[str, Any]:
    """A and B each need 1,000 (100 P at 100, rate 0.1), hold nothing and may make one move. Eligible at
    both: USDC (haircut 0, at most half of the credited total), BTC tiered (rate 1 to 600 of value, 0.5
    from 600 to 2,000, nothing above), T-bills (haircut 0.2). Treasury: 10,000 USDC at 1%, ``btc`` of BTC
    at 2%, 100 T-bills (10,000) at 3%."""
    case = copy.deepcopy(BASE)
    case["positions"] = [{"venue": v, "instrument": "P", "quantity": 100} for v in "AB"]
    venue = {"initial_margin": {"kind": "fixed_rate", "rate": 0.1}, "max_moves": 1, "concentration": {"USDC": 0.5},
             "collateral": {"USDC": {"haircut": 0.0}, "BTC": {"tiers": [[600, 1.0], [2000, 0.5]]}, "TBILL": {"haircut": 0.2}}}
    case["venues"] = {"A": copy.deepcopy(venue), "B": copy.deepcopy(venue)}
    case["treasury"] = {"USDC": {"quantity": 10000, "cost": 0.01}, "BTC": {"quantity": btc, "cost": 0.02},
                        "TBILL": {"quantity": 100, "cost": 0.03}}
    return case


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_move_at_an_empty_venue_posts_one_asset_that_covers_alone(backend: str) -> None:
    """Continuous, per venue: credit costs 1% in USDC (up to half the total), 2% in BTC's first 600,
    3.75% in T-bills (0.03 / 0.8), 4% in BTC's second tier: 500 USDC + 500 BTC, 15; both venues 30 (BTC
    1,000 of 2,000). One move: USDC alone is credited nothing (half of itself), BTC alone covers at
    600 + 0.5 (g - 600) = 1,000, g = 1,400 (28), T-bills at 0.8 g = 1,000, g = 1,250 (37.5). With 20 BTC
    (2,000) one venue takes BTC, the other T-bills: 65.5; with 30 BTC (3,000) both take BTC: 56. On the
    direct MIP these venues go without their tier, concentration and coverage rows (the move rows imply
    them): the plan is verified on every row all the same."""
    for btc, cost, takes in ((20.0, 65.5, {"BTC": 14.0, "TBILL": 12.5}), (30.0, 56.0, {"BTC": 28.0})):
        result = _solve(single_cover_case(btc), backend, mip_gap=1e-9)
        assert result.status == "optimal" and result.certificate["proven_optimal"] is True
        assert result.verification.passed
        assert result.objective_value == pytest.approx(cost, abs=1e-6)
        assert result.executability.continuous_value == pytest.approx(30.0, abs=1e-6)
        alloc = {k: q for k, q in _allocation(result).items() if abs(q) > 1e-9}
        assert len(alloc) == 2 and {v for v, _ in alloc} == {"A", "B"}  # one asset at each venue
        units: dict[str, float] = {}
        for (_, a), q in alloc.items():
            units[a] = units.get(a, 0.0) + q
        assert units == pytest.approx(takes)


def test_the_empty_one_move_venues_rows_are_dropped_and_the_rest_kept() -> None:
    """The direct MIP's model for single_cover_case: A's and B's LP rows (BTC's 3 tier pieces, USDC's 2
    concentration rows, coverage: 6 each) are dropped, the inventory rows kept, USDC's moves in held at 0
    (it cannot cover alone), a move in of BTC at least 1,400 and of T-bills at least 1,250 of value."""
    from marginopt.optimizer.backends.direct_mip import DirectMipBackend, execution_terms

    problem = describe(load_case_data(single_cover_case(20.0)), mode=Mode.ALLOCATE)
    backend = DirectMipBackend(problem)
    assert backend.solve_lp().status.name == "OPTIMAL"
    st = backend.structure
    assert st is not None
    terms = execution_terms(problem, st)
    assert sorted(terms.implied) == ["A", "B"]
    assert [len(st.blocks[v][0]) for v in "AB"] == [6, 6]
    backend._load(st, terms)
    model = backend._model
    assert model.matrix.shape[0] == st.matrix.shape[0] - 12 + terms.rows.shape[0]
    for part in problem.parts:
        ups = {part.assets[i]: up for i, up, _ in terms.moves[part.name]}
        assert model.col_upper[ups["USDC"]] == 0.0 and model.col_upper[ups["BTC"]] == 1.0
        g = dict(zip(part.assets, st.x_cols[part.name].tolist(), strict=True))
        for asset, least in (("BTC", 1400.0), ("TBILL", 1250.0)):
            # The row g - least u+ >= 0: at u+ = 1, g below least breaks it.
            col = np.zeros(model.matrix.shape[1])
            col[ups[asset]], col[g[asset]] = 1.0, least - 1.0
            rows = model.matrix @ col
            assert np.any(rows < model.row_lower - 1e-9)
            col[g[asset]] = least
            mine = model.matrix[:, [ups[asset], g[asset]]].nonzero()[0]
            assert np.all((model.matrix @ col)[mine] >= model.row_lower[mine] - 1e-6)


def random_case(seed: int) -> dict[str, Any]:
    """3 venues, 4 assets (haircuts, funding and transfer costs, some posted), minimum transfers,
    per-venue and plan-wide move caps and a rounding, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    case = copy.deepcopy(BASE)
    assets = ["USDC", "TBILL", "BTC", "ETH"]
    case["market"]["prices"]["ETH"] = 10.0
    prices = case["market"]["prices"]
    case["venues"], case["positions"] = {}, []
    for v in "ABC":
        posted = {a: float(rng.integers(0, 3)) * 1000.0 / prices[a] for a in assets if rng.random() < 0.5}
        venue = _venue(posted=posted, minimum_transfer=float(rng.choice([0.0, 500.0, 1500.0])),
                       **({"max_moves": int(rng.integers(1, 3))} if rng.random() < 0.5 else {}))
        venue["collateral"] = {a: {"haircut": float(rng.choice([0.0, 0.1, 0.3]))} for a in assets if rng.random() < 0.8} or {
            "USDC": {"haircut": 0.0}}
        venue["posted"] = {a: q for a, q in posted.items() if a in venue["collateral"]}
        case["venues"][v] = venue
        case["positions"].append({"venue": v, "instrument": "P", "quantity": float(rng.integers(5, 40))})
    case["treasury"] = {a: {"quantity": 8000.0 / prices[a], "cost": float(rng.uniform(0.0, 0.08)),
                            "transfer_cost": float(rng.choice([0.0, 0.001]))} for a in assets}
    case["treasury"]["TBILL"]["rounding"] = 5.0
    if rng.random() < 0.5:
        case["execution"] = {"max_moves": int(rng.integers(3, 6))}
    return case


@pytest.mark.parametrize("seed", range(12))
def test_the_direct_mip_agrees_with_the_cvxpy_mip_backend(seed: int) -> None:
    raw = random_case(seed)
    direct = _solve(raw, "direct_mip", mip_gap=1e-9)
    cvx = _solve(raw, "mip", mip_gap=1e-9)
    assert direct.status == cvx.status
    if direct.status != "optimal":
        assert direct.status == "infeasible"
        return
    assert direct.verification.passed and cvx.verification.passed
    assert direct.certificate["proven_optimal"] and cvx.certificate["proven_optimal"]
    assert direct.objective_value == pytest.approx(cvx.objective_value, rel=1e-7, abs=1e-6)
    # Each plan is executable as printed: verification checked every term (lots, transfers, counts).
    assert not [c.name for c in direct.verification.failures]


def random_single_case(seed: int) -> dict[str, Any]:
    """random_case's venues, some of them empty with one move (their rows dropped on the direct MIP),
    BTC tiered and USDC under a concentration limit at some of them, the inventory scaled so that the
    cheapest covers run out."""
    rng = np.random.default_rng(1000 + seed)
    case = random_case(seed)
    case["treasury"]["BTC"]["quantity"] = float(rng.choice([20.0, 40.0, 80.0]))
    for venue in case["venues"].values():
        if rng.random() < 0.7:
            venue["posted"], venue["max_moves"] = {}, 1
        if "BTC" in venue["collateral"] and rng.random() < 0.5:
            venue["collateral"]["BTC"] = {"tiers": [[600.0, 1.0], [2000.0, 0.5]]}
        if "USDC" in venue["collateral"] and rng.random() < 0.5:
            venue["concentration"] = {"USDC": float(rng.choice([0.4, 1.0]))}
    return case


@pytest.mark.parametrize("seed", range(10))
def test_with_empty_one_move_venues_the_direct_mip_agrees_with_the_cvxpy_mip_backend(seed: int) -> None:
    raw = random_single_case(seed)
    direct = _solve(raw, "direct_mip", mip_gap=1e-9)
    cvx = _solve(raw, "mip", mip_gap=1e-9)
    assert direct.status == cvx.status
    if direct.status != "optimal":
        assert direct.status == "infeasible"
        return
    assert direct.verification.passed and cvx.verification.passed
    assert direct.certificate["proven_optimal"] and cvx.certificate["proven_optimal"]
    assert direct.objective_value == pytest.approx(cvx.objective_value, rel=1e-7, abs=1e-6)
