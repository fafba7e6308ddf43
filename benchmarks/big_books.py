"""Big books: margin and hedge on 10,000 to 200,000 distinct held options, 20 hedge candidates.

One venue, Deribit-style: a scan grid (9 price moves x 3 vol moves and two extended moves,
per underlying, BTC and ETH) plus a short-option minimum; options at 24 expiries and strikes from 40% to 250% of spot, each
held once with a random signed quantity; the hedge candidates are the two perpetuals, six
futures and twelve options. Each command runs as `marginopt ... --format json` in its own
process: the time printed is the command's wall time (start-up, case load and pricing
included) and the peak memory its process's high-water mark. The hedge is verified (its
result says so) like any plan.

The hedge is also run with the code before the held book entered the program as a constant
(``--before``, checked out into a git worktree, same installed libraries).

Then the demo with ``cme_es`` on 400,000 Monte Carlo scenarios: margin, optimize, hedge and
allocate (the case's min_cost objective and min_margin). Each plan command is also run in a
process of its own twice (``above_warm``): the second run's seconds, case load included, and its
peak RSS above the warmed process before it (the first run loaded the libraries and compiled
kernels), and that peak over the 12.2 MiB of cme_es's losses. Measured on 2 shared cores
(2026-12-06, three runs, the better figure; --before 5f245b2 the code before this work):

    command                       in process: s, MiB above (x)      at 5f245b2      own process: s, MiB (at 5f245b2)
    optimize                      1.97  19.3 (1.6), 21 rounds       6.23  27.9      4.08 331 (9.49 360)
    optimize --objective min_margin  1.10  18.5 (1.5), 19 rounds    1.39  28.0      3.13 324 (3.08 339)
    hedge                         0.19  18.2 (1.5), 2 rounds        0.35  27.5      2.67 323 (2.41 336)
    hedge --objective min_margin  1.07  18.1 (1.5), 19 rounds       1.11  27.8      3.29 324 (3.34 339)
    allocate                      0.09  18.8 (1.5)                  0.11  24.5      1.43 271 (1.50 277)

The peak of every command is the set's pricing (the matrix and its moves, 12.2 + 6.1 MiB); the
solve stays about there.

    .venv/bin/python benchmarks/big_books.py [--sizes 10000,100000,200000] [--venues grid,es]
        [--demo-scenarios 400000]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASE = """format: marginopt/1
description: a big book of options on one venue
base_currency: USD
valuation_date: 2026-11-20
market: {prices: {BTC: 91000, ETH: 3100, USDC: 1.0}, vols: {BTC: 0.55, ETH: 0.65}, rate: 0.04}
instruments: instruments.csv
positions: positions.csv
hedges: hedges.csv
venues:
  pm:
    initial_margin:
      kind: sum
      terms:
INITIAL
    maintenance_margin: {fraction_of_initial: 0.75}
    collateral: {USDC: {haircut: 0.0}}
    posted: {USDC: 1000000000}
objective: min_margin
"""
VENUES = {
    # Deribit-style portfolio margin: a scan grid per underlying and a short-option minimum.
    "grid": """        - kind: scenario_max
          name: scan
          scenarios:
            kind: grid
            price_moves: [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16]
            vol_moves: [-0.25, 0.0, 0.45]
            vol_scaling: {reference_days: 30, power: 0.3, floor_days: 1}
            min_vol: 0.05
            extended:
              - {price_move: -0.33, vol_move: 0.45, weight: 0.5}
              - {price_move: 0.33, vol_move: 0.45, weight: 0.5}
        - {kind: short_option_minimum, per_contract: 0.005}""",
    # A clearing-house style ES over 2,000 Monte Carlo scenarios, plus a rate on notional.
    "es": """        - kind: expected_shortfall
          alpha: 0.975
          scenarios: {kind: monte_carlo, n: 2000, seed: 1}
        - {kind: fixed_rate, rate: 0.01}""",
}
SPOT = {"BTC": 91000.0, "ETH": 3100.0}
ROOT = Path(__file__).resolve().parents[1]
MEMORY_GIB = 12  # address-space cap of each command run
BEFORE = "5f18404"  # the last commit before the held book entered programs as constants (issue 15)
EXPIRIES = [7 * k for k in range(1, 25)]  # weekly to about half a year


def write_case(n: int, folder: Path, venue: str = "grid", seed: int = 0) -> Path:
    """``n`` distinct options, each held once; the hedges trade instruments of the book's underlyings."""
    rng = np.random.default_rng(seed)
    val = dt.date(2026, 11, 20)
    per_line = -(-n // (2 * len(EXPIRIES) * 2))  # strikes per (underlying, expiry, right)
    inst = [("BTC-PERP", "perpetual", "BTC", "", "", ""), ("ETH-PERP", "perpetual", "ETH", "", "", "")]
    options: list[str] = []
    for u, s in SPOT.items():
        for d in EXPIRIES:
            e = (val + dt.timedelta(days=d)).isoformat()
            inst.append((f"{u}-F{d}", "future", u, e, "", ""))
            for right in ("call", "put"):
                for k in np.linspace(0.4, 2.5, per_line):
                    iid = f"{u}-{d}-{k * s:.2f}-{right[0].upper()}"
                    inst.append((iid, "option", u, e, f"{k * s:.2f}", right))
                    options.append(iid)
    held = rng.choice(len(options), n, replace=False)
    with open(folder / "instruments.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "kind", "underlying", "expiry", "strike", "right"])
        w.writerows(inst)
    with open(folder / "positions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["venue", "instrument", "quantity"])
        for j in held:
            w.writerow(["pm", options[j], float(rng.integers(-20, 21) or 1)])
    hedges = ["BTC-PERP", "ETH-PERP"] + [f"{u}-F{d}" for u in SPOT for d in (7, 28, 84)]
    hedges += [options[j] for j in rng.choice(len(options), 12, replace=False)]
    with open(folder / "hedges.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["venue", "instrument", "max_buy", "max_sell", "cost_per_unit"])
        for h in hedges:
            w.writerow(["pm", h, 50, 50, 10.0])
    (folder / "case.yaml").write_text(CASE.replace("INITIAL", VENUES[venue]))
    return folder / "case.yaml"


def run(args: list[str], timeout: float, src: Path | None = None) -> tuple[float, float, dict | None, str]:
    """Wall time, peak MiB of the child, its JSON (or None) and a note; ``src``: a checkout of
    marginopt to run instead of the installed one (put first on PYTHONPATH)."""
    marginopt = str(Path(sys.executable).with_name("marginopt"))
    # The child's address space is capped (MEMORY_GIB): the code before this work asked for 24 GB and
    # more on these cases, which would take the machine's memory from everything else on it.
    code = ("import resource, subprocess, sys, json\n"
            f"cap = {MEMORY_GIB} << 30\n"
            "limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True, preexec_fn=limit)\n"
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
            "print(json.dumps({'rc': p.returncode, 'peak': peak, 'out': p.stdout, 'err': p.stderr[-400:]}))")
    t0 = time.perf_counter()
    try:
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.run([sys.executable, "-c", code, marginopt, *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return timeout, float("nan"), None, f"not finished in {timeout:.0f} s"
    wall = time.perf_counter() - t0
    res = json.loads(proc.stdout)
    if res["rc"] != 0:
        return wall, res["peak"], None, f"exit {res['rc']}: {res['err'].strip().splitlines()[-1] if res['err'].strip() else ''}"
    return wall, res["peak"], json.loads(res["out"]), ""


def demo_mc(folder: Path, n: int) -> Path:
    """The demo case with ``cme_es`` on ``n`` Monte Carlo scenarios instead of 500 historical ones."""
    import shutil

    from marginopt import demo_case_path

    demo = demo_case_path().parent
    for f in demo.glob("*.csv"):
        shutil.copy(f, folder / f.name)
    text = demo_case_path().read_text()
    old = "scenarios: {kind: historical, window: 500, horizon_days: 2}"
    assert old in text, "the demo's cme_es scenario set has changed"
    (folder / "case.yaml").write_text(text.replace(old, f"scenarios: {{kind: monte_carlo, n: {n}, seed: 7}}"))
    return folder / "case.yaml"


# One plan command in a process of its own, run twice: the first run warms the process (imports, compiled
# kernels, the solvers' libraries); then the RSS high-water mark is reset (/proc/self/clear_refs) and the
# command, case load included, runs again. Its peak above the warmed process is VmHWM less the RSS before
# it. glibc's malloc runs with a fixed mmap threshold, so every array over 128 KiB is mapped on its own and
# returned when freed: the RSS follows the arrays alive, not what the first run left in the heap.
ABOVE_WARM = """
import gc, json, sys, time
from marginopt import load_case, optimize
path, mode, objective = sys.argv[1], sys.argv[2], sys.argv[3] or None
def status(key):
    return next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith(key))
def once():
    t = time.perf_counter()
    result = optimize(load_case(path), objective=objective, mode=mode)
    return time.perf_counter() - t, result
once()
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
seconds, result = once()
cert = result.certificate or {}
print(json.dumps({"s": seconds, "above": status("VmHWM") - base, "status": result.status, "rounds": cert.get("rounds")}))
"""


def above_warm(case: str, mode: str, objective: str | None, timeout: float, src: Path | None = None) -> tuple[float, float, str]:
    """Seconds and peak MiB above the warmed process of one plan command (``ABOVE_WARM``), and a note."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    if src is not None:
        env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        # Run from the case's folder: ``-c`` puts the working directory first on sys.path, before PYTHONPATH.
        proc = subprocess.run([sys.executable, "-c", ABOVE_WARM, case, mode, objective or ""], capture_output=True,
                              text=True, timeout=2 * timeout, env=env, cwd=Path(case).parent)
    except subprocess.TimeoutExpired:
        return float("nan"), float("nan"), "not finished"
    if proc.returncode != 0:
        return float("nan"), float("nan"), (proc.stderr.strip().splitlines() or ["failed"])[-1][:80]
    res = json.loads(proc.stdout)
    return res["s"], res["above"], f"{res['status']}" + (f", {res['rounds']} rounds" if res["rounds"] else "")


def _demo_rows(n: int, tmp: Path, timeout: float, before: Path | None) -> None:
    folder = tmp / f"demo{n}"
    folder.mkdir()
    case = str(demo_mc(folder, n))
    matrices = n * 4 * 8 / 2**20
    print(f"\nthe demo, cme_es on {n:,} Monte Carlo scenarios (4 instruments there: {matrices:.1f} MiB of losses)")
    print(f"{'command':<34}{'s':>7}{'MiB':>6}  {'in process: s':>13}{'MiB above':>10}{'x':>5}  result"
          + (f"   | at {before.name}: s, MiB; in process: s, MiB above" if before else ""))
    for args in (["margin"], ["optimize"], ["optimize", "--objective", "min_margin"], ["hedge"],
                 ["hedge", "--objective", "min_margin"], ["allocate"]):
        wall, peak, doc, note = run([args[0], case, *args[1:], "--format", "json"], timeout)
        if note or doc is None:
            res = note
        elif "status" in doc:
            res = f"{doc['status']}, objective {doc['objective_value']:,.2f}" if doc["objective_value"] is not None else doc["status"]
        else:
            res = f"total initial margin {doc['total_initial_margin']:,.2f}"
        objective = args[2] if len(args) > 2 else None
        if args[0] == "margin":
            in_process = " " * 34
        else:
            w_s, w_mib, w_note = above_warm(case, args[0], objective, timeout)
            in_process = f"{w_s:>13.2f}{w_mib:>10.1f}{w_mib / matrices:>5.1f}  "
            res += f" ({w_note})"
        line = f"{' '.join(args):<34}{wall:>7.2f}{peak:>6,.0f}  {in_process}{res}"
        if before is not None and args[0] != "margin":
            b_wall, b_peak, _, b_note = run([args[0], case, *args[1:], "--format", "json"], timeout, before)
            bw_s, bw_mib, _ = above_warm(case, args[0], objective, timeout, before)
            line += f"   | {b_wall:>7.2f} {b_peak:>6,.0f}; {bw_s:>6.2f} {bw_mib:>6.1f} {b_note}"
        print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,200000")
    ap.add_argument("--venues", default="grid,es")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--demo-scenarios", type=int, default=400_000, help="the Monte Carlo demo's scenarios (0: skip)")
    ap.add_argument("--before", default=BEFORE,
                    help="also hedge with this revision (a git worktree; '' for none); default %(default)s")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory() as tmp:
        before = None
        if args.before:
            before = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
                           check=True, capture_output=True)
        try:
            print(f"{'venue':<6}{'held options':>13} {'margin s':>9} {'MiB':>6} {'hedge s':>8} {'MiB':>6}"
                  f"   {'margin before -> after (USD)':>30}   hedge" + (f"   | hedge at {args.before}: s, MiB" if before else ""))
            for venue in args.venues.split(","):
                for n in (int(x) for x in args.sizes.split(",") if int(x) > 0):  # --sizes 0: the demo rows only
                    folder = Path(tmp) / f"{venue}{n}"
                    folder.mkdir()
                    _row(venue, n, write_case(n, folder, venue), args.timeout, before)
            if args.demo_scenarios:
                _demo_rows(args.demo_scenarios, Path(tmp), args.timeout, before)
        finally:
            if before is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False,
                               capture_output=True)


def _row(venue: str, n: int, case: Path, timeout: float, before: Path | None) -> None:
    m_wall, m_peak, m_doc, m_note = run(["margin", str(case), "--format", "json"], timeout)
    h_wall, h_peak, h_doc, h_note = run(["hedge", str(case), "--format", "json"], timeout)
    was = m_doc["total_initial_margin"] if m_doc else float("nan")
    after = sum(v["after"] for v in h_doc["margins"]) if h_doc else float("nan")
    if h_doc:
        h_note = f"{h_doc['status']}, verified" if h_doc["verification"]["passed"] else f"{h_doc['status']}, NOT verified"
    line = (f"{venue:<6}{n:>13,} {m_wall:>9.2f} {m_peak:>6,.0f} {h_wall:>8.2f} {h_peak:>6,.0f}   "
            f"{was:>14,.0f} -> {after:>12,.0f}   {m_note or h_note}")
    if before is not None:
        b_wall, b_peak, b_doc, b_note = run(["hedge", str(case), "--format", "json"], timeout, before)
        same = ("same plan margin" if b_doc and abs(sum(v["after"] for v in b_doc["margins"]) - after) <= 1e-6 * max(1.0, after)
                else b_note or "a different margin")
        line += f"   | {b_wall:>7.2f} {b_peak:>6,.0f}  {same}"
    print(line, flush=True)


if __name__ == "__main__":
    main()
