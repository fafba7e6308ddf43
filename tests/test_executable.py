"""Executable plans (issue 17): hand-solvable cases for the mixed-integer backend.

Each case is written from CASE_FORMAT.md and its optimum worked out by hand in the docstring;
the solver's figures are compared with those, never with its own earlier output. Prices are
round (BTC 100, USDC 1, TBILL 100), haircuts 0, rates 0: a future's and a perpetual's delta is 1.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import marginopt
from marginopt.errors import OptimizationError, SolverError
from marginopt.models.case import load_case_data
from marginopt.optimizer.description import describe
from marginopt.optimizer.verify import Plan, verify

BASE: dict[str, Any] = {
    "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
    "market": {"prices": {"BTC": 100.0, "USDC": 1.0, "TBILL": 100.0}, "rate": 0.0},
    "instruments": [{"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-20"},
                    {"id": "P", "kind": "perpetual", "underlying": "BTC"}],
    "objective": "min_cost",
}


def _venue(margin_rate: float = 0.1, **extra: Any) -> dict[str, Any]:
    return {"initial_margin": {"kind": "fixed_rate", "rate": margin_rate},
            "collateral": {"USDC": {"haircut": 0.0}, "TBILL": {"haircut": 0.0}}, **extra}


def lots_case(**lots: float) -> dict[str, Any]:
    """Long 2.35 F at v; net delta must end in [-0.1, 0.1]; F costs 1 a contract, P 3."""
    case = copy.deepcopy(BASE)
    case["positions"] = [{"venue": "v", "instrument": "F", "quantity": 2.35}]
    case["venues"] = {"v": _venue(posted={"USDC": 1e6})}
    case["hedges"] = [{"venue": "v", "instrument": "F", "max_buy": 10, "max_sell": 10, "cost_per_unit": 1.0},
                      {"venue": "v", "instrument": "P", "max_buy": 10, "max_sell": 10, "cost_per_unit": 3.0}]
    for row in case["hedges"]:
        if row["instrument"] in lots:
            row["lot_size"] = lots[row["instrument"]]
    case["limits"] = {"net_delta": {"BTC": [-0.1, 0.1]}}
    return case


def test_a_lot_size_makes_the_rounded_continuous_optimum_infeasible() -> None:
    """Continuous: hF + hP in [-2.45, -2.25] at cost |hF| + 3|hP|, so hF = -2.25, hP = 0, cost 2.25.
    F in whole contracts, P in lots of 0.1: rounding hF to the nearest lot (-2) leaves delta 0.35,
    past the limit. The executable optimum: hF = -2 needs hP in [-0.45, -0.25], so hP = -0.3 (cost
    2 + 0.9 = 2.9); hF = -3 needs hP = +0.6 (4.8), hF = -1 hP = -1.3 (4.9), hF = 0 hP = -2.3 (6.9)."""
    continuous = marginopt.optimize(load_case_data(lots_case()), mode="hedge")
    assert continuous.status == "optimal"
    assert continuous.objective_value == pytest.approx(2.25, abs=1e-6)
    case = load_case_data(lots_case(F=1.0, P=0.1))
    naive = verify(describe(case, mode="hedge"), Plan(np.array([-2.0, 0.0]), {}))
    assert not naive.passed and any("net delta" in c.name for c in naive.failures)
    result = marginopt.optimize(case, mode="hedge")
    assert result.status == "optimal" and result.verification is not None and result.verification.passed
    assert result.solver.solver == "HIGHS"
    assert result.objective_value == pytest.approx(2.9, abs=1e-6)
    assert result.hedges["quantity"].tolist() == pytest.approx([-2.0, -0.3], abs=1e-9)
    # Three lots of 0.1 print as -0.3, not the binary product's -0.30000000000000004.
    assert result.to_dict()["hedges"][1]["quantity"] == -0.3
    cert = result.certificate
    assert cert is not None and cert["proven_optimal"] is True
    assert cert["incumbent"] == pytest.approx(2.9, abs=1e-6) and cert["bound"] <= cert["incumbent"] + 1e-9


def test_min_trade_and_max_tickets() -> None:
    """With a minimum trade of 0.5 on P and one ticket only, the plan cannot pair F with a small P:
    one line alone must bring delta from 2.35 into [-0.1, 0.1]: F can't (whole contracts: 0.35 or
    -0.65 left), P alone in lots of 0.1: hP in [-2.45, -2.25] -> -2.3, cost 6.9."""
    raw = lots_case(F=1.0, P=0.1)
    raw["hedges"][1]["min_trade"] = 0.5
    raw["execution"] = {"max_tickets": 1}
    result = marginopt.optimize(load_case_data(raw), mode="hedge")
    assert result.status == "optimal"
    assert result.objective_value == pytest.approx(6.9, abs=1e-6)
    assert result.hedges["quantity"].tolist() == pytest.approx([0.0, -2.3], abs=1e-9)


def transfer_case(minimum_transfer: float | None) -> dict[str, Any]:
    """A needs 10,000 (1,000 P at 100, rate 0.1) and holds nothing; B needs 1,000 (100 P) and holds
    1,000 USDC. Treasury: 20,000 USDC at 5% a year, 100 T-bills (10,000) at 1%, T-bills eligible at B only."""
    case = copy.deepcopy(BASE)
    case["positions"] = [{"venue": "A", "instrument": "P", "quantity": 1000}, {"venue": "B", "instrument": "P", "quantity": 100}]
    case["venues"] = {"A": {**_venue(), "collateral": {"USDC": {"haircut": 0.0}}},
                      "B": _venue(posted={"USDC": 1000})}
    if minimum_transfer is not None:
        case["venues"]["B"]["minimum_transfer"] = minimum_transfer
    case["treasury"] = {"USDC": {"quantity": 20000, "cost": 0.05}, "TBILL": {"quantity": 100, "cost": 0.01}}
    return case


def test_a_minimum_transfer_makes_posting_at_a_second_venue_not_worth_it() -> None:
    """Continuous: A takes 10,000 USDC (500 a year); at B the 1,000 USDC (50) is swapped for 10 T-bills
    (10): total 510. With B's minimum transfer of 5,000 the swap's moves (1,000 each way) are too small,
    and posting 5,000 of T-bills to withdraw nothing costs more: B stays as it is, total 550."""
    continuous = marginopt.optimize(load_case_data(transfer_case(None)), mode="allocate")
    assert continuous.objective_value == pytest.approx(510.0, abs=1e-6)
    result = marginopt.optimize(load_case_data(transfer_case(5000)), mode="allocate")
    assert result.status == "optimal"
    assert result.objective_value == pytest.approx(550.0, abs=1e-6)
    alloc = {(r["venue"], r["asset"]): r["quantity"] for r in result.table("allocation").to_dict("records")}
    assert alloc[("A", "USDC")] == pytest.approx(10000.0)
    assert alloc[("B", "USDC")] == pytest.approx(1000.0)
    assert alloc.get(("B", "TBILL"), 0.0) == pytest.approx(0.0, abs=1e-9)


def moves_case() -> dict[str, Any]:
    """A needs 6,000 (600 P) and holds nothing; B needs 1,000 (100 P) and holds 5,000 USDC. Treasury:
    10,000 USDC at 5%, 40 T-bills (4,000) at 1%, both eligible at both venues."""
    case = copy.deepcopy(BASE)
    case["positions"] = [{"venue": "A", "instrument": "P", "quantity": 600}, {"venue": "B", "instrument": "P", "quantity": 100}]
    case["venues"] = {"A": _venue(), "B": _venue(posted={"USDC": 5000})}
    case["treasury"] = {"USDC": {"quantity": 10000, "cost": 0.05}, "TBILL": {"quantity": 40, "cost": 0.01}}
    return case


def test_max_moves_one_forces_consolidation_at_one_venue() -> None:
    """Continuous: every T-bill (4,000, 40 a year) and 2,000 USDC (100) to A, B's excess withdrawn
    (1,000 USDC left, 50): three moves, total 190 (T-bills at B instead would only swap places).
    execution.max_moves 1: A, short, must take the move, in one asset: 6,000 USDC (T-bills are 4,000
    only), 300; B keeps its 5,000 (250): total 550. A venue cap instead (venues.A.max_moves 1): A
    takes 6,000 USDC (300) and B, free to move, swaps its USDC for the 10 T-bills it needs (10): 310."""
    continuous = marginopt.optimize(load_case_data(moves_case()), mode="allocate")
    assert continuous.objective_value == pytest.approx(190.0, abs=1e-6)
    raw = moves_case()
    raw["execution"] = {"max_moves": 1}
    result = marginopt.optimize(load_case_data(raw), mode="allocate")
    assert result.status == "optimal"
    assert result.objective_value == pytest.approx(550.0, abs=1e-6)
    alloc = {(r["venue"], r["asset"]): r["quantity"] for r in result.table("allocation").to_dict("records")}
    assert alloc[("A", "USDC")] == pytest.approx(6000.0) and alloc[("B", "USDC")] == pytest.approx(5000.0)
    assert alloc.get(("A", "TBILL"), 0.0) == pytest.approx(0.0, abs=1e-9)
    raw = moves_case()
    raw["venues"]["A"]["max_moves"] = 1
    venue_cap = marginopt.optimize(load_case_data(raw), mode="allocate")
    assert venue_cap.objective_value == pytest.approx(310.0, abs=1e-6)


def test_rounding_moves_in_whole_units() -> None:
    """USDC moves in multiples of 3,000 (the continuous plan's 2,000 USDC at A is none). A needs
    6,000: T-bills alone (4,000) are short, so A takes 3,000 USDC (150) and 30 T-bills (30), or 6,000
    USDC (300); B holds 5,000 and may withdraw 3,000 only (2,000 left, 100; 5,000 - 6,000 < 0).
    Optimum 150 + 30 + 100 = 280."""
    raw = moves_case()
    raw["treasury"]["USDC"]["rounding"] = 3000
    result = marginopt.optimize(load_case_data(raw), mode="allocate")
    assert result.status == "optimal"
    assert result.objective_value == pytest.approx(280.0, abs=1e-6)


def test_a_program_with_cones_or_another_solver_is_refused_not_solved_continuous() -> None:
    """A parametric VaR at a hedged venue stays a cone (impact costs are cut in: test_executable_impact.py)."""
    raw = lots_case(F=1.0)
    raw["venues"]["v"]["initial_margin"] = {"kind": "parametric_var", "z": 2.33,
                                            "scenarios": {"kind": "grid", "price_moves": [-0.1, 0.0, 0.1]}}
    with pytest.raises(OptimizationError, match=r"parametric VaR margin that moves with the hedges \(venue v\)"):
        marginopt.optimize(load_case_data(raw), mode="hedge")
    with pytest.raises(SolverError, match="HiGHS alone"):
        marginopt.optimize(load_case_data(lots_case(F=1.0)), mode="hedge", solver="CLARABEL")
    with pytest.raises(SolverError, match="HiGHS alone"):
        marginopt.optimize(load_case_data(lots_case(F=1.0)), mode="hedge", solver="FULL")


def test_verification_checks_every_execution_term() -> None:
    """A plan off the lots, the rounding and the move cap fails verification, each term named."""
    case = load_case_data(lots_case(F=1.0, P=0.1))
    check = verify(describe(case, mode="hedge"), Plan(np.array([-2.0, -0.25]), {}))
    assert [c.name for c in check.failures] == ["hedge v:P a whole number of lots of 0.1"]
    raw = moves_case()
    raw["execution"] = {"max_moves": 1}
    raw["treasury"]["USDC"]["rounding"] = 3000
    check = verify(describe(load_case_data(raw), mode="allocate"),
                   Plan(np.zeros(0), {"A": {"USDC": 2000.0, "TBILL": 40.0}, "B": {"USDC": 1000.0, "TBILL": 0.0}}))
    names = {c.name for c in check.failures}
    assert {"A: move of USDC a whole multiple of rounding 3000", "collateral moves <= execution.max_moves 1"} <= names


def test_no_plan_within_the_caps_is_infeasible_and_says_what_is_short() -> None:
    """execution.max_moves 0: nothing may move, and A (nothing posted) is short its whole 6,000."""
    raw = moves_case()
    raw["execution"] = {"max_moves": 0}
    result = marginopt.optimize(load_case_data(raw), mode="allocate")
    assert result.status == "infeasible"
    assert result.shortfalls == (("A: initial margin not covered", pytest.approx(6000.0)),)


def test_the_cli_passes_the_gap_and_time_limit_and_shows_the_gap_line(tmp_path: Any) -> None:
    import json

    import yaml
    from click.testing import CliRunner

    from marginopt.cli.main import cli

    path = tmp_path / "lots.yaml"
    path.write_text(yaml.safe_dump(lots_case(F=1.0, P=0.1)))
    runner = CliRunner()
    out = runner.invoke(cli, ["hedge", str(path), "--mip-gap", "1e-4", "--time-limit", "5", "--format", "json"])
    assert out.exit_code == 0, out.output
    cert = json.loads(out.output)["certificate"]
    assert cert["requested_gap"] == 1e-4 and cert["time_limit"] == 5.0 and cert["proven_optimal"] is True
    table = runner.invoke(cli, ["hedge", str(path)])
    assert table.exit_code == 0 and "gap: incumbent 2.90, bound 2.90" in table.output and "proven optimal" in table.output
    bad = runner.invoke(cli, ["hedge", str(path), "--time-limit", "0"])
    assert bad.exit_code == 2


def test_a_gap_or_time_limit_on_a_continuous_case_is_refused_not_ignored() -> None:
    """The demo has no execution terms: its plan is continuous and exact, so a MIP gap or a time
    limit would do nothing; asked for, they are refused with the reason, never silently dropped."""
    import marginopt
    from marginopt.errors import OptimizationError

    case = marginopt.load_case(marginopt.demo_case_path())
    with pytest.raises(OptimizationError, match="mip_gap applies to an executable plan"):
        marginopt.optimize(case, mip_gap=1e-3)
    with pytest.raises(OptimizationError, match="time_limit applies to an executable plan"):
        marginopt.optimize(case, time_limit=5.0)


def test_the_cost_of_executability_beside_the_integer_plan() -> None:
    """The lot case (above): continuous optimum 2.25 (hF = -2.25), its naive rounding hF = -2, hP = 0
    costs 2 but leaves net delta 0.35 past the limit, and the executable plan costs 2.9: executability
    costs 0.65 over the continuous bound. The rounded plan's margin is recomputed: 0.1 x |2.35 - 2| x 100 = 3.5."""
    result = marginopt.optimize(load_case_data(lots_case(F=1.0, P=0.1)), mode="hedge")
    ex = result.executability
    assert ex is not None and ex.continuous_status == "optimal"
    assert ex.continuous_value == pytest.approx(2.25, abs=1e-6)
    assert ex.executable_value == pytest.approx(2.9, abs=1e-6)
    assert ex.cost_of_executability == pytest.approx(0.65, abs=1e-6)
    assert ex.rounded_plan is not None and ex.rounded_plan.hedges.tolist() == pytest.approx([-2.0, 0.0], abs=1e-12)
    assert ex.rounded is not None and ex.rounded_feasible is False
    assert [c.name for c in ex.rounded.failures] == ["net delta BTC in [-0.1, 0.1]"]
    assert ex.rounded.failures[0].violation == pytest.approx(0.25, abs=1e-9)
    assert ex.rounded.objective_value == pytest.approx(2.0, abs=1e-9)
    assert ex.rounded.venues[0].margin_after == pytest.approx(3.5, abs=1e-9)
    doc = result.to_dict()["executability"]
    assert doc["continuous"]["objective_value"] == pytest.approx(2.25, abs=1e-6)
    assert doc["executable"]["over_continuous"] == pytest.approx(0.65, abs=1e-6)
    rounded = doc["naive_rounding"]
    assert rounded["feasible"] is False and rounded["failed_checks"][0]["check"] == "net delta BTC in [-0.1, 0.1]"
    assert [h["quantity"] for h in rounded["hedges"]] == [-2.0, 0.0]
    assert rounded["margins"] == [{"venue": "v", "after": pytest.approx(3.5), "collateral_after": pytest.approx(1e6)}]
    # A continuous plan carries no comparison: its JSON keeps the plan's shape.
    plain = marginopt.optimize(load_case_data(lots_case()), mode="hedge")
    assert plain.executability is None and "executability" not in plain.to_dict()


def test_naive_rounding_of_collateral_drops_small_moves_and_breaks_move_caps() -> None:
    """The moves case with USDC alone eligible at B, so that the continuous optimum is unique (190:
    40 T-bills (40) and 2,000 USDC (100) to A, 4,000 USDC out of B, which keeps 1,000 (50)). Rounded
    by hand it keeps its three moves, past execution.max_moves 1 by 2 (the executable plan: 550, as
    above). With B's minimum transfer 5,000 instead, B's 4,000 withdrawal is dropped: B keeps its 5,000
    (250), A as in the continuous plan (140): 390, feasible, and the executable optimum too (B cannot
    withdraw 5,000 or more and stay covered)."""
    def case(**venue_b: Any) -> dict[str, Any]:
        raw = moves_case()
        raw["venues"]["B"]["collateral"] = {"USDC": {"haircut": 0.0}}
        raw["venues"]["B"].update(venue_b)
        return raw

    raw = case()
    raw["execution"] = {"max_moves": 1}
    result = marginopt.optimize(load_case_data(raw), mode="allocate")
    ex = result.executability
    assert ex is not None and ex.continuous_value == pytest.approx(190.0, abs=1e-6)
    assert result.objective_value == pytest.approx(550.0, abs=1e-6)
    assert ex.rounded is not None and ex.rounded_feasible is False
    assert [c.name for c in ex.rounded.failures] == ["collateral moves <= execution.max_moves 1"]
    assert ex.rounded.failures[0].violation == 2
    assert ex.rounded.objective_value == pytest.approx(190.0, abs=1e-6)
    result = marginopt.optimize(load_case_data(case(minimum_transfer=5000)), mode="allocate")
    ex = result.executability
    assert ex is not None and ex.rounded_plan is not None and ex.rounded is not None
    assert ex.rounded_plan.allocation["B"] == {"USDC": 5000.0}
    assert ex.rounded_plan.allocation["A"] == {"USDC": pytest.approx(2000.0), "TBILL": pytest.approx(40.0)}
    assert ex.rounded_feasible is True and ex.rounded.objective_value == pytest.approx(390.0, abs=1e-6)
    assert result.objective_value == pytest.approx(390.0, abs=1e-6)


def test_the_cli_shows_lots_and_the_cost_of_executability(tmp_path: Any) -> None:
    """The plan table prints each lotted hedge in lots and the three plans side by side; the JSON carries them."""
    import json

    import yaml
    from click.testing import CliRunner

    from marginopt.cli.main import cli

    path = tmp_path / "lots.yaml"
    path.write_text(yaml.safe_dump(lots_case(F=1.0, P=0.1)))
    table = CliRunner().invoke(cli, ["hedge", str(path)])
    assert table.exit_code == 0, table.output
    assert "-2.0000 (2 lots)" in table.output and "-0.3000 (3 lots)" in table.output
    assert "Cost of executability" in table.output
    lines = {line.split("│")[1].strip(): line for line in table.output.splitlines() if line.count("│") > 3}
    assert "2.25" in lines["continuous optimum (lower bound)"]
    assert "2.90" in lines["executable plan"]
    assert "2.00" in lines["naive rounding of the continuous plan"] and "no: net delta BTC" in lines["naive rounding of the continuous plan"]
    assert "executing as printed costs 0.65 USD over the continuous optimum" in table.output
    doc = json.loads(CliRunner().invoke(cli, ["hedge", str(path), "--format", "json"]).output)
    assert doc["executability"]["naive_rounding"]["feasible"] is False
