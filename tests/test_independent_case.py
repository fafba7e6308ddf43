"""Independent acceptance test for `marginopt margin --format json`.

Written only from the public case-format spec (docs/CASE_FORMAT.md, version 1),
without reading the package code.  Every expected number below is derived by
hand from the case files in tests/independent_case/ and the spec's rules.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CASES = HERE / "independent_case"
REPO_ROOT = HERE.parent

VENUE_KEYS = {
    "venue",
    "initial_margin",
    "maintenance_margin",
    "collateral_value",
    "excess",
    "worst_scenario",
    "components",
}


def approx(x):
    return pytest.approx(x, rel=1e-9, abs=1e-6)


def _run(cmd):
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def run_margin(case_path):
    args = ["margin", str(case_path), "--format", "json"]
    proc = _run([sys.executable, "-m", "marginopt", *args])
    script = Path(sys.executable).parent / "marginopt"
    if proc.returncode != 0 and "marginopt.__main__" in proc.stderr and script.exists():
        # no `python -m marginopt` entry point: fall back to the console script
        proc = _run([str(script), *args])
    assert proc.returncode == 0, (
        f"marginopt margin exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    out = json.loads(proc.stdout)
    assert {"base_currency", "venues", "total_initial_margin"} <= set(out)
    assert out["base_currency"] == "USD"
    venues = {}
    for v in out["venues"]:
        assert set(v) == VENUE_KEYS, f"venue dict keys: {sorted(v)}"
        venues[v["venue"]] = v
    return out, venues


# ---------------------------------------------------------------------------
# Case A
# ---------------------------------------------------------------------------
# Prices: BTC 91000, ETH 3100, USDC 1.  rate 0.
#
# pm_venue: scenario_max over grid price_moves [-0.1, 0, 0.1], vol_moves [0],
# applied per underlying and summed over underlyings.
#
#   BTC group (F_BTC +2, P_BTC -0.5 linear; I_BTC -500 inverse, face 100 USD)
#   linear net = 2 - 0.5 = 1.5 BTC
#     m = -0.1: linear loss = 1.5 * 91000 * 0.1 = 13650
#               inverse: P&L coin = q * M * (1/P0 - 1/P1)
#                        = -500 * 100 * (1/91000 - 1/81900)
#               loss base = -P&L coin * P0 = 50000 * (1/91000 - 1/81900) * 91000
#                         = 50000 * (1 - 91000/81900) = 50000 * (1 - 1/0.9)
#                         = -50000/9 = -5555.555...
#               total = 13650 - 50000/9 = 72850/9 = 8094.444...
#     m =  0  : 0
#     m = +0.1: linear loss = -13650
#               inverse loss = 50000 * (1 - 1/1.1) = 50000/11 = 4545.4545...
#               total = -13650 + 50000/11 = -9104.5454...
#     BTC max = 72850/9
#   ETH group (P_ETH -10)
#     m = +0.1: loss = 10 * 3100 * 0.1 = 3100 ; m = -0.1: -3100 ; m = 0: 0
#     ETH max = 3100
#   IM = 72850/9 + 3100 = 100750/9 = 11194.444...
#   (moving BTC and ETH together would give only 72850/9 - 3100 = 4994.44.)
A_PM_BTC = 1.5 * 91000 * 0.1 + 50000 * (1 - 1 / 0.9)  # 13650 - 5555.56 = 8094.44
A_PM_ETH = 10 * 3100 * 0.1  # 3100
A_PM_IM = A_PM_BTC + A_PM_ETH  # 100750/9 = 11194.444...

# pm_venue collateral: posted USDC 3000 (haircut 0.02), BTC 1.0 (tiered), BTC
# concentration 0.4.
#   USDC: 3000 * 1 * (1 - 0.02) = 2940
#   BTC gross 1.0 * 91000 = 91000; tiers [[50000, 0.95], [100000, 0.9]]:
#       50000 * 0.95 + (91000 - 50000) * 0.9 = 47500 + 36900 = 84400
#   concentration: BTC credited <= 0.4 * total  =>  BTC <= 0.4/0.6 * 2940 = 1960
#       credited BTC = min(84400, 1960) = 1960 ; total = 2940 + 1960 = 4900
A_PM_COLL = 2940 + 0.4 / 0.6 * 2940  # 4900
A_PM_EXCESS = A_PM_COLL - A_PM_IM  # 4900 - 11194.44 = -6294.44 (shortfall)

# linear_venue: sum(fixed_rate 0.05, net_delta_charge 0.02)
#   positions S_BTC +1, P_BTC -3, P_ETH +20
#   fixed_rate: 0.05 * (|1*91000| + |-3*91000| + |20*3100|)
#             = 0.05 * (91000 + 273000 + 62000) = 0.05 * 426000 = 21300
#   net_delta_charge: BTC net delta 1 - 3 = -2 -> 0.02 * 2 * 91000 = 3640
#                     ETH net delta 20        -> 0.02 * 20 * 3100 = 1240
#                     = 4880
#   IM = 21300 + 4880 = 26180
A_LIN_IM = 0.05 * (91000 + 3 * 91000 + 20 * 3100) + 0.02 * 2 * 91000 + 0.02 * 20 * 3100  # 26180

# linear_venue collateral: posted USDC 20000 (haircut 0.01), ETH 20 (tiered)
#   USDC: 20000 * 0.99 = 19800
#   ETH gross 20 * 3100 = 62000; tiers [[20000, 1.0], [40000, 0.8]]:
#       20000 * 1.0 + 20000 * 0.8 + 22000 * 0 = 36000
#   total = 55800
A_LIN_COLL = 20000 * 0.99 + (20000 * 1.0 + 20000 * 0.8)  # 55800
A_LIN_EXCESS = A_LIN_COLL - A_LIN_IM  # 55800 - 26180 = 29620

A_TOTAL_IM = A_PM_IM + A_LIN_IM  # 11194.444 + 26180 = 37374.444...


def test_case_a_hand_numbers_are_self_consistent():
    # guard against typos in the arithmetic above
    assert A_PM_IM == approx(100750 / 9)
    assert A_PM_COLL == approx(4900)
    assert A_LIN_IM == approx(26180)
    assert A_LIN_COLL == approx(55800)
    assert A_TOTAL_IM == approx(100750 / 9 + 26180)


def test_case_a():
    out, venues = run_margin(CASES / "case_a.yaml")
    assert set(venues) == {"pm_venue", "linear_venue"}

    pm = venues["pm_venue"]
    assert pm["initial_margin"] == approx(A_PM_IM)  # 11194.444...
    assert pm["collateral_value"] == approx(A_PM_COLL)  # 4900
    assert pm["excess"] == approx(A_PM_EXCESS)  # -6294.444...

    lin = venues["linear_venue"]
    assert lin["initial_margin"] == approx(A_LIN_IM)  # 26180
    assert lin["collateral_value"] == approx(A_LIN_COLL)  # 55800
    assert lin["excess"] == approx(A_LIN_EXCESS)  # 29620

    assert out["total_initial_margin"] == approx(A_TOTAL_IM)  # 37374.444...


# ---------------------------------------------------------------------------
# Case B  (losses.csv: 10 equally weighted scenarios, loss per +1 contract)
# ---------------------------------------------------------------------------
#   s :    FB     PE
#   1 :  1000     50
#   2 : -2000   -100
#   3 :  3000    200
#   4 :  -500    300
#   5 :  4000   -150
#   6 :     0      0
#   7 : -3000    250
#   8 :  1500    100
#   9 :  2500   -300
#  10 : -1000    -50
#
# es_venue: FB +2, PE -10 ; loss_s = 2*FB - 10*PE
#   1500, -3000, 4000, -4000, 9500, 0, -8500, 2000, 8000, -1500
#   alpha 0.8 -> worst 20% of mass = worst 2 of 10 equal-weight scenarios:
#   (9500 + 8000) / 2 = 8750   (3rd worst is 4000, clear gap)
#   maintenance = 0.5 * 8750 = 4375
B_ES_LOSSES = [2 * fb - 10 * pe for fb, pe in [
    (1000, 50), (-2000, -100), (3000, 200), (-500, 300), (4000, -150),
    (0, 0), (-3000, 250), (1500, 100), (2500, -300), (-1000, -50)]]
B_ES_IM = (9500 + 8000) / 2  # 8750
B_ES_MM = 0.5 * B_ES_IM  # 4375
# collateral: USDC 10000, haircut 0 -> 10000
B_ES_COLL = 10000 * 1.0 * (1 - 0.0)  # 10000
B_ES_EXCESS = B_ES_COLL - B_ES_IM  # 1250

# max_venue: FB -1, PE +4 ; loss_s = -FB + 4*PE
#   -800, 1600, -2200, 1700, -4600, 0, 4000, -1100, -3700, 800
#   scenario_max = max(0, 4000) = 4000 (scenario 7)
#   fixed_rate 0.05 * (|-1*1*91000| + |4*1*3100|) = 0.05 * (91000 + 12400)
#             = 0.05 * 103400 = 5170
#   IM = max(4000, 5170) = 5170   (a sum would give 9170)
B_MAX_LOSSES = [-fb + 4 * pe for fb, pe in [
    (1000, 50), (-2000, -100), (3000, 200), (-500, 300), (4000, -150),
    (0, 0), (-3000, 250), (1500, 100), (2500, -300), (-1000, -50)]]
B_MAX_IM = max(4000, 0.05 * (91000 + 4 * 3100))  # 5170
# collateral: USDC 5000 * 0.9 = 4500 ; TBILL 10 * 99.2 * 0.95 = 942.4 ; total 5442.4
B_MAX_COLL = 5000 * 0.9 + 10 * 99.2 * 0.95  # 5442.4
B_MAX_EXCESS = B_MAX_COLL - B_MAX_IM  # 272.4

B_TOTAL_IM = B_ES_IM + B_MAX_IM  # 8750 + 5170 = 13920


def test_case_b_hand_numbers_are_self_consistent():
    assert B_ES_LOSSES == [1500, -3000, 4000, -4000, 9500, 0, -8500, 2000, 8000, -1500]
    assert sorted(B_ES_LOSSES, reverse=True)[:3] == [9500, 8000, 4000]
    assert B_MAX_LOSSES == [-800, 1600, -2200, 1700, -4600, 0, 4000, -1100, -3700, 800]
    assert max(B_MAX_LOSSES) == 4000
    assert B_MAX_IM == approx(5170)
    assert B_MAX_COLL == approx(5442.4)
    assert B_TOTAL_IM == approx(13920)


def test_case_b():
    out, venues = run_margin(CASES / "case_b.yaml")
    assert set(venues) == {"es_venue", "max_venue"}

    es = venues["es_venue"]
    assert es["initial_margin"] == approx(B_ES_IM)  # 8750
    assert es["maintenance_margin"] == approx(B_ES_MM)  # 4375
    assert es["collateral_value"] == approx(B_ES_COLL)  # 10000
    assert es["excess"] == approx(B_ES_EXCESS)  # 1250

    mx = venues["max_venue"]
    assert mx["initial_margin"] == approx(B_MAX_IM)  # 5170
    assert mx["collateral_value"] == approx(B_MAX_COLL)  # 5442.4
    assert mx["excess"] == approx(B_MAX_EXCESS)  # 272.4

    assert out["total_initial_margin"] == approx(B_TOTAL_IM)  # 13920
