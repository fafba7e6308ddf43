"""Derive's margin in the optimizer: the convex majorant, the case written from a snapshot,
and ``marginopt hedge --from derive-pm2`` lowering Derive's margin, recomputed from the
snapshot with the hedges added as lines."""

from __future__ import annotations

import copy
import json

import cvxpy as cp
import numpy as np
import pytest
from click.testing import CliRunner

from marginopt.cli.main import cli
from marginopt.errors import CaseError, MarginoptError
from marginopt.models import VenueBook, load_case
from marginopt.models.derive.bound import DeriveBound
from marginopt.models.derive.case import candidate_lines, perp_tradable, write_case
from marginopt.models.derive.measure import DeriveMargin, line_id
from marginopt.models.derive.model import DeriveModel
from marginopt.models.derive.report import derive_json
from marginopt.models.derive.snapshot import load_snapshot
from marginopt.optimizer import optimize
from tests.test_derive_pmrm2 import CASES, DATA, NO_DATA, snapshot, write

FEEDS = [{"FeedExpiry": e, "Forward": f, "ForwardConfidence": 1.0, "Rate": r, "RateConfidence": 1.0, "OptionVolConfidences": c,
          "SVIparam": [0.01, 0.05, -0.3, 0.0, 0.1, f, e / 31536000]}
         for e, f, r, c in ((604800, 3002.0, 0.03, 1.0), (5184000, 3020.0, 0.05, 0.5))]


def option(expiry, strike, call, amount):
    return {"Expiry": expiry, "Strike": strike, "IsCall": call, "Amount": amount}


def hand_book(**overrides) -> dict:
    """Short puts and calls in two expiries with a long call spread and a short perp; the
    second expiry's vol feed is trusted at 0.5, under the 0.55 threshold (oracle charge)."""
    doc = snapshot(OptionFeeds=FEEDS, NumPerps=-0.5, Options=[
        option(604800, 2800.0, 0, -3.0), option(604800, 3200.0, 1, -2.0), option(604800, 3400.0, 1, 1.0),
        option(5184000, 3000.0, 1, -1.5), option(5184000, 3000.0, 0, 0.5), option(5184000, 2500.0, 0, 2.0)])
    doc["Scenario"].update(overrides)
    return doc


def check_bound(model: DeriveModel, rng: np.random.Generator, draws: int = 40) -> None:
    """Equal to the requirement at the book, never below it elsewhere, and its cvxpy form agrees."""
    for maintenance in (False, True):
        bound = DeriveBound(model, maintenance, perp_column=perp_tradable(model.snap))  # as the written case offers it
        exact = model.requirements(model.q0)[1 if maintenance else 0]
        assert bound.evaluate(model.q0) == pytest.approx(exact, rel=1e-12, abs=1e-9)
        var = cp.Variable(len(model.q0))
        expr = bound.cvxpy(var)
        assert expr.is_convex()
        for _ in range(draws):
            q = model.q0 * rng.uniform(-2, 2, len(model.q0)) + rng.normal(0, 1, len(model.q0))
            if model.q0[-1] == 0:
                q[-1] = 0.0  # the perp's oracle confidence is exact only when one is held (bound.py)
            true = model.requirements(q)[1 if maintenance else 0]
            assert bound.evaluate(q) >= true - 1e-9 * max(1.0, abs(true))
            var.value = q
            assert expr.value == pytest.approx(bound.evaluate(q), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("discounts", [(0.95, 1.04), (1.03, 0.97)], ids=["long-below-short", "long-above-short"])
def test_the_bound_is_exact_at_the_book_and_never_below_by_hand(tmp_path, discounts):
    """Both orders of the static discounts (bound.py takes the piece active at the book
    where the discounted value is convex, keeps it exactly where it is concave)."""
    doc = hand_book()
    doc["Parameters"]["Margin"]["BASE_STATIC_DISCOUNT"], doc["Parameters"]["Margin"]["BASE_STATIC_DISCOUNT_NEG"] = discounts
    model = DeriveModel.from_snapshot(load_snapshot(write(tmp_path, doc)))
    assert {e.long_factor <= e.short_factor for e in model.expiries} == {discounts[0] <= discounts[1]}
    check_bound(model, np.random.default_rng(1))


@pytest.mark.skipif(not CASES, reason=NO_DATA)
def test_the_bound_is_exact_at_the_book_on_every_published_case():
    rng = np.random.default_rng(7)
    for path in CASES:
        check_bound(DeriveModel.from_snapshot(load_snapshot(path)), rng, draws=3)


def test_the_case_from_a_snapshot_reports_derives_requirements(tmp_path):
    """The written case's margin is the requirement: equity less Derive's IM (and MM)."""
    source = write(tmp_path, hand_book())
    case = load_case(write_case(source, tmp_path / "case"))
    book = VenueBook(case, "derive")
    venue = derive_json(DeriveModel.from_snapshot(load_snapshot(source)))["venues"][0]
    model = DeriveModel.from_snapshot(load_snapshot(source))
    equity = model.equity(model.q0)
    im = book.initial.evaluate(book.q)
    assert im == pytest.approx(equity - venue["excess"], rel=1e-12)
    assert book.maintenance_margin(book.q, im) == pytest.approx(equity - venue["maintenance_excess"], rel=1e-12)
    assert isinstance(book.initial, DeriveMargin) and not book.initial.convex
    assert case.venues["derive"].preset == "derive-pmrm2-2026-01"  # the case names the preset, alias derive-pmrm2
    # Hedges: calls and puts around each forward and at the held strikes, not the held lines; the perp (trusted).
    held = {line_id(o) for o in load_snapshot(source).options}
    offered = {h.instrument for h in case.hedges}
    assert not offered & held and "PERP" in offered
    assert {line_id(c) for c in candidate_lines(load_snapshot(source))} | {"PERP"} == offered
    assert "C-5184000-2500" in offered and "P-604800-3000" in offered  # a held strike; the forward, on a 50 tick


def with_hedges(doc: dict, hedges: dict[str, float]) -> dict:
    """The snapshot with the plan's trades added to its lines (a new line where none is held)."""
    out = copy.deepcopy(doc)
    lines = {f"{'C' if o['IsCall'] else 'P'}-{int(o['Expiry'])}-{float(o['Strike']):g}": o for o in out["Scenario"]["Options"]}
    for iid, qty in hedges.items():
        if iid == "PERP":
            out["Scenario"]["NumPerps"] = float(out["Scenario"]["NumPerps"]) + qty
        elif iid in lines:
            lines[iid]["Amount"] = float(lines[iid]["Amount"]) + qty
        else:
            right, expiry, strike = iid.split("-")
            out["Scenario"]["Options"].append(option(int(expiry), float(strike), int(right == "C"), qty))
    return out


def hedge_and_recompute(tmp_path, source) -> tuple[float, float, dict]:
    """Run ``marginopt hedge --from derive-pm2``; recompute Derive's IM requirement before and
    after from the snapshot JSON with the trades written in as lines."""
    result = CliRunner().invoke(cli, ["hedge", str(source), "--from", "derive-pm2", "--format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["status"] == "optimal" and plan["verification"]["passed"]
    trades = {h["instrument"]: h["quantity"] for h in plan["hedges"] if h["quantity"] != 0}
    before_doc = json.loads(source.read_text())
    after_path = tmp_path / "after.json"
    after_path.write_text(json.dumps(with_hedges(before_doc, trades)))
    before = DeriveModel.from_snapshot(load_snapshot(source))
    after = DeriveModel.from_snapshot(load_snapshot(after_path))
    return before.requirements(before.q0)[0], after.requirements(after.q0)[0], plan


def test_hedge_lowers_derives_margin_on_a_hand_book(tmp_path):
    source = write(tmp_path, hand_book())
    before, after, plan = hedge_and_recompute(tmp_path, source)
    assert after < 0.8 * before  # 4,599 -> 3,181 when written
    margins = plan["margins"][0]
    assert margins["before"] == pytest.approx(before, rel=1e-9) and margins["after"] == pytest.approx(after, rel=1e-6, abs=1e-6)


@pytest.mark.skipif(not CASES, reason=NO_DATA)
@pytest.mark.parametrize("name", ["test_12_risk_cancelling_naked_short_call.json", "test_20_structures_basic_put.json",
                                  "test_16_risk_cancelling_general_covered_call.json",
                                  "test_100_BasisContingencyParameters_FWD_CONT_SHOCK_UP_min.json"])
def test_hedge_lowers_derives_margin_on_published_snapshots(tmp_path, name):
    before, after, plan = hedge_and_recompute(tmp_path, DATA / name)
    assert after < before
    margins = plan["margins"][0]
    assert margins["before"] == pytest.approx(before, rel=1e-9) and margins["after"] == pytest.approx(after, rel=1e-6, abs=1e-6)


def test_instruments_must_be_derive_lines(tmp_path):
    source = write(tmp_path, hand_book())
    path = write_case(source, tmp_path / "case")
    table = (tmp_path / "case" / "instruments.csv").read_text()
    (tmp_path / "case" / "instruments.csv").write_text(table.replace("C-604800-2800", "C-999-2800"))
    (tmp_path / "case" / "hedges.csv").write_text((tmp_path / "case" / "hedges.csv").read_text().replace("C-604800-2800", "C-999-2800"))
    with pytest.raises(CaseError, match=r"instrument C-999-2800.*an expiry with a feed in the snapshot \(604800, 5184000"):
        optimize(load_case(path), mode="hedge")
    (tmp_path / "case" / "instruments.csv").write_text(table.replace("C-604800-2800", "ETH-CALL"))
    (tmp_path / "case" / "hedges.csv").write_text((tmp_path / "case" / "hedges.csv").read_text().replace("C-999-2800", "ETH-CALL"))
    with pytest.raises(CaseError, match=r"instrument ETH-CALL.*a Derive line id: C-<seconds to expiry>-<strike>"):
        optimize(load_case(path), mode="hedge")


def test_a_snapshot_with_nothing_to_trade_is_refused(tmp_path):
    source = write(tmp_path, snapshot(PerpConfidence=0.0, Cash=100.0))
    with pytest.raises(MarginoptError, match="no option or perp and has no option feed or trusted perp"):
        write_case(source, tmp_path / "case")
    result = CliRunner().invoke(cli, ["hedge", str(source), "--from", "derive-pm2"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_derive_case_command_writes_a_case_that_loads(tmp_path):
    source = write(tmp_path, hand_book())
    result = CliRunner().invoke(cli, ["derive-case", str(source), "--out", str(tmp_path / "c"), "--underlying", "ETH",
                                      "--cost-bp", "5", "--unwind"])
    assert result.exit_code == 0, result.output
    case = load_case(tmp_path / "c" / "case.yaml")
    assert "ETH" in case.market.prices
    assert all(h.cost_per_unit == pytest.approx(5e-4 * 3000.0) for h in case.hedges)
    assert "C-604800-3200" in {h.instrument for h in case.hedges}  # held lines offered with --unwind
