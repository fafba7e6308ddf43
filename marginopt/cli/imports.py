"""``marginopt import``: a case from venue accounts, saved (``--from ccxt FILE.json``) or fetched live (``--exchange``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from marginopt import formats as outside
from marginopt.cli.main import cli

ACCOUNTS = click.Choice([f.name for f in outside.account_formats()])


def _assignments(values: tuple[str, ...], flag: str) -> dict[str, float]:
    """``NAME=NUMBER`` pairs of a repeatable option."""
    from marginopt.errors import CaseError

    out: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            parsed = float(number)
        except ValueError:
            parsed = float("nan")
        if not sep or not name or not parsed == parsed or parsed in (float("inf"), float("-inf")):
            raise CaseError(None, flag, "NAME=NUMBER with a finite number", value)
        out[name] = parsed
    return out


@cli.command(name="import")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--from", "source", type=ACCOUNTS, default="ccxt", show_default=True,
              help="The format of FILES: " + "; ".join(f"{f.name}, {f.description}" for f in outside.account_formats()) + ".")
@click.option("--exchange", "exchanges", multiple=True, help="Fetch this exchange's account live (a ccxt exchange id, "
              "repeatable), with credentials from MARGINOPT_<EXCHANGE>_API_KEY, _SECRET (and _PASSWORD where the exchange "
              "needs one) in the environment.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("case"), show_default=True,
              help="Folder for case.yaml, its tables and import.json (the import report).")
@click.option("--force", is_flag=True, help="Replace a case.yaml already in --out.")
@click.option("--skip-unknown", is_flag=True, help="Skip each instrument or currency that cannot be mapped (listed on "
              "stderr and in import.json) instead of stopping at the first.")
@click.option("--base-currency", default="USD", show_default=True, help="The case's base currency.")
@click.option("--price", "prices", multiple=True, metavar="ASSET=VALUE",
              help="An asset's price in the base currency (repeatable), before any ticker's.")
@click.option("--valuation-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Default: the UTC date the accounts were fetched (their timestamp).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A venue preset's parameter (repeatable), e.g. minimum_charge_rate=0.0005 for okx-pm.")
@click.option("--fallback-rate", type=click.FloatRange(min=0.0), default=None,
              help="Initial margin, fixed_rate of notional, of a venue no preset fits (or whose preset is collateral only).")
@click.option("--hedge-cost-bp", type=click.FloatRange(min=0.0), default=None,
              help="Also write hedges.csv: every imported instrument a hedge at its venue, up to its held size each way, "
              "at this cost (bp of a contract's notional), with the venue's lot size and minimum trade.")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --exchange: also write the fetched account as FILE.json, which --from ccxt reads back "
              "(one exchange at a time).")
def import_command(files: tuple[Path, ...], source: str, exchanges: tuple[str, ...], out: Path, force: bool,
                   skip_unknown: bool, base_currency: str, prices: tuple[str, ...], valuation_date: dt.datetime | None,
                   params: tuple[str, ...], fallback_rate: float | None, hedge_cost_bp: float | None,
                   save: Path | None) -> None:
    """A case from venue accounts: instruments (contract size, expiry, strike, settlement, mark), positions
    (signed contracts, entry prices) and each venue's posted collateral and margin model (a preset where one fits).
    Unknown instruments and currencies are errors unless --skip-unknown, which lists them."""
    from marginopt.errors import CaseError
    from marginopt.models.ccxt.payload import account_from_payload

    fmt = outside.get_account_format(source)
    if bool(files) == bool(exchanges):
        raise CaseError(None, "FILES", "either account files or --exchange NAME (not both, not neither)", None)
    if save is not None and len(exchanges) != 1:
        raise CaseError(None, "--save", "one --exchange to save", len(exchanges))
    options: dict[str, Any] = dict(base_currency=base_currency, prices=_assignments(prices, "--price"),
                   valuation_date=valuation_date.date() if valuation_date else None, skip_unknown=skip_unknown,
                   params=_assignments(params, "--param"), fallback_rate=fallback_rate, hedge_cost_bp=hedge_cost_bp,
                   force=force)
    if files:
        result = fmt.import_files(list(files), out, **options)
    else:
        from marginopt.models.ccxt.case import import_accounts

        payloads = [fmt.fetch(name, base_currency=base_currency) for name in exchanges]
        if save is not None:
            save.write_text(json.dumps(payloads[0], indent=1, default=str) + "\n", encoding="utf-8")
            click.echo(f"saved the fetched account to {save}", err=True)
        accounts = [account_from_payload(p, f"--exchange {n}") for p, n in zip(payloads, exchanges)]
        result = import_accounts(accounts, out, **options)
    for line in result.skipped:
        click.echo(f"skipped: {line}", err=True)
    for line in result.notes:
        click.echo(f"note: {line}", err=True)
    n_pos = sum(v["positions"] for v in result.report["venues"].values())
    click.echo(f"wrote {result.case} ({n_pos} positions in {len(result.report['instruments'])} instruments at "
               f"{len(result.report['venues'])} venue(s); import.json beside it); run: marginopt margin {result.case}", err=True)
