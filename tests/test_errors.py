"""The error family: every public call refuses bad input with a ``MarginoptError`` subclass whose
message names the field or argument and what was expected, and never a command-line flag (the
CLI adds its flag when it maps the error); the CLI's exit codes per class; the service's 4xx;
``OptimizationResult.raise_for_status``."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import marginopt
from marginopt import (
    ArgumentError,
    CaseError,
    InfeasibleError,
    Leg,
    MarginoptError,
    MarginProblem,
    NotFoundError,
    OptimizationError,
    SolverError,
)
from marginopt.cli.main import cli
from marginopt.solvers.status import Attempt, SolveStatus

DEMO = marginopt.demo_case_path()

# 1 BTC perp at 100,000 under a 1% rate needs 1,000 of margin; 250 is posted: short by 750 (tests/test_optimizer.py).
SHORT_CASE: dict[str, Any] = dict(
    market={"prices": {"BTC": 100000.0}},
    instruments=[{"id": "P", "kind": "perpetual", "underlying": "BTC"}],
    positions=[{"venue": "V", "instrument": "P", "quantity": 1}],
    venues={"V": {"initial_margin": {"kind": "fixed_rate", "rate": 0.01}, "collateral": {"USD": {"haircut": 0.0}},
                  "posted": {"USD": 250}}},
)


@pytest.fixture(scope="module")
def demo() -> marginopt.Case:
    return marginopt.load_case(DEMO)


def _weights(w: float) -> Callable[[], Any]:
    return lambda: marginopt.ScenarioLosses(np.array(["s"]), np.array([w]), ("X",), np.zeros((1, 1)))


# (id, call on the demo case, error class, words the message must hold, the field or argument at fault)
CALLS: list[tuple[str, Callable[[marginopt.Case], Any], type[MarginoptError], tuple[str, ...], str | None]] = [
    ("optimize-objective", lambda c: marginopt.optimize(c, objective="max_fun"), OptimizationError,
     ("objective 'max_fun'", "min_cost", "min_margin"), "objective"),
    ("optimize-mode", lambda c: marginopt.optimize(c, mode="trade"), OptimizationError,
     ("mode 'trade'", "optimize, hedge, allocate"), "mode"),
    ("optimize-solver", lambda c: marginopt.optimize(c, solver="GUROBI"), SolverError,
     ("solver 'GUROBI'", "HIGHS", "SCENARIO"), "solver"),
    # The demo is min_cost: the large-scenario formulation holds min_margin hedges only.
    ("optimize-formulation", lambda c: marginopt.optimize(c, solver="SCENARIO"), SolverError,
     ("solver 'SCENARIO'", "min_margin", "none to have one chosen"), "solver"),
    ("problem-backend", lambda c: MarginProblem(c, backend="simplex"), OptimizationError,
     ("backend 'simplex'", "cvxpy", "direct"), "backend"),
    ("problem-objective", lambda c: MarginProblem(c, objective="max_fun"), OptimizationError, ("objective 'max_fun'",), "objective"),
    ("run-solver", lambda c: marginopt.run(MarginProblem(c), solver="GLPK"), SolverError, ("solver 'GLPK'", "CLARABEL"), "solver"),
    ("what_if-venue", lambda c: marginopt.what_if(c, "nowhere", "BTC-PERP", 1.0), CaseError,
     ("field 'venue'", "deribit_pm", "got 'nowhere'"), "venue"),
    ("what_if-instrument", lambda c: marginopt.what_if(c, "deribit_pm", "NOPE", 1.0), CaseError,
     ("field 'instrument'", "an instrument id of the case"), "instrument"),
    ("what_if-quantity", lambda c: marginopt.what_if(c, "deribit_pm", "BTC-PERP", math.nan), CaseError,
     ("field 'quantity'", "finite number"), "quantity"),
    ("route-instrument", lambda c: marginopt.route(c, "NOPE", 1.0), CaseError, ("field 'instrument'",), "instrument"),
    ("what_if_legs-none", lambda c: marginopt.what_if_legs(c, []), CaseError, ("field 'legs'", "at least one"), "legs"),
    ("what_if_legs-no-venue", lambda c: marginopt.what_if_legs(c, [Leg("BTC-PERP", 1.0)]), CaseError,
     ("field 'legs.0.venue'", "deribit_pm", "route_legs"), "legs.0.venue"),
    ("what_if_legs-second-leg", lambda c: marginopt.what_if_legs(c, [Leg("BTC-PERP", 1.0, "okx_std"), Leg("NOPE", 1.0, "okx_std")]),
     CaseError, ("field 'legs.1.instrument'", "got 'NOPE'"), "legs.1.instrument"),
    ("route_legs-venue", lambda c: marginopt.route_legs(c, [Leg("BTC-PERP", 1.0, "okx_std")]), CaseError,
     ("field 'legs.0.venue'", "the route chooses the venue", "got 'okx_std'"), "legs.0.venue"),
    ("route_legs-nowhere", lambda c: marginopt.route_legs(c, [Leg("CME-BTC-DEC26", 1.0), Leg("BTC-PERP", -1.0)]), CaseError,
     ("field 'legs'", "CME-BTC-DEC26 at cme_es; BTC-PERP at okx_std"), "legs"),
    ("report-venue", lambda c: marginopt.margin(c)["nowhere"], NotFoundError, ("venue 'nowhere'", "deribit_pm"), None),
    ("scenario-weights", lambda c: _weights(-1.0)(), ArgumentError, ("weights", "finite positive", "-1.0"), None),
    ("scenario-weights-nan", lambda c: _weights(math.nan)(), ArgumentError, ("weights", "nan"), None),
]


@pytest.mark.parametrize(("call", "cls", "words", "field"), [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_a_bad_call_names_what_to_change(demo: marginopt.Case, call: Callable[[marginopt.Case], Any],
                                         cls: type[MarginoptError], words: tuple[str, ...], field: str | None) -> None:
    with pytest.raises(cls) as err:
        call(demo)
    message = str(err.value)
    assert isinstance(err.value, MarginoptError)
    for w in words:
        assert w in message, (w, message)
    assert "--" not in message, message  # a call's argument, never a flag of the command line
    if isinstance(err.value, CaseError):
        assert err.value.field == field
    elif isinstance(err.value, OptimizationError):
        assert err.value.argument == field


def test_lookups_and_values_stay_what_python_code_caught() -> None:
    """NotFoundError is a KeyError and ArgumentError a ValueError, so ``except KeyError`` around a
    preset lookup or ``except ValueError`` around a value built in code still catch them."""
    from marginopt.models.collateral import HaircutSchedule
    from marginopt.presets import get_preset
    from marginopt.service.jobs import SolveRunner

    with pytest.raises(KeyError) as err:
        get_preset("deribit-pm-1999")
    assert isinstance(err.value, NotFoundError) and str(err.value).startswith("venue preset 'deribit-pm-1999': expected one of")
    with pytest.raises(ValueError, match=r"HaircutSchedule.*either haircut .* or tiers") as verr:
        HaircutSchedule()
    assert isinstance(verr.value, ArgumentError)
    with pytest.raises(ArgumentError, match=r"threads >= 1.*got 0"):
        SolveRunner(0, 1.0, 1)


def test_a_report_into_a_missing_folder_names_the_path(tmp_path: Path) -> None:
    from marginopt.reports import write_report

    with pytest.raises(CaseError, match=r"field 'path': expected a writable file") as err:
        write_report(tmp_path / "no-such-folder" / "r.html", "<html></html>")
    assert "--" not in str(err.value)


def test_attribution_is_the_function_whatever_was_imported_first(demo: marginopt.Case) -> None:
    marginopt.what_if(demo, "okx_std", "BTC-PERP", 1.0)  # imports optimizer.attribution, the submodule
    table = marginopt.attribution(demo)
    assert set(table["venue"]) == set(demo.venues)


def _demo_copy(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> marginopt.Case:
    for p in DEMO.parent.iterdir():
        shutil.copy(p, tmp_path / p.name)
    doc = yaml.safe_load((tmp_path / "case.yaml").read_text())
    change(doc)
    (tmp_path / "moved.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return marginopt.load_case(tmp_path / "moved.yaml")


def test_a_market_move_of_another_structure_is_refused(demo: marginopt.Case, tmp_path: Path) -> None:
    """A warm re-solve takes a market move; a case whose structure differs says what differs."""
    problem = MarginProblem(demo, mode="hedge")
    other = _demo_copy(tmp_path, lambda d: d["venues"]["cme_es"].update(initial_margin={"kind": "fixed_rate", "rate": 0.1}))
    with pytest.raises(OptimizationError, match=r"venue cme_es's initial margin: FixedRate, where the problem has "
                                                r"ExpectedShortfall.*build a new MarginProblem") as err:
        problem.update(other)
    assert err.value.argument == "case"
    shorter = _demo_copy(tmp_path, lambda d: d["venues"]["cme_es"]["initial_margin"]["scenarios"].update(window=300))
    with pytest.raises(OptimizationError, match=r"\(300, 3\) after the market move, \(500, 3\) before"):
        problem.update(shorter)


def test_batch_refuses_a_bad_mode_or_solver_before_any_work(tmp_path: Path) -> None:
    from marginopt.batch import run_batch

    with pytest.raises(OptimizationError, match=r"mode 'plan': expected one of optimize, hedge, allocate, margin"):
        run_batch(DEMO, tmp_path / "out", mode="plan")
    with pytest.raises(SolverError, match=r"solver 'GUROBI'"):
        run_batch(DEMO, tmp_path / "out", solver="GUROBI")
    with pytest.raises(OptimizationError, match=r"objective 'max_fun'"):
        run_batch(DEMO, tmp_path / "out", objective="max_fun")
    assert not (tmp_path / "out").exists()  # refused before the folder, the accounts or a cluster


# -- raise_for_status --------------------------------------------------------------------------


def test_raise_for_status_names_what_is_short(write_case) -> None:
    result = marginopt.optimize(marginopt.load_case(write_case(**SHORT_CASE)))
    assert result.status == "infeasible"
    with pytest.raises(InfeasibleError) as err:
        result.raise_for_status()
    assert err.value.shortfalls == result.shortfalls and err.value.shortfalls[0][1] == pytest.approx(750.0)
    message = str(err.value)
    assert "V: initial margin not covered short by 750" in message and "relax" in message and "--" not in message


def test_raise_for_status_returns_an_optimal_result(write_case) -> None:
    posted = {**SHORT_CASE, "venues": {"V": {**SHORT_CASE["venues"]["V"], "posted": {"USD": 2000}}}}
    result = marginopt.optimize(marginopt.load_case(write_case(**posted)))
    assert result.status == "optimal" and result.raise_for_status() is result


def test_raise_for_status_lists_the_attempts_of_a_failed_plan(write_case) -> None:
    done = marginopt.optimize(marginopt.load_case(write_case(**SHORT_CASE)))
    attempts = (Attempt("CLARABEL", SolveStatus.ERROR, 0.1, "numerical trouble"), Attempt("ECOS", SolveStatus.LIMIT, 0.2))
    failed = replace(done, status="failed", shortfalls=(), solver=replace(done.solver, attempts=attempts))
    with pytest.raises(OptimizationError) as err:
        failed.raise_for_status()
    assert not isinstance(err.value, InfeasibleError)
    assert "CLARABEL error (numerical trouble); ECOS limit" in str(err.value) and "--" not in str(err.value)


# -- the command line --------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_cli_exit_codes_per_error_class(monkeypatch: pytest.MonkeyPatch, write_case) -> None:
    """InfeasibleError exits 3 as an infeasible plan does; OptimizationError and SolverError 2."""
    assert _cli("optimize", str(write_case(**SHORT_CASE))).exit_code == 3  # the plan's status, as before

    def raising(error: MarginoptError) -> Callable[..., Any]:
        def optimize(*args: Any, **kwargs: Any) -> Any:
            raise error
        return optimize

    import marginopt.optimizer

    for error, code in ((InfeasibleError("no plan: V short by 750", (("V", 750.0),)), 3),
                        (OptimizationError("objective 'x': expected one of min_cost, min_margin", argument="objective"), 2),
                        (SolverError("solver 'X': not installed here", argument="solver"), 2)):
        monkeypatch.setattr(marginopt.optimizer, "optimize", raising(error))
        res = _cli("optimize", str(DEMO))
        assert res.exit_code == code, (error, res.output)
        assert res.stderr.startswith(f"error: {error}") and "Traceback" not in res.output


def test_cli_adds_the_flag_that_sets_the_argument() -> None:
    res = _cli("optimize", str(DEMO), "--solver", "SCENARIO")
    assert res.exit_code == 2, res.output
    assert "solver 'SCENARIO'" in res.stderr and res.stderr.rstrip().endswith("(option --solver)")
    res = _cli("optimize", str(DEMO), "--solver", "OSQP")  # a QP solver for the demo's SOCP (or not installed)
    assert res.exit_code == 2 and "solver 'OSQP'" in res.stderr and "(option --solver)" in res.stderr


def test_cli_batch_refuses_an_unknown_solver(tmp_path: Path) -> None:
    res = _cli("batch", str(DEMO), "--out", str(tmp_path / "out"), "--solver", "GUROBI")
    assert res.exit_code == 2 and "solver 'GUROBI'" in res.stderr and "(option --solver)" in res.stderr


@pytest.mark.parametrize(("trades", "words"), [
    (("nowhere:BTC-PERP:1",), ("field '--trade nowhere:BTC-PERP:1 (venue)'", "deribit_pm")),
    (("okx_std:BTC-PERP:1", "okx_std:NOPE:1"), ("field '--trade okx_std:NOPE:1 (instrument)'", "got 'NOPE'")),
    ((":BTC-PERP:1",), ("field '--trade'", "VENUE:BTC-PERP:1", "or --route")),
    ((":CME-BTC-DEC26:1", ":BTC-PERP:-1", "--route"), ("field '--trade'", "CME-BTC-DEC26 at cme_es; BTC-PERP at okx_std")),
])
def test_cli_whatif_names_the_trade_as_written(trades: tuple[str, ...], words: tuple[str, ...]) -> None:
    args = [a for t in trades for a in (("--route",) if t == "--route" else ("--trade", t))]
    res = _cli("whatif", str(DEMO), *args)
    assert res.exit_code == 2, res.output
    for w in words:
        assert w in res.stderr, (w, res.stderr)
    assert "legs." not in res.stderr  # the library's names of the call's arguments stay out of the command's message


# -- the service -------------------------------------------------------------------------------


def test_service_answers_an_optimization_error_422(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi", reason="the service extra (fastapi) is not installed")
    pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from marginopt.service.app import Settings, create_app
    from marginopt.service.cases import demo_case

    with TestClient(create_app(Settings(solve_threads=1))) as client:
        r = client.post("/v1/optimize", json=demo_case(), params={"objective": "max_fun"})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "objective"
        monkeypatch.setattr("marginopt.solvers.run.installed_solvers", lambda: ())  # no solver for the cvxpy program
        r = client.post("/v1/optimize", json=demo_case())
        assert r.status_code == 422, r.text
        item = r.json()["detail"][0]
        assert item["type"] == "solver_error" and "no installed solver handles" in item["msg"] and "--" not in item["msg"]
