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
