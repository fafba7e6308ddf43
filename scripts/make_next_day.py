"""Write docs/examples/next_day/: the demo book one day later, for ``marginopt explain``.

The demo (marginopt/data/demo/case.yaml, 2026-11-20) rolled forward a day: BTC -4% and ETH +3% moved
as a market move moves a case (``MarketMoves``: quoted futures keep their basis, quoted options the vol
they imply, CME's options on futures their vol), one trade (deribit_pm buys 20 BTC-26DEC26-90000-C),
the valuation date 2026-11-21, and the day's closes appended to the price history. Every number is
written as Python's repr of the float, so the file reads back to the same bits. Run from the
repository root: ``.venv/bin/python scripts/make_next_day.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

from marginopt import demo_case_path
from marginopt.models import load_case
from marginopt.models.document import case_document
from marginopt.models.moves import MarketMoves

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "examples" / "next_day"
MOVES = {"BTC": -0.04, "ETH": 0.03}
TRADE = {"venue": "deribit_pm", "account": "options", "instrument": "BTC-26DEC26-90000-C", "quantity": 20}
DAYS = 1


def _cell(value: object) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _write_csv(path: Path, rows: list[dict[str, object]], columns: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in columns])


def main() -> None:
    demo = demo_case_path()
    doc = case_document(demo).data
    moved = MarketMoves(load_case(demo)).at(MOVES)
    day = dt.date.fromisoformat(doc["valuation_date"]) + dt.timedelta(days=DAYS)
    OUT.mkdir(parents=True, exist_ok=True)

    columns = ["id", "kind", "underlying", "expiry", "strike", "right", "multiplier", "settlement", "price", "vol"]
    rows = []
    for row in doc["instruments"]:
        inst = moved.instruments[row["id"]]
        rows.append({**row, "price": inst.price, "vol": inst.vol})
    _write_csv(OUT / "instruments.csv", rows, columns)
    _write_csv(OUT / "positions.csv", [*doc["positions"], TRADE], ["venue", "account", "instrument", "quantity"])
    prices = {a: moved.market.prices[a] for a in doc["market"]["prices"]}
    history = [*doc["market"]["history"], {"date": doc["valuation_date"], **{u: prices[u] for u in MOVES}}]
    _write_csv(OUT / "history.csv", history, ["date", *MOVES])

    text = demo.read_text(encoding="utf-8")
    body = text[text.index("format:"):]
    body = body.replace(f"valuation_date: {doc['valuation_date']}", f"valuation_date: {day.isoformat()}")
    body = re.sub(r"prices: \{[^}]*\}", "prices: {" + ", ".join(f"{a}: {p!r}" for a, p in prices.items()) + "}", body, count=1)
    body = body.replace("hedges: hedges.csv", "hedges: ../../../marginopt/data/demo/hedges.csv")
    header = ("# The demo book one day later (written by scripts/make_next_day.py): BTC -4% and ETH +3% (moved as\n"
              "# marginopt's market moves move a case), deribit_pm bought 20 BTC-26DEC26-90000-C, the valuation date\n"
              "# 2026-11-21 and the day's closes added to the history. Explain the day's change in margin:\n"
              "#   marginopt explain marginopt/data/demo/case.yaml docs/examples/next_day/case.yaml\n")
    (OUT / "case.yaml").write_text(header + body, encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
