"""Self-contained HTML reports of a margin report and of an optimized plan.

One file with everything inline (style, SVG charts; no script, link, font or image is
fetched), so it can be mailed or archived and still opens as it was. Every string that
comes from the user's input (venue, instrument, asset and scenario names, titles) goes
through ``html.escape``; the charts carry them as glyph paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import pandas as pd

from marginopt.models.case import Case
from marginopt.models.report import MarginReport, margin_report
from marginopt.optimizer.result import OptimizationResult
from marginopt.reports import charts
from marginopt.reports.data import Worst, allocation_rows, hedge_lots, visible_hedges, worst_by_venue

Cell = str | float | None
# Column kinds: how a cell is written. Numbers keep the precision the terminal tables show.
_FORMATS = {"money": "{:,.2f}", "qty": "{:,.4f}", "rate": "{:.6g}", "sci": "{:.3g}", "int": "{:d}"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 68em;
       padding: 0 1em; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
       border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.neg { color: #b00020; }
tfoot td { font-weight: 600; border-top: 2px solid #bbb; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.bad { color: #b00020; font-weight: 600; } .good { color: #1b7a3a; font-weight: 600; }
"""


def _cell(value: Cell, kind: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "<td></td>" if kind == "text" else '<td class="num"></td>'
    if kind == "text":
        return f"<td>{escape(str(value))}</td>"
    number = float(value) if kind != "int" else int(value)  # type: ignore[arg-type]
    neg = " neg" if number < 0 and kind == "money" else ""
    return f'<td class="num{neg}">{_FORMATS[kind].format(number)}</td>'


def table(table_id: str, caption: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Cell]],
          foot: Sequence[Cell] | None = None) -> str:
    """An HTML table; ``columns`` are (header, kind) with kind text, money, qty, rate, sci or int."""
    head = "".join(("<th>" if kind == "text" else '<th class="num">') + f"{escape(name)}</th>" for name, kind in columns)
    body = "\n".join("<tr>" + "".join(_cell(v, k) for v, (_, k) in zip(row, columns)) + "</tr>" for row in rows)
    parts = [f'<table id="{table_id}">', f"<caption>{escape(caption)}</caption>", f"<thead><tr>{head}</tr></thead>",
             f"<tbody>\n{body}\n</tbody>"]
    if foot is not None:
        parts.append("<tfoot><tr>" + "".join(_cell(v, k) for v, (_, k) in zip(foot, columns)) + "</tr></tfoot>")
    return "\n".join(parts + ["</table>"])


def _rows(frame: pd.DataFrame, text: Sequence[str], numbers: Sequence[str]) -> list[list[Cell]]:
    """Table rows of a frame: the ``text`` columns as strings, then the ``numbers`` columns as floats."""
    cols: list[list[Cell]] = [[str(x) for x in frame[c]] for c in text]
    cols += [frame[c].to_numpy(dtype=float).tolist() for c in numbers]
    return [list(r) for r in zip(*cols)] if cols else []


def _figure(svg: str, kind: str) -> str:
    return f'<figure class="chart" data-chart="{kind}">\n{svg}\n</figure>'


def _page(title: str, meta: str, body: list[str]) -> str:
    from marginopt import __version__

    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{escape(title)}</h1>", f'<p class="meta">{escape(meta)} &middot; marginopt {escape(__version__)}</p>',
        *body, "</body>", "</html>", "",
    ])


# -- the margin report ------------------------------------------------------------------


def margin_sections(report: MarginReport, worst: Mapping[str, Worst]) -> list[str]:
    """The margin report's tables and charts (also the 'as it is' part of a plan without one)."""
    panels = [(venue, "now", rows) for venue, rows in worst.items()]
    return _margin_summary(report) + _collateral_posted(report) + _worst_section(panels, report.base_currency, columns=1)


def _margin_summary(report: MarginReport) -> list[str]:
    ccy = report.base_currency
    vs = report.venues
    out = ["<h2>Margin by venue</h2>",
           table("margins", f"Initial and maintenance margin per venue ({ccy})",
                 [("venue", "text"), ("initial margin", "money"), ("maintenance", "money"), ("collateral value", "money"),
                  ("excess", "money"), ("worst scenario", "text")],
                 [[v.venue, v.initial_margin, v.maintenance_margin, v.collateral_value, v.excess, v.worst_scenario] for v in vs],
                 foot=["total", report.total_initial_margin, None, sum(v.collateral_value for v in vs),
                       sum(v.excess for v in vs), None])]
    out += [f'<p class="bad">{escape(v.venue)} is short of collateral by {-v.excess:,.2f} {escape(ccy)}</p>'
            for v in vs if v.excess < 0]
    out.append(_figure(charts.grouped_bars(
        [v.venue for v in vs], {"initial margin": [v.initial_margin for v in vs], "maintenance": [v.maintenance_margin for v in vs],
                                "collateral value": [v.collateral_value for v in vs]},
        "Margin and collateral by venue", ccy, "margin"), "margin"))
    out += ["<h2>Components</h2>",
            table("components", f"What each venue's initial margin is made of ({ccy})",
                  [("venue", "text"), ("component", "text"), (ccy, "money")],
                  [[v.venue, name, value] for v in vs for name, value in v.components.items()])]
    return out + [f"<p>{escape(n)}</p>" for v in vs for n in v.bound_notes]


def _collateral_posted(report: MarginReport) -> list[str]:
    ccy = report.base_currency
    vs = report.venues
    out = ["<h2>Collateral posted</h2>"]
    assets = list(dict.fromkeys(c.asset for v in vs for c in v.collateral))
    if not assets:
        return out + ["<p>No collateral is posted at any venue.</p>"]
    out.append(table("collateral", f"Collateral per venue: gross, after haircut, credited after concentration limits ({ccy})",
                     [("venue", "text"), ("asset", "text"), ("quantity", "qty"), ("gross value", "money"),
                      ("after haircut", "money"), ("credited", "money")],
                     [[v.venue, c.asset, c.quantity, c.gross_value, c.value_after_haircut, c.credited_value]
                      for v in vs for c in v.collateral]))
    credited = {a: [sum(c.credited_value for c in v.collateral if c.asset == a) for v in vs] for a in assets}
    return out + [_figure(charts.stacked_bars([v.venue for v in vs], credited, "Credited collateral by asset and venue", ccy,
                                              "collateral"), "collateral")]


def _worst_section(panels: list[tuple[str, str, Worst]], ccy: str, columns: int) -> list[str]:
    out = ["<h2>Worst scenarios</h2>"]
    if not panels:
        return out + ["<p>No venue's margin is computed from scenarios.</p>"]
    out.append("<p>The largest weighted scenario losses (weight &times; loss, as the margin model ranks them) "
               "of each venue margined on scenarios.</p>")
    out.append(_figure(charts.scenario_panels([(f"{venue} ({book})", rows) for venue, book, rows in panels],
                                              "Largest weighted scenario losses", ccy, "worst", columns=columns), "worst"))
    out.append(table("worst-scenarios", f"Largest weighted scenario losses ({ccy})",
                     [("venue", "text"), ("book", "text"), ("rank", "int"), ("scenario", "text"), ("weighted loss", "money")],
                     [[venue, book, k + 1, label, loss] for venue, book, rows in panels for k, (label, loss) in enumerate(rows)]))
    return out


def _with_fallback(report: MarginReport, worst: Mapping[str, Worst]) -> dict[str, Worst]:
    """Venues without scenario terms the report still names a worst scenario for (Derive's model) show that one."""
    out = dict(worst)
    for v in report.venues:
        if v.venue not in out and v.worst_scenario is not None and v.worst_scenario_loss is not None:
            out[v.venue] = [(v.worst_scenario, v.worst_scenario_loss)]
    return out


def margin_html(report: MarginReport, case: Case | None = None, *, title: str = "", top: int = 10,
                worst: Mapping[str, Worst] | None = None) -> str:
    """The margin report as one self-contained HTML page: margin, components and collateral per
    venue, and the ``top`` largest weighted scenario losses of each scenario-based venue
    (computed from ``case``, or given as ``worst``: venue -> [(label, weighted loss)])."""
    if worst is None:
        worst = worst_by_venue(case, top) if case is not None else {}
    head = title or ("Margin report" + (f" - {case.description}" if case is not None and case.description else ""))
    meta = f"{report.base_currency}, valuation date {report.valuation_date}"
    return _page(head, meta, margin_sections(report, _with_fallback(report, worst)))


# -- the plan -----------------------------------------------------------------------------


def plan_html(result: OptimizationResult, case: Case, *, title: str = "", top: int = 10) -> str:
    """An optimization result as one self-contained HTML page: status and verification, margins
    before and after, hedges with their cost, the collateral allocation by asset and venue,
    shadow prices, and the largest scenario losses now and after the plan."""
    ccy = case.base_currency
    head = title or (f"Optimized plan ({result.mode})" + (f" - {case.description}" if case.description else ""))
    meta = f"{ccy}, valuation date {case.valuation_date}, objective {result.objective.value}"
    body = _status(result, ccy)
    if not result.succeeded:
        body.append("<h2>The book as it is</h2>")
        report = margin_report(case)
        body += margin_sections(report, _with_fallback(report, worst_by_venue(case, top)))
        return _page(head, meta, body)
    body += _margins(result, ccy)
    body += _hedges(result, ccy)
    body += _executability(result, ccy)
    body += _safety(result, ccy)
    body += _allocation(result, case)
    body += _shadow(result, ccy)
    now, after = worst_by_venue(case, top), worst_by_venue(case, top, result.hedges)
    panels = [(venue, book, rows) for venue in now for book, rows in (("now", now[venue]), ("after plan", after[venue]))]
    body += _worst_section(panels, ccy, columns=2)
    return _page(head, meta, body)


def _status(result: OptimizationResult, ccy: str) -> list[str]:
    rep, ver = result.solver, result.verification
    chain = " -> ".join(f"{a.solver} {a.status.value}" + (f" ({a.note})" if a.note else "") for a in rep.attempts)
    good = result.succeeded
    out = [f'<p class="{"good" if good else "bad"}">Status: {escape(result.status)}'
           + (f" &middot; objective {result.objective_value:,.2f} {escape(ccy)} ("
              + ", ".join(f"{escape(k)} {v:,.2f}" for k, v in result.costs.items()) + ")"
              if good and result.objective_value is not None else "") + "</p>"]
    if result.status_detail is not None:
        out.append(f'<p class="{"good" if result.status == "optimal" else "bad"}">{escape(result.status_detail)}</p>')
    rows: list[list[Cell]] = [
        ["status", result.status + (f": {result.status_detail}" if result.status_detail is not None else "")],
        ["verification", "passed" if ver is not None and ver.passed else "failed" if ver is not None else "not run"],
        ["largest violation", f"{ver.max_violation:.3g}" if ver is not None else None],
        ["solver", f"{rep.solver} ({rep.problem_class.value})"],
        ["build seconds", f"{rep.build_seconds:.3f}"],
        ["solve seconds", f"{rep.solve_seconds:.3f}"],
        ["solver attempts", chain],
    ]
    if result.certificate is not None:
        cert = result.certificate
        rows.append(["certificate", f"{cert['method']}, {cert['rounds']} rounds, lower bound {cert['lower_bound']:,.2f}, "
                                    f"gap {cert['gap']:.3g}"])
    out += ["<h2>Verification</h2>",
            "<p>Every margin and constraint of the plan recomputed with the numpy evaluators, independent of the solver.</p>",
            table("verification", "Solve and verification", [("item", "text"), ("value", "text")], rows)]
    if result.shortfalls:
        out.append(table("shortfalls", f"What is short (elastic problem, {ccy} or units)",
                         [("constraint", "text"), ("short by", "money")], [[n, a] for n, a in result.shortfalls]))
    if ver is not None and not ver.passed:
        out += [f'<p class="bad">verification failed: {escape(c.name)} (violated by {c.violation:.6g})</p>'
                for c in ver.failures]
    return out


def _margins(result: OptimizationResult, ccy: str) -> list[str]:
    m = result.margins
    shadow = result.shadow_prices.get("venues", {})
    venues = [str(v) for v in m["venue"]]
    rows = [r + [shadow.get(v)] for v, r in zip(venues, _rows(m, ["venue"], ["before", "after", "collateral_after", "excess_after"]))]
    return ["<h2>Initial margin before and after</h2>",
            table("margins", f"Initial margin per venue before and after the plan ({ccy})",
                  [("venue", "text"), ("before", "money"), ("after", "money"), ("collateral after", "money"),
                   ("excess after", "money"), (f"shadow {ccy}/{ccy}", "rate")], rows,
                  foot=["total", float(m["before"].sum()), float(m["after"].sum()), float(m["collateral_after"].sum()),
                        float(m["excess_after"].sum()), None]),
            _figure(charts.grouped_bars(venues, {"before": m["before"].astype(float).tolist(),
                                                 "after": m["after"].astype(float).tolist()},
                                        "Initial margin by venue", ccy, "margin"), "margin")]


def _hedges(result: OptimizationResult, ccy: str) -> list[str]:
    trades = visible_hedges(result)
    out = ["<h2>Hedges</h2>"]
    if trades.empty:
        return out + ["<p>No trade: the plan keeps the positions as they are.</p>"]
    lots = hedge_lots(result, trades)
    caption = f"Hedge trades and their one-off cost ({ccy}); positive is a buy"
    if lots["lot_size"].isna().all():
        rows = _rows(trades, ["venue", "instrument"], ["quantity", "cost"])
        return out + [table("hedges", caption, [("venue", "text"), ("instrument", "text"), ("quantity", "qty"),
                                                (f"cost {ccy}", "money")], rows,
                            foot=["total", None, None, float(trades["cost"].sum())])]
    # Where a hedge trades in lots, the quantity as the venue takes the order: a whole number of lots of its size.
    rows = _rows(pd.concat([trades, lots], axis=1), ["venue", "instrument"], ["quantity", "lots", "lot_size", "cost"])
    return out + [table("hedges", caption + "; lots: the quantity in whole lots of the hedge's lot size",
                        [("venue", "text"), ("instrument", "text"), ("quantity", "qty"), ("lots", "int"), ("lot size", "rate"),
                         (f"cost {ccy}", "money")], rows,
                        foot=["total", None, None, None, None, float(trades["cost"].sum())])]


def _safety(result: OptimizationResult, ccy: str) -> list[str]:
    """A stress-safe plan beside the cheapest plan without the constraint: cost, each venue's margin balance
    and level under each stressed move, nearest liquidation (optimizer/safety.py); nothing without safety."""
    cost = result.safety
    if cost is None:
        return []
    rows: list[list[Cell]] = []
    for label, p in (("stress-safe plan", cost.safe), ("without safety", cost.unconstrained)):
        near = {v: x for v, x in p.liquidation.items()}
        for move, venue, balance, level in p.stressed:
            x = near.get(venue)
            rows.append([label, p.objective_value, move, venue, balance, level, balance - level,
                         "none in the scan" if x is None else f"{x[0]} {x[1]:+.2%}"])
        if not p.stressed:
            rows.append([label, p.objective_value, f"no plan ({p.status})", None, None, None, None, None])
    return ["<h2>Cost of safety</h2>",
            f"<p>The plan keeps {escape(cost.stress)}: each venue's margin balance at or above its {escape(cost.level)} "
            "margin under every stressed move, the whole case re-priced there, and each budgeted venue's expected "
            "shortfall of its margin-call amount over projected paths within its budget; beside it the cheapest plan "
            "without those constraints. "
            f"Safety costs {'' if cost.over_unconstrained is None else f'{cost.over_unconstrained:,.2f} '}{escape(ccy)}.</p>",
            table("safety", f"Each plan under the stress set ({ccy})",
                  [("plan", "text"), (f"cost {ccy}", "money"), ("move", "text"), ("venue", "text"), ("margin balance", "money"),
                   ("level", "money"), ("headroom", "money"), ("nearest liquidation", "text")], rows)]


def _executability(result: OptimizationResult, ccy: str) -> list[str]:
    """An executable plan beside the continuous optimum (a lower bound) and the naive rounding of
    that, margins recomputed (optimizer/executability.py); nothing for a continuous plan."""
    ex = result.executability
    if ex is None:
        return []
    rows: list[list[Cell]] = [["continuous optimum (lower bound)", ex.continuous_value,
                               sum(o.margin_after for o in ex.continuous.venues) if ex.continuous is not None else None,
                               "yes (no execution terms)" if ex.continuous is not None else ex.continuous_status],
                              ["executable plan", ex.executable_value, float(result.margins["after"].sum()), "yes (verified)"]]
    failed: list[str] = []
    if ex.rounded is not None:
        failed = [f"{c.name} (violated by {c.violation:.6g})" for c in ex.rounded.failures]
        rows.append(["naive rounding of the continuous plan", ex.rounded.objective_value,
                     sum(o.margin_after for o in ex.rounded.venues), "yes" if not failed else "no"])
    out = ["<h2>Cost of executability</h2>",
           "<p>The plan as a desk executes it (lots, minimum trades and transfers, move and ticket caps, rounding), "
           "beside the same case without those terms (its optimum a lower bound) and that plan rounded by hand: each "
           "hedge to its nearest lot (0 under its minimum trade), each move to its rounding, dropped under the minimum "
           "transfer; every margin recomputed.</p>",
           table("executability", f"Cost and margin after of each plan ({ccy})",
                 [("plan", "text"), (f"cost {ccy}", "money"), (f"margin after {ccy}", "money"), ("feasible", "text")], rows)]
    if ex.cost_of_executability is not None:
        out.append(f"<p>Executing as printed costs {ex.cost_of_executability:,.2f} {escape(ccy)} over the continuous optimum.</p>")
    out += [f'<p class="bad">naive rounding fails: {escape(f)}</p>' for f in failed]
    return out


def _allocation(result: OptimizationResult, case: Case) -> list[str]:
    ccy = case.base_currency
    rows = allocation_rows(result, case)
    out = ["<h2>Collateral allocation</h2>"]
    if rows.empty:
        return out + ["<p>No collateral is posted or allocated.</p>"]
    out.append(table("allocation", f"Collateral per venue and asset: units now and after the plan, gross market value ({ccy})",
                     [("venue", "text"), ("asset", "text"), ("posted now", "qty"), ("after plan", "qty"), ("change", "qty"),
                      (f"value now {ccy}", "money"), (f"value after {ccy}", "money")],
                     _rows(rows, ["venue", "asset"], ["posted_before", "quantity", "change", "value_before", "value"])))
    venues = list(dict.fromkeys(rows["venue"]))
    grid = rows.pivot_table(index="asset", columns="venue", values="value", aggfunc="sum", sort=False).reindex(columns=venues)
    out.append(table("allocation-by-asset", f"Allocation after the plan by asset and venue, gross market value ({ccy})",
                     [("asset", "text")] + [(v, "money") for v in venues] + [("total", "money")],
                     [[str(a), *values, float(sum(x for x in values if x == x))]
                      for a, values in zip(grid.index, grid.to_numpy(dtype=float).tolist())],
                     foot=["total"] + [float(grid[v].sum()) for v in venues] + [float(grid.to_numpy(na_value=0.0).sum())]))
    bars = [f"{v} {when}" for v in venues for when in ("now", "plan")]
    stacks = {str(a): [float(rows[(rows["venue"] == v) & (rows["asset"] == a)][col].sum())
                       for v in venues for col in ("value_before", "value")] for a in grid.index}
    out.append(_figure(charts.stacked_bars(bars, stacks, "Collateral by asset and venue (gross value)",
                                           ccy, "collateral"), "collateral"))
    return out


def _shadow(result: OptimizationResult, ccy: str) -> list[str]:
    prices = result.shadow_prices
    # Duals below 1e-9 are solver round-off (-1e-16 on a slack inventory): shown as 0.
    rows: list[list[Cell]] = [[kind, k, v if abs(v) > 1e-9 else 0.0]
                              for kind, group in (("asset", "assets"), ("venue", "venues"))
                              for k, v in prices.get(group, {}).items()]
    return ["<h2>Shadow prices</h2>",
            f"<p>Change of the objective per one more {escape(ccy)} of value of a treasury asset, or per one more "
            f"{escape(ccy)} of a venue's initial margin. Zero on an asset: the inventory does not bind.</p>",
            table("shadow-prices", "Shadow prices", [("of", "text"), ("name", "text"), (f"{ccy} per {ccy}", "rate")], rows)]
