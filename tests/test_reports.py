"""HTML reports: well-formed, self-contained, one chart per kind, the library's numbers in the
tables, user strings escaped, and the --report option of the command line."""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import marginopt
from marginopt.cli.main import cli
from marginopt.models import VenueBook
from marginopt.reports import PlotsUnavailableError, margin_html, plan_html, require_plots
from tests.test_optimizer import SHORT_CASE

pytest.importorskip("matplotlib", reason="the reports draw their charts with matplotlib (the plots extra)")

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Tables by id (each row a list of cell texts, header row first), chart kinds, and the
    open/close balance of every element."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.charts: list[str] = []
        self.svgs_in_charts: list[int] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self._table = a.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "figure":
            self.charts.append(a.get("data-chart") or "")
            self.svgs_in_charts.append(0)
        elif tag == "svg" and "figure" in self.stack[:-1]:
            self.svgs_in_charts[-1] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <path ... /> in SVG: opened and closed at once

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table: str) -> list[dict[str, str]]:
        """Body and footer rows as {header: text}."""
        head, *body = self.tables[table]
        return [dict(zip(head, r)) for r in body]


def num(text: str) -> float:
    return float(text.replace(",", ""))


# Tables show money to the cent, quantities to 1e-4 units, rates to 6 significant digits.
CENT = 0.0051


@pytest.fixture(scope="module")
def demo():
    case = marginopt.load_case(marginopt.demo_case_path())
    report = marginopt.margin(case)
    result = marginopt.optimize(case)
    assert result.status == "optimal"
    return case, report, result, margin_html(report, case), plan_html(result, case)


def assert_self_contained(text: str) -> None:
    lower = text.lower()
    for ref in ('src="http', "src='http", 'href="http', "href='http", "<link", "<script", "url(http", "@import", "<img", "<iframe"):
        assert ref not in lower, ref
    assert "<!doctype" not in lower[1:]  # only the page's own doctype, none from the SVGs


def test_margin_report_parses_is_self_contained_and_has_one_chart_per_kind(demo):
    _, _, _, text, _ = demo
    page = Page(text)
    assert page.errors == []
    assert text.startswith("<!DOCTYPE html>")
    assert_self_contained(text)
    assert sorted(page.charts) == ["collateral", "margin", "worst"]
    assert page.svgs_in_charts == [1, 1, 1]
    assert {"margins", "components", "collateral", "worst-scenarios"} <= set(page.tables)


def test_margin_report_tables_hold_the_librarys_numbers(demo):
    case, report, _, text, _ = demo
    page = Page(text)
    rows = page.rows("margins")
    assert [r["venue"] for r in rows] == [v.venue for v in report.venues] + ["total"]
    for r, v in zip(rows, report.venues):
        assert num(r["initial margin"]) == pytest.approx(v.initial_margin, abs=CENT)
        assert num(r["maintenance"]) == pytest.approx(v.maintenance_margin, abs=CENT)
        assert num(r["collateral value"]) == pytest.approx(v.collateral_value, abs=CENT)
        assert num(r["excess"]) == pytest.approx(v.excess, abs=CENT)
        assert r["worst scenario"] == (v.worst_scenario or "")
    assert num(rows[-1]["initial margin"]) == pytest.approx(report.total_initial_margin, abs=CENT)
    components = {(r["venue"], r["component"]): num(r["USD"]) for r in page.rows("components")}
    assert components == {(v.venue, k): pytest.approx(c, abs=CENT) for v in report.venues for k, c in v.components.items()}
    collateral = {(r["venue"], r["asset"]): r for r in page.rows("collateral")}
    assert len(collateral) == sum(len(v.collateral) for v in report.venues)
    for v in report.venues:
        for c in v.collateral:
            r = collateral[(v.venue, c.asset)]
            assert num(r["quantity"]) == pytest.approx(c.quantity, abs=1e-4)
            assert num(r["gross value"]) == pytest.approx(c.gross_value, abs=CENT)
            assert num(r["credited"]) == pytest.approx(c.credited_value, abs=CENT)


def test_worst_scenarios_are_the_largest_weighted_losses(demo):
    case, report, _, text, _ = demo
    worst = Page(text).rows("worst-scenarios")
    assert {r["venue"] for r in worst} == {"deribit_pm", "cme_es"}  # okx_std is a fixed rate: no scenarios
    for venue in ("deribit_pm", "cme_es"):
        rows = [r for r in worst if r["venue"] == venue]
        assert [int(r["rank"]) for r in rows] == list(range(1, 11))
        # The first is the scenario the margin report names, with its weighted loss.
        assert rows[0]["scenario"] == report[venue].worst_scenario
        assert num(rows[0]["weighted loss"]) == pytest.approx(report[venue].worst_scenario_loss, abs=CENT)
        losses = [num(r["weighted loss"]) for r in rows]
        assert losses == sorted(losses, reverse=True)
    # cme_es: equal-weight historical scenarios, recomputed from the scenario matrix directly.
    book = VenueBook(case, "cme_es")
    spec = case.venues["cme_es"].initial_margin.scenarios
    expected = np.sort(book.scenarios(spec).losses(book.q))[::-1][:10]
    got = [num(r["weighted loss"]) for r in worst if r["venue"] == "cme_es"]
    assert got == pytest.approx(expected.tolist(), abs=CENT)


def test_plan_report_is_self_contained_with_the_plans_numbers(demo):
    case, _, result, _, text = demo
    page = Page(text)
    assert page.errors == []
    assert_self_contained(text)
    assert sorted(page.charts) == ["collateral", "margin", "worst"]
    assert page.svgs_in_charts == [1, 1, 1]
    ver = {r["item"]: r["value"] for r in page.rows("verification")}
    assert ver["status"] == "optimal" and ver["verification"] == "passed"
    m = result.margins.set_index("venue")
    rows = page.rows("margins")
    assert [r["venue"] for r in rows] == list(m.index) + ["total"]
    for r in rows[:-1]:
        assert num(r["before"]) == pytest.approx(m.loc[r["venue"], "before"], abs=CENT)
        assert num(r["after"]) == pytest.approx(m.loc[r["venue"], "after"], abs=CENT)
        assert num(r["shadow USD/USD"]) == pytest.approx(result.shadow_prices["venues"][r["venue"]], rel=1e-5)
    assert num(rows[-1]["after"]) == pytest.approx(m["after"].sum(), abs=CENT)
    # Every trade above round-off, with its cost; the total is the plan's hedge cost.
    hedges = page.rows("hedges")
    traded = result.hedges[result.hedges["quantity"].abs() > 1e-3]
    assert len(hedges) == len(traded) + 1
    for r, t in zip(hedges, traded.itertuples()):
        assert (r["venue"], r["instrument"]) == (t.venue, t.instrument)
        assert num(r["quantity"]) == pytest.approx(t.quantity, abs=1e-4)
        assert num(r["cost USD"]) == pytest.approx(t.cost, abs=CENT)
    assert num(hedges[-1]["cost USD"]) == pytest.approx(result.costs["hedge"], abs=CENT)
    # Allocation by asset and venue: the value after the plan of each (asset, venue).
    grid = page.rows("allocation-by-asset")
    value = result.allocation.set_index(["asset", "venue"])["value"]
    for r in grid[:-1]:
        for venue in m.index:
            if r[venue]:
                assert num(r[venue]) == pytest.approx(value[(r["asset"], venue)], abs=CENT)
    assert num(grid[-1]["total"]) == pytest.approx(result.allocation["value"].sum(), abs=CENT)
    shadow = {(r["of"], r["name"]): num(r["USD per USD"]) for r in page.rows("shadow-prices")}
    assert shadow[("venue", "cme_es")] == pytest.approx(result.shadow_prices["venues"]["cme_es"], rel=1e-5)


def test_plan_worst_scenarios_after_the_plan(demo):
    case, _, result, _, text = demo
    worst = Page(text).rows("worst-scenarios")
    after = [r for r in worst if r["venue"] == "deribit_pm" and r["book"] == "after plan"]
    # deribit_pm's scan is a scenario maximum per underlying: its largest weighted loss after the
    # plan is the larger of the scan components of the margin at the hedged positions.
    book = VenueBook(case, "deribit_pm")
    q = book.q.copy()
    for h in result.hedges[result.hedges["venue"] == "deribit_pm"].itertuples():
        q[book.column(h.instrument)] += h.quantity
    scans = [v for k, v in book.initial.components(q).items() if k.startswith("scan")]
    assert num(after[0]["weighted loss"]) == pytest.approx(max(scans), abs=CENT)
    before = [r for r in worst if r["venue"] == "deribit_pm" and r["book"] == "now"]
    assert num(before[0]["weighted loss"]) > num(after[0]["weighted loss"])


BOLD = "<b>x</b>"


@pytest.fixture
def odd_case(write_case):
    """A venue, an instrument, an asset-free description and a hedge named with markup."""
    return write_case(
        description="<i>desk</i> & co",
        market={"prices": {"BTC": 100000.0, "USDC": 1.0}},
        instruments=[{"id": "<b>y</b>", "kind": "perpetual", "underlying": "BTC"}],
        positions=[{"venue": BOLD, "instrument": "<b>y</b>", "quantity": 2}],
        venues={BOLD: {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "grid", "price_moves": [-0.1, 0.1]}},
                       "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 50000}}},
        hedges=[{"venue": BOLD, "instrument": "<b>y</b>", "max_buy": 5, "max_sell": 5, "cost_per_unit": 1.0}],
        treasury={"USDC": {"quantity": 1e6, "cost": 0.05}},
    )


def test_user_strings_are_escaped(odd_case):
    case = marginopt.load_case(odd_case)
    result = marginopt.optimize(case)
    assert result.status == "optimal"
    margin, plan = margin_html(marginopt.margin(case), case), plan_html(result, case)
    for text in (margin, plan):
        assert Page(text).errors == []
        assert BOLD not in text and "<b>y</b>" not in text and "<i>" not in text
        assert "&lt;b&gt;x&lt;/b&gt;" in text and "&lt;i&gt;desk&lt;/i&gt; &amp; co" in text
    assert "&lt;b&gt;y&lt;/b&gt;" in plan  # the hedge's instrument
    assert Page(plan).rows("hedges")[0]["instrument"] == "<b>y</b>"  # and it reads back as the name


def test_a_plan_that_does_not_exist_reports_what_is_short(write_case, tmp_path):
    path = write_case(**SHORT_CASE)
    out = tmp_path / "plan.html"
    res = CliRunner().invoke(cli, ["optimize", str(path), "--report", str(out)])
    assert res.exit_code == 3
    page = Page(out.read_text())
    assert page.errors == []
    short = page.rows("shortfalls")
    assert short[0]["constraint"].startswith("V") and num(short[0]["short by"]) == pytest.approx(750.0, abs=CENT)
    assert num(page.rows("margins")[0]["initial margin"]) == pytest.approx(1000.0)  # the book as it is


def test_cli_writes_the_reports(tmp_path):
    demo = str(marginopt.demo_case_path())
    runner = CliRunner()
    res = runner.invoke(cli, ["margin", demo, "--format", "json", "--report", str(tmp_path / "margin.html")])
    assert res.exit_code == 0, res.output
    assert res.stdout.lstrip().startswith("{")  # the normal output is unchanged
    assert f"wrote the HTML report to {tmp_path / 'margin.html'}" in res.stderr
    assert Page((tmp_path / "margin.html").read_text()).tables["margins"]
    res = runner.invoke(cli, ["allocate", demo, "--format", "json", "--report", str(tmp_path / "plan.html")])
    assert res.exit_code == 0, res.output
    page = Page((tmp_path / "plan.html").read_text())
    assert sorted(page.charts) == ["collateral", "margin", "worst"] and "hedges" not in page.tables


def test_cli_report_into_a_missing_folder_is_a_clear_error(tmp_path):
    target = tmp_path / "no-such-folder" / "r.html"
    for command in ("margin", "optimize"):
        res = CliRunner().invoke(cli, [command, str(marginopt.demo_case_path()), "--report", str(target)])
        assert res.exit_code == 2
        assert "--report" in res.stderr and "does not exist" in res.stderr
        assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    assert not target.parent.exists()


def test_without_matplotlib_the_error_names_the_plots_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(PlotsUnavailableError, match=r"marginopt\[plots\]"):
        require_plots()
    res = CliRunner().invoke(cli, ["margin", str(marginopt.demo_case_path()), "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "plots extra" in res.stderr
    assert not Path(tmp_path / "r.html").exists()


def test_derive_snapshot_report(tmp_path):
    from marginopt.models.derive.model import DeriveModel
    from marginopt.models.derive.report import derive_report
    from marginopt.models.derive.snapshot import load_snapshot
    from tests.test_derive_hedge import hand_book
    from tests.test_derive_pmrm2 import write

    source = write(tmp_path, hand_book())
    out = tmp_path / "derive.html"
    res = CliRunner().invoke(cli, ["margin", str(source), "--from", "derive-pm2", "--format", "json", "--report", str(out)])
    assert res.exit_code == 0, res.output
    page = Page(out.read_text())
    assert page.errors == [] and "worst" in page.charts
    report, _ = derive_report(DeriveModel.from_snapshot(load_snapshot(source)))
    venue = report.venues[0]
    assert num(page.rows("margins")[0]["initial margin"]) == pytest.approx(venue.initial_margin, abs=CENT)
    worst = page.rows("worst-scenarios")
    assert num(worst[0]["weighted loss"]) == pytest.approx(venue.worst_scenario_loss, abs=CENT)


def test_an_executable_plan_report_shows_the_cost_of_executability(demo):
    """The lot case of tests/test_executable.py: continuous 2.25, executable 2.9, the naive rounding
    (2.00) infeasible on net delta; a continuous plan (the demo) has no such section."""
    from marginopt.models.case import load_case_data
    from tests.test_executable import lots_case

    case = load_case_data(lots_case(F=1.0, P=0.1))
    result = marginopt.optimize(case, mode="hedge")
    page = Page(plan_html(result, case))
    assert page.errors == []
    rows = {r["plan"]: r for r in page.rows("executability")}
    assert num(rows["continuous optimum (lower bound)"]["cost USD"]) == pytest.approx(2.25, abs=CENT)
    assert num(rows["executable plan"]["cost USD"]) == pytest.approx(2.9, abs=CENT)
    rounded = rows["naive rounding of the continuous plan"]
    assert num(rounded["cost USD"]) == pytest.approx(2.0, abs=CENT) and rounded["feasible"] == "no"
    assert num(rounded["margin after USD"]) == pytest.approx(3.5, abs=CENT)
    assert "executability" not in Page(demo[4]).tables


def test_the_hedges_table_shows_lots_where_a_hedge_has_a_lot_size(demo):
    """The lot cases of tests/test_executable.py (long 2.35 F, net delta to end in [-0.1, 0.1], F at
    1 a contract, P at 3). F in whole contracts and P in lots of 0.1: F -2 (2 lots of 1), P -0.3
    (3 lots of 0.1). F in whole contracts, P continuous: F -2 leaves 0.35, P -0.25 brings it to 0.1
    (2 + 0.75 = 2.75; F -3 with P +0.55 costs 4.65): P has no lot size, so its lots cells are empty.
    The demo's hedges have none: its table has no lots column."""
    from marginopt.models.case import load_case_data
    from tests.test_executable import lots_case

    for lots, expected in (({"F": 1.0, "P": 0.1}, [("-2.0000", "-2", "1"), ("-0.3000", "-3", "0.1")]),
                           ({"F": 1.0}, [("-2.0000", "-2", "1"), ("-0.2500", "", "")])):
        case = load_case_data(lots_case(**lots))
        result = marginopt.optimize(case, mode="hedge")
        assert result.status == "optimal"
        page = Page(plan_html(result, case))
        assert page.errors == []
        rows = page.rows("hedges")
        assert [r["instrument"] for r in rows[:-1]] == ["F", "P"]
        assert [(r["quantity"], r["lots"], r["lot size"]) for r in rows[:-1]] == expected
        assert rows[-1]["venue"] == "total" and rows[-1]["lots"] == ""
    assert "lots" not in Page(demo[4]).tables["hedges"][0]
