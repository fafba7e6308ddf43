"""Today's margin against the previous day's, per venue: the desk page's day-over-day table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marginopt.history.records import Run, utc_now
from marginopt.history.store import Store, venues_of


def day_over_day(store: Store, case: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The latest run today (UTC) and the latest one of an earlier day, of one case (by name: ``case``, else
    the case of the latest run), and each venue's initial margin in both (as the case was, before any plan)."""
    now = now or utc_now()
    midnight = dt.datetime.combine(now.date(), dt.time(0))
    latest = store.latest(case)
    if latest is None:
        return {"case": case, "today": None, "previous": None, "venues": [], "total": None}
    name = latest.case.name
    today, previous = store.latest(name, since=midnight), store.latest(name, before=midnight)
    margins = [{} if r is None else {v: m.initial_margin for v, m in r.margins_at("now").items()} for r in (today, previous)]
    rows = []
    for venue in venues_of([today, previous]):
        now_im, then_im = margins[0].get(venue), margins[1].get(venue)
        rows.append({"venue": venue, "today": now_im, "previous": then_im,
                     "change": None if now_im is None or then_im is None else now_im - then_im})
    total = None
    if today is not None or previous is not None:
        t = today.total_initial_margin if today is not None else None
        p = previous.total_initial_margin if previous is not None else None
        total = {"today": t, "previous": p, "change": None if t is None or p is None else t - p}
    return {"case": name, "today": _side(today), "previous": _side(previous), "venues": rows, "total": total}


def _side(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"run": run.id, "command": run.command, "created_at": run.created_at.isoformat() + "Z",
            "date": run.created_at.date().isoformat(), "valuation_date": run.valuation_date.isoformat()}
