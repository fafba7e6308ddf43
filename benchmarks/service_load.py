"""Load test of ``marginopt serve`` on loopback: many concurrent margin requests, then malformed ones.

Starts the service in a subprocess (``marginopt serve`` on a free 127.0.0.1 port), fires N
concurrent ``POST /v1/margin`` with the demo case (httpx.AsyncClient, bounded in time), checks
every answer against the library's own margin report, and prints count, errors, p50 / p95 / max
latency and requests per second. Then sends malformed requests (bad JSON, wrong types, missing
keys, a body over the limit, a file path where rows belong...) and checks each is answered 4xx,
never 5xx. Exits 1 on any wrong answer, failed request or 5xx.

    .venv/bin/python benchmarks/service_load.py [--requests 200] [--solve-threads 2] [--time-limit 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

import marginopt
from marginopt.models import margin_report
from marginopt.service.cases import demo_case

SERVE = "from marginopt.cli.main import main; main()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(port: int, threads: int, max_body_mb: float, store: bool = True) -> subprocess.Popen[bytes]:
    import atexit
    import shutil
    import tempfile

    # Every margin request is kept in the run history, as a service does by default: in a file of this run.
    folder = tempfile.mkdtemp(prefix="marginopt-load-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    history = os.path.join(folder, "history.db")
    cmd = [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--port", str(port), "--solve-threads", str(threads),
           "--max-body-mb", str(max_body_mb), "--solve-timeout", "60", *(["--db", history] if store else ["--no-store"])]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_healthy(base: str, server: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the service exited with {server.returncode}: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service did not answer /health within {seconds:g} s")


def wrong_numbers(got: dict[str, Any], want: dict[str, Any]) -> str | None:
    """What differs between a margin answer and the library's report, or None."""
    if [v["venue"] for v in got.get("venues", [])] != [v["venue"] for v in want["venues"]]:
        return f"venues {[v.get('venue') for v in got.get('venues', [])]}"
    for g, w in zip(got["venues"], want["venues"]):
        for key in ("initial_margin", "maintenance_margin", "collateral_value", "excess"):
            if not math.isclose(g[key], w[key], rel_tol=1e-9, abs_tol=1e-9):
                return f"{g['venue']} {key} {g[key]} != {w[key]}"
    if not math.isclose(got["total_initial_margin"], want["total_initial_margin"], rel_tol=1e-9):
        return "total_initial_margin"
    return None


async def margin_burst(base: str, n: int, body: bytes, want: dict[str, Any], time_limit: float) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    problems: list[str] = []
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=time_limit) as client:
        async def one(i: int) -> None:
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/margin", content=body, headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                problems.append(f"request {i}: {type(exc).__name__}: {exc}")
                return
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                problems.append(f"request {i}: HTTP {r.status_code}: {r.text[:200]}")
                return
            wrong = wrong_numbers(r.json(), want)
            if wrong:
                problems.append(f"request {i}: wrong answer: {wrong}")

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), time_limit)
    return latencies, problems


def malformed(case: dict[str, Any], max_body_bytes: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, path, httpx request keywords) of requests the service must refuse with a 4xx."""
    js = {"content-type": "application/json"}

    def with_(**changes: Any) -> bytes:
        return json.dumps({**case, **changes}).encode()

    trade = {"case": case, "venue": "deribit_pm", "instrument": "BTC-PERP", "quantity": 1}
    huge = b'{"format": "' + b"x" * (max_body_bytes + 1024) + b'"}'

    async def chunked() -> Any:  # no Content-Length: the service counts what arrives
        for i in range(0, len(huge), 1 << 16):
            yield huge[i:i + (1 << 16)]

    return [
        ("bad JSON", "/v1/margin", {"content": b'{"format": "marginopt/1",', "headers": js}),
        ("empty body", "/v1/margin", {"content": b"", "headers": js}),
        ("JSON list, not an object", "/v1/margin", {"content": b"[1, 2]", "headers": js}),
        ("YAML, not JSON", "/v1/optimize", {"content": b"format: marginopt/1\n", "headers": {"content-type": "text/yaml"}}),
        ("missing key venues", "/v1/margin", {"content": json.dumps({k: v for k, v in case.items() if k != "venues"}).encode(), "headers": js}),
        ("wrong type base_currency", "/v1/margin", {"content": with_(base_currency=5), "headers": js}),
        ("wrong type quantity", "/v1/hedge", {"content": with_(positions=[{**case["positions"][0], "quantity": "ten"}]), "headers": js}),
        ("NaN quantity", "/v1/margin", {"content": with_(positions=[{**case["positions"][0], "quantity": float("nan")}]), "headers": js}),
        ("path instead of rows", "/v1/margin", {"content": with_(positions="positions.csv"), "headers": js}),
        ("absolute path instead of rows", "/v1/optimize", {"content": with_(instruments="/etc/passwd"), "headers": js}),
        ("history path", "/v1/margin", {"content": with_(market={**case["market"], "history": "../history.csv"}), "headers": js}),
        ("matrix scenario file", "/v1/margin", {"content": with_(venues={**case["venues"], "x": {"initial_margin": {
            "kind": "scenario_max", "scenarios": {"kind": "matrix", "file": "/etc/hosts"}}}}), "headers": js}),
        ("derive snapshot preset", "/v1/margin", {"content": with_(venues={**case["venues"], "d": {"preset": "derive-pmrm2",
                                                                                                   "snapshot": "s.json"}}), "headers": js}),
        ("unknown objective", "/v1/optimize?objective=max_fun", {"content": json.dumps(case).encode(), "headers": js}),
        ("whatif unknown venue", "/v1/whatif", {"json": {**trade, "venue": "moon"}}),
        ("whatif quantity text", "/v1/whatif", {"json": {**trade, "quantity": "lots"}}),
        ("route missing case", "/v1/route", {"json": {"instrument": "BTC-PERP", "quantity": 1}}),
        ("body over the limit (Content-Length)", "/v1/margin", {"content": huge, "headers": js}),
        ("body over the limit (chunked)", "/v1/margin", {"content": chunked(), "headers": js}),
        ("bad CSV upload", "/v1/positions/csv", {"files": {"file": ("p.csv", b"venue,instrument,quantity\na,b,ten\n")}}),
    ]


async def malformed_batch(base: str, requests: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, int | str]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        async def one(name: str, path: str, kwargs: dict[str, Any]) -> tuple[str, int | str]:
            try:
                r = await client.post(path, **kwargs)
            except httpx.HTTPError as exc:
                return name, f"{type(exc).__name__}: {exc}"
            return name, r.status_code

        return list(await asyncio.gather(*(one(*req) for req in requests)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="concurrent margin requests (default 200)")
    parser.add_argument("--solve-threads", type=int, default=2, help="the service's solver threads (default 2)")
    parser.add_argument("--max-body-mb", type=float, default=8.0)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds for the whole burst (default 120)")
    parser.add_argument("--no-store", action="store_true", help="the service keeps no run (default: it keeps every run)")
    args = parser.parse_args()

    case = demo_case()
    body = json.dumps(case).encode()
    want = margin_report(marginopt.load_case(marginopt.demo_case_path())).to_dict()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, args.solve_threads, args.max_body_mb, store=not args.no_store)
    failed = False
    try:
        wait_healthy(base, server, 60)
        httpx.post(base + "/v1/margin", content=body, headers={"content-type": "application/json"}, timeout=60)  # warm
        print(f"service: marginopt serve on {base}, {args.solve_threads} solver threads; demo case {len(body):,} bytes of JSON")

        t0 = time.perf_counter()
        latencies, problems = asyncio.run(margin_burst(base, args.requests, body, want, args.time_limit))
        wall = time.perf_counter() - t0
        lat = sorted(latencies)
        p95 = lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)] if lat else float("nan")
        print(f"\n{args.requests} concurrent POST /v1/margin (demo case): {len(latencies)} answered, "
              f"{args.requests - len(problems)} correct, {len(problems)} errors")
        if lat:
            print(f"latency s: p50 {statistics.median(lat):.3f}  p95 {p95:.3f}  max {lat[-1]:.3f}  "
                  f"| wall {wall:.2f} s, {args.requests / wall:.1f} requests/s")
        for p in problems[:10]:
            print("  " + p)
        failed |= bool(problems)

        bad = malformed(case, int(args.max_body_mb * 2**20))
        results = asyncio.run(malformed_batch(base, bad))
        print(f"\n{len(results)} malformed requests:")
        for name, status in results:
            ok = isinstance(status, int) and 400 <= status < 500
            failed |= not ok
            print(f"  {status!s:>4}  {'ok ' if ok else 'BAD'}  {name}")
        codes = [s for _, s in results]
        n_4xx = sum(isinstance(s, int) and 400 <= s < 500 for s in codes)
        n_5xx = sum(isinstance(s, int) and s >= 500 for s in codes)
        print(f"{n_4xx}/{len(results)} answered 4xx, {n_5xx} answered 5xx, {len(results) - n_4xx - n_5xx} not answered")
        health = httpx.get(base + "/health", timeout=5)
        print(f"\n/health after the load: {health.status_code} {health.json()}")
        failed |= health.status_code != 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    print("\nFAILED" if failed else "\nPASSED: every margin answer correct, every malformed request 4xx")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
