"""The run history at size: 10,000 stored runs listed from the embedded SQLite file (target: under a second).

Fills a new history file with ``--runs`` runs (by default 10,000: the demo's margin run and a hedge plan of
docs/examples/lots.yaml in turns, a minute apart, each with its margins per venue and component and its whole
JSON answer, one transaction), then times, each the median of ``--repeat`` (min-max beside it):

1. ``Store.list(limit=N)``: opening the file (schema check included) and reading all N summaries;
2. ``marginopt history --limit N --format json``: the command's wall time, interpreter start-up included;
3. ``marginopt history --limit N``: the same as the aligned text table, to a pipe;
4. ``Store.get``: one run with everything stored for it (the demo's case document, ~70 kB).

    .venv/bin/python benchmarks/history.py [--runs 10000] [--repeat 5] [--db URL]

With ``--db postgresql://...`` (an empty, migrated database) the same is measured on a server.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0


def _timed(work: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def _line(what: str, figures: tuple[float, float, float]) -> str:
    med, lo, hi = figures
    return f"{what:<58} {med:7.3f} s  ({lo:.3f}-{hi:.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default=None, help="A database URL (default: a new SQLite file in a temporary folder).")
    args = parser.parse_args()

    import marginopt
    from marginopt.history import Store, new_run, resolve
    from marginopt.models import load_case, margin_report
    from marginopt.models.document import case_document
    from marginopt.optimizer import optimize

    folder = tempfile.mkdtemp(prefix="marginopt-history-bench-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    db = args.db or str(Path(folder) / "history.db")
    demo, lots = marginopt.demo_case_path(), ROOT / "docs" / "examples" / "lots.yaml"
    lots_case = load_case(lots)
    templates = [
        new_run(case_document(demo), margin_report(load_case(demo)), "margin", "cli", "marginopt margin demo --store"),
        new_run(case_document(lots), margin_report(lots_case), "hedge", "cli", "marginopt hedge lots.yaml --store",
                optimize(lots_case, mode="hedge").to_dict()),
    ]
    start = dt.datetime(2026, 1, 1)
    store = Store(resolve(db), migrate=True)
    t = time.perf_counter()
    store.add_many(dataclasses.replace(templates[k % 2], created_at=start + dt.timedelta(minutes=k)) for k in range(args.runs))
    filled = time.perf_counter() - t
    size = Path(db).stat().st_size / 2**20 if args.db is None else float("nan")
    print(f"{args.runs:,} runs stored in {filled:.2f} s (one transaction){'' if args.db else f'; file {size:.1f} MiB'}; "
          f"{store.url}")
    store.close()

    def listing() -> None:
        s = Store(resolve(db))
        assert len(s.list(limit=args.runs)) == args.runs
        s.close()

    env = {**os.environ, "MARGINOPT_DB": db}
    cmd = [sys.executable, "-m", "marginopt", "history", "--limit", str(args.runs)]

    def command(*extra: str) -> Callable[[], None]:
        return lambda: subprocess.run([*cmd, *extra], env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)

    reader = Store(resolve(db))
    listed = _timed(listing, args.repeat)
    as_json = _timed(command("--format", "json"), args.repeat)
    as_table = _timed(command(), args.repeat)
    one = _timed(lambda: reader.get(args.runs // 2), args.repeat)
    print(f"median of {args.repeat} (min-max); python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(_line(f"Store.list(limit={args.runs:,}), open included", listed))
    print(_line(f"marginopt history --limit {args.runs:,} --format json", as_json))
    print(_line(f"marginopt history --limit {args.runs:,} (table)", as_table))
    print(_line("Store.get(one run)", one))
    ok = listed[0] < TARGET_S and as_json[0] < TARGET_S
    print(f"{'PASS' if ok else 'FAIL'}  {args.runs:,} runs listed in under {TARGET_S:g} s (in process and as the JSON command)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
