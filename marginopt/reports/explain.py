"""The explain page: each venue's initial margin change from A to B in pieces, as waterfalls and tables."""

from __future__ import annotations

from html import escape

from marginopt.models.explain import Explanation, Split
from marginopt.reports.charts import waterfall
from marginopt.reports.html import Cell, _figure, _page, table


def _steps(e: Explanation, split: Split) -> list[tuple[str, float]]:
    return [(f.label, split.sequential[f.key]) for f in e.factors]


def explain_sections(e: Explanation) -> list[str]:
    ccy = e.base_currency
    total = e.total["initial_margin"]
    order = ", ".join(f.label for f in e.factors) or "none: the cases agree on every factor"
    out = [f"<p>A: {escape(e.a.label)} (valuation date {escape(e.a.valuation_date)}); B: {escape(e.b.label)} "
           f"(valuation date {escape(e.b.valuation_date)}). Total initial margin {total.a:,.2f} &rarr; {total.b:,.2f} "
           f"{escape(ccy)} ({total.change:+,.2f}).</p>",
           "<p>Each piece is a margin recomputed at a case between A and B: <b>sequential</b> takes the factors from B one "
           f"at a time in this order ({escape(order)}); <b>Shapley</b> averages each factor's piece over every order, so "
           "no order is preferred. Both add up to the change (checked to 1e-9 relative).</p>",
           "<h2>Total initial margin</h2>",
           _figure(waterfall(("A", total.a), _steps(e, total), ("B", total.b), "Total initial margin, A to B (sequential)",
                             ccy, "explain-total"), "waterfall"),
           _split_table("explain-total", f"Total initial margin change by factor ({ccy})", e, total)]
    for v in e.venues:
        s = v.initial_margin
        out += [f"<h2>{escape(v.venue)}</h2>",
                _figure(waterfall(("A", s.a), _steps(e, s), ("B", s.b), f"{v.venue}: initial margin, A to B (sequential)", ccy,
                                  f"explain-{v.venue}"), "waterfall"),
                _split_table(f"explain-{v.venue}", f"{v.venue}: initial margin change by factor ({ccy})", e, s)]
        c = v.collateral_value
        if c.change != 0.0 or any(c.sequential.values()):
            out.append(_split_table(f"explain-{v.venue}-collateral", f"{v.venue}: credited collateral value change by factor "
                                    f"({ccy})", e, c))
        out += [f"<p>{escape(n)}</p>" for n in v.notes]
    return out


def _split_table(table_id: str, caption: str, e: Explanation, s: Split) -> str:
    rows: list[list[Cell]] = [["A", None, None, s.a]]
    for f, level in zip(e.factors, s.levels[1:]):
        rows.append([f.label, s.sequential[f.key], None if s.shapley is None else s.shapley[f.key], level])
    return table(table_id, caption, [("factor", "text"), ("sequential", "money"), ("Shapley", "money"), ("level after", "money")],
                 rows, foot=["change, A to B", s.change, None if s.shapley is None else sum(s.shapley.values()), s.b])


def explain_html(e: Explanation, *, title: str = "") -> str:
    head = title or "Margin change explained"
    return _page(head, f"{e.base_currency}, A {e.a.valuation_date} to B {e.b.valuation_date}", explain_sections(e))
