"""The HTTP service: ``create_app(settings)`` builds the FastAPI application.

Endpoints take a case as JSON (``cases``) and answer the JSON of CASE_FORMAT.md. Status codes:
200 an answer (an infeasible plan is one: ``status: infeasible`` says what is short);
400 a body that is not JSON (not UTF-8, a syntax error, nested too deep: ``body``) or a bad
Content-Length; 408 a body not received within the read timeout (the connection is closed);
413 body over the size limit; 422 bad input, naming the field (JSON of the wrong shape or
type: validation is strict, no value is converted from another JSON type), or a plan that cannot
be computed as asked (``solver_error``: no installed solver for the problem; ``optimization_error``); 503 busy (every
solver thread taken until the time limit, or the queue full); 504 a solve past the time
limit; 500 only for a bug (the body says so, the log has the trace). Every error body is
``{"detail": [{"loc", "field", "msg", "type"}]}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

from fastapi import Body, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from marginopt.errors import CaseError, MarginoptError, OptimizationError, SolverError
from marginopt.json_values import json_safe
from marginopt.models.enums import Objective
from marginopt.service import models as m
from marginopt.service.body import MAX_JSON_DEPTH, BodyNotJSON, JSONRoute
from marginopt.service.cases import MAX_SCENARIO_CELLS, SOURCE, case_from_json, demo_case, positions_from_csv
from marginopt.service.jobs import Busy, SolveRunner, SolveTimeout
from marginopt.service.limits import READ_TIMEOUT_S, BodyLimit

log = logging.getLogger("marginopt.service")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.ErrorOut, "description": f"The body is not JSON: not UTF-8, a syntax error (`msg` says where), or "
                                               f"nested deeper than {MAX_JSON_DEPTH} levels"},
    408: {"model": m.ErrorOut, "description": "The body did not arrive within the read timeout; the connection is closed"},
    413: {"model": m.ErrorOut, "description": "Request body over the size limit"},
    422: {"model": m.ErrorOut, "description": "Bad input: `field` names it, `msg` says what was expected"},
    503: {"model": m.ErrorOut, "description": "Busy: no solver thread came free within the time limit, or the queue is full"},
    504: {"model": m.ErrorOut, "description": "The solve ran past the time limit and was abandoned"},
}
CaseBody = Annotated[dict[str, Any], Body(description=m.CASE_DOC, examples=[m.EXAMPLE_CASE])]
# The objectives come from their registry (optimizer/objectives.py); a name outside it gets 422.
ObjectiveQuery = Annotated[Objective | None, Query(description="Overrides the case's objective.")]
DetailsQuery = Annotated[bool, Query(description="Add each limit's use and worth (limits) and the excess apart (excess)")]


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 8 * 2**20
    read_timeout_s: float = READ_TIMEOUT_S
    solve_timeout_s: float = 30.0
    solve_threads: int = 2
    max_pending: int = 512
    max_scenario_cells: int = MAX_SCENARIO_CELLS
    # Every margin, health and plan request is kept in the run history: this database (a file path or URL:
    # marginopt/history/location.py), None for MARGINOPT_DB or the default file; store_runs False keeps none.
    db: str | None = None
    store_runs: bool = True


@dataclass(frozen=True)
class Kept:
    """A result and the id of the run it was stored as (None when the history is off or failed)."""

    result: Any
    run_id: int | None


class RequestError(Exception):
    """Bad input found by the service itself (not the case reader): 422 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runner = SolveRunner(settings.solve_threads, settings.solve_timeout_s, settings.max_pending)
    store = None
    if settings.store_runs:  # opened here: a history that cannot be opened stops the service at its start, not later
        from marginopt.history import open_store

        store = open_store(settings.db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(runner.ready)  # the first request should not pay for loading the compiled kernels
        yield
        runner.close()

    from marginopt import __version__

    app = FastAPI(title="marginopt", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Margin per venue, verified margin-minimizing hedges and collateral plans, what-if and "
                              "routing for a case sent as JSON (CASE_FORMAT.md). The desk page is at /.")
    app.router.route_class = JSONRoute  # every route below reads a JSON body with the service's parser (body.py)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, read_timeout_s=settings.read_timeout_s)
    app.state.runner = runner
    app.state.store = store
    _error_handlers(app)

    def load(data: dict[str, Any]) -> Any:
        return case_from_json(data, settings.max_scenario_cells)

    def kept(command: str, data: dict[str, Any], case: Any, result: dict[str, Any], report: Any = None) -> Kept:
        """Store the run (on the solver thread, after the work); a history that fails is logged, the answer stands."""
        if store is None:
            return Kept(result, None)
        try:
            from marginopt.history import new_run
            from marginopt.models import margin_report
            from marginopt.models.document import data_document

            run = new_run(data_document(data, SOURCE), report if report is not None else margin_report(case), command,
                          "service", f"POST /v1/{command}", result)
            return Kept(result, store.add(run))
        except Exception:  # the history is a record of answers, never a reason to withhold one
            log.exception("could not store the %s run in the history at %s", command, store.url)
            return Kept(result, None)

    async def answer(work: Callable[[], Any], prefix: tuple[str, ...] = ()) -> Response:
        """Run ``work`` on a solver thread and turn its outcome into a response."""
        try:
            result = await runner.run(work)
        except RequestError as exc:
            return _error(422, exc.field.split("."), str(exc), "request_error")
        except CaseError as exc:
            return _error(422, [*prefix, *exc.field.split(".")], str(exc), "case_error")
        except OptimizationError as exc:  # what was asked cannot be computed: a solver missing or unfit for the case
            return _error(422, list(prefix), str(exc), "solver_error" if isinstance(exc, SolverError) else "optimization_error")
        except MarginoptError as exc:
            return _error(422, list(prefix), str(exc), "model_error")
        except Busy as exc:
            return _error(503, [], f"service busy: {exc}", "busy", headers={"Retry-After": "5"})
        except SolveTimeout as exc:
            return _error(504, [], str(exc), "solve_timeout")
        if isinstance(result, Kept):  # the stored run's id, for GET /v1/history/{id}
            headers = {"X-Marginopt-Run": str(result.run_id)} if result.run_id is not None else None
            return JSONResponse(json_safe(result.result), headers=headers)
        return JSONResponse(json_safe(result))

    @app.get("/health", response_model=m.HealthOut, tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness and the limits in force."""
        return {"status": "ok", "version": __version__, "solve_threads": runner.threads, "pending": runner.pending,
                "max_body_bytes": settings.max_body_bytes, "read_timeout_s": settings.read_timeout_s,
                "solve_timeout_s": settings.solve_timeout_s}

    @app.get("/v1/demo", tags=["cases"])
    async def demo() -> dict[str, Any]:
        """The embedded demo case (a crypto desk on three venues) as JSON, its tables inline."""
        return demo_case()

    @app.post("/v1/margin", response_model=m.MarginOut, responses=ERRORS, tags=["margin"])
    async def margin(case: CaseBody) -> Response:
        """Per venue: initial and maintenance margin, components, worst scenario, collateral value, excess."""
        from marginopt.models import margin_report

        def work() -> Kept:
            loaded = load(case)
            report = margin_report(loaded)
            return kept("margin", case, loaded, report.to_dict(), report)

        return await answer(work)

    @app.post("/v1/health", response_model=m.MarginHealthOut, responses=ERRORS, tags=["margin"])
    async def margin_health(case: CaseBody,
                            down: Annotated[float, Query(gt=0.0, lt=1.0, description="Largest fall searched")] = 0.95,
                            up: Annotated[float, Query(gt=0.0, le=100.0, description="Largest rise searched")] = 2.0,
                            step: Annotated[float, Query(gt=0.0, lt=1.0, description="Scan step of falls (rises: twice)")] = 0.01,
                            tolerance: Annotated[float, Query(gt=0.0, lt=0.01, description="Exactness of each move")] = 1e-6,
                            ) -> Response:
        """Per venue: margin balance (collateral, unrealized P&L, option value), IM, MM, margin ratio, excess over
        each, and the smallest move of each underlying down and up, and of all together, at which the balance
        falls to IM (a call) and to MM (liquidation), by full re-pricing and re-margining (as `marginopt health`)."""
        def work() -> Kept:
            from marginopt.errors import ArgumentError
            from marginopt.health import Scan, health_report

            try:
                scan = Scan(down=down, up=up, step_down=min(step, down), step_up=min(2 * step, up), tolerance=tolerance)
            except ArgumentError as exc:
                raise RequestError("tolerance", str(exc)) from None
            loaded = load(case)
            return kept("health", case, loaded, health_report(loaded, scan).to_dict())

        return await answer(work)

    @app.post("/v1/optimize", response_model=m.PlanOut, responses=ERRORS, tags=["optimize"])
    async def optimize(case: CaseBody, objective: ObjectiveQuery = None, details: DetailsQuery = False) -> Response:
        """Margin-minimizing hedges and collateral allocation across venues, verified (as `marginopt optimize`).
        A case with no plan answers 200 with `status: infeasible` and what is short."""
        def work() -> Kept:
            loaded = load(case)
            return kept("optimize", case, loaded, _plan_json(loaded, objective, "optimize", details))

        return await answer(work)

    @app.post("/v1/hedge", response_model=m.PlanOut, responses=ERRORS, tags=["optimize"])
    async def hedge(case: CaseBody, objective: ObjectiveQuery = None, details: DetailsQuery = False) -> Response:
        """Hedges only, collateral as posted (as `marginopt hedge`). Hedges are listed as the optimizer
        returns them, each candidate once; a quantity within `tolerance` of zero or a whole lot is reported as it."""
        def work() -> Kept:
            loaded = load(case)
            return kept("hedge", case, loaded, _plan_json(loaded, objective, "hedge", details))

        return await answer(work)

    @app.post("/v1/whatif", response_model=m.WhatIfOut, responses=ERRORS, tags=["what-if"])
    async def whatif(request: m.WhatIfRequest) -> Response:
        """Initial and maintenance margin and excess at each venue a leg touches, before and after the trade:
        one leg (`venue`, `instrument`, `quantity`) or several traded together (`legs`)."""
        def work() -> dict[str, Any]:
            from marginopt.optimizer import what_if_legs

            case = load(request.case)
            legs = _request_legs(case, request, with_venue=True)
            return what_if_legs(case, legs).to_dict()

        return await answer(work, ("case",))

    @app.post("/v1/route", response_model=list[m.WhatIfOut], responses=ERRORS, tags=["what-if"])
    async def route(request: m.RouteRequest) -> Response:
        """The trade (one leg, or every leg of `legs` together at one venue) at each venue that lists all its
        instruments (held there, a hedge candidate there, or under the venue's `lists:`), least incremental
        initial margin first: route it to the first. No such venue: 422 naming `instrument` or `legs`."""
        def work() -> list[dict[str, Any]]:
            from marginopt.optimizer import route_legs

            case = load(request.case)
            return [w.to_dict() for w in route_legs(case, _request_legs(case, request, with_venue=False))]

        return await answer(work, ("case",))

    @app.post("/v1/positions/csv", response_model=m.PositionsOut, responses=ERRORS, tags=["cases"])
    async def positions_csv(file: Annotated[UploadFile, File(description="CSV: venue, instrument, quantity[, account]")]) -> Response:
        """A positions CSV read into rows for a case's `positions` (the desk page's upload); errors name the CSV row."""
        data = await file.read()
        return await answer(lambda: {"positions": positions_from_csv(data)}, ("file",))

    _history_routes(app, store)
    _desk_pages(app)
    return app


def _plan_json(case: Any, objective: str | None, mode: str, details: bool = False) -> dict[str, Any]:
    from marginopt.optimizer import optimize

    result: dict[str, Any] = optimize(case, objective=objective, mode=mode).to_dict(details)
    return result


def _request_legs(case: Any, request: m.WhatIfRequest | m.RouteRequest, with_venue: bool) -> list[Any]:
    """The request's legs, checked against the case: ``legs``, or the one-leg form's fields."""
    from marginopt.optimizer import Leg
    from marginopt.optimizer.attribution import no_venue_lists, venues_listing

    single = ("venue", "instrument", "quantity") if with_venue else ("instrument", "quantity")
    for f in (*single, "legs"):  # absent is the other form; null is no value of the field's type
        if f in request.model_fields_set and getattr(request, f) is None:
            what = "a number" if f == "quantity" else "a list of legs" if f == "legs" else "a text"
            raise RequestError(f, f"{SOURCE}: field '{f}': expected {what}, got null")
    given = [f for f in single if getattr(request, f) is not None]
    if request.legs is not None:
        if given:
            raise RequestError(given[0], f"{SOURCE}: field '{given[0]}': expected either legs or {', '.join(single)}, not both")
        each: list[Any] = list(request.legs)
        rows = [(f"legs.{i}.", getattr(leg, "venue", None), leg.instrument, leg.quantity) for i, leg in enumerate(each)]
    else:
        for f in single:
            if getattr(request, f) is None:
                raise RequestError(f, f"{SOURCE}: field '{f}': expected {'a text' if f != 'quantity' else 'a number'} "
                                      f"(or legs: a list of {{{', '.join(single)}}}), got nothing")
        rows = [("", getattr(request, "venue", None), request.instrument, request.quantity)]
    legs = []
    for prefix, venue, instrument, quantity in rows:
        _check_trade(case, instrument, venue if with_venue else None, prefix)
        legs.append(Leg(instrument, quantity, venue))
    if not with_venue:
        instruments = list(dict.fromkeys(leg.instrument for leg in legs))
        if not venues_listing(case, instruments):
            field = "legs" if request.legs is not None else "instrument"
            raise RequestError(field, f"{SOURCE}: field '{field}': expected {no_venue_lists(case, instruments)}, "
                                      f"got {', '.join(instruments)!r}")
    return legs


def _check_trade(case: Any, instrument: str, venue: str | None, prefix: str = "") -> None:
    if venue is not None and venue not in case.venues:
        raise RequestError(f"{prefix}venue", f"{SOURCE}: field '{prefix}venue': expected one of the case's venues "
                                             f"({', '.join(case.venues)}), got {venue!r}")
    if instrument not in case.instruments:
        raise RequestError(f"{prefix}instrument", f"{SOURCE}: field '{prefix}instrument': expected an instrument id of the case, "
                                                  f"got {instrument!r}")


def _json_kind(value: Any) -> str:
    """A JSON value as an error message shows it: a single value itself, a container by its kind."""
    if isinstance(value, str):
        return f"the text {value[:60]!r}" + ("..." if len(value) > 60 else "")
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 60 else f"a number of {len(text)} digits"
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__


def _error(status: int, loc: list[str], message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    field = ".".join(str(p) for p in loc) or ("body" if status < 500 else "")  # 503 and 504 blame no field
    return JSONResponse({"detail": [{"loc": ["body", *loc] if field else [], "field": field, "msg": message, "type": kind}]},
                        status_code=status, headers=headers)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BodyNotJSON)
    async def not_json(request: Request, exc: BodyNotJSON) -> JSONResponse:
        return _error(400, [], exc.message, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own checks (not an object, a wrong type in a request field) in the service's error shape;
        the offending input is shown only where it is a single value (it can be the whole case)."""
        items = []
        for e in exc.errors():
            loc = [p for p in e.get("loc", ()) if p is not None]
            where = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
            kind = str(e.get("type", "invalid"))
            msg = str(e.get("msg", "invalid"))
            if not where and kind in ("dict_type", "model_type", "model_attributes_type"):
                msg = f"expected a JSON object as the body (for /v1/margin, /v1/optimize, /v1/hedge: the case itself): {msg}"
            if kind.endswith("_type") and "input" in e:
                msg = f"{msg}, got {_json_kind(e['input'])}"
            items.append({"loc": loc, "field": ".".join(str(p) for p in where) or "body", "msg": msg, "type": kind})
        return JSONResponse({"detail": items}, status_code=422)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": [{"loc": [], "field": "", "msg": f"internal error: {type(exc).__name__} (a bug; the "
                                         "server log has the trace)", "type": "internal_error"}]}, status_code=500)


def _history_routes(app: FastAPI, store: Any) -> None:
    """The run history: the latest runs, one run, today's margin against the previous day's (the desk page's tables)."""

    def unavailable() -> JSONResponse:
        return _error(404, [], "the run history is off (the service runs with store_runs off)", "no_history")

    @app.get("/v1/history", tags=["history"])
    async def history(limit: Annotated[int, Query(ge=1, le=10_000, description="How many runs, latest first")] = 20,
                      case: Annotated[str | None, Query(description="A fingerprint's first characters or a case name")] = None,
                      ) -> Response:
        """The stored runs, latest first (as `marginopt history --format json`)."""
        if store is None:
            return unavailable()
        runs = await asyncio.to_thread(store.list, limit, case)
        return JSONResponse({"runs": [r.to_dict() for r in runs]})

    @app.get("/v1/history/days", tags=["history"])
    async def days(case: Annotated[str | None, Query(description="A case name; default: the latest run's")] = None) -> Response:
        """Each venue's initial margin in the latest run today (UTC) against the latest run of an earlier day, of one case."""
        if store is None:
            return unavailable()
        from marginopt.history.days import day_over_day

        return JSONResponse(json_safe(await asyncio.to_thread(day_over_day, store, case)))

    @app.get("/v1/history/{run_id}", tags=["history"])
    async def run(run_id: int) -> Response:
        """One stored run (as `marginopt history show ID --format json`); 404 for an id the history does not have."""
        from marginopt.errors import NotFoundError

        if store is None:
            return unavailable()
        try:
            found = await asyncio.to_thread(store.get, run_id)
        except NotFoundError as exc:
            return _error(404, ["run_id"], str(exc), "not_found")
        return JSONResponse(json_safe(found.to_dict()))


def _desk_pages(app: FastAPI) -> None:
    """The desk page and its script and style, read from the package once (no directory is served)."""
    static = resources.files("marginopt.service") / "static"
    files = {name: (static / name).read_bytes() for name in ("desk.html", "desk.js", "desk.css")}
    # Everything comes from this server; no inline script, so user text shown in the page cannot run.
    headers = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
               "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

    @app.get("/", include_in_schema=False)
    @app.get("/desk", include_in_schema=False)
    async def desk() -> Response:
        return HTMLResponse(files["desk.html"], headers=headers)

    @app.get("/desk/desk.js", include_in_schema=False)
    async def desk_js() -> Response:
        return Response(files["desk.js"], media_type="text/javascript; charset=utf-8", headers=headers)

    @app.get("/desk/desk.css", include_in_schema=False)
    async def desk_css() -> Response:
        return Response(files["desk.css"], media_type="text/css; charset=utf-8", headers=headers)
