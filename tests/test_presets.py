"""Venue presets: the registry, every shipped preset parsed and bound, overrides, parameters and errors.

The published numbers each preset reproduces are in test_preset_published.py.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
import yaml

import marginopt
from marginopt import CaseError
from marginopt.models import VenueBook
from marginopt.models.margin import convex_form
from marginopt.presets import Preset, get_preset, known_ids, preset_aliases, preset_ids
from tests.conftest import BASE
from tests.test_validation import line_of

# What the case gives for each preset parameter, when a preset asks for it.
PARAMS: dict[str, Any] = {
    "scan_ranges": {"BTC": 0.1},
    "vol_scan_range": 0.3,
    "spreads": [],
    "short_option_minimum": 0.01,
    "minimum_charge_rate": 0.001,
}
INSTRUMENTS = [
    {"id": "BTC-PERP", "kind": "perpetual", "underlying": "BTC"},
    {"id": "BTC-INV", "kind": "perpetual", "underlying": "BTC", "settlement": "inverse", "multiplier": 10},
    {"id": "BTC-MAR27", "kind": "future", "underlying": "BTC", "expiry": "2027-03-26"},
    {"id": "BTC-C", "kind": "option", "underlying": "BTC", "expiry": "2026-12-25", "strike": 110000, "right": "call"},
    {"id": "BTC-P", "kind": "option", "underlying": "BTC", "expiry": "2027-03-26", "strike": 90000, "right": "put"},
]
POSITIONS = {"BTC-PERP": 2.0, "BTC-INV": -5000.0, "BTC-MAR27": -1.0, "BTC-C": -3.0, "BTC-P": 4.0}


def venue_with(preset: Preset, **more: Any) -> dict[str, Any]:
    venue: dict[str, Any] = {"preset": preset.id, **{k: PARAMS[k] for k in preset.parameters}}
    if "initial_margin" not in preset.venue:
        venue["initial_margin"] = {"kind": "fixed_rate", "rate": 0.05}
    if "collateral" not in preset.venue:
        venue["collateral"] = {"USDC": {"haircut": 0.0}}
    return {**venue, **more}


def case_dict(venues: dict[str, Any], **more: Any) -> dict[str, Any]:
    market = {"prices": {"BTC": 100000.0, "ETH": 3000.0, "USDC": 1.0}, "vols": {"BTC": 0.5, "ETH": 0.6}}
    positions = [{"venue": name, "instrument": i, "quantity": q} for name in venues for i, q in POSITIONS.items()]
    return copy.deepcopy({**BASE, "market": market, "instruments": INSTRUMENTS, "positions": positions, "venues": venues, **more})


def write(tmp_path: Path, case: dict[str, Any]) -> tuple[Path, str]:
    text = yaml.safe_dump(case, sort_keys=False, default_flow_style=None, width=10_000)
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


def load(tmp_path: Path, case: dict[str, Any]) -> marginopt.Case:
    return marginopt.load_case(write(tmp_path, case)[0])


# ---------------------------------------------------------------------------
# The registry


def test_registry_ids_aliases_and_metadata() -> None:
    ids = preset_ids()
    assert {"deribit-pm-2024-06", "paradex-pm-2026-07", "okx-pm-2025-01", "cme-span-2024", "binance-collateral-2023-01"} <= set(ids)
    aliases = preset_aliases()
    assert aliases["deribit-pm"] == "deribit-pm-2024-06" and get_preset("deribit-pm").id == "deribit-pm-2024-06"
    assert set(known_ids()) == set(ids) | set(aliases)
    for pid in ids:
        p = get_preset(pid)
        assert p.id == pid and p.id.startswith(p.family)
        assert re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", p.as_of), p.as_of
        assert p.source and all(s.strip() for s in p.source) and any("https://" in s for s in p.source)
        assert p.not_modelled and all(s.endswith(".") for s in p.not_modelled)
        assert p.title and p.models
        # every placeholder is a documented parameter, and every parameter is used
        assert {param.name for param in p.params()} == set(p.parameters)


def test_unknown_preset_id_lists_the_ids() -> None:
    with pytest.raises(KeyError, match="deribit-pm-2024-06"):
        get_preset("deribit-pm-1999")


def test_newest_of_a_family_is_its_alias() -> None:
    for alias, pid in preset_aliases().items():
        family = [get_preset(i) for i in preset_ids() if get_preset(i).family == alias]
        assert max(family, key=lambda p: p.as_of).id == pid


# ---------------------------------------------------------------------------
# Every shipped preset parses, binds, evaluates, and its convex form agrees with its bound

# Presets whose parameters the small case below can give; the others need data of their own.
GENERIC = [pid for pid in preset_ids() if set(get_preset(pid).parameters) <= set(PARAMS)]
OWN_DATA = {"derive-pmrm2-2026-01": "needs a Derive snapshot and instruments named as Derive's lines (the Derive tests)"}


def _every_preset() -> list[Any]:
    return [pytest.param(pid, marks=() if pid in GENERIC else pytest.mark.skip(
        reason=OWN_DATA.get(pid, f"parameters {', '.join(get_preset(pid).parameters)} not in this test's PARAMS")))
        for pid in preset_ids()]


def test_every_preset_is_covered() -> None:
    # A preset this module cannot build a case for must say where it is tested.
    assert set(preset_ids()) - set(GENERIC) <= set(OWN_DATA)


@pytest.mark.parametrize("pid", _every_preset())
def test_every_preset_parses_and_binds(tmp_path: Path, pid: str) -> None:
    preset = get_preset(pid)
    case = load(tmp_path, case_dict({"v": venue_with(preset)}))
    assert case.venues["v"].preset == pid
    report = marginopt.margin(case)["v"]
    assert np.isfinite(report.initial_margin) and report.initial_margin > 0.0
    assert 0.0 < report.maintenance_margin <= report.initial_margin
    book = VenueBook(case, "v")
    bound = convex_form(book.initial)
    x = cp.Variable(len(book.ids))
    expr, cons = bound.cvxpy(x)
    rng = np.random.default_rng(len(pid))
    for q in [book.q, -book.q, *(rng.normal(0.0, 3.0, len(book.ids)) for _ in range(3))]:
        prob = cp.Problem(cp.Minimize(expr), [*cons, x == q])
        prob.solve(solver="CLARABEL")
        assert prob.value == pytest.approx(bound.evaluate(q), rel=1e-6, abs=1e-6)
        assert bound.evaluate(q) >= book.initial.evaluate(q) - 1e-9 * max(1.0, book.initial.evaluate(q))


def test_preset_optimizes(tmp_path: Path) -> None:
    # A hedge through each measure's cvxpy form (CME's with its credit bounded), verified by the numpy evaluators.
    venues = {f"v{k}": venue_with(get_preset(pid), posted={"USDC": 2e6}) for k, pid in enumerate(GENERIC)}
    for v in venues.values():
        v["collateral"] = {"USDC": {"haircut": 0.0}}
    hedges = [{"venue": name, "instrument": "BTC-MAR27", "max_buy": 2, "max_sell": 2, "cost_per_unit": 1.0} for name in venues]
    case = load(tmp_path, case_dict(venues, hedges=hedges, objective="min_margin"))
    plan = marginopt.optimize(case, objective="min_margin")
    assert plan.status == "optimal" and plan.verification.passed


# ---------------------------------------------------------------------------
# Overrides: each top-level key given beside preset replaces the preset's


def test_keys_beside_preset_replace_the_presets(tmp_path: Path) -> None:
    paradex = get_preset("paradex-pm-2026-07")
    venues = {
        "as_is": venue_with(paradex),
        "mm": venue_with(paradex, maintenance_margin={"fraction_of_initial": 0.8}),
        "coll": venue_with(paradex, collateral={"BTC": {"haircut": 0.1}}, posted={"BTC": 1.0}),
        "im": venue_with(paradex, initial_margin={"kind": "fixed_rate", "rate": 0.1}),
    }
    case = load(tmp_path, case_dict(venues))
    report = marginopt.margin(case)
    assert report["as_is"].maintenance_margin == pytest.approx(0.5 * report["as_is"].initial_margin, rel=1e-15)
    assert report["mm"].maintenance_margin == pytest.approx(0.8 * report["mm"].initial_margin, rel=1e-15)
    assert report["mm"].initial_margin == report["as_is"].initial_margin
    assert set(case.venues["as_is"].collateral) == {"USDC"}
    assert set(case.venues["coll"].collateral) == {"BTC"}  # replaced, not merged
    assert report["coll"].collateral_value == pytest.approx(90000.0)
    # the replaced measure: 10% of notionals (perp 2 x 100,000, inverse face 5,000 x 10, future 1 x 100,000,
    # options at their premium), and the preset's maintenance fraction still applies
    book = VenueBook(case, "im")
    want = 0.1 * float(np.abs(book.q * book.inputs.notional).sum())
    assert report["im"].initial_margin == pytest.approx(want, rel=1e-12)
    assert set(report["im"].components) == {"fixed_rate"}
    assert report["im"].maintenance_margin == pytest.approx(0.5 * want, rel=1e-12)


def test_preset_collateral_the_case_does_not_price_is_not_eligible(tmp_path: Path) -> None:
    case = case_dict({"v": venue_with(get_preset("paradex-pm-2026-07"))})
    del case["market"]["prices"]["USDC"]
    assert dict(load(tmp_path, case).venues["v"].collateral) == {}
    case["venues"]["v"]["posted"] = {"USDC": 1000}
    path, text = write(tmp_path, case)
    with pytest.raises(CaseError, match="preset paradex-pm-2026-07 lists USDC as collateral, and the case does not price it") as err:
        marginopt.load_case(path)
    assert f"line {line_of(text, 'posted')}" in str(err.value)


# ---------------------------------------------------------------------------
# Errors name the case file and line for the case's values, the preset for its own


def test_unknown_preset_id_in_a_case(tmp_path: Path) -> None:
    path, text = write(tmp_path, case_dict({"v": {"preset": "deribit-pm-1999", "collateral": {}}}))
    with pytest.raises(CaseError) as err:
        marginopt.load_case(path)
    msg = str(err.value)
    assert str(path) in msg and f"line {line_of(text, 'deribit-pm-1999')}" in msg
    assert "venues.v.preset" in msg and all(pid in msg for pid in preset_ids())
    assert "replaces the preset's" in msg


def test_unknown_key_beside_preset(tmp_path: Path) -> None:
    venue = venue_with(get_preset("cme-span-2024"), scan_range={"BTC": 0.1})
    path, text = write(tmp_path, case_dict({"v": venue}))
    with pytest.raises(CaseError, match="scan_ranges") as err:
        marginopt.load_case(path)
    assert f"line {line_of(text, ' scan_range: ')}" in str(err.value)


def test_missing_parameter_names_the_preset(tmp_path: Path) -> None:
    venue = venue_with(get_preset("cme-span-2024"))
    del venue["spreads"]
    path, text = write(tmp_path, case_dict({"v": venue}))
    with pytest.raises(CaseError, match=r"venues\.v\.spreads.*preset cme-span-2024") as err:
        marginopt.load_case(path)
    assert str(path) in str(err.value)


def test_parameter_of_a_replaced_key_is_refused(tmp_path: Path) -> None:
    # initial_margin replaced: scan_ranges, spreads... would be silently unused
    venue = venue_with(get_preset("cme-span-2024"), initial_margin={"kind": "fixed_rate", "rate": 0.1})
    path, text = write(tmp_path, case_dict({"v": venue}))
    with pytest.raises(CaseError, match="replaces") as err:
        marginopt.load_case(path)
    assert f"line {line_of(text, 'scan_ranges')}" in str(err.value)


@pytest.mark.parametrize(
    ("param", "value", "marker"),
    [
        pytest.param("minimum_charge_rate", -0.01, "minimum_charge_rate", id="scaled-number"),
        pytest.param("scan_ranges", {"BTC": -0.1}, "scan_ranges", id="inside-a-mapping"),
    ],
)
def test_bad_parameter_value_names_the_case_line(tmp_path: Path, param: str, value: Any, marker: str) -> None:
    pid = "okx-pm-2025-01" if param == "minimum_charge_rate" else "cme-span-2024"
    venue = venue_with(get_preset(pid), **{param: value})
    path, text = write(tmp_path, case_dict({"v": venue}))
    with pytest.raises(CaseError) as err:
        marginopt.load_case(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}, line {line_of(text, marker)}") and f"venues.v.{param}" in msg


def test_collateral_only_preset_needs_initial_margin(tmp_path: Path) -> None:
    venue = venue_with(get_preset("binance-collateral-2023-01"))
    del venue["initial_margin"]
    path, text = write(tmp_path, case_dict({"v": venue}))
    with pytest.raises(CaseError, match=r"venues\.v\.initial_margin.*beside preset binance-collateral-2023-01") as err:
        marginopt.load_case(path)
    assert f"line {line_of(text, 'binance-collateral-2023-01')}" in str(err.value)


def test_error_in_a_presets_own_values_names_the_preset(tmp_path: Path) -> None:
    # Deribit's 2024 parameters are for BTC: an ETH instrument there is refused, naming the preset's grid.
    case = case_dict({"v": venue_with(get_preset("deribit-pm-2024-06"))})
    case["instruments"].append({"id": "ETH-PERP", "kind": "perpetual", "underlying": "ETH"})
    case["positions"].append({"venue": "v", "instrument": "ETH-PERP", "quantity": 1})
    with pytest.raises(CaseError) as err:
        marginopt.margin(load(tmp_path, case))
    msg = str(err.value)
    assert msg.startswith("preset deribit-pm-2024-06: field 'venues.v.initial_margin.terms.0.scenarios.underlyings'")
    assert "ETH-PERP is on ETH" in msg


@pytest.mark.parametrize("family", ["deribit-pm", "okx-pm", "cme-span", "binance-collateral"])
def test_venue_presets_carry_published_lots_with_source_and_date(family: str) -> None:
    """Issue 17 item 1: each venue's published lot sizes and minimum trades, each with its source
    and date; a figure not published is None and its note says so (never filled in)."""
    lots = get_preset(family).lots
    assert lots
    for lot in lots:
        assert lot.source and all(s.strip() for s in lot.source)
        assert re.search(r"\d{4}(-\d{2}-\d{2})?", lot.as_of), lot.as_of
        assert lot.kind in ("option", "future", "perpetual")
        published = (lot.contract_size, lot.step, lot.minimum)
        assert all(x is None or x > 0 for x in published)
        if None in published:
            assert "not found" in lot.note


def test_published_lots_read_from_the_pages() -> None:
    """The figures as the cited pages print them (docs/presets/lots.md)."""
    def find(family: str, product: str) -> Any:
        return next(lot for lot in get_preset(family).lots if lot.product.startswith(product))

    cme = find("cme-span", "Bitcoin futures")
    assert (cme.contract_size, cme.contract_unit, cme.step) == (5.0, "BTC", 1.0)
    assert find("cme-span", "Micro Bitcoin").contract_size == 0.1
    assert find("cme-span", "Ether futures").contract_size == 50.0
    okx = find("okx-pm", "BTCUSDT perpetual")
    assert (okx.contract_size, okx.step, okx.minimum, okx.as_of) == (0.01, 0.1, 0.1, "2024-04-25")
    deribit = find("deribit-pm", "BTC futures")
    assert (deribit.contract_size, deribit.contract_unit) == (10.0, "USD")
    assert find("deribit-pm", "BTC options").step is None  # 0.1 BTC: not found in a published page
    binance = find("binance-collateral", "BTCUSDT")
    assert binance.step is None and (binance.min_notional, binance.notional_unit) == (5.0, "USDT")


def test_a_lot_without_a_source_or_with_an_unexplained_gap_is_refused() -> None:
    from marginopt.presets import Lot

    with pytest.raises(ValueError, match="source and a date"):
        Lot("X", "future", "BTC", 1.0, "BTC", 1.0, 1.0, (), "2026-01-01")
    with pytest.raises(ValueError, match="not found"):
        Lot("X", "future", "BTC", 1.0, "BTC", None, 1.0, ("a page",), "2026-01-01")
