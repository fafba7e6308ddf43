"""The embedded demo and the command line, end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

import marginopt
from tests.test_pricing import bs_reference


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marginopt", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def demo_json():
    proc = run_cli("demo", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_demo_json_is_exactly_the_documented_shape(demo_json):
    assert set(demo_json) - {"limits"} == {"base_currency", "venues", "total_initial_margin", "total_shortfall", "total_surplus"}
    assert [v["venue"] for v in demo_json["venues"]] == ["deribit_pm", "okx_std", "cme_es"]
    for v in demo_json["venues"]:
        assert set(v) == {"venue", "initial_margin", "maintenance_margin", "collateral_value", "excess", "worst_scenario", "components"}
        assert v["excess"] == pytest.approx(v["collateral_value"] - v["initial_margin"])
        assert v["initial_margin"] > 0
        assert sum(v["components"].values()) == pytest.approx(v["initial_margin"], rel=1e-12)
    assert demo_json["total_initial_margin"] == pytest.approx(sum(v["initial_margin"] for v in demo_json["venues"]))


def test_demo_collateral_by_hand(demo_json):
    venues = {v["venue"]: v for v in demo_json["venues"]}
    # deribit_pm: 60 BTC = 5.46M gross under tiers 98% to 5M, 95% to 20M:
    # 4.9M + 0.46M * 0.95 = 5,337,000; 300 ETH * 3100 * 0.95 = 883,500; 1.5M USDC * 0.99 = 1,485,000.
    assert venues["deribit_pm"]["collateral_value"] == pytest.approx(5_337_000 + 883_500 + 1_485_000)
    # okx_std: USDC 900k * 0.98 = 882,000 capped at 50% of the total: equals BTC 3 * 91000 * 0.95 = 259,350.
    assert venues["okx_std"]["collateral_value"] == pytest.approx(2 * 259_350)
    # cme_es: 400,000 USD + 6,000 T-bills * 99.2 * 0.98 = 583,296.
    assert venues["cme_es"]["collateral_value"] == pytest.approx(400_000 + 583_296)


def test_demo_fixed_rate_venue_by_hand(demo_json):
    okx = next(v for v in demo_json["venues"] if v["venue"] == "okx_std")
    # Short option minimum: 10% of the underlying per short option:
    # 0.1 * (12 * 91000 + 150 * 3100) = 155,700.
    assert okx["components"]["short_option_minimum"] == pytest.approx(155_700.0)
    # Fixed rate 10% of notional: 18 BTC perps * 91000, 400 ETH futures * 3112.5,
    # 12 calls * their 1450 mark, 150 ETH puts at Black-76 (vol 0.65, 14 days, rate 4%).
    t = 14 / 365
    put = bs_reference(3100.0, 3000.0, t, 0.04, 0.65, False)
    expected = 0.1 * (18 * 91000 + 400 * 3112.5 + 12 * 1450 + 150 * put)
    assert okx["components"]["fixed_rate"] == pytest.approx(expected, rel=1e-12)
    assert okx["maintenance_margin"] == pytest.approx(okx["initial_margin"] / 2, rel=1e-12)


def test_demo_table_is_readable():
    proc = run_cli("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("Margin report", "deribit_pm", "okx_std", "cme_es", "initial margin", "worst scenario", "collateral posted"):
        assert text in out
    assert "short of collateral" in out  # cme_es is short in the demo


def test_csv_has_one_row_per_venue(tmp_path):
    proc = run_cli("margin", str(marginopt.demo_case_path()), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("venue,initial_margin,maintenance_margin,collateral_value,excess,worst_scenario")
    assert len(lines) == 4


def test_scenarios_export_needs_known_venue(tmp_path):
    proc = run_cli("scenarios", str(marginopt.demo_case_path()), "--venue", "nope", "--out", str(tmp_path / "x.parquet"))
    assert proc.returncode == 2
    assert "deribit_pm" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_grid_worst_scenario_is_a_tail_move():
    report = marginopt.margin(marginopt.load_case(marginopt.demo_case_path()))
    d = report["deribit_pm"]
    assert d.worst_scenario is not None and d.worst_scenario.startswith("BTC")
    assert not math.isnan(d.worst_scenario_loss)
