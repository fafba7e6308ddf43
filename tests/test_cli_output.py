"""Every command's machine-readable output as a user gets it: the installed ``marginopt`` run as a
subprocess, the whole of standard output parsed as one JSON or CSV document (a solver banner or a
note before or after it fails the parse), on cases whose plans go through each solver path:
direct HiGHS, cvxpy with HiGHS, Clarabel, the large-scenario route and the infeasible report."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import marginopt
from marginopt.models import load_case
from marginopt.optimizer import MarginProblem, Mode, optimize
from tests.conftest import BASE
from tests.test_derive_hedge import hand_book
from tests.test_derive_pmrm2 import write as write_snapshot
from tests.test_optimizer import SHORT_CASE
from tests.test_scenario_route import case_doc as route_case_doc

MARGINOPT = Path(sys.executable).parent / "marginopt"
pytestmark = pytest.mark.skipif(not MARGINOPT.is_file(), reason=f"the marginopt console script is not installed at {MARGINOPT}")

DEMO = marginopt.demo_case_path()
PLAN_KEYS = {"status", "objective", "objective_value", "hedges", "allocation", "margins", "shadow_prices", "verification", "solver",
             "tolerance"}
PLAN_OPTIONAL = {"certificate", "infeasibility", "safety", "executability", "status_detail"}  # where the case has them
MARGIN_KEYS = {"base_currency", "venues", "total_initial_margin", "total_shortfall", "total_surplus"}
# What highspy >= 1.16 writes on stdout when a Highs() is constructed (the bug this file guards against).
BANNER = ("Running HiGHS", "Copyright", "Includes third-party")


def run(cwd: Path, *args: object, code: int = 0) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it, with the exit code it must give."""
    proc = subprocess.run([str(MARGINOPT), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}\nstdout: {proc.stdout[:2000]}\nstderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def json_document(proc: subprocess.CompletedProcess[str]) -> Any:
    """All of stdout as one JSON document: anything printed before or after it fails here."""
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"stdout of {proc.args[1:]} is not exactly one JSON document ({exc}); it starts {proc.stdout[:300]!r}")


def csv_document(proc: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    """All of stdout as one CSV table: every line a row of the header's width, no stray line."""
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows and rows[0], f"no CSV header on stdout: {proc.stdout[:300]!r}"
    header = rows[0]
    bad = [r for r in rows[1:] if len(r) != len(header)]
    assert not bad, f"rows not of the header's width {len(header)} (a stray line?): {bad[:3]}"
    assert proc.stdout.endswith("\n") and not proc.stdout.endswith("\n\n")
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def path_of(case: Path, mode: str, solver: str | None = None) -> tuple[str, str]:
    """(backend, problem class) that ``marginopt MODE CASE [--solver S]`` builds: the CLI's own
    steps (MarginProblem chooses the backend), because the JSON names the solver, not the backend."""
    p = MarginProblem(load_case(case), None, Mode(mode), solver=solver)
    which = {"scenario": "route", "cvxpy": "cvxpy", "direct": "direct", "generate": "generate"}[p.backend.name]
    return which, p.problem_class.value


def assert_plan(doc: dict, status: str = "optimal") -> None:
    """The documented plan shape; an optimal plan verified; min_margin's objective is what it adds up."""
    assert set(doc) - PLAN_OPTIONAL == PLAN_KEYS
    assert doc["status"] == status
    assert set(doc["solver"]) == {"name", "build_seconds", "solve_seconds"}
    assert doc["tolerance"] == {"absolute": 1e-6, "relative": 1e-8}
    for x in [h["quantity"] for h in doc["hedges"]] + [v for g in doc["shadow_prices"].values() for v in g.values() if v is not None]:
        assert x == round(x) or abs(x - round(x)) > 1e-6, x  # no solver dust: snapped to the whole number
    if status != "optimal":
        return
    assert doc["verification"]["passed"] is True
    if doc["objective"] == "min_margin":
        total = sum(m["after"] for m in doc["margins"]) + sum(h["cost"] for h in doc["hedges"])
        assert doc["objective_value"] == pytest.approx(total, rel=1e-6)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The folder the commands run in (and write to)."""
    return tmp_path_factory.mktemp("cli_output")


@pytest.fixture(scope="module")
def demo_margin(work) -> dict:
    """``marginopt margin DEMO --format json``, parsed whole: the reference the other commands are checked against."""
    return json_document(run(work, "margin", DEMO, "--format", "json"))


@pytest.fixture(scope="module")
def route_case(work) -> Path:
    """Three venues under ES and scenario-maximum margins, 1,000 scenarios each, min_margin hedges:
    the large-scenario route applies (forced), and the same program is an LP for cvxpy."""
    path = work / "route" / "case.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(route_case_doc(1, n=1000), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def short_case(work) -> Path:
    """1 BTC perp at 100,000 under a 1% rate (1,000 of margin) with 250 posted and no treasury."""
    path = work / "short" / "case.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({**BASE, **SHORT_CASE}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def route_plan(work, route_case) -> dict:
    """``hedge ROUTE --solver SCENARIO --format json``, parsed whole."""
    return json_document(run(work, "hedge", route_case, "--solver", "SCENARIO", "--format", "json"))


@pytest.fixture(scope="module")
def cvxpy_highs_plan(work, route_case) -> dict:
    """``hedge ROUTE --solver HIGHS --format json``, parsed whole."""
    return json_document(run(work, "hedge", route_case, "--solver", "HIGHS", "--format", "json"))


@pytest.fixture(scope="module")
def snapshot(work) -> Path:
    """A hand-made Derive PMRM_2 snapshot (no ../shared data needed)."""
    folder = work / "derive"
    folder.mkdir()
    return write_snapshot(folder, hand_book())


@pytest.fixture(scope="module")
def derive_margin(work, snapshot) -> dict:
    """``margin SNAPSHOT --from derive-pm2 --format json``, parsed whole."""
    return json_document(run(work, "margin", snapshot, "--from", "derive-pm2", "--format", "json"))


# -- margin, scenarios, whatif --------------------------------------------------------------


def test_margin_json_is_the_whole_document_and_adds_up(demo_margin):
    """margin --format json: one document; the total is the sum of the venues, excess = collateral - IM,
    shortfalls and surpluses summed apart."""
    assert set(demo_margin) - {"limits"} == MARGIN_KEYS
    excess = [v["excess"] for v in demo_margin["venues"]]
    assert demo_margin["total_shortfall"] == pytest.approx(-sum(x for x in excess if x < 0))
    assert demo_margin["total_surplus"] == pytest.approx(sum(x for x in excess if x > 0))
    venues = demo_margin["venues"]
    assert [v["venue"] for v in venues] == ["deribit_pm", "okx_std", "cme_es"]
    assert demo_margin["total_initial_margin"] == pytest.approx(sum(v["initial_margin"] for v in venues), rel=1e-12)
    for v in venues:
        assert v["excess"] == pytest.approx(v["collateral_value"] - v["initial_margin"], rel=1e-12)
        assert sum(v["components"].values()) == pytest.approx(v["initial_margin"], rel=1e-12)


def test_margin_csv_is_the_whole_document_one_row_per_venue(work, demo_margin):
    """margin --format csv: one table, a row per venue, the same numbers and components as the JSON."""
    rows = csv_document(run(work, "margin", DEMO, "--format", "csv"))
    assert list(rows[0])[:6] == ["venue", "initial_margin", "maintenance_margin", "collateral_value", "excess", "worst_scenario"]
    assert [r["venue"] for r in rows] == [v["venue"] for v in demo_margin["venues"]]
    for row, v in zip(rows, demo_margin["venues"], strict=True):
        for key in ("initial_margin", "maintenance_margin", "collateral_value", "excess"):
            assert float(row[key]) == pytest.approx(v[key], rel=1e-12)
        components = {k.removeprefix("component:"): float(x) for k, x in row.items() if k.startswith("component:") and x != ""}
        assert components == pytest.approx(v["components"], rel=1e-12)


def test_scenarios_writes_only_the_file_and_it_gives_the_scan_margin(work, demo_margin):
    """scenarios --out: nothing on stdout; the exported matrix times deribit_pm's positions (from the
    demo's positions.csv) gives each underlying's scan component of the margin JSON."""
    out = work / "scan.csv"
    proc = run(work, "scenarios", DEMO, "--venue", "deribit_pm", "--out", out)
    assert proc.stdout == ""
    frame = pd.read_csv(out)
    said = re.search(r"wrote (\d+) scenarios x (\d+) instruments", proc.stderr)
    assert said is not None, proc.stderr
    instruments = [c for c in frame.columns if c not in ("scenario", "group", "weight")]
    assert list(frame.columns[:3]) == ["scenario", "group", "weight"]
    assert (len(frame), len(instruments)) == (int(said[1]), int(said[2]))
    held = pd.read_csv(DEMO.parent / "positions.csv").query("venue == 'deribit_pm'").groupby("instrument").quantity.sum()
    assert set(held.index) <= set(instruments)
    weighted = frame.weight * (frame[instruments].fillna(0.0) @ held.reindex(instruments).fillna(0.0))
    deribit = demo_margin["venues"][0]
    assert {f"scan[{g}]": w for g, w in weighted.groupby(frame.group).max().items()} == pytest.approx(
        {k: x for k, x in deribit["components"].items() if k.startswith("scan[")}, rel=1e-9)
    assert frame.scenario[weighted.idxmax()] == deribit["worst_scenario"]


def test_whatif_json_incremental_is_after_less_before(work, demo_margin):
    """whatif --format json: a list of one; selling 4 of okx_std's 18 BTC perps at 91,000 under its
    10% fixed rate frees 0.1 x 4 x 91,000 = 36,400; before is the margin report's."""
    doc = json_document(run(work, "whatif", DEMO, "--trade", "okx_std:BTC-PERP:-4", "--format", "json"))
    assert len(doc) == 1
    w = doc[0]
    assert set(w) == {"venue", "instrument", "quantity", "legs", "margin_before", "margin_after", "incremental_margin", "venues"}
    assert w["legs"] == [{"venue": "okx_std", "instrument": "BTC-PERP", "quantity": -4.0}]
    (okx,) = w["venues"]
    assert okx["excess_after"] == pytest.approx(demo_margin["venues"][1]["excess"] + 36_400.0, rel=1e-9)
    assert (w["venue"], w["instrument"], w["quantity"]) == ("okx_std", "BTC-PERP", -4.0)
    assert w["margin_before"] == pytest.approx(demo_margin["venues"][1]["initial_margin"], rel=1e-12)
    assert w["incremental_margin"] == pytest.approx(w["margin_after"] - w["margin_before"], rel=1e-12)
    assert w["incremental_margin"] == pytest.approx(-36_400.0, rel=1e-9)


def test_whatif_route_json_lists_every_listing_venue_least_first(work, demo_margin):
    """whatif --route --format json: every venue that lists the instrument once (ETH-PERP: deribit_pm
    holds it, okx_std offers it as a hedge; cme_es does not list it), least incremental first, each
    after - before; at okx_std 40 ETH perps at 3,100 add 10% of their notional, 12,400."""
    doc = json_document(run(work, "whatif", DEMO, "--trade", ":ETH-PERP:40", "--route", "--format", "json"))
    before = {v["venue"]: v["initial_margin"] for v in demo_margin["venues"]}
    assert sorted(w["venue"] for w in doc) == ["deribit_pm", "okx_std"]
    increments = [w["incremental_margin"] for w in doc]
    assert increments == sorted(increments)
    for w in doc:
        assert w["margin_before"] == pytest.approx(before[w["venue"]], rel=1e-12)
        assert w["incremental_margin"] == pytest.approx(w["margin_after"] - w["margin_before"], rel=1e-12)
    assert next(w for w in doc if w["venue"] == "okx_std")["incremental_margin"] == pytest.approx(0.1 * 40 * 3_100, rel=1e-9)


# -- plans, one per solver path ------------------------------------------------------------


def test_optimize_json_on_clarabel(work, demo_margin):
    """optimize --format json on the demo: an SOCP in cvxpy solved by Clarabel, every margin lowered."""
    assert path_of(DEMO, "optimize") == ("cvxpy", "SOCP")
    doc = json_document(run(work, "optimize", DEMO, "--format", "json"))
    assert_plan(doc)
    assert doc["solver"]["name"] == "CLARABEL" and "certificate" not in doc
    before = {v["venue"]: v["initial_margin"] for v in demo_margin["venues"]}
    assert {m["venue"]: m["before"] for m in doc["margins"]} == pytest.approx(before, rel=1e-9)
    assert all(m["after"] <= m["before"] * (1 + 1e-6) for m in doc["margins"])


def test_allocate_json_on_the_direct_highs_lp(work, demo_margin):
    """allocate --format json on the demo: the collateral-only min_cost LP on HiGHS directly; no
    hedge, margins unchanged, and the cost the cvxpy formulation of the same problem finds."""
    assert path_of(DEMO, "allocate") == ("direct", "LP")
    doc = json_document(run(work, "allocate", DEMO, "--format", "json"))
    assert_plan(doc)
    assert doc["solver"]["name"] == "HIGHS" and doc["hedges"] == []
    for m, v in zip(doc["margins"], demo_margin["venues"], strict=True):
        assert m["venue"] == v["venue"] and m["before"] == m["after"] == pytest.approx(v["initial_margin"], rel=1e-9)
    full = optimize(load_case(DEMO), mode="allocate", solver="FULL")
    assert full.status == "optimal"
    assert doc["objective_value"] == pytest.approx(full.objective_value, rel=1e-6)


def test_hedge_json_on_cvxpy_highs(route_case, cvxpy_highs_plan):
    """hedge --solver HIGHS --format json: the whole program in cvxpy, an LP, solved by HiGHS (the
    path whose highspy constructor prints a banner)."""
    assert path_of(route_case, "hedge", "HIGHS") == ("cvxpy", "LP")
    assert_plan(cvxpy_highs_plan)
    assert cvxpy_highs_plan["solver"]["name"] == "HIGHS" and "certificate" not in cvxpy_highs_plan
    assert cvxpy_highs_plan["allocation"] and cvxpy_highs_plan["hedges"]


def test_hedge_json_on_the_large_scenario_route(route_case, route_plan):
    """hedge --solver SCENARIO --format json: the large-scenario solver, with its certificate."""
    assert path_of(route_case, "hedge", "SCENARIO") == ("route", "LP")
    assert_plan(route_plan)
    assert route_plan["solver"]["name"] == "SCENARIO"
    cert = route_plan["certificate"]
    assert cert["method"].startswith("scenario generation on the") and cert["converged"] is True
    assert cert["lower_bound"] <= route_plan["objective_value"] * (1 + 1e-9)
    assert set(cert["scenarios_in_program"]) == {"v0", "v1", "v2"}


def test_the_route_and_cvxpy_highs_find_the_same_plan_cost(route_plan, cvxpy_highs_plan):
    """Two paths, one program: the same margins before and the same optimum."""
    assert route_plan["objective_value"] == pytest.approx(cvxpy_highs_plan["objective_value"], rel=1e-6)
    assert [m["before"] for m in route_plan["margins"]] == pytest.approx([m["before"] for m in cvxpy_highs_plan["margins"]], rel=1e-12)


def test_infeasible_report_is_a_json_document_with_exit_3(work, short_case):
    """optimize --format json with no plan: exit 3 and still one document, saying what is short
    (1,000 of margin less 250 posted = 750)."""
    assert path_of(short_case, "optimize") == ("direct", "LP")
    doc = json_document(run(work, "optimize", short_case, "--format", "json", code=3))
    assert_plan(doc, "infeasible")
    assert doc["solver"]["name"] == "HIGHS" and doc["objective_value"] is None
    assert doc["hedges"] == doc["allocation"] == doc["margins"] == []
    assert doc["verification"] == {"passed": False, "max_violation": None}
    assert [i["constraint"] for i in doc["infeasibility"]] == ["V: initial margin not covered"]
    assert doc["infeasibility"][0]["shortfall"] == pytest.approx(750.0, rel=1e-6)


def test_table_stdout_has_no_highs_banner(work, short_case):
    """The table format on HiGHS paths (the direct LP, then the elastic LP through cvxpy's HiGHS, whose
    highspy constructor prints a banner): the plan's first line opens stdout and no banner line is in
    it (stderr may carry notes)."""
    proc = run(work, "optimize", short_case, code=3)
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["Optimized plan (optimize, objective min_cost): INFEASIBLE", "solver attempts: HIGHS infeasible (direct LP)"]
    assert not [line for line in lines if line.lstrip().startswith(BANNER)]
    assert "What is short (elastic problem)" in proc.stdout and "V: initial margin not covered" in proc.stdout


# -- Derive snapshots, derive-case, batch --------------------------------------------------


def test_derive_margin_json_is_the_whole_document(snapshot, derive_margin):
    """margin --from derive-pm2 --format json: one venue, excesses are equity less IM and MM."""
    assert derive_margin["total_initial_margin"] == pytest.approx(sum(v["initial_margin"] for v in derive_margin["venues"]))
    [v] = derive_margin["venues"]
    assert v["venue"] == "derive" and v["source"] == str(snapshot)
    assert v["excess"] == pytest.approx(v["collateral_value"] - v["initial_margin"], rel=1e-12)
    assert v["maintenance_excess"] == pytest.approx(v["collateral_value"] - v["maintenance_margin"], rel=1e-12)


def test_derive_hedge_json_lowers_the_snapshots_margin(work, snapshot, derive_margin):
    """hedge --from derive-pm2 --format json: a min_margin LP on HiGHS starting from the margin
    command's requirement and lowering it."""
    doc = json_document(run(work, "hedge", snapshot, "--from", "derive-pm2", "--format", "json"))
    assert_plan(doc)
    assert doc["objective"] == "min_margin" and doc["solver"]["name"] == "HIGHS"
    [m] = doc["margins"]
    assert m["venue"] == "derive" and m["before"] == pytest.approx(derive_margin["venues"][0]["initial_margin"], rel=1e-9)
    assert m["after"] < m["before"]


def test_derive_case_prints_nothing_on_stdout(work, snapshot):
    """derive-case has no --format: stdout stays empty, the note goes to stderr, the case loads."""
    out = work / "derive_case"
    proc = run(work, "derive-case", snapshot, "--out", out)
    assert proc.stdout == ""
    assert f"wrote {out / 'case.yaml'}" in proc.stderr
    case = load_case(out / "case.yaml")
    assert list(case.venues) == ["derive"] and case.hedges


def test_batch_prints_one_summary_line_and_writes_the_tables(work, demo_margin):
    """batch --out (no --format): stdout is the one summary line; summary.parquet has each demo
    account, its total the sum of its venues in margins.parquet; 'main' alone holds okx_std and cme_es."""
    pytest.importorskip("distributed", reason="the distributed extra (dask[distributed]) is not installed")
    out = work / "batch"
    proc = run(work, "batch", DEMO, "--out", out, "--workers", "1", "--mode", "margin")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stdout.endswith("\n"), proc.stdout
    assert re.fullmatch(r"3 accounts on 1 worker: margin 3; [\d.]+ accounts/s \([\d.]+ s, cluster start [\d.]+ s\); "
                        rf"wrote {re.escape(str(out / 'summary.parquet'))}", lines[0]), lines[0]
    summary = pd.read_parquet(out / "summary.parquet").set_index("account")
    assert list(summary.index) == ["options", "delta", "main"] and set(summary.status) == {"margin"}
    margins = pd.read_parquet(out / "margins.parquet")
    assert margins.groupby("account").initial_margin.sum().to_dict() == pytest.approx(summary.total_initial_margin.to_dict())
    venues = {v["venue"]: v["initial_margin"] for v in demo_margin["venues"]}
    assert summary.loc["main", "total_initial_margin"] == pytest.approx(venues["okx_std"] + venues["cme_es"], rel=1e-9)
