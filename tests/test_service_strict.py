"""The service holds its documented contract against careless and hostile requests (issue 15, part 4):
no value converted from another JSON type (422 naming the field), a body that is not JSON at all is
400 in the service's error shape, deep nesting is refused at once, and a body that stalls is answered
408 and its connection closed, on a real uvicorn server."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")
uvicorn = pytest.importorskip("uvicorn", reason="the service extra (uvicorn) is not installed")

with warnings.catch_warnings():  # starlette warns (a UserWarning) that its TestClient will move off plain httpx
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from fastapi.testclient import TestClient  # noqa: E402

from marginopt.service import models as m  # noqa: E402
from marginopt.service.app import Settings, create_app  # noqa: E402
from marginopt.service.body import MAX_JSON_DEPTH  # noqa: E402
from marginopt.service.cases import demo_case  # noqa: E402

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(solve_threads=1))) as c:
        yield c


@pytest.fixture
def case() -> dict[str, Any]:
    return demo_case()


def _error(response: Any, status: int, field: str) -> dict[str, Any]:
    """The one error item of a response, after checking its status, its shape and its named field."""
    assert response.status_code == status, response.text
    body = m.ErrorOut.model_validate(response.json()).model_dump()
    assert [i["field"] for i in body["detail"]] == [field], body
    item: dict[str, Any] = body["detail"][0]
    return item


# -- strict types: 422 naming the field ---------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "got"), [
    ("quantity", "10", "got the text '10'"),
    ("quantity", "-1e3", "got the text '-1e3'"),
    ("quantity", True, "got true"),
    ("quantity", None, "got null"),
    ("quantity", [10], "got a list"),
    ("quantity", 10**4000, "got a number of 4001 digits"),  # past float range; not echoed whole
    ("venue", 5, "got 5"),
    ("instrument", False, "got false"),
])
def test_whatif_fields_take_their_own_json_type(client: TestClient, case: dict[str, Any], key: str, value: Any, got: str) -> None:
    trade = {"case": case, "venue": "deribit_pm", "instrument": "BTC-PERP", "quantity": 1, key: value}
    item = _error(client.post("/v1/whatif", json=trade), 422, key)
    assert got in item["msg"] and item["loc"] == ["body", key]


@pytest.mark.parametrize("value", ["10", True, "ten"])
def test_route_quantity_takes_a_json_number_only(client: TestClient, case: dict[str, Any], value: Any) -> None:
    _error(client.post("/v1/route", json={"case": case, "instrument": "BTC-PERP", "quantity": value}), 422, "quantity")


def test_valid_requests_still_answer_200(client: TestClient, case: dict[str, Any]) -> None:
    for quantity in (10, -2.5):  # an integer is a number: strictness refuses other types, not ints for floats
        r = client.post("/v1/whatif", json={"case": case, "venue": "deribit_pm", "instrument": "BTC-PERP", "quantity": quantity})
        assert r.status_code == 200, r.text
        assert m.WhatIfOut.model_validate(r.json()).quantity == quantity
    r = client.post("/v1/route", json={"case": case, "instrument": "BTC-PERP", "quantity": 10})
    assert r.status_code == 200 and [w["venue"] for w in r.json()] == ["okx_std"], r.text  # the one venue that lists it
    r = client.post("/v1/margin", content=b"\xef\xbb\xbf" + json.dumps(case).encode(), headers=JSON)  # a BOM is ignored
    assert r.status_code == 200, r.text


def _set(table: str, column: str, value: Any, row: int = 1) -> Any:
    def mutate(case: dict[str, Any]) -> dict[str, Any]:
        rows = case["market"]["history"] if table == "market.history" else case[table]
        rows[row - 1][column] = value
        return case
    return mutate


@pytest.mark.parametrize(("mutate", "field", "row", "words"), [
    (_set("positions", "quantity", "-40", row=3), "positions.quantity", 3, "got '-40'"),
    (_set("positions", "quantity", "ten"), "positions.quantity", 1, "a number"),
    (_set("hedges", "max_buy", "500000"), "hedges.max_buy", 1, "a JSON number, not text"),
    (_set("hedges", "cost_per_unit", "0.005"), "hedges.cost_per_unit", 1, "a JSON number, not text"),
    (_set("instruments", "multiplier", "1"), "instruments.multiplier", 1, "a JSON number, not text"),
    (_set("market.history", "BTC", "93730.34", row=5), "market.history.BTC", 5, "a JSON number, not text"),
    (_set("positions", "quantity", True), "positions.quantity", 1, "got True"),
    (_set("positions", "account", 7), "positions.account", 1, "text (a JSON string), got 7"),
    (_set("positions", "venue", True), "positions.venue", 1, "text"),
    (_set("market.history", "date", 20240101), "market.history.date", 1, "text"),
])
def test_a_case_table_cell_of_the_wrong_json_type_is_422(client: TestClient, case: dict[str, Any], mutate: Any,
                                                          field: str, row: int, words: str) -> None:
    """The case reader reads table cells as CSV text ("10" is 10); sent as JSON, a cell must be its column's type."""
    body = mutate(case)
    item = _error(client.post("/v1/margin", json=body), 422, field)
    assert f"row {row}" in item["msg"] and words in item["msg"] and item["type"] == "case_error"
    # inside a what-if, the same error named from the top of the request body
    trade = {"case": body, "venue": "deribit_pm", "instrument": "BTC-PERP", "quantity": 1}
    assert _error(client.post("/v1/whatif", json=trade), 422, f"case.{field}")["loc"] == ["body", "case", *field.split(".")]


def test_a_table_in_its_mapping_form_is_checked_too(client: TestClient, case: dict[str, Any]) -> None:
    """positions: {table: [rows], aggregate: true}: the rows are the same inline table."""
    rows = case["positions"]
    rows[1]["quantity"] = "5"
    case["positions"] = {"table": rows, "aggregate": True}
    assert "row 2" in _error(client.post("/v1/margin", json=case), 422, "positions.quantity")["msg"]


def test_numbers_outside_tables_are_strict_already(client: TestClient, case: dict[str, Any]) -> None:
    """Mappings are read by the case reader, which takes a number only as a number: checked here so it stays so."""
    case["market"]["prices"]["BTC"] = "91000"
    _error(client.post("/v1/margin", json=case), 422, "market.prices.BTC")
    case = demo_case()
    case["venues"]["deribit_pm"]["posted"]["USDC"] = True
    _error(client.post("/v1/margin", json=case), 422, "venues.deribit_pm.posted.USDC")


# -- 400: the body is not JSON ------------------------------------------------------------------


@pytest.mark.parametrize(("content", "kind", "words"), [
    (b'{"format": "\xff\xfe"}', "not_utf8", "byte 0xff at byte offset 12"),
    (b'{"format": "marginopt/1", "x": "\xc3"}', "not_utf8", "not UTF-8"),
    (json.dumps({"format": "marginopt/1"}).encode("utf-16"), "not_utf8", "not UTF-8"),  # Python's json would take it
    (b'{"format": "marginopt/1", ', "json_invalid", "line 1, column 27"),
    (b'{"a": 1}\n{"b": 2}', "json_invalid", "line 2, column 1"),
    (b"format: marginopt/1", "json_invalid", "invalid JSON"),
    (b'{"quantity": ' + b"1" * 5000 + b"}", "json_invalid", "4300 digits"),  # Python's int limit, a ValueError
    (b"[" * 50_000 + b"]" * 50_000, "json_too_deep", f"deeper than {MAX_JSON_DEPTH}"),
    (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, "json_too_deep", f"deeper than {MAX_JSON_DEPTH}"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "json_too_deep", "levels"),
])
@pytest.mark.parametrize("path", ["/v1/margin", "/v1/whatif"])
def test_a_body_that_is_not_json_is_400(client: TestClient, path: str, content: bytes, kind: str, words: str) -> None:
    item = _error(client.post(path, content=content, headers=JSON), 400, "body")
    assert item["type"] == kind and words in item["msg"] and item["loc"] == ["body"]


def test_deep_json_is_refused_at_once(client: TestClient) -> None:
    """Nesting costs no more than a flat body: 4 MB of '[' (under the 8 MiB limit) is refused in well under a second."""
    for content in (b"[" * 4_000_000, b'{"case": ' + b'{"a": [' * 500_000):
        start = time.perf_counter()
        _error(client.post("/v1/whatif", content=content, headers=JSON), 400, "body")
        assert time.perf_counter() - start < 1.0
    assert client.get("/health").status_code == 200


def test_json_at_the_depth_limit_is_parsed(client: TestClient, case: dict[str, Any]) -> None:
    """MAX_JSON_DEPTH levels pass the parser and meet the case reader (422 naming the field), not a 400."""
    nested: Any = []
    for _ in range(MAX_JSON_DEPTH - 2):  # the case is level 1, description level 2
        nested = [nested]
    case["description"] = nested
    _error(client.post("/v1/margin", json=case), 422, "description")


def test_an_empty_or_non_object_body_is_still_422(client: TestClient) -> None:
    """JSON, but not what the endpoint takes (or no body at all): 422, as before."""
    for content in (b"", b"[1, 2]", b'"a case"', b"null"):
        item = _error(client.post("/v1/margin", content=content, headers=JSON), 422, "body")
        assert item["type"] != "json_invalid"


def test_openapi_and_health_document_the_new_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/margin", "/v1/whatif", "/v1/route"):
        assert {"400", "408", "422"} <= set(spec["paths"][path]["post"]["responses"]), path
    assert client.get("/health").json()["read_timeout_s"] == 30.0


def test_serve_has_a_read_timeout_option() -> None:
    from click.testing import CliRunner

    from marginopt.cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--read-timeout" in result.output


# -- a body that stalls: a real server ----------------------------------------------------------

READ_TIMEOUT = 0.5
MARGIN = 2.0  # seconds of slack for a loaded 2-core machine


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """``marginopt``'s app on uvicorn, on a free loopback port, with a short read timeout; yields the port."""
    app = create_app(Settings(read_timeout_s=READ_TIMEOUT, solve_threads=1))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield port
    srv.should_exit = True
    thread.join(10)
    app.state.runner.close()
    sock.close()


def _read_all(conn: socket.socket, limit_s: float) -> tuple[bytes, bool, float]:
    """Everything the server sends until it closes the connection: (bytes, closed, seconds)."""
    start = time.monotonic()
    conn.settimeout(limit_s)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        return data, False, time.monotonic() - start
    return data, True, time.monotonic() - start


def _head(path: str, length: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def test_a_stalled_body_is_answered_408_and_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as conn:
        conn.sendall(_head("/v1/margin", 1_000_000) + b'{"format":')  # declares 1 MB, sends 10 bytes, stalls
        data, closed, seconds = _read_all(conn, READ_TIMEOUT + MARGIN)
    assert closed and seconds < READ_TIMEOUT + MARGIN, (data, seconds)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower(), head
    item = m.ErrorOut.model_validate_json(body).detail[0]
    assert item.field == "body" and item.type == "read_timeout"
    assert "10 bytes of the 1000000 declared" in item.msg and f"{READ_TIMEOUT:g} s" in item.msg


def test_a_trickled_body_does_not_reset_the_deadline(server: int) -> None:
    """A byte every 0.1 s keeps each read short; the deadline is for the whole body."""
    with socket.create_connection(("127.0.0.1", server)) as conn:
        conn.sendall(_head("/v1/margin", 1000))
        start = time.monotonic()
        answered = b""
        conn.settimeout(0.1)
        while time.monotonic() - start < READ_TIMEOUT + MARGIN:
            try:
                conn.sendall(b" ")
                answered = conn.recv(65536)
                if answered:
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        assert answered.startswith(b"HTTP/1.1 408"), answered
        assert time.monotonic() - start < READ_TIMEOUT + MARGIN


def test_a_body_in_pieces_within_the_timeout_is_read(server: int) -> None:
    """Pauses shorter than the read timeout are no stall: the body is read and answered (400 for its bad JSON,
    which needs no solver), and the server still answers on a new connection."""
    body = b'{"format": "marginopt/1", '
    with socket.create_connection(("127.0.0.1", server)) as conn:
        conn.sendall(_head("/v1/margin", len(body), "Connection: close\r\n") + body[:10])
        time.sleep(READ_TIMEOUT / 4)
        conn.sendall(body[10:])
        answer, closed, _ = _read_all(conn, READ_TIMEOUT + MARGIN)
    assert closed and answer.startswith(b"HTTP/1.1 400") and b"json_invalid" in answer, answer
    with socket.create_connection(("127.0.0.1", server)) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data, closed, _ = _read_all(conn, MARGIN)
    assert data.startswith(b"HTTP/1.1 200") and b'"read_timeout_s":0.5' in data, data
