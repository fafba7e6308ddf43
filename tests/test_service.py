"""The HTTP service, in process (FastAPI's TestClient): every endpoint on the demo case against the
library called directly, bad input answered 422 naming the field, the size and time limits, and
no request making the server read a file."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import warnings
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

with warnings.catch_warnings():  # starlette warns (a UserWarning) that its TestClient will move off plain httpx
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from fastapi.testclient import TestClient  # noqa: E402

import marginopt  # noqa: E402
from marginopt.models import load_case, load_case_data, margin_report  # noqa: E402
from marginopt.optimizer import Leg, optimize, route, what_if, what_if_legs  # noqa: E402
from marginopt.service import models as m  # noqa: E402
from marginopt.service.app import Settings, create_app  # noqa: E402
from marginopt.service.cases import demo_case  # noqa: E402
from marginopt.service.jobs import Busy, SolveRunner, SolveTimeout  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(create_app(Settings(solve_threads=2))) as c:
        yield c


@pytest.fixture(scope="module")
def demo() -> marginopt.Case:
    return load_case(marginopt.demo_case_path())


@pytest.fixture
def case() -> dict[str, Any]:
    return demo_case()


def _error(response: Any, status: int, field: str) -> dict[str, Any]:
    """The one error item of a response, after checking its status and named field."""
    assert response.status_code == status, response.text
    items = response.json()["detail"]
    assert [i["field"] for i in items] == [field], items
    item: dict[str, Any] = items[0]
    return item


# -- answers -------------------------------------------------------------------------------


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    m.HealthOut.model_validate(body)
    assert body["status"] == "ok" and body["max_body_bytes"] == 8 * 2**20 and body["solve_timeout_s"] == 30.0
    assert body["read_timeout_s"] == 30.0


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/margin", "/v1/optimize", "/v1/hedge", "/v1/whatif", "/v1/route", "/v1/positions/csv"):
        assert "post" in paths[path], path
        assert {"200", "400", "408", "413", "422", "503", "504"} <= set(paths[path]["post"]["responses"]), path
    assert "get" in paths["/health"] and "get" in paths["/v1/demo"]
    assert "MarginOut" in spec["components"]["schemas"] and "PlanOut" in spec["components"]["schemas"]


def test_demo_json_is_the_demo_case(case: dict[str, Any], demo: marginopt.Case) -> None:
    inline = load_case_data(case)
    assert all(isinstance(case[t], list) for t in ("instruments", "positions", "hedges"))
    assert isinstance(case["market"]["history"], list)
    assert margin_report(inline).to_dict() == margin_report(demo).to_dict()


def test_margin_matches_the_library(client: TestClient, case: dict[str, Any], demo: marginopt.Case) -> None:
    r = client.post("/v1/margin", json=case)
    assert r.status_code == 200, r.text
    body = m.MarginOut.model_validate(r.json()).model_dump()
    expected = margin_report(demo).to_dict()
    assert body["total_initial_margin"] == pytest.approx(expected["total_initial_margin"], rel=1e-12)
    assert [v["venue"] for v in body["venues"]] == [v["venue"] for v in expected["venues"]]
    for got, want in zip(body["venues"], expected["venues"]):
        for key in ("initial_margin", "maintenance_margin", "collateral_value", "excess"):
            assert got[key] == pytest.approx(want[key], rel=1e-12), (got["venue"], key)
        assert got["worst_scenario"] == want["worst_scenario"]
        assert got["components"] == pytest.approx(want["components"], rel=1e-12)


@pytest.mark.parametrize(("path", "mode", "objective"), [("/v1/optimize", "optimize", None), ("/v1/hedge", "hedge", None),
                                                          ("/v1/hedge", "hedge", "min_margin")])
def test_plans_match_the_library(client: TestClient, case: dict[str, Any], demo: marginopt.Case,
                                 path: str, mode: str, objective: str | None) -> None:
    r = client.post(path, json=case, params={"objective": objective} if objective else None)
    assert r.status_code == 200, r.text
    body = r.json()
    m.PlanOut.model_validate(body)
    expected = optimize(demo, objective=objective, mode=mode).to_dict()
    assert body["status"] == expected["status"] == "optimal"
    assert body["objective"] == expected["objective"]
    assert body["verification"]["passed"] is True
    assert body["objective_value"] == pytest.approx(expected["objective_value"], rel=1e-6)
    got = {(h["venue"], h["instrument"]): h["quantity"] for h in body["hedges"]}
    want = {(h["venue"], h["instrument"]): h["quantity"] for h in expected["hedges"]}
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-4), key
    for got_m, want_m in zip(body["margins"], expected["margins"]):
        assert got_m["venue"] == want_m["venue"]
        assert got_m["after"] == pytest.approx(want_m["after"], rel=1e-6, abs=1e-3)


def test_whatif_and_route_match_the_library(client: TestClient, case: dict[str, Any], demo: marginopt.Case) -> None:
    r = client.post("/v1/whatif", json={"case": case, "venue": "deribit_pm", "instrument": "BTC-PERP-INV", "quantity": -10000})
    assert r.status_code == 200, r.text
    w = what_if(demo, "deribit_pm", "BTC-PERP-INV", -10000)
    body = m.WhatIfOut.model_validate(r.json())
    assert body.margin_before == pytest.approx(w.margin_before, rel=1e-12)
    assert body.incremental_margin == pytest.approx(w.incremental, rel=1e-9)

    r = client.post("/v1/route", json={"case": case, "instrument": "CME-BTC-DEC26", "quantity": 2})
    assert r.status_code == 200, r.text
    expected = route(demo, "CME-BTC-DEC26", 2)
    assert [x["venue"] for x in r.json()] == [x.venue for x in expected]
    assert [x["incremental_margin"] for x in r.json()] == pytest.approx([x.incremental for x in expected], rel=1e-9)


def test_whatif_and_route_take_legs(client: TestClient, case: dict[str, Any], demo: marginopt.Case) -> None:
    """Several legs traded together: each venue touched, as the library says; the one-leg form still answers."""
    legs = [{"venue": "cme_es", "instrument": "CME-BTC-DEC26", "quantity": 2},
            {"venue": "cme_es", "instrument": "CME-ETH-DEC26", "quantity": -3},
            {"venue": "okx_std", "instrument": "BTC-PERP", "quantity": -4}]
    r = client.post("/v1/whatif", json={"case": case, "legs": legs})
    assert r.status_code == 200, r.text
    body = m.WhatIfOut.model_validate(r.json())
    expected = what_if_legs(demo, [Leg(x["instrument"], x["quantity"], x["venue"]) for x in legs])
    assert body.venue is None and body.instrument is None and len(body.legs) == 3
    assert [v.venue for v in body.venues] == ["okx_std", "cme_es"]  # the case's venue order
    assert body.incremental_margin == pytest.approx(expected.incremental, rel=1e-12)
    for got, want in zip(body.venues, expected.venues, strict=True):
        assert (got.initial_margin_after, got.maintenance_margin_after, got.excess_after) == pytest.approx(
            (want.initial_after, want.maintenance_after, want.excess_after), rel=1e-12)

    spread = [{"instrument": "CME-BTC-DEC26", "quantity": 1}, {"instrument": "CME-ETH-DEC26", "quantity": -2}]
    r = client.post("/v1/route", json={"case": case, "legs": spread})
    assert r.status_code == 200, r.text
    assert [w["venue"] for w in r.json()] == ["cme_es"] and len(r.json()[0]["legs"]) == 2

    _error(client.post("/v1/route", json={"case": case, "legs": [spread[0], {"instrument": "BTC-PERP", "quantity": 1}]}),
           422, "legs")
    _error(client.post("/v1/whatif", json={"case": case, "legs": [{**legs[0], "venue": "moon"}]}), 422, "legs.0.venue")
    _error(client.post("/v1/whatif", json={"case": case, "legs": legs, "venue": "cme_es"}), 422, "venue")
    _error(client.post("/v1/whatif", json={"case": case, "legs": [{**legs[0], "quantity": "2"}]}), 422, "legs.0.quantity")
    _error(client.post("/v1/whatif", json={"case": case, "legs": [{**legs[0], "quantity": 1e16}]}), 422, "legs.0.quantity")
    _error(client.post("/v1/whatif", json={"case": case, "legs": []}), 422, "legs")
    _error(client.post("/v1/route", json={"case": case, "legs": [{**spread[0], "venue": "cme_es"}]}), 422, "legs.0.venue")


def test_an_infeasible_plan_is_an_answer(client: TestClient) -> None:
    case = copy.deepcopy(m.EXAMPLE_CASE)
    case["venues"]["pm"]["posted"] = {"USDC": 1000}
    case["objective"] = "min_cost"
    r = client.post("/v1/hedge", json=case)
    assert r.status_code == 200, r.text
    body = r.json()
    m.PlanOut.model_validate(body)
    assert body["status"] == "infeasible"
    assert body["infeasibility"][0]["constraint"].startswith("pm") and body["infeasibility"][0]["shortfall"] > 0


def test_positions_csv(client: TestClient) -> None:
    r = client.post("/v1/positions/csv", files={"file": ("p.csv", b"venue, instrument, quantity, account\npm,BTC-C100,-10,\npm,BTC-PERP,2,b\n")})
    assert r.status_code == 200, r.text
    assert r.json()["positions"] == [{"venue": "pm", "instrument": "BTC-C100", "quantity": -10.0},
                                     {"venue": "pm", "instrument": "BTC-PERP", "quantity": 2.0, "account": "b"}]
    item = _error(client.post("/v1/positions/csv", files={"file": ("p.csv", b"venue,instrument,quantity\npm,A,1\npm,B,ten\n")}),
                  422, "file.positions.quantity")
    assert "row 2" in item["msg"] and "'ten'" in item["msg"]
    _error(client.post("/v1/positions/csv", files={"file": ("p.csv", b"venue,instrument\npm,A\n")}), 422, "file.positions.quantity")
    _error(client.post("/v1/positions/csv", files={"file": ("p.csv", b"")}), 422, "file.positions")
    _error(client.post("/v1/positions/csv", files={"file": ("p.csv", b"\xff\xfe\x00")}), 422, "file.positions")
    _error(client.post("/v1/positions/csv"), 422, "file")


def test_desk_page_and_its_files(client: TestClient) -> None:
    for path in ("/", "/desk"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert 'src="/desk/desk.js"' in r.text and 'data-testid="load-demo"' in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/desk/desk.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/desk/desk.css").headers["content-type"].startswith("text/css")
    assert client.get("/desk/../cases.py").status_code == 404
    assert "http" not in client.get("/desk/desk.js").text.replace("http://www.w3.org/2000/svg", "")  # nothing from elsewhere


# -- bad input: 422 naming the field ---------------------------------------------------------


def _without(case: dict[str, Any], key: str) -> dict[str, Any]:
    del case[key]
    return case


@pytest.mark.parametrize(("mutate", "field", "words"), [
    (lambda c: _without(c, "venues"), "venues", "present"),
    (lambda c: _without(c, "format"), "format", "present"),
    (lambda c: {**c, "base_currency": 5}, "base_currency", "text"),
    (lambda c: {**c, "valuation_date": "yesterday"}, "valuation_date", "date"),
    (lambda c: {**c, "colour": "blue"}, "colour", "known key"),
    (lambda c: {**c, "positions": [{**c["positions"][0], "quantity": "ten"}]}, "positions.quantity", "row 1"),
    (lambda c: {**c, "positions": [{**c["positions"][0], "quantity": float("nan")}]}, "positions.quantity", "finite"),
    (lambda c: {**c, "positions": [{**c["positions"][0], "venue": "nowhere"}]}, "positions.venue", "row 1"),
    (lambda c: {**c, "instruments": 5}, "instruments", "list of rows"),
    (lambda c: {**c, "market": {**c["market"], "prices": {"BTC": -1}}}, "market.prices.BTC", "> 0"),
])
def test_bad_case_is_422_naming_the_field(client: TestClient, case: dict[str, Any], mutate: Any, field: str, words: str) -> None:
    body = json.dumps(mutate(case))  # json.dumps writes NaN, as some clients do; the reader refuses it
    item = _error(client.post("/v1/margin", content=body, headers={"content-type": "application/json"}), 422, field)
    assert words in item["msg"] and item["type"] == "case_error"


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda c: {**c, "positions": "positions.csv"}, "positions"),
    (lambda c: {**c, "instruments": "/etc/passwd"}, "instruments"),
    (lambda c: {**c, "hedges": "../../data/demo/hedges.csv"}, "hedges"),
    (lambda c: {**c, "market": {**c["market"], "history": "history.csv"}}, "market.history"),
])
def test_a_file_path_where_a_table_belongs_is_refused(client: TestClient, case: dict[str, Any], mutate: Any, field: str) -> None:
    item = _error(client.post("/v1/margin", json=mutate(case)), 422, field)
    assert "inline rows" in item["msg"] and "the service reads no files" in item["msg"]


def test_matrix_scenarios_and_snapshot_presets_are_refused(client: TestClient, case: dict[str, Any]) -> None:
    case["venues"]["cme_es"]["initial_margin"]["scenarios"] = {"kind": "matrix", "file": "/etc/hosts"}
    item = _error(client.post("/v1/margin", json=case), 422, "venues.cme_es.initial_margin.scenarios.file")
    assert "reads no files" in item["msg"]
    case = demo_case()
    case["venues"]["derive"] = {"preset": "derive-pmrm2", "snapshot": "snapshot.json"}
    item = _error(client.post("/v1/optimize", json=case), 422, "venues.derive.preset")
    assert "snapshot file" in item["msg"] and "reads no files" in item["msg"]
    case["venues"]["derive"] = {"initial_margin": {"kind": "derive_pmrm2", "snapshot": "snapshot.json"}}
    _error(client.post("/v1/optimize", json=case), 422, "venues.derive.initial_margin.snapshot")


def test_a_scenario_set_too_large_to_hold_is_refused(client: TestClient, case: dict[str, Any]) -> None:
    """A few bytes can ask for more scenarios than memory holds: refused before anything is built."""
    case["venues"]["cme_es"]["initial_margin"]["scenarios"] = {"kind": "monte_carlo", "n": 1e9, "seed": 1}
    item = _error(client.post("/v1/margin", json=case), 422, "venues.cme_es.initial_margin.scenarios.n")
    assert "at most" in item["msg"]
    case = demo_case()
    grid = case["venues"]["deribit_pm"]["initial_margin"]["terms"][0]["scenarios"]
    grid["price_moves"] = [0.001 * i for i in range(-3000, 3000)]
    grid["vol_moves"] = [0.0001 * i for i in range(3000)]
    _error(client.post("/v1/margin", json=case), 422, "venues.deribit_pm.initial_margin.terms.0.scenarios.price_moves")
    case = demo_case()
    case["venues"]["cme_es"]["initial_margin"]["scenarios"] = {"kind": "monte_carlo", "n": 2000, "seed": 1}
    assert client.post("/v1/margin", json=case).status_code == 200


def test_a_yaml_case_may_give_every_table_inline(tmp_path: Any, case: dict[str, Any], demo: marginopt.Case) -> None:
    """The JSON form of the demo, written as YAML, is the demo: one parser for both (load_case_data)."""
    import yaml

    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))  # venue order is report order
    assert margin_report(load_case(path)).to_dict() == margin_report(demo).to_dict()


def test_no_request_reads_a_file(client: TestClient, case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file read of the case reader goes through resolve_path; a request never gets past it."""
    from marginopt.models import reader

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a request made the server open a file")

    monkeypatch.setattr(reader, "_read_csv", forbidden)
    monkeypatch.setattr(reader, "_read_parquet", forbidden)
    for table in ("positions", "instruments", "hedges"):
        _error(client.post("/v1/margin", json={**case, table: "marginopt/data/demo/positions.csv"}), 422, table)
    assert client.post("/v1/margin", json=case).status_code == 200


def test_whatif_and_route_name_the_request_field(client: TestClient, case: dict[str, Any]) -> None:
    trade = {"case": case, "venue": "deribit_pm", "instrument": "BTC-PERP", "quantity": 1}
    item = _error(client.post("/v1/whatif", json={**trade, "venue": "nowhere"}), 422, "venue")
    assert "deribit_pm" in item["msg"]
    _error(client.post("/v1/whatif", json={**trade, "instrument": "DOGE"}), 422, "instrument")
    _error(client.post("/v1/route", json={"case": case, "instrument": "DOGE", "quantity": 1}), 422, "instrument")
    _error(client.post("/v1/whatif", json={**trade, "quantity": "lots"}), 422, "quantity")
    _error(client.post("/v1/whatif", json={k: v for k, v in trade.items() if k != "venue"}), 422, "venue")
    _error(client.post("/v1/whatif", json={**trade, "colour": 1}), 422, "colour")
    nan = json.dumps({**trade, "quantity": float("nan")})
    _error(client.post("/v1/whatif", content=nan, headers={"content-type": "application/json"}), 422, "quantity")
    broken = {**trade, "case": {**case, "positions": [{"venue": "deribit_pm", "instrument": "BTC-PERP"}]}}
    item = _error(client.post("/v1/whatif", json=broken), 422, "case.positions.quantity")
    assert item["loc"] == ["body", "case", "positions", "quantity"]


@pytest.mark.parametrize(("content", "ctype"), [  # not JSON at all is 400: tests/test_service_strict.py
    (b"[1, 2, 3]", "application/json"),
    (b'"a case"', "application/json"),
    (b"format: marginopt/1", "text/yaml"),
    (b"", "application/json"),
])
def test_a_body_that_is_not_a_json_object_is_422(client: TestClient, content: bytes, ctype: str) -> None:
    r = client.post("/v1/margin", content=content, headers={"content-type": ctype})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == "body"


def test_objective_must_be_known(client: TestClient, case: dict[str, Any]) -> None:
    _error(client.post("/v1/optimize", json=case, params={"objective": "max_fun"}), 422, "objective")


# -- limits ------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(case: dict[str, Any]) -> None:
    with TestClient(create_app(Settings(max_body_bytes=10_000))) as small:
        big = json.dumps(case).encode()
        assert len(big) > 10_000
        item = _error(small.post("/v1/margin", content=big, headers={"content-type": "application/json"}), 413, "body")
        assert "10000 bytes" in item["msg"]

        def chunks() -> Any:  # no Content-Length: the size is counted as it arrives
            for i in range(0, len(big), 4096):
                yield big[i:i + 4096]

        _error(small.post("/v1/margin", content=chunks(), headers={"content-type": "application/json"}), 413, "body")
        assert small.post("/v1/margin", json={}).status_code == 422  # under the limit: on to the case reader
        assert small.post("/v1/whatif", json={"case": {}, "instrument": "x", "venue": "y", "quantity": 1}).status_code == 422


def test_solve_over_the_time_limit_is_503_or_504_never_500(case: dict[str, Any]) -> None:
    with TestClient(create_app(Settings(solve_timeout_s=0.001, solve_threads=1)), raise_server_exceptions=False) as quick:
        for path in ("/v1/optimize", "/v1/margin"):
            r = quick.post(path, json=case)
            assert r.status_code in (503, 504), r.text
            item = r.json()["detail"][0]
            assert item["type"] in ("busy", "solve_timeout") and "limit" in item["msg"]
        assert quick.get("/health").status_code == 200  # the event loop still answers


def test_runner_limits() -> None:
    release = threading.Event()

    async def scenario() -> None:
        runner = SolveRunner(threads=1, timeout_s=0.2, max_pending=2)
        runner._guard = threading.Lock()  # skip the warm-up: these jobs use no kernel
        slow = asyncio.create_task(runner.run(lambda: release.wait(5)))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy, match="no solver thread came free"):  # queued behind the slow one, never started
            await runner.run(lambda: 1)
        with pytest.raises(SolveTimeout, match="time limit"):
            await slow
        assert runner.pending == 1  # the abandoned job still holds its thread
        release.set()
        for _ in range(100):
            if runner.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert runner.pending == 0
        assert await runner.run(lambda: 42) == 42
        blocker = asyncio.create_task(runner.run(lambda: time.sleep(0.1)))
        await asyncio.sleep(0.01)
        queued = asyncio.create_task(runner.run(lambda: 2))
        await asyncio.sleep(0.01)
        with pytest.raises(Busy, match="queued or running"):  # max_pending reached: refused at once
            await runner.run(lambda: 3)
        await blocker
        assert await queued == 2
        runner.close()

    asyncio.run(scenario())


def test_an_internal_error_is_500_with_a_message_not_a_trace(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import marginopt.models

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(marginopt.models, "margin_report", broken)
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        r = c.post("/v1/margin", json=case)
    assert r.status_code == 500
    assert r.json()["detail"][0]["type"] == "internal_error" and "Traceback" not in r.text


def test_serve_command_is_registered() -> None:
    from click.testing import CliRunner

    from marginopt.cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--max-body-mb" in result.output and "--solve-timeout" in result.output


def test_an_executable_plan_carries_the_cost_of_executability(client: TestClient) -> None:
    """The lot case of tests/test_executable.py posted to /v1/hedge: the response is the library's
    JSON, executability included (continuous 2.25, executable 2.9, the naive rounding infeasible)."""
    from tests.test_executable import lots_case

    raw = lots_case(F=1.0, P=0.1)
    r = client.post("/v1/hedge", json=raw)
    assert r.status_code == 200, r.text
    body = r.json()
    plan = m.PlanOut.model_validate(body)
    assert plan.executability is not None and plan.executability.naive_rounding is not None
    assert plan.executability.continuous.objective_value == pytest.approx(2.25, abs=1e-6)
    assert plan.executability.executable.objective_value == pytest.approx(2.9, abs=1e-6)
    assert plan.executability.naive_rounding.feasible is False
    assert [h.quantity for h in plan.hedges] == [-2.0, -0.3]
    library = optimize(load_case_data(raw), mode="hedge").to_dict()["executability"]
    assert body["executability"]["naive_rounding"] == library["naive_rounding"]
    assert set(body["executability"]) == set(library) == {"continuous", "executable", "naive_rounding"}


def test_health_matches_the_library(client: TestClient, case: dict[str, Any], demo: marginopt.Case) -> None:
    from marginopt.health import health_report

    r = client.post("/v1/health", json=case)
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(json.dumps(health_report(demo).to_dict()))
    assert client.post("/v1/health?down=1.5", json=case).status_code == 422
    bad = client.post("/v1/health?tolerance=0.005&step=0.001", json=case)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "tolerance"
