"""Venue accounts in ccxt's unified structures (``marginopt import --from ccxt``, ``--exchange``).

- ``payload``: one account as saved (the JSON file's layout) or fetched, read with located errors;
- ``rules``: what the importer knows of an exchange beyond ccxt's unified fields (amount units, a
  contract multiplier ccxt leaves out, the venue preset that matches);
- ``prices``: each asset's price in the base currency, from explicit prices and the tickers;
- ``mapping``: markets to instrument rows, positions to signed contracts with entry prices, balances
  to posted collateral;
- ``case``: the case written from the accounts, its import report, and the check that it loads;
- ``live``: one account fetched from an exchange with credentials from the environment.
"""
