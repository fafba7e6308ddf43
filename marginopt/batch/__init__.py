"""Batch runs: many accounts' margins and plans on a Dask cluster (``marginopt batch``)."""

from marginopt.batch.accounts import AccountJob, AccountResult, find_accounts, run_account
from marginopt.batch.run import BatchRun, run_batch

__all__ = ["AccountJob", "AccountResult", "BatchRun", "find_accounts", "run_account", "run_batch"]
