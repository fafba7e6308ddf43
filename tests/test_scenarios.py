"""Scenario sets against hand calculation: grids, historical returns, Monte Carlo, matrices."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import marginopt
from marginopt.models import VenueBook
from marginopt.models.scenarios import ScenarioLosses
from tests.test_pricing import bs_reference

GRID5 = {"kind": "grid", "price_moves": [-0.1, -0.05, 0.0, 0.05, 0.1]}


def test_futures_only_grid_by_hand(margin_of):
    # BTC: +3 futures at 92000 -> worst at -10%: 3 * 92000 * 0.10 = 27600;
    #      the extended -30% move at weight 0.5: 3 * 92000 * 0.30 * 0.5 = 41400 (binds).
    # ETH: -2 perpetuals at spot 3000 -> worst at +10%: 2 * 3000 * 0.10 = 600
    #      (the extended move is down, a gain for the short).
    # Per-underlying grids add up: 41400 + 600 = 42000.
    grid = {**GRID5, "extended": [{"price_move": -0.3, "weight": 0.5}]}
    report = margin_of(
        instruments=[
            {"id": "BTCF", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25", "price": 92000},
            {"id": "ETHP", "kind": "perpetual", "underlying": "ETH"},
        ],
        positions=[{"venue": "v", "instrument": "BTCF", "quantity": 3}, {"venue": "v", "instrument": "ETHP", "quantity": -2}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": grid}}},
    )
    v = report["v"]
    assert v.initial_margin == pytest.approx(42000.0, rel=1e-12)
    assert v.components == pytest.approx({"scenario_max[BTC]": 41400.0, "scenario_max[ETH]": 600.0})
    assert v.worst_scenario == "BTC ext -30% vol +0%"


def test_grid_moving_all_underlyings_together_offsets(margin_of):
    # per_underlying: false moves BTC and ETH by the same relative move, so the
    # long BTC future and the short ETH perp offset: at -10% loss = 27600 - 600 = 27000.
    report = margin_of(
        instruments=[
            {"id": "BTCF", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25", "price": 92000},
            {"id": "ETHP", "kind": "perpetual", "underlying": "ETH"},
        ],
        positions=[{"venue": "v", "instrument": "BTCF", "quantity": 3}, {"venue": "v", "instrument": "ETHP", "quantity": -2}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {**GRID5, "per_underlying": False}}}},
    )
    assert report["v"].initial_margin == pytest.approx(27000.0, rel=1e-12)


def test_short_call_under_price_and_vol_grid(margin_of):
    # Short 2 calls, K = 100000, 73 days (T = 0.2), vol 0.5, rate 0, spot 100000.
    # Worst scenario: price +10% and vol +20% (vol 0.6): loss = 2 * (C(110000, 0.6) - C(100000, 0.5)).
    t = 73 / 365
    c0 = bs_reference(100000, 100000, t, 0.0, 0.5, True)
    c1 = bs_reference(110000, 100000, t, 0.0, 0.6, True)
    report = margin_of(
        instruments=[{"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2027-02-01", "strike": 100000, "right": "call"}],
        positions=[{"venue": "v", "instrument": "C", "quantity": -2}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {**GRID5, "vol_moves": [-0.2, 0.0, 0.2]}}}},
    )
    assert report["v"].initial_margin == pytest.approx(2 * (c1 - c0), rel=1e-12)
    assert report["v"].worst_scenario == "BTC +10% vol +20%"
    # By hand (r = 0): ATM C = S (2 N(sd/2) - 1), sd = 0.5 sqrt(0.2) = 0.223607:
    # 100000 * (2 N(0.111803) - 1) = 8902.07. Shocked: sd = 0.268328, d1 = 0.489364,
    # d2 = 0.221036, C = 110000 N(d1) - 100000 N(d2) = 110000 * 0.687708 - 100000 * 0.587468 = 16901.11.
    assert c0 == pytest.approx(8902.07, abs=0.01)
    assert c1 == pytest.approx(16901.11, abs=0.01)
    assert 2 * (c1 - c0) == pytest.approx(15998.07, abs=0.01)


def test_vol_scaling_by_days_to_expiry(write_case):
    # 10 days to expiry, reference 30 days, power 0.5: a +20% vol move becomes
    # 20% * sqrt(30 / 10) = 34.64%, so the shocked vol is 0.5 * 1.34641.
    path = write_case(
        instruments=[{"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2026-11-30", "strike": 100000, "right": "call"}],
        positions=[{"venue": "v", "instrument": "C", "quantity": -1}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {
            "kind": "grid", "price_moves": [0.0], "vol_moves": [0.2],
            "vol_scaling": {"reference_days": 30, "power": 0.5, "floor_days": 1}}}}},
    )
    book = VenueBook(marginopt.load_case(path), "v")
    t = 10 / 365
    vol1 = 0.5 * (1 + 0.2 * math.sqrt(3))
    expected = bs_reference(100000, 100000, t, 0, vol1, True) - bs_reference(100000, 100000, t, 0, 0.5, True)
    assert book.initial.evaluate(book.q) == pytest.approx(expected, rel=1e-12)


def test_min_vol_floors_and_negative_vol_is_refused(write_case):
    inst = [{"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2026-11-21", "strike": 100000, "right": "call"}]
    grid = {"kind": "grid", "price_moves": [0.0], "vol_moves": [-0.5],
            "vol_scaling": {"reference_days": 30, "power": 0.5, "floor_days": 1}}  # factor sqrt(30) -> vol < 0
    venues = {"v": {"initial_margin": {"kind": "scenario_max", "scenarios": grid}}}
    pos = [{"venue": "v", "instrument": "C", "quantity": 1}]
    with pytest.raises(marginopt.CaseError, match=r"field 'venues\.v\.initial_margin\.scenarios\.vol_moves'.*min_vol"):
        marginopt.margin(marginopt.load_case(write_case(instruments=inst, positions=pos, venues=venues)))
    venues["v"]["initial_margin"]["scenarios"]["min_vol"] = 0.1
    report = marginopt.margin(marginopt.load_case(write_case(instruments=inst, positions=pos, venues=venues)))
    t = 1 / 365
    expected = bs_reference(100000, 100000, t, 0, 0.5, True) - bs_reference(100000, 100000, t, 0, 0.1, True)
    assert report["v"].initial_margin == pytest.approx(expected, rel=1e-12)


def test_historical_overlapping_returns_by_hand(tmp_path, write_case):
    # Closes 100, 110, 99, 120, 108; 2-day overlapping returns: 99/100-1 = -1%,
    # 120/110-1 = +9.09%, 108/99-1 = +9.09%; window 2 keeps the last two.
    pd.DataFrame({"date": ["2026-11-15", "2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19"],
                  "BTC": [100, 110, 99, 120, 108]}).to_csv(tmp_path / "h.csv", index=False)
    path = write_case(
        market={"prices": {"BTC": 100000.0}, "history": "h.csv"},
        instruments=[{"id": "P", "kind": "perpetual", "underlying": "BTC"}],
        positions=[{"venue": "v", "instrument": "P", "quantity": -1}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "historical", "window": 3, "horizon_days": 2}}}},
    )
    book = VenueBook(marginopt.load_case(path), "v")
    losses = book.scenarios(book.venue.initial_margin.scenarios)
    assert losses.matrix[:, 0] == pytest.approx(-100000 * np.array([-0.01, 120 / 110 - 1, 108 / 99 - 1]), rel=1e-12)
    assert list(losses.labels) == ["2026-11-17 (2d)", "2026-11-18 (2d)", "2026-11-19 (2d)"]
    # The short perpetual's worst loss is the +9.09% move: 100000 * 10/110.
    assert book.initial.evaluate(book.q) == pytest.approx(100000 * 10 / 110, rel=1e-12)


def _mc_book(write_case, **mc):
    path = write_case(
        instruments=[{"id": "B", "kind": "perpetual", "underlying": "BTC"}, {"id": "E", "kind": "perpetual", "underlying": "ETH"}],
        positions=[{"venue": "v", "instrument": "B", "quantity": 1}, {"venue": "v", "instrument": "E", "quantity": 1}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "monte_carlo", **mc}}}},
    )
    book = VenueBook(marginopt.load_case(path), "v")
    return book.scenarios(book.venue.initial_margin.scenarios)


def test_monte_carlo_moments_and_seed(write_case):
    mc = {"n": 200_000, "seed": 11, "horizon_days": 365, "correlation": {"BTC": {"ETH": 0.7}}}
    a = _mc_book(write_case, **mc)
    b = _mc_book(write_case, **mc)
    assert np.array_equal(a.matrix, b.matrix)  # seeded: reproducible
    # loss = -S * (exp(x) - 1) with x ~ N(-vol^2/2, vol^2) over one year.
    x = np.log1p(-a.matrix / np.array([100000.0, 3000.0]))
    se = 4 / math.sqrt(mc["n"])
    assert x.std(axis=0) == pytest.approx([0.5, 0.6], rel=4 * se)
    assert x.mean(axis=0) == pytest.approx([-0.125, -0.18], abs=4 * se * 0.6)
    assert np.corrcoef(x.T)[0, 1] == pytest.approx(0.7, abs=4 * se)
    assert (-a.matrix / np.array([100000.0, 3000.0])).mean(axis=0) == pytest.approx([0, 0], abs=0.01)  # martingale


@pytest.mark.parametrize("options", [2, 80])  # 80 options x 4,000 draws: the compiled kernel; 2: numpy's
def test_scenarios_repriced_block_by_block_are_the_same_numbers(write_case, monkeypatch, options):
    """``losses_from_moves`` reprices the moves block by block of scenarios (its temporaries a block's,
    issue 15 item 6): the matrix is the one priced in a single block, to the bit, and its options price
    as Black-76 does at the moved spot."""
    from marginopt.models.scenarios import base

    strikes = np.linspace(60000, 140000, options)
    inst = [{"id": "B", "kind": "perpetual", "underlying": "BTC"}, {"id": "F", "kind": "future", "underlying": "ETH",
                                                                     "expiry": "2027-03-26"}]
    inst += [{"id": f"C{i}", "kind": "option", "underlying": "BTC", "expiry": "2027-01-29", "strike": float(k),
              "right": "call" if i % 2 else "put", "vol": 0.5} for i, k in enumerate(strikes)]
    path = write_case(instruments=inst, positions=[{"venue": "v", "instrument": i["id"], "quantity": 1} for i in inst],
                      venues={"v": {"initial_margin": {"kind": "expected_shortfall", "alpha": 0.99, "scenarios": {
                          "kind": "monte_carlo", "n": 4000, "seed": 5, "correlation": {"BTC": {"ETH": 0.5}}}}}})

    def matrix(rows: int) -> np.ndarray:
        monkeypatch.setattr(base, "_MOVE_ROWS", rows)
        book = VenueBook(marginopt.load_case(path), "v")
        return book.scenarios(book.venue.initial_margin.scenarios).matrix

    whole = matrix(1 << 30)
    assert np.array_equal(matrix(333), whole) and np.array_equal(matrix(4000), whole)
    # The perpetual's loss is -S (g - 1); a put's is its value now less its value at S g (one draw, by hand).
    g = 1.0 - whole[7, 0] / 100000.0
    t = (np.datetime64("2027-01-29") - np.datetime64("2026-11-20")).astype(int) / 365.0
    put = inst[2]
    assert whole[7, 2] == pytest.approx(bs_reference(100000.0, put["strike"], t, 0.0, 0.5, False)
                                        - bs_reference(100000.0 * g, put["strike"], t, 0.0, 0.5, False), rel=1e-9, abs=1e-7)


def test_monte_carlo_labels_and_weights_are_made_on_demand(write_case):
    """A Monte Carlo set's labels are named when asked for and its equal weights are one value broadcast
    (issue 15 item 6: at 400,000 draws they had taken 14 + 3 MiB, more than the loss matrix); they read
    as the arrays did, and an ES on them has the same probabilities."""
    from marginopt.models.margin.shortfall import ExpectedShortfall

    losses = _mc_book(write_case, n=1000, seed=3)
    labels = losses.labels
    assert labels.shape == (1000,) and len(labels) == 1000
    assert labels[0] == "mc 0" and labels[-1] == "mc 999" and labels[np.int64(7)] == "mc 7"
    assert list(labels[np.array([3, 1])]) == ["mc 3", "mc 1"] and list(labels[998:]) == ["mc 998", "mc 999"]
    assert list(labels)[:2] == ["mc 0", "mc 1"] and labels.astype(str)[5] == "mc 5"
    with pytest.raises(IndexError):
        labels[1000]
    assert losses.weights.strides == (0,) and np.array_equal(losses.weights, np.ones(1000))
    assert losses.to_frame()["scenario"].iloc[-1] == "mc 999"
    es = ExpectedShortfall("es", losses, 0.99)
    assert es.probs[0].strides == (0,) and es.probs[0].sum() == pytest.approx(1.0)
    q = np.array([1.0, -2.0])
    explicit = ExpectedShortfall("es", ScenarioLosses(np.array(list(labels)), np.ones(1000), losses.instrument_ids,
                                                      losses.matrix.copy()), 0.99)
    assert es.evaluate(q) == pytest.approx(explicit.evaluate(q), rel=1e-12)
    assert np.allclose(es.gradient(q), explicit.gradient(q), rtol=1e-12)


def test_monte_carlo_student_t_has_unit_variance_and_fat_tails(write_case):
    a = _mc_book(write_case, n=400_000, seed=3, horizon_days=1, distribution="student_t", dof=5)
    x = np.log1p(-a.matrix[:, 0] / 100000.0)
    sd = 0.5 * math.sqrt(1 / 365)
    assert x.std() == pytest.approx(sd, rel=0.02)
    kurt = ((x - x.mean()) ** 4).mean() / x.var() ** 2
    assert kurt > 5  # t(5) has kurtosis 9; a normal has 3


def test_matrix_export_round_trip(write_case, tmp_path):
    case = write_case(
        instruments=[
            {"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2027-01-15", "strike": 105000, "right": "call"},
            {"id": "F", "kind": "future", "underlying": "ETH", "expiry": "2026-12-25"},
        ],
        positions=[{"venue": "v", "instrument": "C", "quantity": -3}, {"venue": "v", "instrument": "F", "quantity": 5}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {**GRID5, "vol_moves": [-0.3, 0.3],
                                                                                "extended": [{"price_move": 0.4, "weight": 0.3}]}}}},
    )
    out = tmp_path / "m.parquet"
    proc = subprocess.run([sys.executable, "-m", "marginopt", "scenarios", str(case), "--venue", "v", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["scenario", "group", "weight", "C", "F"]
    assert len(frame) == 2 * (10 + 1)
    # The exported matrix, used as a `matrix` scenario set, gives the same margin.
    again = write_case(
        name="again.yaml",
        instruments=[
            {"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2027-01-15", "strike": 105000, "right": "call"},
            {"id": "F", "kind": "future", "underlying": "ETH", "expiry": "2026-12-25"},
        ],
        positions=[{"venue": "v", "instrument": "C", "quantity": -3}, {"venue": "v", "instrument": "F", "quantity": 5}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "matrix", "file": "m.parquet"}}}},
    )
    first = marginopt.margin(marginopt.load_case(case))["v"]
    second = marginopt.margin(marginopt.load_case(again))["v"]
    assert second.initial_margin == pytest.approx(first.initial_margin, rel=1e-15)
    assert second.components == first.components


def test_scenario_losses_is_contiguous_read_only(write_case):
    path = write_case(
        instruments=[{"id": "F", "kind": "future", "underlying": "ETH", "expiry": "2026-12-25"}],
        positions=[{"venue": "v", "instrument": "F", "quantity": 1}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": GRID5},
                      "maintenance_margin": {"kind": "expected_shortfall", "alpha": 0.5, "scenarios": GRID5}}},
    )
    book = VenueBook(marginopt.load_case(path), "v")
    book.initial, book.maintenance  # noqa: B018  (bind both measures)
    assert len(book._scenarios) == 1  # the grid both measures name is built once
    losses = next(iter(book._scenarios.values()))
    assert losses.matrix.flags.c_contiguous and losses.matrix.dtype == np.float64
    with pytest.raises(ValueError):
        losses.matrix[0, 0] = 1.0



@pytest.mark.parametrize("text_column", [False, True], ids=["numeric-columns-by-row-groups", "a-text-column-by-columns"])
def test_parquet_matrix_is_read_cell_for_cell(write_case, tmp_path, monkeypatch, text_column):
    """A Parquet matrix with columns stored in another order than the case's, in row groups of which
    some are read whole and some (past ``_GROUP_BYTES``) column by column: every loss lands in its
    scenario's row and its instrument's column; likewise when a column of numbers as text sends the
    whole read one column at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from marginopt.models.scenarios import matrix as matrix_module

    n = 70_000  # row groups of 30,000, 30,000 and 10,000; only the last is read whole
    monkeypatch.setattr(matrix_module, "_GROUP_BYTES", 3 * 8 * 10_000)
    rng = np.random.default_rng(11)
    losses = {"F": rng.normal(size=n) * 1e3, "G": rng.integers(-10**6, 10**6, size=n), "C": rng.normal(size=n)}
    columns = {"C": pa.array([repr(float(v)) for v in losses["C"]]) if text_column else pa.array(losses["C"]),
               "G": pa.array(losses["G"], type=pa.int64()), "F": pa.array(losses["F"])}
    pq.write_table(pa.table(columns), tmp_path / "m.parquet", row_group_size=30_000)
    case = write_case(
        instruments=[{"id": "F", "kind": "perpetual", "underlying": "BTC"}, {"id": "G", "kind": "perpetual", "underlying": "BTC"},
                     {"id": "C", "kind": "perpetual", "underlying": "BTC"}],
        positions=[{"venue": "v", "instrument": i, "quantity": 1} for i in "FGC"],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "matrix", "file": "m.parquet"}}}},
    )
    book = VenueBook(marginopt.load_case(case), "v")
    book.initial  # noqa: B018  (binds the measure, which reads the matrix)
    read = next(iter(book._scenarios.values()))
    want = np.column_stack([losses[i] for i in read.instrument_ids]).astype(float)
    assert read.matrix.shape == (n, 3)
    np.testing.assert_array_equal(read.matrix, want)
    assert read.labels[0] == "row 1" and read.labels[-1] == f"row {n}"
