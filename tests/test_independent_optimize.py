"""Independent acceptance test for `marginopt optimize`.

Written only from docs/CASE_FORMAT.md (case format v1), without reading
the package or the other tests. Every expected number below is derived by hand
in the comments next to it.
"""
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = Path(__file__).resolve().parent / "independent_optimize"


def approx(x):
    return pytest.approx(x, rel=1e-6, abs=1e-6)


def run_optimize(name):
    return subprocess.run(
        [sys.executable, "-m", "marginopt", "optimize", str(CASES / name), "--format", "json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def load_ok(name):
    proc = run_optimize(name)
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout)


def by_venue(rows, key):
    out = {}
    for r in rows:
        assert r["venue"] not in out, f"duplicate venue row {r}"
        out[r["venue"]] = r[key] if key else r
    return out


def alloc_map(rows):
    out = {}
    for r in rows:
        k = (r["venue"], r["asset"])
        out[k] = out.get(k, 0.0) + r["quantity"]
    return out


# ---------------------------------------------------------------------------
# opt_a: cheapest to deliver, min_cost
#
# Margins (fixed_rate = rate * sum |q * mult * price|):
#   harbor: 0.1  * |2 * 1 * 100000|   = 20000
#   meadow: 0.05 * |-100 * 1 * 2000|  = 10000
# Cost per unit of covered value = cost / (1 - haircut):
#   harbor: USDC 0.05/1 = 0.05, TBILL 0.01/0.98 = 0.0102, BTC 0.02/0.8 = 0.025
#   meadow: USDC 0.05/1 = 0.05, TBILL 0.01/0.95 = 0.0105 (BTC not eligible)
# TBILL is cheapest at both but only 50 units (gross 5000) exist. Saving per unit
# of TBILL gross value vs. the next-best asset:
#   at meadow: 0.95 * 0.05  - 0.01 = 0.0375   (replaces USDC)
#   at harbor: 0.98 * 0.025 - 0.01 = 0.0145   (replaces BTC)
# => all TBILL to meadow; meadow rest in USDC; harbor entirely BTC.
# LP dual check: y_harbor = 0.025 (BTC basic), y_meadow = 0.05 (USDC basic),
#   w_TBILL = 0.95*0.05 - 0.01 = 0.0375 (TBILL@meadow basic); TBILL@harbor has
#   reduced cost 0.01 - (0.98*0.025 - 0.0375) = 0.023 > 0 -> unique primal.
# ---------------------------------------------------------------------------
A_IM = {"harbor": 0.1 * 2 * 100000, "meadow": 0.05 * 100 * 2000}   # 20000, 10000
A_TBILL_MEADOW = 50.0                                              # all TBILL inventory
A_USDC_MEADOW = (10000 - 50 * 100 * (1 - 0.05)) / 1.0              # 10000 - 4750 = 5250 USDC
A_BTC_HARBOR = 20000 / (100000 * (1 - 0.2))                        # 0.25 BTC (gross 25000)
A_OBJECTIVE = (0.05 * A_USDC_MEADOW * 1.0                          # 262.5
               + 0.01 * A_TBILL_MEADOW * 100                       # 50
               + 0.02 * A_BTC_HARBOR * 100000)                     # 500  -> 812.5
A_SHADOW_VENUES = {"harbor": 0.02 / (1 - 0.2),                     # 0.025 (BTC marginal)
                   "meadow": 0.05 / (1 - 0.0)}                     # 0.05  (USDC marginal)
# One more unit of TBILL value at meadow covers 0.95 and displaces 0.95 of USDC
# (0.05 each) while costing 0.01 itself: -(0.95*0.05 - 0.01) = -0.0375.
A_SHADOW_ASSETS = {"TBILL": -(0.95 * 0.05 - 0.01),                 # -0.0375
                   "USDC": 0.0, "BTC": 0.0}                        # inventories not binding

TOP_KEYS = {"status", "objective", "objective_value", "hedges", "allocation",
            "margins", "shadow_prices", "verification", "solver", "tolerance"}


def test_opt_a_cheapest_to_deliver():
    out = load_ok("opt_a.yaml")
    assert set(out) == TOP_KEYS
    assert out["status"] == "optimal"
    assert out["objective"] == "min_cost"
    # dual-side cross-check of the hand objective: 20000*0.025 + 10000*0.05 - 5000*0.0375
    assert A_OBJECTIVE == approx(20000 * 0.025 + 10000 * 0.05 - 5000 * 0.0375)
    assert out["objective_value"] == approx(A_OBJECTIVE)

    alloc = alloc_map(out["allocation"])
    expected = {("harbor", "BTC"): A_BTC_HARBOR,
                ("meadow", "TBILL"): A_TBILL_MEADOW,
                ("meadow", "USDC"): A_USDC_MEADOW,
                ("harbor", "USDC"): 0.0,
                ("harbor", "TBILL"): 0.0}
    for k, q in expected.items():
        assert alloc.get(k, 0.0) == approx(q), k
    for k, q in alloc.items():                     # nothing else allocated
        if k not in expected:
            assert q == approx(0.0), k

    margins = by_venue(out["margins"], None)
    assert set(margins) == set(A_IM)
    for v, im in A_IM.items():
        assert margins[v]["before"] == approx(im)
        assert margins[v]["after"] == approx(im)   # no hedges: unchanged

    sp = out["shadow_prices"]
    for v, s in A_SHADOW_VENUES.items():
        assert sp["venues"][v] == approx(s), v
    for a, s in A_SHADOW_ASSETS.items():
        assert sp["assets"].get(a, 0.0) == approx(s), a

    assert out["verification"]["passed"] is True


# ---------------------------------------------------------------------------
# opt_b: hedge flattens BTC, min_margin
#
# Unhedged: long 2 BTC-PERP @100000; grid moves -10%,0,+10%:
#   losses = -(2*100000*m) -> 20000, 0, -20000; scenario_max = 20000.
# Selling s futures (price 100000 = spot, rate 0 so forward = spot too) leaves
# delta (2 - s): margin = 10000*|2 - s|; objective = 10000*|2-s| + 50*s,
# minimized at s = 2 (each contract saves 10000 of margin for 50 of cost).
# Signed hedge quantity (positions are signed contracts): -2.
# ---------------------------------------------------------------------------
B_BEFORE = 2 * 100000 * 0.1          # 20000
B_HEDGE_Q = -2.0                     # sell 2 futures
B_HEDGE_COST = 50 * 2                # 100
B_OBJECTIVE = 0.0 + B_HEDGE_COST     # margin after 0 + hedge cost = 100


def test_opt_b_hedge_flattens():
    out = load_ok("opt_b.yaml")
    assert out["status"] == "optimal"
    assert out["objective"] == "min_margin"
    hedges = {(h["venue"], h["instrument"]): h for h in out["hedges"]}
    h = hedges[("falcon", "BTC-FUT-DEC26")]
    assert h["quantity"] == approx(B_HEDGE_Q)
    assert h["cost"] == approx(B_HEDGE_COST)
    m = by_venue(out["margins"], None)["falcon"]
    assert m["before"] == approx(B_BEFORE)
    assert m["after"] == approx(0.0)
    assert out["objective_value"] == approx(B_OBJECTIVE)


# ---------------------------------------------------------------------------
# opt_c: infeasible, min_cost
#
# kestrel margin: 0.5 * 1 * 100000 = 50000.
# Eligible collateral after haircut: posted USDC 10000*1 + treasury USDC 20000*1
#   + treasury TBILL 100*100*(1-0.1) = 9000; ETH not eligible -> 39000.
# Shortfall = 50000 - 39000 = 11000.
# ---------------------------------------------------------------------------
C_VENUE = "kestrel"
C_SHORTFALL = 0.5 * 100000 - (10000 + 20000 + 100 * 100 * (1 - 0.1))   # 11000

_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _json_numbers(obj):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _json_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _json_numbers(v)


def _text_numbers(text):
    for m in _NUM.finditer(text):
        try:
            yield float(m.group(0).replace(",", ""))
        except ValueError:
            pass


def test_opt_c_infeasible():
    proc = run_optimize("opt_c.yaml")
    combined = proc.stdout + "\n" + proc.stderr
    assert proc.returncode != 0, combined
    data = None
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        pass
    numbers = []
    if data is not None:
        assert data.get("status") == "infeasible", data
        numbers += list(_json_numbers(data))
    numbers += list(_text_numbers(proc.stderr))
    if data is None:
        numbers += list(_text_numbers(proc.stdout))
    assert any(math.isclose(x, C_SHORTFALL, rel_tol=1e-6, abs_tol=1e-6) for x in numbers), (
        f"shortfall {C_SHORTFALL} not found in output:\n{combined}")
    assert C_VENUE in combined, combined
