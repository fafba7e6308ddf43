"""ccxt's unified structures: a venue account as ``fetch_markets``, ``fetch_positions``, ``fetch_balance``
and ``fetch_tickers`` return it, saved as one JSON file per account or fetched live.

The code is ``marginopt/models/ccxt``: ``case.import_files`` maps the structures to a case
(instruments, positions with entry prices, each venue's posted collateral and margin model),
``live.fetch_account`` fetches one account with credentials from the environment.
"""

from __future__ import annotations

from marginopt.formats import AccountFormat

ACCOUNTS = (
    AccountFormat(
        name="ccxt",
        description="ccxt's unified fetch_markets / fetch_positions / fetch_balance / fetch_tickers structures, "
                    "one JSON file per account",
        importer="marginopt.models.ccxt.case:import_files",
        fetcher="marginopt.models.ccxt.live:fetch_account",
        extra="venues",
    ),
)
