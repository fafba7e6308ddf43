"""The desk page in a real headless browser: Debian's chromium driven by Playwright, against the
service on a loopback port. Load the page, load the demo, submit, and read the suggested hedges,
the margin table and the chart back from the page; they must be what the library says."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra (fastapi) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the service extra (uvicorn) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

import marginopt  # noqa: E402
from marginopt.models import VenueBook, margin_report  # noqa: E402
from marginopt.optimizer import optimize  # noqa: E402
from marginopt.service.app import Settings, create_app  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
HEDGE_FLOOR = 1e-4  # the page hides |quantity| below this (solver tolerance), as desk.js says
WAIT_MS = 120_000
NEXT_DAY = Path(__file__).resolve().parents[1] / "docs" / "examples" / "next_day" / "case.yaml"


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The page's service keeps its runs here, with one run of the demo book stored yesterday (the next day's
    snapshot, docs/examples/next_day, so the two days differ)."""
    import datetime as dt

    from marginopt.history import new_run, open_store
    from marginopt.models.document import case_document

    db = str(tmp_path_factory.mktemp("desk-history") / "history.db")
    yesterday = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(12)) - dt.timedelta(days=1)
    open_store(db).add(new_run(case_document(NEXT_DAY), margin_report(marginopt.load_case(NEXT_DAY)), "margin", "cli",
                               "marginopt margin next_day/case.yaml --store", created_at=yesterday))
    return db


@pytest.fixture(scope="module")
def base_url(history_db: str) -> Iterator[str]:
    """The service on a free loopback port, in a thread of this process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(solve_threads=2, db=history_db)), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="desk-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service did not start on loopback")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser_page(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (`make test` installs it when run as root)")
    with sync_api.sync_playwright() as p:
        try:
            context = p.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True, args=ARGS)
        except Exception as exc:  # Playwright raises its own Error for any failed launch
            pytest.skip(f"playwright cannot launch {CHROMIUM}: {str(exc).splitlines()[0]}")
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
        page.goto(base_url + "/")
        page.wait_for_selector('[data-testid="venue-deribit_pm"]')
        page.problems = problems  # type: ignore[attr-defined]
        yield page
        context.close()


@pytest.fixture(scope="module")
def demo() -> marginopt.Case:
    return marginopt.load_case(marginopt.demo_case_path())


def _submit(page: Any) -> None:
    page.evaluate("() => { document.body.dataset.state = 'submitting'; }")  # so the wait below sees this submit's end
    page.click('[data-testid="submit"]')
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.state)", timeout=WAIT_MS)


def test_demo_hedges_margins_and_chart(browser_page: Any, demo: marginopt.Case) -> None:
    page = browser_page
    page.click('[data-testid="load-demo"]')
    assert "BTC-26DEC26-80000-P" in page.input_value('[data-testid="positions"]')
    _submit(page)
    assert page.get_attribute("body", "data-state") == "done", page.text_content('[data-testid="error"]')
    page.wait_for_selector('[data-testid="hedges-table"][data-ready="true"]')

    shown = page.eval_on_selector_all(
        '[data-testid="hedges-table"] tr.hedge',
        "rows => rows.map(r => [r.dataset.venue, r.dataset.instrument, Number(r.dataset.quantity), Number(r.dataset.cost)])")
    plan = optimize(demo, mode="hedge")
    assert plan.status == "optimal"
    expected = [(h.venue, h.instrument, h.quantity, h.cost) for h in plan.hedges.itertuples() if abs(h.quantity) >= HEDGE_FLOOR]
    assert expected, "the demo's hedge plan suggests no trade"
    assert [(v, i) for v, i, _, _ in shown] == [(v, i) for v, i, _, _ in expected]
    for (_, instrument, q, cost), (_, _, q_lib, cost_lib) in zip(shown, expected):
        assert math.isclose(q, q_lib, rel_tol=1e-6, abs_tol=1e-4), instrument
        assert math.isclose(cost, cost_lib, rel_tol=1e-6, abs_tol=1e-4), instrument
    assert "save" in page.text_content('[data-testid="plan-summary"]')

    margins = page.eval_on_selector_all('[data-testid="margin-table"] tbody tr[data-venue]',
                                        "rows => rows.map(r => [r.dataset.venue, Number(r.dataset.initialMargin)])")
    report = margin_report(demo)
    assert [v for v, _ in margins] == [v.venue for v in report.venues]
    for (venue, im), v in zip(margins, report.venues):
        assert math.isclose(im, v.initial_margin, rel_tol=1e-9), venue

    # Margin health: each venue's balance is its credited collateral plus its options' mark value (the demo
    # gives no entry prices, so unrealized P&L is 0), computed here from the margin report and the pricing.
    balances = dict(page.eval_on_selector_all('[data-testid="health-table"] tbody tr[data-venue]',
                                              "rows => rows.map(r => [r.dataset.venue, Number(r.dataset.marginBalance)])"))
    for v in report.venues:
        book = VenueBook(demo, v.venue)
        options = sum(book.q[j] * book.inputs.value[j] for j in range(len(book.ids)) if book.inputs.is_option[j])
        assert math.isclose(balances[v.venue], v.collateral_value + options, rel_tol=1e-9), v.venue
    cme = page.text_content('[data-testid="health-table"] tbody tr[data-venue="cme_es"]')
    assert "now" in cme  # the demo's cme_es balance is below its initial margin as it stands

    bars = page.eval_on_selector_all(
        '[data-testid="margin-chart"] g.venue-bars',
        "gs => gs.map(g => [g.dataset.venue, g.querySelectorAll('rect.bar-before').length, "
        "g.querySelectorAll('rect.bar-after').length, Number(g.querySelector('rect.bar-after').dataset.value)])")
    assert [b[0] for b in bars] == list(demo.venues)
    assert all(b[1] == 1 and b[2] == 1 for b in bars), bars  # one bar pair per venue
    after = dict(zip(plan.margins["venue"], plan.margins["after"]))
    for venue, _, _, value in bars:
        assert math.isclose(value, after[venue], rel_tol=1e-6, abs_tol=1e-3), venue
    assert not page.problems, page.problems


def test_picked_venues_only(browser_page: Any) -> None:
    page = browser_page
    page.click('[data-testid="load-demo"]')
    page.uncheck('[data-testid="venue-okx_std"]')
    try:
        _submit(page)
        assert page.get_attribute("body", "data-state") == "done", page.text_content('[data-testid="error"]')
        venues = page.eval_on_selector_all('[data-testid="margin-table"] tbody tr[data-venue]', "rows => rows.map(r => r.dataset.venue)")
        assert venues == ["deribit_pm", "cme_es"]
        assert page.eval_on_selector_all('[data-testid="margin-chart"] g.venue-bars', "gs => gs.length") == 2
    finally:
        page.check('[data-testid="venue-okx_std"]')


def test_a_bad_csv_row_is_shown_with_its_row(browser_page: Any) -> None:
    page = browser_page
    page.fill('[data-testid="positions"]', "venue,instrument,quantity\nderibit_pm,BTC-PERP-INV,100\nderibit_pm,ETH-PERP,lots\n")
    _submit(page)
    assert page.get_attribute("body", "data-state") == "error"
    message = page.text_content('[data-testid="error"]')
    assert "422" in message and "row 2" in message and "quantity" in message
    page.fill('[data-testid="positions"]', "venue,instrument,quantity\nmoon,BTC-PERP-INV,100\n")
    _submit(page)
    assert "row 1: venue 'moon'" in page.text_content('[data-testid="error"]')


def test_a_failed_request_clears_the_previous_results(browser_page: Any) -> None:
    """A good answer, then a request that fails: the error stands alone, no earlier table, summary or chart under it."""
    page = browser_page
    page.click('[data-testid="load-demo"]')
    _submit(page)
    assert page.get_attribute("body", "data-state") == "done", page.text_content('[data-testid="error"]')
    assert page.is_visible('[data-testid="results"]')
    page.fill('[data-testid="positions"]', "venue,instrument,quantity\nmoon,BTC-PERP-INV,100\n")
    _submit(page)
    assert page.get_attribute("body", "data-state") == "error"
    assert "moon" in page.text_content('[data-testid="error"]')
    assert not page.is_visible('[data-testid="results"]')
    counts = page.evaluate("""() => [document.querySelectorAll('[data-testid="margin-table"] tbody tr').length,
        document.querySelectorAll('[data-testid="hedges-table"] tbody tr').length,
        document.querySelectorAll('[data-testid="margin-chart"] *').length,
        document.querySelector('[data-testid="plan-summary"]').textContent]""")
    assert counts == [0, 0, 0, ""], counts
    assert not [p for p in page.problems if p.startswith("page error")], page.problems  # the 422 itself is logged


def test_an_executable_plan_shows_its_gap_and_cost_of_executability(browser_page: Any) -> None:
    """The demo's hedges with the lot sizes and minimum trades of docs/examples/demo_executable: the
    page shows the plan's gap line and the cost of executability, the library's figures."""
    page = browser_page
    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "demo_executable" / "case.yaml"
    lotted = marginopt.load_case(path)
    terms = {f"{h.venue}:{h.instrument}": [h.lot_size, h.min_trade] for h in lotted.hedges}
    plan = optimize(lotted, mode="hedge")
    assert plan.status == "optimal" and plan.executability is not None and plan.certificate is not None
    earlier = len(page.problems)  # the 422s of the tests before are logged too
    page.evaluate("""terms => {
        window.__plainHedges = structuredClone(demo.hedges);
        for (const h of demo.hedges) {
            const t = terms[`${h.venue}:${h.instrument}`];
            if (t && t[0] !== null) h.lot_size = t[0];
            if (t && t[1] > 0) h.min_trade = t[1];
        }
    }""", terms)
    try:
        page.click('[data-testid="load-demo"]')
        _submit(page)
        assert page.get_attribute("body", "data-state") == "done", page.text_content('[data-testid="error"]')
        gap = page.text_content('[data-testid="plan-gap"]')
        assert gap.startswith("gap: incumbent ") and "relative" in gap
        assert page.get_attribute('[data-testid="plan-gap"]', "data-proven") == str(plan.certificate["proven_optimal"]).lower()
        assert page.is_visible('[data-testid="executability-table"]')
        rows = page.eval_on_selector_all('[data-testid="executability-table"] tbody tr',
                                         "rows => rows.map(r => [r.dataset.plan, Number(r.dataset.cost), r.cells[3].textContent])")
        ex = plan.executability
        assert [r[0] for r in rows] == ["continuous", "executable"] + (["naive"] if ex.rounded is not None else [])
        assert ex.continuous_value is not None and plan.objective_value is not None
        assert math.isclose(rows[0][1], ex.continuous_value, rel_tol=1e-6)
        assert math.isclose(rows[1][1], plan.objective_value, rel_tol=1e-6)
        if ex.rounded is not None:
            assert math.isclose(rows[2][1], ex.rounded.objective_value, rel_tol=1e-6)
            assert rows[2][2].startswith("yes" if ex.rounded.passed else "no: ")
        assert "over the continuous optimum" in page.text_content('[data-testid="executability-summary"]')
        assert not page.problems[earlier:], page.problems[earlier:]
    finally:
        page.evaluate("() => { demo.hedges = window.__plainHedges; }")
    # A continuous plan again: no gap line, no executability block.
    _submit(page)
    assert page.get_attribute("body", "data-state") == "done"
    assert not page.is_visible('[data-testid="plan-gap"]')
    assert not page.is_visible('[data-testid="executability"]')


def test_a_plan_not_proven_optimal_says_feasible_and_what_stopped_it(browser_page: Any, tmp_path: Path) -> None:
    """desk.js given the JSON of a plan the time limit stopped (the integer route at 1 ms, as in
    tests/test_time_limit.py): the gap line says status feasible, time limit reached and the gap, and the
    cost of executability is shown (the plan is verified), as for an optimal one."""
    from marginopt.optimizer import MarginProblem, run
    from tests.test_integer_route import scenarios, write_case

    m, l0 = scenarios(300)
    case = marginopt.load_case(write_case(tmp_path, m, l0, limit=False))
    result = run(MarginProblem(case, mode="hedge", backend="integer", mip_gap=1e-12, time_limit=1e-3))
    assert result.status == "feasible"
    page = browser_page
    page.evaluate("plan => renderExecutability(plan, 'USD')", result.to_dict())
    gap = page.text_content('[data-testid="plan-gap"]')
    assert gap.startswith("gap: incumbent ") and "status feasible: time limit reached (0.001 s): relative gap" in gap
    assert page.get_attribute('[data-testid="plan-gap"]', "data-proven") == "false"
    assert page.is_visible('[data-testid="executability-table"]')


def test_the_history_shows_the_latest_runs_and_today_against_yesterday(browser_page: Any, demo: marginopt.Case) -> None:
    """After a submit, the latest runs are the margin, health and hedge requests just made (the margin run's total
    as the library computes it), and each venue's margin today (the demo) stands against yesterday's stored run
    (the next day's snapshot), with the change between."""
    page = browser_page
    page.click('[data-testid="load-demo"]')
    _submit(page)
    assert page.get_attribute("body", "data-state") == "done", page.text_content('[data-testid="error"]')
    assert page.is_visible('[data-testid="history"]')
    runs = page.eval_on_selector_all('[data-testid="runs-table"] tbody tr',
                                      "rows => rows.map(r => [Number(r.dataset.run), r.dataset.command, Number(r.dataset.initialMargin)])")
    latest = runs[:3]
    assert sorted(c for _, c, _ in latest) == ["health", "hedge", "margin"]
    assert [r[0] for r in runs] == sorted((r[0] for r in runs), reverse=True)  # latest first
    report = margin_report(demo)
    for _, _, total in latest:  # every run keeps the book's margin as it was, before any plan
        assert math.isclose(total, report.total_initial_margin, rel_tol=1e-12)
    days = page.eval_on_selector_all('[data-testid="days-table"] tbody tr[data-venue]',
                                     "rows => rows.map(r => [r.dataset.venue, Number(r.dataset.today), Number(r.dataset.previous), "
                                     "r.cells[3].textContent])")
    before = margin_report(marginopt.load_case(NEXT_DAY))
    assert [d[0] for d in days] == [v.venue for v in report.venues]
    for (venue, today, previous, change), v in zip(days, report.venues):
        assert math.isclose(today, v.initial_margin, rel_tol=1e-12), venue
        assert math.isclose(previous, before[venue].initial_margin, rel_tol=1e-12), venue
        assert change == f"{v.initial_margin - before[venue].initial_margin:,.2f}", venue
    summary = page.text_content('[data-testid="days-summary"]')
    assert summary.startswith("crypto desk demo: today run ") and "previous day run 1 (margin," in summary
