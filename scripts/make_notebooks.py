"""Write notebooks/desk_hedge.ipynb and notebooks/treasury_plan.ipynb, outputs stripped.

The notebooks are the source people open; this script is how they were written, kept so a
change to many cells at once stays a reviewable diff. Run from the repository root:
``.venv/bin/python scripts/make_notebooks.py``. tests/test_notebooks.py executes both.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

DESK = [
    ("md", """# Desk hedge walkthrough

A trading desk's questions on the embedded demo book (BTC and ETH options, futures and perpetuals
on three venues; its price history is synthetic): what margin do we pay and why, what would a trade
add, where should it go, and which hedges cut margin most for what they cost."""),
    ("code", """import pandas as pd

import marginopt
from marginopt.optimizer import optimize

pd.options.display.float_format = "{:,.2f}".format  # money to the cent, with thousands separators
case = marginopt.load_case(marginopt.demo_case_path())
print(case.description, "-", case.base_currency, "- venues:", ", ".join(case.venues))"""),
    ("md", """## Margin now

Per venue: the initial margin the venue asks for, the maintenance level, what the posted collateral
counts for after haircuts and concentration limits, and the excess (negative: short of collateral).
`worst_scenario` is the scenario that drives a scenario-based margin."""),
    ("code", """report = marginopt.margin(case)
report.to_frame()[["venue", "initial_margin", "maintenance_margin", "collateral_value", "excess", "worst_scenario"]]"""),
    ("md", """`deribit_pm` is a scan grid per underlying plus a short-option minimum; its components say
which underlying's scan costs most."""),
    ("code", """pd.Series(report["deribit_pm"].components)"""),
    ("md", """## What would a trade add?

Selling 10,000 inverse BTC perpetual contracts (10 USD face each) at `deribit_pm`: the incremental
initial margin there. Negative means the trade offsets risk already in the book."""),
    ("code", """w = marginopt.what_if(case, "deribit_pm", "BTC-PERP-INV", -10_000)
print(f"{w.venue}: {w.margin_before:,.0f} -> {w.margin_after:,.0f} ({w.incremental:+,.0f} {case.base_currency})")"""),
    ("md", """## Where to route it

Buying 40 ETH perpetuals: what it would add at each venue that lists them (holds them, offers
them in the hedge table, or names them under its `lists:`), least first. The first row is where
the trade costs the least margin; `cme_es` does not list the perpetual and is not priced."""),
    ("code", """routes = marginopt.route(case, "ETH-PERP", 40)
pd.DataFrame([{"venue": r.venue, "margin before": r.margin_before, "incremental": r.incremental} for r in routes])"""),
    ("md", """## A hedge plan

The optimizer picks hedges from the case's hedge universe (`hedges.csv`: venue, instrument, bounds,
cost per contract) to minimize total initial margin plus hedge costs, with collateral left as posted
(`mode="hedge"`, `objective="min_margin"`). Every margin of the plan is recomputed before it is
called optimal (`verification`)."""),
    ("code", """plan = optimize(case, objective="min_margin", mode="hedge")
print(plan.status, "- verification passed:", plan.verification.passed, f"- hedge cost {plan.costs['hedge']:,.0f}")
trades = plan.hedges[plan.hedges["quantity"].abs() > 1e-3].reset_index(drop=True)
trades"""),
    ("md", """## What each hedge saves

Two views of one trade: **alone**, added to the book as it is (`what_if`), and **in the plan**, the
margin the plan would lose by leaving that trade out. Hedges interact (a future and a put can
offset each other's scenario), so the two differ; the plan is chosen on the whole."""),
    ("code", """def margin_without(trade):
    \"\"\"The venue's margin with the whole plan, and with the plan less this one trade.\"\"\"
    book = marginopt.VenueBook(case, trade.venue)
    q = book.q.copy()
    for h in plan.hedges[plan.hedges["venue"] == trade.venue].itertuples():
        q[book.column(h.instrument)] += h.quantity
    without = q.copy()
    without[book.column(trade.instrument)] -= trade.quantity
    return book.initial.evaluate(q), book.initial.evaluate(without)


rows = []
for t in trades.itertuples():
    with_plan, without = margin_without(t)
    alone = marginopt.what_if(case, t.venue, t.instrument, t.quantity).incremental
    rows.append({"venue": t.venue, "instrument": t.instrument, "quantity": t.quantity, "cost": t.cost,
                 "saves alone": -alone, "saves in the plan": without - with_plan})
pd.DataFrame(rows)"""),
    ("md", """## Margins before and after

The plan's margins, recomputed at the hedged positions."""),
    ("code", """margins = plan.margins.set_index("venue")[["before", "after"]]
print(f"total initial margin: before {margins['before'].sum():,.0f}, after {margins['after'].sum():,.0f} {case.base_currency}")
margins"""),
    ("code", """ax = margins.plot.bar(rot=0, title="Initial margin by venue", ylabel=case.base_currency)"""),
    ("md", """The same plan as a self-contained HTML page with tables and charts:
`marginopt hedge CASE --objective min_margin --report plan.html` (or `marginopt.reports.plan_html(plan, case)`)."""),
]

TREASURY = [
    ("md", """# Treasury planning walkthrough

A treasury's question on the embedded demo (synthetic price history): how to spread cash, USDC,
BTC, ETH and T-bills across three venues so every venue's initial margin is covered at the least
funding cost, what one more dollar of margin at each venue would cost, and how the plan moves
when the market does."""),
    ("code", """from dataclasses import replace
from types import MappingProxyType

import pandas as pd

import marginopt
from marginopt.optimizer import MarginProblem, Mode, run

pd.options.display.float_format = "{:,.4f}".format  # cents, and units of BTC to 1e-4
case = marginopt.load_case(marginopt.demo_case_path())
pd.DataFrame([{"asset": a, "quantity": t.quantity, "yearly cost": t.cost, "transfer cost": t.transfer_cost}
              for a, t in case.treasury.items()])"""),
    ("md", """`yearly cost` is the funding or opportunity cost of posting one dollar of the asset for a
year; `transfer cost` is paid once on what is moved. What each venue needs, and what is posted now
(`cme_es` is short):"""),
    ("code", """report = marginopt.margin(case)
report.to_frame()[["venue", "initial_margin", "collateral_value", "excess"]]"""),
    ("md", """## The allocation

`min_cost` with positions unchanged (`Mode.ALLOCATE`): the least yearly funding plus one-off
transfers, every venue's initial margin covered by what is posted there after haircuts, tiers and
concentration limits, within the inventory. The problem is built once (`MarginProblem`) so it can be
re-solved after a market move below."""),
    ("code", """problem = MarginProblem(case, mode=Mode.ALLOCATE)
plan = run(problem)
print(plan.status, "- verification passed:", plan.verification.passed)
print(f"cost: {plan.objective_value:,.0f} {case.base_currency} ("
      + ", ".join(f"{k} {v:,.0f}" for k, v in plan.costs.items()) + ")")"""),
    ("md", """## By asset and venue

Gross market value of each asset at each venue after the plan (NaN: not eligible there). The
cheapest eligible asset goes first: BTC, at 2% a year, at both crypto venues; T-bills (4%) rather
than cash (4.5%) at `cme_es`. Then what moves, in units:"""),
    ("code", """by_asset = plan.allocation.pivot_table(index="asset", columns="venue", values="value", aggfunc="sum")
by_asset"""),
    ("code", """moves = plan.allocation.assign(change=lambda f: f["quantity"] - f["posted_before"])
moves[moves["change"].abs() > 1e-6][["venue", "asset", "posted_before", "quantity", "change"]]"""),
    ("md", """## Shadow prices

What one more dollar of a venue's initial margin would add to the yearly cost (the funding rate
of the asset that covers it, over its value after haircut), and what one more dollar of an asset in
the treasury would save: zero while the inventory does not bind."""),
    ("code", """pd.DataFrame({"shadow price": plan.shadow_prices["venues"]}).map("{:.6f}".format)"""),
    ("code", """assets = pd.DataFrame({"shadow price": plan.shadow_prices["assets"]})
# Solver round-off leaves -1e-16 on a slack inventory, which would print as -0.000000.
assets.mask(assets.abs() < 1e-9, 0.0).map("{:.6f}".format)"""),
    ("md", """## What if BTC falls 10%?

BTC collateral is worth less and the option book's margin moves. `problem.update` loads the new
prices into the problem already built and `run(..., warm=True)` re-solves from the last solution
without building again. (Instruments with a quoted mark in the case keep it: a real re-run would
take a whole new market snapshot.)"""),
    ("code", """prices = dict(case.market.prices)
prices["BTC"] *= 0.9
moved = replace(case, market=replace(case.market, prices=MappingProxyType(prices)))
problem.update(moved)
after_move = run(problem, warm=True)
print(after_move.status, "- verification passed:", after_move.verification.passed)
print(f"yearly cost: {plan.objective_value:,.0f} -> {after_move.objective_value:,.0f} {case.base_currency}")"""),
    ("code", """compare = pd.DataFrame({"margin now": plan.margins.set_index("venue")["after"],
                        "margin after BTC -10%": after_move.margins.set_index("venue")["after"]})
compare"""),
    ("code", """ax = by_asset.fillna(0).T.plot.bar(stacked=True, rot=0, title="Collateral after the plan by venue and asset",
                                   ylabel=case.base_currency)"""),
    ("md", """The same plan as a self-contained HTML page: `marginopt allocate CASE --report plan.html`."""),
]


def notebook(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for k, cell in enumerate(nb.cells):
        cell.id = f"{name}-{k:02d}"  # random ids would change the file on every run
    return nb


def main() -> None:
    folder = ROOT / "notebooks"
    folder.mkdir(exist_ok=True)
    for name, cells in (("desk_hedge", DESK), ("treasury_plan", TREASURY)):
        nb = notebook(name, cells)
        nbformat.validate(nb)
        nbformat.write(nb, folder / f"{name}.ipynb")
        print(f"wrote {folder / name}.ipynb ({len(cells)} cells)")


if __name__ == "__main__":
    main()
