"""A marginopt case from venue accounts in ccxt's unified structures (``marginopt import --from ccxt``).

Writes ``case.yaml``, ``instruments.csv``, ``positions.csv`` (and ``hedges.csv`` when asked) and
``import.json``, the import report: each price and its source, each venue's margin model and why,
each balance and what was taken out of it, each instrument's contract size, lot, minimum and tick
(and which of them the case uses), and everything skipped. The case is then loaded
(``load_case``), so a written case always loads.

Each venue's margin model is the venue preset that matches its exchange (``rules``) where the
preset covers every underlying the account holds and its parameters are given (``--param``); a
collateral-only preset (Binance's) takes ``--fallback-rate`` as its initial margin, and a venue
no preset fits is margined at ``fixed_rate`` ``--fallback-rate``, or is an error saying why. Every
asset posted counts at haircut 0 where the preset does not list it: ccxt reports no haircuts.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from marginopt.errors import CaseError, Location
from marginopt.models.ccxt.mapping import Instrument, Mapped, Unknown, map_account
from marginopt.models.ccxt.payload import Account, read_account
from marginopt.models.ccxt.prices import Prices
from marginopt.models.ccxt.rules import rules_for


@dataclass(frozen=True)
class ImportResult:
    case: Path
    report: dict[str, Any]
    skipped: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def import_files(files: Sequence[Path], out: Path, **options: Any) -> ImportResult:
    """The case from saved accounts, one JSON file each (``payload``'s layout)."""
    if not files:
        raise CaseError(None, "FILE", "at least one JSON file of ccxt structures", None)
    return import_accounts([read_account(Path(f)) for f in files], out, **options)


def precision_mode(exchange: str, source: str) -> int:
    """ccxt's precision mode for ``exchange`` (how ``precision.amount`` reads), from ccxt's class: no network."""
    ccxt = require_ccxt()
    if exchange not in ccxt.exchanges:
        raise CaseError(Location(source), "exchange", "a ccxt exchange id (ccxt.exchanges)", exchange)
    mode: int = getattr(ccxt, exchange)().precisionMode
    return mode


def require_ccxt() -> Any:
    try:
        import ccxt
    except ImportError:
        raise CaseError(None, "--from ccxt", "ccxt installed: pip install 'marginopt[venues]'", "not installed") from None
    return ccxt


def import_accounts(accounts: Sequence[Account], out: Path, *, base_currency: str = "USD",
                    prices: Mapping[str, float] | None = None, valuation_date: dt.date | None = None,
                    skip_unknown: bool = False, params: Mapping[str, float] | None = None,
                    fallback_rate: float | None = None, hedge_cost_bp: float | None = None,
                    force: bool = False) -> ImportResult:
    from marginopt.models import load_case  # the written case is checked by the reader users run

    venues = [a.venue for a in accounts]
    for k, account in enumerate(accounts):
        if venues.index(account.venue) != k:
            raise account.error("venue", f"a venue name not used by another account ({accounts[venues.index(account.venue)].source}"
                                " has it): give one a \"venue\" key", account.venue)
    if (out / "case.yaml").exists() and not force:
        raise CaseError(Location(out / "case.yaml"), "--out", "a folder without a case.yaml (or --force to replace it)",
                        str(out))
    book = Prices(base_currency, prices or {}, accounts)
    unknown = Unknown(skip_unknown)
    mapped = [map_account(a, rules_for(a.exchange), precision_mode(a.exchange, a.source), book, unknown) for a in accounts]
    if not any(m.positions for m in mapped):
        raise CaseError(Location(accounts[0].source), "positions", "at least one position with contracts in the accounts "
                        "(a case needs an instrument)", None)
    date = valuation_date or _valuation_date(accounts)
    ids = _instrument_ids(mapped)
    for m in mapped:
        for inst in m.instruments.values():
            if inst.expiry is not None and inst.expiry < date:
                raise m.account.error(f"{inst.market_path}.expiry", f"an expiry on or after the valuation date {date}",
                                      inst.expiry.isoformat())
    used_params: set[str] = set()
    venue_maps = {m.account.venue: _venue(m, params or {}, fallback_rate, book, used_params) for m in mapped}
    unused = sorted(set(params or {}) - used_params)
    if unused:
        raise CaseError(None, "--param", "a parameter of a venue preset used (" + (", ".join(sorted(used_params)) or "none")
                        + ")", unused[0])
    assets = sorted({i.underlying for m in mapped for i in m.instruments.values()} | {p.asset for m in mapped for p in m.posted})
    out.mkdir(parents=True, exist_ok=True)
    _write_instruments(out / "instruments.csv", mapped, ids)
    duplicates = _write_positions(out / "positions.csv", mapped, ids)
    hedges = hedge_cost_bp is not None
    if hedges:
        _write_hedges(out / "hedges.csv", mapped, ids, hedge_cost_bp or 0.0, book)
    report = _report(mapped, ids, book, assets, date, venue_maps, unknown.skipped, hedges)
    sources = ", ".join(f"{a.venue} ({Path(a.source).name if Path(a.source).exists() else a.source})" for a in accounts)
    description = f"Imported from ccxt: {sources}"
    if unknown.skipped:
        description += f"; {len(unknown.skipped)} unknown item(s) skipped (--skip-unknown), listed in import.json"
    case: dict[str, Any] = {
        "format": "marginopt/1",
        "description": description,
        "base_currency": base_currency,
        "valuation_date": date,
        "market": {"prices": {a: book.value(a) for a in assets}},
        "instruments": "instruments.csv",
        "positions": {"table": "positions.csv", "aggregate": True} if duplicates else "positions.csv",
        "venues": {name: venue for name, (venue, _) in venue_maps.items()},
        "objective": "min_margin",
    }
    if hedges:
        case["hedges"] = "hedges.csv"
    header = _header(accounts, report, unknown.skipped, duplicates)
    path = out / "case.yaml"
    path.write_text(header + yaml.safe_dump(case, sort_keys=False, allow_unicode=True, width=1000), encoding="utf-8")
    (out / "import.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    load_case(path)
    return ImportResult(path, report, tuple(unknown.skipped), tuple(report["notes"]))


def _valuation_date(accounts: Sequence[Account]) -> dt.date:
    stamps = [a.timestamp for a in accounts if a.timestamp is not None]
    if not stamps:
        raise CaseError(Location(accounts[0].source), "timestamp", "when the account was fetched (the file's timestamp or "
                        "balance.timestamp), or --valuation-date", None)
    return max(stamps).date()


def _instrument_ids(mapped: Sequence[Mapped]) -> dict[tuple[str, str], str]:
    """(venue, symbol) -> the case's id: the venue's own name for the contract (ccxt's market id), prefixed
    with the venue where two venues use the same name."""
    count: dict[str, set[str]] = {}
    for m in mapped:
        for inst in m.instruments.values():
            count.setdefault(inst.id, set()).add(m.account.venue)
    ids: dict[tuple[str, str], str] = {}
    for m in mapped:
        seen: dict[str, str] = {}
        for symbol, inst in m.instruments.items():
            if inst.id in seen:
                raise m.account.error(f"{inst.market_path}.id", f"a market id used once ({seen[inst.id]} has it too)", inst.id)
            seen[inst.id] = symbol
            ids[(m.account.venue, symbol)] = inst.id if len(count[inst.id]) == 1 else f"{m.account.venue}-{inst.id}"
    return ids


def _preset_underlyings(value: Any) -> set[str] | None:
    """The underlyings a preset's scenario grids name (``underlyings``), or None where none does (any)."""
    found: set[str] = set()
    named = False
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if isinstance(item.get("underlyings"), (list, tuple)):
                named = True
                found |= set(item["underlyings"])
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found if named else None


def _venue(m: Mapped, params: Mapping[str, float], fallback_rate: float | None, prices: Prices,
           used: set[str]) -> tuple[dict[str, Any], str]:
    """The venue's mapping and a line saying which margin model it has and why."""
    from marginopt.presets import get_preset

    account = m.account
    rules = rules_for(account.exchange)
    held = sorted({p.instrument.underlying for p in m.positions})
    preset = get_preset(rules.preset) if rules.preset else None
    reason = "" if preset else f"no venue preset for exchange {account.exchange}"
    if preset is not None:
        covered = _preset_underlyings(preset.venue)
        missing = [p for p in preset.parameters if p not in params]
        if covered is not None and not set(held) <= covered:
            reason = (f"preset {preset.id} covers {', '.join(sorted(covered))} only; the account holds "
                      f"{', '.join(u for u in held if u not in covered)}")
        elif missing:
            reason = f"preset {preset.id} needs its parameter(s) {', '.join(missing)} (--param NAME=VALUE)"
    venue: dict[str, Any] = {}
    listed: dict[str, Any] = {}
    if preset is not None and not reason:
        venue["preset"] = preset.id
        for name in preset.parameters:
            venue[name] = params[name]
            used.add(name)
        listed = {a: v for a, v in dict(preset.venue.get("collateral") or {}).items() if prices.get(a) is not None}
        if "initial_margin" not in preset.venue:
            if fallback_rate is None:
                raise account.error("exchange", f"--fallback-rate RATE: preset {preset.id} models collateral only, so venue "
                                    f"{account.venue} needs an initial margin (fixed_rate RATE of each position's notional)",
                                    account.exchange)
            venue["initial_margin"] = {"kind": "fixed_rate", "rate": fallback_rate}
            line = f"preset {preset.id} (collateral) with initial margin fixed_rate {fallback_rate!r} (--fallback-rate)"
        else:
            line = f"preset {preset.id}"
    else:
        if fallback_rate is None:
            raise account.error("exchange", f"a venue preset that fits ({reason}), or --fallback-rate RATE for a fixed-rate "
                                "initial margin", account.exchange)
        venue["initial_margin"] = {"kind": "fixed_rate", "rate": fallback_rate}
        line = f"fixed_rate {fallback_rate!r} (--fallback-rate): {reason}"
    posted = {p.asset: p.quantity for p in m.posted if p.quantity != 0.0}
    extra = [a for a in posted if a not in listed]
    if extra or "preset" not in venue or set(listed) != set(dict(preset.venue.get("collateral") or {}) if preset else {}):
        venue["collateral"] = {**{a: _plain(v) for a, v in listed.items()}, **{a: {"haircut": 0.0} for a in extra}}
        if extra:
            line += f"; collateral {', '.join(extra)} at haircut 0 (ccxt reports no haircuts)"
    if posted:
        venue["posted"] = posted
    return venue, line


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _write(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def _write_instruments(path: Path, mapped: Sequence[Mapped], ids: Mapping[tuple[str, str], str]) -> None:
    rows = [{"id": ids[(m.account.venue, s)], "kind": i.kind, "underlying": i.underlying, "expiry": i.expiry,
             "strike": i.strike, "right": i.right, "multiplier": i.multiplier, "settlement": i.settlement, "price": i.price}
            for m in mapped for s, i in m.instruments.items()]
    _write(path, ("id", "kind", "underlying", "expiry", "strike", "right", "multiplier", "settlement", "price"), rows)


def _write_positions(path: Path, mapped: Sequence[Mapped], ids: Mapping[tuple[str, str], str]) -> bool:
    """The positions table; True when a venue holds one instrument in two rows (hedge mode: long and short)."""
    rows = [{"venue": p.venue, "instrument": ids[(p.venue, p.instrument.symbol)], "quantity": p.quantity,
             "entry_price": p.entry_price} for m in mapped for p in m.positions]
    _write(path, ("venue", "instrument", "quantity", "entry_price"), rows)
    keys = [(r["venue"], r["instrument"]) for r in rows]
    return len(set(keys)) != len(keys)


def _notional(inst: Instrument, prices: Prices) -> float:
    """One contract's notional in the base currency: the face value of an inverse future or perpetual, else
    the multiplier's units of the underlying at its price."""
    if inst.settlement == "inverse" and inst.kind != "option":
        return inst.multiplier
    return inst.multiplier * prices.value(inst.underlying)


def _write_hedges(path: Path, mapped: Sequence[Mapped], ids: Mapping[tuple[str, str], str], cost_bp: float,
                  prices: Prices) -> None:
    rows = []
    for m in mapped:
        held: dict[str, float] = {}
        for p in m.positions:
            held[p.instrument.symbol] = held.get(p.instrument.symbol, 0.0) + abs(p.quantity)
        for symbol, inst in m.instruments.items():
            size = max(held.get(symbol, 0.0), inst.lot or 0.0, inst.min_trade or 0.0)
            rows.append({"venue": m.account.venue, "instrument": ids[(m.account.venue, symbol)], "max_buy": size,
                         "max_sell": size, "cost_per_unit": cost_bp * 1e-4 * _notional(inst, prices),
                         "lot_size": inst.lot, "min_trade": inst.min_trade})
    columns = ["venue", "instrument", "max_buy", "max_sell", "cost_per_unit"]
    columns += [c for c in ("lot_size", "min_trade") if any(r[c] is not None for r in rows)]
    _write(path, columns, rows)


def _report(mapped: Sequence[Mapped], ids: Mapping[tuple[str, str], str], prices: Prices, assets: Sequence[str],
            date: dt.date, venue_maps: Mapping[str, tuple[dict[str, Any], str]], skipped: Sequence[str],
            hedges: bool) -> dict[str, Any]:
    notes = ["tick sizes (precision.price) are recorded here only: the case format has no place for them"]
    notes.append("lot sizes and minimum trades are in hedges.csv (lot_size, min_trade)" if hedges else
                 "lot sizes and minimum trades are recorded here only: the case holds them on hedge rows, written with "
                 "--hedge-cost-bp")
    venues: dict[str, Any] = {}
    for m in mapped:
        a = m.account
        rules = rules_for(a.exchange)
        if not rules.checked:
            notes.append(f"{a.venue}: exchange {a.exchange} is read by ccxt's unified fields as they stand (its contract "
                         "units were not checked against the exchange's documentation)")
        if m.empty_positions:
            notes.append(f"{a.venue}: {len(m.empty_positions)} position(s) of 0 contracts left out: "
                         + ", ".join(m.empty_positions))
        if m.no_entry:
            notes.append(f"{a.venue}: no entry price (settled to today's mark, P&L 0 today): " + ", ".join(m.no_entry))
        venues[a.venue] = {
            "exchange": a.exchange, "source": a.source, "fetched": a.timestamp.isoformat() if a.timestamp else None,
            "margin_model": venue_maps[a.venue][1], "units_checked": rules.checked, "positions": len(m.positions),
            "collateral": [{"asset": p.asset, "total": p.total, "unrealized_pnl": p.pnl, "option_value": p.options,
                            "posted": p.quantity, "path": p.path} for p in m.posted],
        }
    instruments = [{"id": ids[(m.account.venue, s)], "venue": m.account.venue, "symbol": s, "market": i.market_path,
                    "kind": i.kind, "settlement": i.settlement, "contract_size": i.contract_size,
                    "contract_unit": i.contract_unit, "multiplier": i.multiplier, "price": i.price,
                    "mark_source": i.mark_source, "lot_size": i.lot, "min_trade": i.min_trade, "tick": i.tick,
                    "tick_unit": i.tick_unit} for m in mapped for s, i in m.instruments.items()]
    price_rows = {a: {"price": prices.value(a), "source": prices.get(a).source} for a in assets}  # type: ignore[union-attr]
    return {"valuation_date": date.isoformat(), "base_currency": prices.base, "prices": price_rows, "venues": venues,
            "instruments": instruments, "skipped": list(skipped), "notes": notes}


def _header(accounts: Sequence[Account], report: Mapping[str, Any], skipped: Sequence[str], duplicates: bool) -> str:
    lines = ["Written by marginopt import --from ccxt (import.json beside it has every mapping and source).",
             "Accounts: " + "; ".join(f"{a.venue} = {a.exchange} from {a.source}" for a in accounts)]
    for venue, info in report["venues"].items():
        lines.append(f"{venue}: margin model {info['margin_model']}")
    lines.append("Posted = ccxt's total (the venue's equity) less the unrealized P&L and option value the case counts itself.")
    if duplicates:
        lines.append("A venue holds an instrument in two rows (hedge mode): the rows are summed (aggregate: true).")
    lines += [f"note: {n}" for n in report["notes"]]
    lines += [f"skipped: {s}" for s in skipped]
    return "".join(f"# {line}\n" for line in lines)
