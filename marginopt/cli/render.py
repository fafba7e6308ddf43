"""Rendering results for people (aligned tables) and programs (JSON, CSV)."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from marginopt.models.report import MarginReport


def money(x: float | None) -> str:
    if x is None:
        return ""
    # Margin reports and what-if refuse a non-finite amount before this; a plan's amount the solver
    # could not compute (an unsolved elastic problem) is said so, not printed as nan or inf.
    return f"{x:,.2f}" if math.isfinite(x) else "not computed"


def margin_json(report: MarginReport) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False)  # the report checked every amount finite


def plan_json(doc: Any) -> str:
    """A plan's JSON: an amount the solver could not compute (NaN, infinity) is null, never an invalid JSON token."""
    from marginopt.json_values import json_safe

    return json.dumps(json_safe(doc), indent=2, allow_nan=False)


def margin_csv(report: MarginReport) -> str:
    return report.to_frame().to_csv(index=False)


def margin_table(report: MarginReport, console: Console, title: str = "") -> None:
    ccy = report.base_currency
    head = f"Margin report{' - ' + title if title else ''} ({ccy}, valuation date {report.valuation_date})"
    summary = Table(title=head, title_justify="left", header_style="bold")
    summary.add_column("venue")
    for col in ("initial margin", "maintenance", "collateral value", "excess"):
        summary.add_column(col, justify="right")
    summary.add_column("worst scenario")
    for v in report.venues:
        style = "red" if v.excess < 0 else ""
        summary.add_row(
            v.venue, money(v.initial_margin), money(v.maintenance_margin), money(v.collateral_value),
            f"[{style}]{money(v.excess)}[/{style}]" if style else money(v.excess), v.worst_scenario or "-",
        )
    summary.add_section()
    summary.add_row("total", money(report.total_initial_margin), "", money(sum(v.collateral_value for v in report.venues)),
                    "", "")
    console.print(summary)
    short = [v for v in report.venues if v.excess < 0]
    for v in short:
        console.print(f"[red]{v.venue} is short of collateral by {money(-v.excess)} {ccy}[/red]")
    excess_line([v.excess for v in report.venues], [v.venue for v in report.venues], ccy, console)
    limits_table(report.limits, ccy, console)
    for v in report.venues:
        _venue_detail(v, ccy, console)
    for note in report.notes:
        console.print(f"note: {note}", soft_wrap=True)


def _venue_detail(v: Any, ccy: str, console: Console) -> None:
    comp = Table(title=f"{v.venue}: initial margin", title_justify="left", header_style="bold")
    comp.add_column("component")
    comp.add_column(ccy, justify="right")
    for name, value in v.components.items():
        comp.add_row(name, money(value))
    console.print(comp)
    if v.worst_scenario is not None:
        console.print(f"worst scenario: {v.worst_scenario} (weighted loss {money(v.worst_scenario_loss)} {ccy})", soft_wrap=True)
    for note in v.bound_notes:
        console.print(note, soft_wrap=True)
    if not v.collateral:
        console.print(f"{v.venue}: no collateral posted")
        return
    col = Table(title=f"{v.venue}: collateral posted", title_justify="left", header_style="bold")
    col.add_column("asset")
    for c in ("quantity", "gross value", "after haircut", "credited"):
        col.add_column(c, justify="right")
    for c in v.collateral:
        col.add_row(c.asset, f"{c.quantity:,.10g}", money(c.gross_value), money(c.value_after_haircut), money(c.credited_value))
    console.print(col)


def stdout_console() -> Console:
    # A fixed width off a terminal keeps piped output aligned and unwrapped.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120, soft_wrap=False)


def what_if_table(results: list[Any], ccy: str, console: Console, routed: bool = False) -> None:
    """What-if results (``optimizer.attribution.LegsWhatIf``): one row per venue touched, IM, MM and
    excess (collateral value - IM) before and after; a route has one result per venue, least first."""
    legs = results[0].legs
    said = ", ".join(f"{leg.quantity:+,g} {leg.instrument}" + ("" if routed else f" at {leg.venue}") for leg in legs)
    t = Table(title=f"What if: {said}" + (" (routed: every leg at one venue)" if routed else "") + f"; amounts in {ccy}",
              title_justify="left", header_style="bold")
    t.add_column("venue")
    for col in ("IM before", "IM after", "incremental", "MM before", "MM after", "excess before", "excess after"):
        t.add_column(col, justify="right")
    for w in results:
        for v in w.venues:
            t.add_row(v.venue, money(v.initial_before), money(v.initial_after), money(v.incremental), money(v.maintenance_before),
                      money(v.maintenance_after), money(v.excess_before), money(v.excess_after))
    if not routed and len(results[0].venues) > 1:
        w = results[0]
        t.add_row("all venues", money(w.margin_before), money(w.margin_after), money(w.incremental), "", "", "", "")
    console.print(t)


def plan_table(result: Any, ccy: str, console: Console) -> None:
    """An optimization result for people: status, plan, margins, shadow prices."""
    from marginopt.optimizer.result import OptimizationResult

    assert isinstance(result, OptimizationResult)
    rep = result.solver
    chain = " -> ".join(f"{a.solver} {a.status.value}" + (f" ({a.note})" if a.note else "") for a in rep.attempts)
    head = f"Optimized plan ({result.mode}, objective {result.objective.value})"
    if not result.succeeded:
        console.print(f"[bold red]{head}: {result.status.upper()}[/bold red]")
        console.print(f"solver attempts: {chain}", soft_wrap=True)
        if result.shortfalls:
            t = Table(title="What is short (elastic problem)", title_justify="left", header_style="bold")
            t.add_column("constraint")
            t.add_column("short by", justify="right")
            for name, amount in result.shortfalls:
                t.add_row(name, f"{amount:,.2f}" if math.isfinite(amount) else "not computed")
            console.print(t)
        if result.verification is not None and not result.verification.passed:
            for c in result.verification.failures:
                console.print(f"[red]verification failed: {c.name} (violated by {c.violation:.6g})[/red]", soft_wrap=True)
        return
    ver = result.verification
    assert ver is not None
    console.print(f"[bold]{head}[/bold]: {money(result.objective_value)} {ccy}  "
                  f"({', '.join(f'{k} {money(v)}' for k, v in result.costs.items())})", soft_wrap=True)
    if result.status != "optimal":  # a verified plan not proven optimal: said before anything else
        console.print(f"[bold yellow]status: {result.status.upper()}: {result.status_detail}[/bold yellow]", soft_wrap=True)
    from marginopt.optimizer.result import SNAP_ABSOLUTE, SNAP_RELATIVE, snap

    console.print(f"verification: {'passed' if ver.passed else 'FAILED'} (largest violation {snap(ver.max_violation):.3g}); "
                  f"solver {rep.solver} ({rep.problem_class.value}), build {rep.build_seconds:.3f} s, solve {rep.solve_seconds:.3f} s"
                  + (f"; attempts: {chain}" if len(rep.attempts) > 1 and result.certificate is None else "")
                  + f"; quantities and duals within {SNAP_ABSOLUTE:g} + {SNAP_RELATIVE:g} |x| of a whole number shown as it",
                  soft_wrap=True)
    cert = result.certificate
    if cert is not None and "incumbent" in cert:
        from marginopt.optimizer.executability import TIME_LIMIT

        proven = (f"proven optimal (gap within {cert['requested_gap']:g})" if cert["proven_optimal"]
                  else f"not proven optimal (time limit reached: {cert['time_limit']:g} s)" if cert.get("stopped") == TIME_LIMIT
                  else f"not proven optimal ({cert.get('stopped') or 'stopped'})")
        console.print(f"gap: incumbent {money(cert['incumbent'])}, bound {money(cert['bound'])}, gap {money(cert['gap'])} "
                      f"({cert['relative_gap']:.3g} relative), {proven}; {cert['rounds']:,} branch-and-bound nodes",
                      soft_wrap=True)
    elif cert is not None:
        sizes = ", ".join(f"{v} {n:,}" for v, n in cert["scenarios_in_program"].items())
        cuts = ", ".join(f"{v} {n:,}" for v, n in cert.get("cuts_in_program", {}).items())
        console.print(f"certificate: {cert['method']}, {cert['rounds']} rounds; lower bound {money(cert['lower_bound'])}, "
                      f"gap {cert['gap']:.3g}; scenarios in the program: {sizes}"
                      + (f"; expected shortfall cuts in the program: {cuts}" if cuts else ""), soft_wrap=True)
    # Quantities and duals snapped as in the JSON (result.snap); the trades people see, as the report shows them.
    from marginopt.reports.data import visible_hedges

    trades = visible_hedges(result)
    t = Table(title="Hedges", title_justify="left", header_style="bold")
    for col in ("venue", "instrument"):
        t.add_column(col)
    t.add_column("quantity", justify="right")
    t.add_column(f"cost {ccy}", justify="right")
    lots = {k: c.lot_size for k, c in enumerate(result.candidates)}
    for k, r in zip(trades.index, trades.to_dict("records"), strict=True):
        t.add_row(str(r["venue"]), str(r["instrument"]), quantity_in_lots(float(r["quantity"]), lots.get(int(k))),
                  money(float(r["cost"])))
    if len(trades) == 0:
        t.add_row("-", "no trade", "", "")
    console.print(t)
    alloc = result.table("allocation")
    if len(alloc):
        a = Table(title="Collateral", title_justify="left", header_style="bold")
        for col in ("venue", "asset"):
            a.add_column(col)
        for col in ("posted now", "after plan", "change", f"value {ccy}"):
            a.add_column(col, justify="right")
        for r in alloc.to_dict("records"):
            before = float(r["posted_before"])
            q = float(r["quantity"]) if abs(r["quantity"]) > 1e-6 * max(1.0, before) else 0.0
            if q == 0.0 and before == 0.0:
                continue  # round-off on an asset that is not posted: nothing to do
            value = float(r["value"]) if q == r["quantity"] else 0.0  # the value of the quantity shown
            a.add_row(str(r["venue"]), str(r["asset"]), f"{before:,.4f}", f"{q:,.4f}", f"{q - before:+,.4f}", money(value))
        console.print(a)
    if result.executability is not None:
        executability_table(result.executability, float(result.margins["after"].sum()), ccy, console)
    if getattr(result, "safety", None) is not None:
        safety_table(result.safety, ccy, console)
    m = Table(title="Initial margin", title_justify="left", header_style="bold")
    m.add_column("venue")
    for col in ("before", "after", "collateral after", "excess after", "margin balance after", f"shadow {ccy}/{ccy}"):
        m.add_column(col, justify="right")
    shadow_prices = result.shown_shadow_prices
    rows = result.margins.to_dict("records")
    for r in rows:
        shadow = shadow_prices["venues"].get(str(r["venue"]))
        m.add_row(str(r["venue"]), money(r["before"]), money(r["after"]), money(r["collateral_after"]), money(r["excess_after"]),
                  money(r.get("balance_after")), "" if shadow is None else f"{shadow:.6g}")
    console.print(m)
    for r in rows:  # the balance counts what the collateral does not: P&L and option value (models/equity.py)
        short = float(r["after"]) - float(r.get("balance_after", r["after"]))
        if short > 1e-6 * max(1.0, float(r["after"])):
            console.print(f"{r['venue']}: the plan's collateral covers the initial margin, but the venue's margin balance "
                          f"(collateral, unrealized P&L and option value) is {money(short)} {ccy} below it: a buffer "
                          f"{{amount: {short:,.0f}}} there covers it (marginopt health shows the balance)", soft_wrap=True)
    excess_line(list(result.margins["collateral_after"] - result.margins["after"]), list(result.margins["venue"]), ccy, console)
    limits_table(getattr(result, "limits", ()), ccy, console)
    assets = {k: v for k, v in shadow_prices["assets"].items() if v != 0.0}
    if assets:
        console.print("one more unit of value of " + ", ".join(f"{k} changes the objective by {v:+.6g}" for k, v in assets.items()),
                      soft_wrap=True)


def excess_line(excess: list[float], venues: list[str], ccy: str, console: Console) -> None:
    """Shortfalls and surpluses summed apart: collateral at one venue does not cover another's margin."""
    from marginopt.models.report import excess_apart

    e = excess_apart(excess, venues)
    short = f"; shortfall {money(e['total_shortfall'])} at {', '.join(e['short'])}" if e["short"] else ""
    console.print(f"excess over initial margin, not netted across venues: surplus {money(e['total_surplus'])} {ccy}{short}",
                  soft_wrap=True)


def limits_table(uses: Any, ccy: str, console: Console) -> None:
    """Each limit's value against its bounds, its use, whether it binds and, for a continuous plan, what one
    more unit of the binding bound is worth (models/limit_use.py)."""
    if not uses:
        return

    def num(x: float | None, unit: str) -> str:
        if x is None:
            return ""
        return money(x) if unit == ccy else f"{x:.2%}" if unit.startswith("share") else f"{x:,.4f}"

    worth = any(u.worth is not None for u in uses)
    t = Table(title="Limits", title_justify="left", header_style="bold")
    for col, right in (("limit", False), ("value", True), ("lower", True), ("upper", True), ("unit", False), ("use", True),
                       ("binds", False)) + (((f"worth of 1 more, {ccy}", True),) if worth else ()):
        t.add_column(col, justify="right" if right else "left")
    for u in uses:
        flag = u.binding or ("[red]violated[/red]" if u.violation > 0 else "")
        row = [u.name, num(u.value, u.unit), num(u.lower, u.unit), num(u.upper, u.unit), u.unit,
               "" if u.use is None else f"{u.use:.2%}", flag]
        if worth:
            row.append("" if u.worth is None or u.binding is None else f"{u.worth:,.6g}")
        t.add_row(*row)
    console.print(t)


def quantity_in_lots(q: float, lot_size: float | None) -> str:
    """A hedge quantity as printed, with its count of lots where the hedge has a lot size: ``-0.3000 (3 lots)``."""
    from marginopt.reports.data import whole_lots

    if lot_size is None:
        return f"{q:,.4f}"
    n = abs(whole_lots(q, lot_size))
    return f"{q:,.4f} ({n:,} lot{'s' if n != 1 else ''})"


def executability_table(ex: Any, margin_after: float, ccy: str, console: Console) -> None:
    """The executable plan beside the continuous optimum (a lower bound) and the naive rounding of
    that, each cost and margin recomputed (optimizer/executability.py)."""
    t = Table(title="Cost of executability", title_justify="left", header_style="bold")
    t.add_column("plan")
    t.add_column(f"cost {ccy}", justify="right")
    t.add_column(f"margin after {ccy}", justify="right")
    t.add_column("feasible")
    cont = ex.continuous
    t.add_row("continuous optimum (lower bound)", money(ex.continuous_value),
              money(sum(o.margin_after for o in cont.venues)) if cont is not None else "",
              "yes (no execution terms)" if cont is not None else ex.continuous_status)
    t.add_row("executable plan", money(ex.executable_value), money(margin_after), "yes (verified)")
    rounded = ex.rounded
    if rounded is not None:
        failed = rounded.failures
        verdict = "yes" if not failed else "no: " + "; ".join(f"{c.name} violated by {c.violation:.6g}" for c in failed[:3]) + (
            f"; {len(failed) - 3} more" if len(failed) > 3 else "")
        t.add_row("naive rounding of the continuous plan", money(rounded.objective_value),
                  money(sum(o.margin_after for o in rounded.venues)), verdict)
    console.print(t)
    over = ex.cost_of_executability
    if over is not None:
        console.print(f"executing as printed costs {money(over)} {ccy} over the continuous optimum; the naive rounding "
                      "rounds each hedge to its nearest lot (0 under min_trade) and each move to its rounding, dropping "
                      "those under the minimum transfer, margins recomputed", soft_wrap=True)


def safety_table(cost: Any, ccy: str, console: Console) -> None:
    """The stress-safe plan beside the cheapest plan without the constraint: cost, the least margin of
    balance over its level under the stress set, and each plan's nearest liquidation (optimizer/safety.py)."""
    t = Table(title=f"Cost of safety (margin balance >= {cost.level} margin under {cost.stress})",
              title_justify="left", header_style="bold")
    for col, right in (("plan", False), (f"cost {ccy}", True), (f"least headroom under stress {ccy}", True),
                       ("at", False), ("nearest liquidation", False)):
        t.add_column(col, justify="right" if right else "left")
    for label, p in (("stress-safe plan", cost.safe), ("without safety", cost.unconstrained)):
        if p.objective_value is None:
            t.add_row(label, "", "", "", f"no plan ({p.status})")
            continue
        worst = min(p.stressed, key=lambda x: x[2] - x[3]) if p.stressed else None
        near = [(v, x) for v, x in p.liquidation.items() if x is not None]
        closest = min(near, key=lambda vx: abs(vx[1][1])) if near else None
        t.add_row(label, money(p.objective_value), money(worst[2] - worst[3]) if worst else "",
                  f"{worst[1]}, {worst[0]}" if worst else "",
                  f"{closest[0]}: {closest[1][0]} {closest[1][1]:+.2%}" if closest else "none in the scan")
    console.print(t)
    for label, p in (("stress-safe plan", cost.safe), ("without safety", cost.unconstrained)):
        if p.calls:
            console.print(f"{label}: expected shortfall of the margin-call amount over projected paths: "
                          + ", ".join(f"{v} {money(x)} {ccy}" for v, x in p.calls.items()), soft_wrap=True)
    if cost.over_unconstrained is not None:
        console.print(f"safety costs {money(cost.over_unconstrained)} {ccy} over the cheapest plan without it", soft_wrap=True)


def unexplained(result: Any) -> bool:
    """A plan that failed without saying why: no verified plan, or infeasible where the elastic problem
    could not say by how much."""
    return result.status == "failed" or (result.status == "infeasible"
                                         and (not result.shortfalls or any(not math.isfinite(a) for _, a in result.shortfalls)))


def largest_amounts(case: Any, n: int = 3) -> list[dict[str, Any]]:
    """The ``n`` largest amounts of base currency the case puts into a program (positions and hedge bounds
    at their gross value, treasury and posted collateral at market value), largest first: where to look
    when a solve fails without saying why (the solvers work to about 1e-8 of a program's largest number)."""
    from marginopt.models.magnitude import exposure_per_contract

    prices = case.market.prices
    rows: list[tuple[str, str, float, float]] = []
    pos = case.positions
    for venue, account, iid, q in zip(pos.venue, pos.account, pos.instrument, pos.quantity.tolist(), strict=True):
        rows.append(("positions", f"{venue} {account} {iid}", q, abs(q) * exposure_per_contract(case.instruments[iid], prices)))
    for h in case.hedges:
        bound = max(h.max_buy, h.max_sell)
        rows.append(("hedges", f"{h.venue} {h.instrument} max_buy/max_sell", bound,
                     bound * exposure_per_contract(case.instruments[h.instrument], prices)))
    for asset, t in case.treasury.items():
        rows.append(("treasury", f"{asset} quantity", t.quantity, t.quantity * prices[asset]))
    for name, venue in case.venues.items():
        for asset, q in venue.posted.items():
            rows.append(("posted", f"venues.{name}.posted.{asset}", q, q * prices[asset]))
    rows.sort(key=lambda r: -abs(r[3]))
    return [{"table": t, "input": what, "quantity": q, "value": v} for t, what, q, v in rows[:n]]


def largest_amounts_table(case: Any, console: Console) -> None:
    """``largest_amounts`` for people, under a plan that failed without saying why."""
    ccy = case.base_currency
    items = "; ".join(f"{a['table']} {a['input']}: {a['quantity']:,.6g} ({a['value']:,.6g} {ccy})" for a in largest_amounts(case))
    console.print("the solvers work to about 1e-8 of the largest number in a program, so amounts many orders of "
                  f"magnitude apart can keep them from a plan; the case's largest amounts: {items or 'none'}", soft_wrap=True)
