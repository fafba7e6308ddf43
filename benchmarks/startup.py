"""Fixed costs before any work: imports, case loading, and short commands, before and after.

Measured for the code of this checkout ("after") and of a baseline revision ("before",
default BEFORE below: the last commit before the start-up work), in turns on the same machine
and interpreter: the baseline is checked out into a temporary git worktree and put first on
PYTHONPATH, so both run with the same installed dependencies.

1. ``import marginopt`` and ``import marginopt.models`` (what ``marginopt margin`` needs).
2. Loading the 200-asset x 30-venue treasury case (benchmarks/optimize.py's generator).
3. Wall time of ``marginopt --version``, ``--help`` and ``margin`` on the demo (``--format json``),
   numba's cache warm (one unmeasured run first).
4. The import-time budget, from ``python -X importtime``: what ``--help`` imports in all, and
   that it imports none of the heavy libraries (cvxpy, pandas, numba, scipy, pyarrow, dask,
   fastapi); and the same heavy-library check for ``marginopt.models`` (no cvxpy, pandas, numba).
   The script exits 1 when a budget is broken.

Each figure is the median of --runs processes (min and max beside it).

    .venv/bin/python benchmarks/startup.py [--runs 7] [--before REV | --no-before]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "f22db31"  # the last commit before issue 14 (start-up and fixed costs)
HELP_BUDGET_S = 0.5
MARGIN_BUDGET_S = 1.5
LOAD_BUDGET_S = 0.5
HEAVY = ("cvxpy", "pandas", "numba", "scipy", "pyarrow", "dask", "distributed", "fastapi", "uvicorn", "matplotlib")
HEAVY_FOR_MARGIN = ("cvxpy", "pandas", "numba", "dask", "fastapi", "matplotlib")

CLI = "import sys; from marginopt.cli.main import main; sys.argv[0] = 'marginopt'; main()"
TIMED = ("import time, sys; t = time.perf_counter(); {stmt}; "
         "sys.stdout.write(repr(time.perf_counter() - t))")
LOAD = ("import sys, tempfile, time; from pathlib import Path; sys.path.insert(0, {bench!r}); "
        "from optimize import treasury_case; import marginopt.models as m; "
        "d = tempfile.mkdtemp(); p = treasury_case(200, 30, 1.0, Path(d)); "
        "t = time.perf_counter(); m.load_case(p); sys.stdout.write(repr(time.perf_counter() - t))")


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _wall(src: Path, args: list[str]) -> float:
    """Wall seconds of one python process, start-up included."""
    import time

    t = time.perf_counter()
    subprocess.run([sys.executable, *args], env=_env(src), cwd=src, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def _inner(src: Path, code: str) -> float:
    """Seconds a statement reports for itself, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", code], env=_env(src), cwd=src, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.3f} s  ({min(xs):.3f}-{max(xs):.3f})"


def _imports(src: Path, code: str) -> tuple[float, set[str]]:
    """Cumulative import seconds of everything ``code`` imports, and the top-level packages it imports."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=_env(src), cwd=src,
                         capture_output=True, text=True, check=False).stderr
    total, tops = 0.0, set()
    for line in err.splitlines():  # "import time: <self us> | <cumulative us> | <module>"
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        total += int(fields[0]) / 1e6
        tops.add(fields[2].strip().split(".")[0])
    return total, tops


def measure(src: Path, runs: int, demo: Path) -> dict[str, list[float]]:
    bench = str(ROOT / "benchmarks")
    cases = {
        "import marginopt": lambda: _inner(src, TIMED.format(stmt="import marginopt")),
        "import marginopt.models": lambda: _inner(src, TIMED.format(stmt="import marginopt.models")),
        "treasury case load (200 x 30)": lambda: _inner(src, LOAD.format(bench=bench)),
        "marginopt --version": lambda: _wall(src, ["-c", CLI, "--version"]),
        "marginopt --help": lambda: _wall(src, ["-c", CLI, "--help"]),
        "marginopt margin demo --format json": lambda: _wall(src, ["-c", CLI, "margin", str(demo), "--format", "json"]),
    }
    _wall(src, ["-c", CLI, "margin", str(demo), "--format", "json"])  # numba's cache warm, .pyc written
    return {name: [fn() for _ in range(runs)] for name, fn in cases.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--before", default=BEFORE, help="baseline revision (default %(default)s)")
    ap.add_argument("--no-before", action="store_true", help="measure this checkout only")
    args = ap.parse_args()
    demo = ROOT / "marginopt" / "data" / "demo" / "case.yaml"

    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="marginopt-before-") as tmp:
        if not args.no_before:
            worktree = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.before],
                           check=True, capture_output=True)
            try:
                results[f"before ({args.before})"] = measure(worktree, args.runs, demo)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False,
                               capture_output=True)
        results["after (this checkout)"] = measure(ROOT, args.runs, demo)

    names = list(next(iter(results.values())))
    print(f"median of {args.runs} runs (min-max); python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'':<38}" + "".join(f"{label:>30}" for label in results))
    for name in names:
        print(f"{name:<38}" + "".join(f"{_stats(r[name]):>30}" for r in results.values()))

    after = results["after (this checkout)"]
    help_s, help_tops = _imports(ROOT, "import marginopt.cli.main")
    _, model_tops = _imports(ROOT, "import marginopt.models")
    checks = [
        (f"--help imports in {help_s:.3f} s of import time", help_s < HELP_BUDGET_S),
        ("--help imports none of " + ", ".join(HEAVY) + (f" (imports {sorted(help_tops & set(HEAVY))})"
                                                          if help_tops & set(HEAVY) else ""), not help_tops & set(HEAVY)),
        ("import marginopt.models imports none of " + ", ".join(HEAVY_FOR_MARGIN)
         + (f" (imports {sorted(model_tops & set(HEAVY_FOR_MARGIN))})" if model_tops & set(HEAVY_FOR_MARGIN) else ""),
         not model_tops & set(HEAVY_FOR_MARGIN)),
        (f"--version and --help under {HELP_BUDGET_S} s", max(statistics.median(after["marginopt --version"]),
                                                              statistics.median(after["marginopt --help"])) < HELP_BUDGET_S),
        (f"margin on the demo under {MARGIN_BUDGET_S} s", statistics.median(after["marginopt margin demo --format json"])
         < MARGIN_BUDGET_S),
        (f"treasury case load under {LOAD_BUDGET_S} s", statistics.median(after["treasury case load (200 x 30)"]) < LOAD_BUDGET_S),
    ]
    print()
    for what, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
