"""marginopt batch on a local Dask cluster: per-account results equal the library run on each
account alone, a failing account is reported without stopping the others, and a running
scheduler can be named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import marginopt
from marginopt.batch import find_accounts, run_batch
from marginopt.cli.main import cli
from marginopt.errors import MarginoptError
from marginopt.models import load_case
from marginopt.optimizer import optimize

pytest.importorskip("distributed", reason="the distributed extra (dask[distributed]) is not installed")

DEMO = marginopt.demo_case_path().parent


def split_demo(folder: Path) -> dict[str, Path]:
    """The demo case once per account of its positions, each file holding only that account's
    rows (written independently of the batch's own splitting)."""
    positions = pd.read_csv(DEMO / "positions.csv")
    out = {}
    for account, rows in positions.groupby("account"):
        sub = folder / f"src_{account}"
        shutil.copytree(DEMO, sub)
        rows.to_csv(sub / "positions.csv", index=False)
        out[str(account)] = sub / "case.yaml"
    return out


@pytest.fixture(scope="module")
def accounts_run(tmp_path_factory):
    """One run over the demo's accounts (from the demo's own account column), in hedge mode."""
    tmp = tmp_path_factory.mktemp("batch")
    singles = split_demo(tmp)
    run = run_batch(marginopt.demo_case_path(), tmp / "out", workers=1, mode="hedge")
    return run, singles, tmp / "out"


def test_each_account_equals_the_account_run_alone(accounts_run):
    run, singles, out = accounts_run
    s = run.summary.set_index("account")
    assert list(run.summary.account) == ["options", "delta", "main"]  # the case's order
    for account, path in singles.items():
        case = load_case(path)
        alone = optimize(case, mode="hedge")
        assert s.loc[account, "status"] == alone.status == "optimal"
        assert s.loc[account, "total_initial_margin"] == pytest.approx(marginopt.margin(case).total_initial_margin, rel=1e-9)
        assert s.loc[account, "objective_value"] == pytest.approx(alone.objective_value, rel=1e-6)
        assert s.loc[account, "total_initial_margin_after"] == pytest.approx(alone.margins["after"].sum(), rel=1e-6, abs=1e-3)
    hedges = pd.read_parquet(out / "hedges.parquet")
    assert set(hedges.account) == set(singles) and {"venue", "instrument", "quantity", "cost"} <= set(hedges.columns)
    margins = pd.read_parquet(out / "margins.parquet")
    assert margins.groupby("account").initial_margin.sum().to_dict() == pytest.approx(s.total_initial_margin.to_dict())


def test_a_failing_account_is_reported_and_the_others_run(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    singles = split_demo(tmp_path)
    for account in ("delta", "main"):
        shutil.copytree(singles[account].parent, folder / account)
    # Case files of the folder refer to their tables beside them: move each case up, renamed.
    for account in ("delta", "main"):
        text = (folder / account / "case.yaml").read_text()
        for table in ("instruments.csv", "positions.csv", "hedges.csv", "history.csv"):
            text = text.replace(f": {table}", f": {account}/{table}")
        (folder / f"{account}.yaml").write_text(text)
        (folder / account / "case.yaml").unlink()
    (folder / "broken.yaml").write_text((folder / "main.yaml").read_text().replace("rate: 0.04", "rate: fast"))
    run = run_batch(folder, tmp_path / "out", workers=1, mode="margin")
    s = run.summary.set_index("account")
    assert list(run.summary.account) == ["broken", "delta", "main"]
    assert s.loc["broken", "status"] == "error" and "market.rate" in s.loc["broken", "error"]
    assert s.loc["broken", "error"].startswith(str(folder / "broken.yaml"))
    for account in ("delta", "main"):
        assert s.loc[account, "status"] == "margin" and pd.isna(s.loc[account, "error"])
        assert s.loc[account, "total_initial_margin"] == pytest.approx(
            marginopt.margin(load_case(singles[account])).total_initial_margin, rel=1e-9)


def test_a_running_scheduler_can_be_named(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = CliRunner().invoke(cli, ["batch", str(marginopt.demo_case_path()), "--out", str(tmp_path / "o"),
                                          "--scheduler", cluster.scheduler_address, "--mode", "margin"])
    assert result.exit_code == 0, result.output
    assert "3 accounts on 1 worker: margin 3" in result.output
    summary = pd.read_parquet(tmp_path / "o" / "summary.parquet")
    assert list(summary.columns[:5]) == ["account", "status", "total_initial_margin", "total_initial_margin_after", "objective_value"]


def test_bad_input_is_refused_before_a_cluster_starts(tmp_path):
    with pytest.raises(MarginoptError, match="no case files"):
        find_accounts(tmp_path)
    result = CliRunner().invoke(cli, ["batch", str(tmp_path / "nothing.yaml"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "neither" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["batch", str(marginopt.demo_case_path()), "--out", str(tmp_path / "o"),
                                      "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2 and "could not connect" in result.output


def test_executable_accounts_report_their_gap_and_whether_proven_optimal(tmp_path):
    """A folder of two accounts: the lot case of tests/test_executable.py (executable, proven optimal
    at 2.9 over a continuous 2.25) and the same case without lots (continuous: no gap, nothing proven)."""
    import yaml

    from tests.test_executable import lots_case

    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "lots.yaml").write_text(yaml.safe_dump(lots_case(F=1.0, P=0.1)))
    (folder / "plain.yaml").write_text(yaml.safe_dump(lots_case()))
    result = CliRunner().invoke(cli, ["batch", str(folder), "--out", str(tmp_path / "o"), "--workers", "1", "--mode", "hedge"])
    assert result.exit_code == 0, result.output
    assert "1 executable plan: 1 proven optimal, largest relative gap 0" in result.output
    s = pd.read_parquet(tmp_path / "o" / "summary.parquet").set_index("account")
    assert s.loc["lots", "objective_value"] == pytest.approx(2.9, abs=1e-6)
    assert s.loc["lots", "proven_optimal"] == True  # noqa: E712  (a column with a null)
    assert s.loc["lots", "relative_gap"] == pytest.approx(0.0, abs=1e-6)
    assert s.loc["lots", "continuous_objective_value"] == pytest.approx(2.25, abs=1e-6)
    assert pd.isna(s.loc["plain", "proven_optimal"]) and pd.isna(s.loc["plain", "relative_gap"])
    assert s.loc["plain", "objective_value"] == pytest.approx(2.25, abs=1e-6)


def test_an_account_whose_plan_is_not_proven_is_feasible_with_the_reason(tmp_path):
    """The 20,000-scenario lotted hedge of tests/test_integer_route.py goes to the integer route, whose
    plan (the integer optimum by enumeration there) is 17% above the relaxation's bound: not proven, so
    the account's status is feasible, not optimal, and the summary says why and the gap."""
    from tests.test_integer_route import scenarios, write_case

    folder = tmp_path / "cases"
    folder.mkdir()
    m, l0 = scenarios(20_000)
    write_case(folder, m, l0)
    result = CliRunner().invoke(cli, ["batch", str(folder), "--out", str(tmp_path / "o"), "--workers", "1", "--mode", "hedge"])
    assert result.exit_code == 0, result.output
    assert "feasible 1" in result.output and "0 proven optimal" in result.output and "not proven optimal: case" in result.output
    s = pd.read_parquet(tmp_path / "o" / "summary.parquet").set_index("account")
    assert s.loc["case", "status"] == "feasible" and s.loc["case", "proven_optimal"] == False  # noqa: E712
    assert s.loc["case", "status_detail"].startswith("the lot search ended at a local optimum")
    assert f"relative gap {s.loc['case', 'relative_gap']:.3g}" in s.loc["case", "status_detail"]
