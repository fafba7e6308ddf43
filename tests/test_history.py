"""The run history: a run stored and read back identically from the SQLite file and from a real PostgreSQL
server (tests/postgres_server.py; skipped with the reason where none can be started), the migrations,
listing, the commands (--store, history, history show, history migrate) and the service's history."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import marginopt
from marginopt.errors import ArgumentError, NotFoundError, StoreError
from marginopt.history import Store, new_run, open_store, resolve
from marginopt.history import schema as t
from marginopt.models import load_case, margin_report
from marginopt.models.document import case_document
from marginopt.optimizer import optimize
from tests.postgres_server import postgres_server

ROOT = Path(__file__).resolve().parents[1]
DEMO = marginopt.demo_case_path()
NEXT_DAY = ROOT / "docs" / "examples" / "next_day" / "case.yaml"
LOTS = ROOT / "docs" / "examples" / "lots.yaml"
_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[str | None]:
    with postgres_server() as (url, why):
        yield url if url is not None else "skip: " + why


def _fresh_database(server_url: str) -> str:
    """A new, empty database on the test server for one test."""
    import psycopg

    name = f"marginopt_test_{next(_names)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty history: a SQLite file, or a new database on the PostgreSQL test server."""
    if request.param == "sqlite":
        return str(tmp_path / "history.db")
    server = request.getfixturevalue("server")
    if server is None or server.startswith("skip: "):
        pytest.skip(f"no PostgreSQL server for the history tests: {server[6:] if server else 'none'}")
    return _fresh_database(server)


def _open(db_url: str) -> Store:
    return Store(resolve(db_url), migrate=True)  # a server is migrated on purpose; a file would do it itself


@pytest.fixture(scope="module")
def demo_runs() -> dict[str, marginopt.history.Run]:
    """A margin run of the demo, a hedge plan of docs/examples/lots.yaml and a health run, as commands build them."""
    from marginopt.health import Scan, health_report

    demo = load_case(DEMO)
    lots = load_case(LOTS)
    plan = optimize(lots, mode="hedge")
    assert plan.status == "optimal"
    health = health_report(demo, Scan())
    return {
        "margin": new_run(case_document(DEMO), margin_report(demo), "margin", "cli", "marginopt margin demo --store"),
        "hedge": new_run(case_document(LOTS), margin_report(lots), "hedge", "cli", "marginopt hedge lots.yaml --store",
                         plan.to_dict()),
        "health": new_run(case_document(DEMO), margin_report(demo), "health", "service", "POST /v1/health", health.to_dict()),
    }


def test_a_run_reads_back_identically(db_url: str, demo_runs: dict[str, marginopt.history.Run]) -> None:
    """Each run stored and read back is the same value, field for field and float for float, on both stores."""
    store = _open(db_url)
    ids = {name: store.add(run) for name, run in demo_runs.items()}
    assert sorted(ids.values()) == [1, 2, 3]
    for name, run in demo_runs.items():
        back = store.get(ids[name])
        assert back == dataclasses.replace(run, id=ids[name]), name
        assert json.dumps(back.to_dict()) == json.dumps(dataclasses.replace(run, id=ids[name]).to_dict())
    # The demo's case is kept once though two runs read it.
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.cases)).scalar() == 2
    store.close()


def test_what_is_stored_is_what_the_commands_computed(tmp_path: Path, demo_runs: dict[str, marginopt.history.Run]) -> None:
    """Margins per venue and component, the plan's hedges, margins after, solver and verification, the market and
    the case, against the library's own objects (not the store's earlier output)."""
    store = open_store(str(tmp_path / "h.db"))
    margin = store.get(store.add(demo_runs["margin"]))
    report = margin_report(load_case(DEMO))
    assert [m.venue for m in margin.margins] == [v.venue for v in report.venues]
    for m, v in zip(margin.margins, report.venues):
        assert (m.stage, m.initial_margin, m.maintenance_margin, m.collateral_value, m.excess, m.worst_scenario) == (
            "now", v.initial_margin, v.maintenance_margin, v.collateral_value, v.excess, v.worst_scenario)
    assert [(c.venue, c.component, c.amount) for c in margin.components] == [
        (v.venue, k, a) for v in report.venues for k, a in v.components.items()]
    assert margin.market == {"prices": {"BTC": 91000, "ETH": 3100, "USDC": 1.0, "TBILL": 99.2},
                             "vols": {"BTC": 0.55, "ETH": 0.65}, "rate": 0.04}
    assert margin.total_initial_margin == report.total_initial_margin and margin.status == "margin"
    # The stored case re-runs: loaded from the stored document it has the file's margin to the last bit.
    from marginopt.models.case import load_case_data

    again = margin_report(load_case_data(dict(margin.case.document), margin.case.source))
    assert again.to_dict() == report.to_dict()
    assert margin.case.fingerprint == case_document(DEMO).fingerprint and margin.valuation_date == dt.date(2026, 11, 20)

    hedge = store.get(store.add(demo_runs["hedge"]))
    plan = optimize(load_case(LOTS), mode="hedge")
    assert [(h.venue, h.instrument) for h in hedge.hedges] == [("v", "F"), ("v", "P")]
    assert [h.quantity for h in hedge.hedges] == pytest.approx([-2.0, -0.3], abs=1e-9)  # README: 2 futures, 0.3 perpetuals
    assert hedge.objective_value == pytest.approx(2.9, abs=1e-9) and hedge.status == "optimal"
    assert hedge.verification_passed is True and hedge.solver == plan.solver.solver
    assert hedge.margins_at("after")["v"].initial_margin == pytest.approx(6.5, abs=1e-9)
    assert hedge.total_initial_margin_after == pytest.approx(6.5, abs=1e-9)


def test_the_migrations_build_exactly_the_schema(db_url: str) -> None:
    """Alembic's head is schema.HEAD, and the tables the migrations build are the schema's (autogenerate finds
    nothing to change), on SQLite and on PostgreSQL."""
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "marginopt.history:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == t.HEAD
    store = _open(db_url)
    assert store.revision() == t.HEAD
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []
    store.close()


def test_the_file_migrates_itself_and_a_server_is_migrated_on_purpose(tmp_path: Path, server: str | None) -> None:
    fresh = open_store(str(tmp_path / "new" / "history.db"))  # the folder is made, the schema built
    assert fresh.revision() == t.HEAD and fresh.list() == []
    if server is None or server.startswith("skip: "):
        pytest.skip(f"no PostgreSQL server: {server}")
    url = _fresh_database(server)
    with pytest.raises(StoreError, match=r"marginopt history migrate --db URL"):
        open_store(url)
    out = subprocess.run([sys.executable, "-m", "marginopt", "history", "migrate", "--db", url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"schema at revision {t.HEAD}" in out.stdout
    assert open_store(url).revision() == t.HEAD


def test_listing_latest_first_with_a_limit_and_a_case(tmp_path: Path, demo_runs: dict[str, marginopt.history.Run]) -> None:
    store = open_store(str(tmp_path / "h.db"))
    start = dt.datetime(2026, 11, 20, 9, 0)
    for k in range(5):
        run = demo_runs["hedge" if k % 2 else "margin"]
        store.add(dataclasses.replace(run, created_at=start + dt.timedelta(minutes=k)))
    runs = store.list(limit=3)
    assert [r.id for r in runs] == [5, 4, 3]
    assert [r.command for r in runs] == ["margin", "hedge", "margin"]
    demo_fp = case_document(DEMO).fingerprint
    assert [r.id for r in store.list(None, demo_fp[:8])] == [5, 3, 1]  # by the fingerprint's first characters
    assert [r.id for r in store.list(None, "crypto desk demo")] == [5, 3, 1]  # by name
    assert [r.id for r in store.list(None, str(LOTS))] == [4, 2]  # by file
    assert store.list(None, "no such case") == []
    with pytest.raises(NotFoundError, match="run 99: not in the history .* numbered up to 5"):
        store.get(99)


def test_where_the_history_is() -> None:
    assert resolve("runs.db") == f"sqlite:///{Path('runs.db').resolve()}"
    assert resolve("postgresql://u:pw@host:5432/desk") == "postgresql+psycopg://u:pw@host:5432/desk"
    assert resolve("sqlite:////var/h.db") == "sqlite:////var/h.db"
    with pytest.raises(ArgumentError, match="mysql://"):
        resolve("mysql://host/db")


def test_the_default_file_is_in_the_user_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MARGINOPT_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve(None) == f"sqlite:///{tmp_path / 'data' / 'marginopt' / 'history.db'}"
    monkeypatch.setenv("MARGINOPT_DB", str(tmp_path / "elsewhere.db"))
    assert resolve(None) == f"sqlite:///{tmp_path / 'elsewhere.db'}"


def _cli(*args: str, env_db: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marginopt", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_the_commands_keep_runs_and_history_reads_them(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    margin = _cli("margin", str(DEMO), "--format", "json", "--store", "--db", db)
    assert margin.returncode == 0, margin.stderr
    assert f"stored as run 1 in sqlite:///{db}" in margin.stderr
    hedge = _cli("hedge", str(LOTS), "--format", "json", "--db", db)  # --db alone stores too
    assert hedge.returncode == 0 and "stored as run 2" in hedge.stderr
    listed = _cli("history", "--db", db, "--format", "json")
    runs = json.loads(listed.stdout)
    assert [(r["id"], r["command"], r["origin"]) for r in runs] == [(2, "hedge", "cli"), (1, "margin", "cli")]
    shown = json.loads(_cli("history", "show", "1", "--db", db, "--format", "json").stdout)
    printed = json.loads(margin.stdout)
    assert shown["result"] == printed  # the command's whole answer, as it printed it
    assert [(m["venue"], m["initial_margin"]) for m in shown["margins"]] == [
        (v["venue"], v["initial_margin"]) for v in printed["venues"]]
    assert shown["command_line"].startswith("marginopt margin ") and shown["command_line"].endswith(f"--db {db}")
    plan = json.loads(_cli("history", "show", "2", "--db", db, "--format", "json").stdout)
    assert plan["plan"]["hedges"] == [{"venue": h["venue"], "instrument": h["instrument"], "quantity": h["quantity"],
                                       "cost": h["cost"]} for h in json.loads(hedge.stdout)["hedges"]]
    table = _cli("history", "show", "2", "--db", db)
    assert "plan: optimal" in table.stdout and "verification passed" in table.stdout
    assert "crypto desk demo" in _cli("history", "--db", db, "--case", "crypto desk demo").stdout


def test_history_errors_are_one_line() -> None:
    bad = _cli("history", "--db", "mysql://host/db")
    assert bad.returncode == 2 and bad.stderr.startswith("error: db: expected a file path") and "Traceback" not in bad.stderr
    snapshot = _cli("margin", "snapshot.json", "--from", "derive-pm2", "--store")
    assert snapshot.returncode == 2 and "--store" in snapshot.stderr and "derive-case" in snapshot.stderr
    down = _cli("history", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert down.returncode == 2 and down.stderr.startswith("error: postgresql+psycopg://nobody@127.0.0.1:1/none: ")


def test_the_service_keeps_every_run(tmp_path: Path) -> None:
    """Margin, health and plan requests are stored (their id in X-Marginopt-Run); the history endpoints read
    them, and today's margin is set against the previous day's."""
    pytest.importorskip("fastapi", reason="the service extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from marginopt.service.app import Settings, create_app
    from marginopt.service.cases import demo_case

    db = str(tmp_path / "service.db")
    yesterday = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(12)) - dt.timedelta(days=1)
    next_day = load_case(NEXT_DAY)
    open_store(db).add(new_run(case_document(NEXT_DAY), margin_report(next_day), "margin", "cli", "x", created_at=yesterday))
    with TestClient(create_app(Settings(solve_threads=1, db=db))) as client:
        answer = client.post("/v1/margin", json=demo_case())
        assert answer.status_code == 200 and answer.headers["X-Marginopt-Run"] == "2"
        run = client.get("/v1/history/2").json()
        assert run["origin"] == "service" and run["command_line"] == "POST /v1/margin" and run["result"] == answer.json()
        assert run["case"]["document"] == demo_case()
        hedge = client.post("/v1/hedge", json=demo_case())
        assert hedge.headers["X-Marginopt-Run"] == "3"
        assert [r["command"] for r in client.get("/v1/history?limit=5").json()["runs"]] == ["hedge", "margin", "margin"]
        days = client.get("/v1/history/days").json()
        demo = margin_report(load_case(DEMO))
        assert days["today"]["run"] == 3 and days["previous"]["run"] == 1 and days["case"] == "crypto desk demo"
        for row, v in zip(days["venues"], demo.venues):
            assert row["venue"] == v.venue and row["today"] == v.initial_margin
            assert row["previous"] == next_day_margin(next_day, v.venue)
            assert math.isclose(row["change"], row["today"] - row["previous"], rel_tol=1e-12)
        assert client.get("/v1/history/99").status_code == 404
    with TestClient(create_app(Settings(solve_threads=1, store_runs=False))) as client:
        assert "X-Marginopt-Run" not in client.post("/v1/margin", json=demo_case()).headers
        assert client.get("/v1/history").status_code == 404


def next_day_margin(case: marginopt.Case, venue: str) -> float:
    return margin_report(case)[venue].initial_margin
