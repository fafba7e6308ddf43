"""The package stays typed (mypy) and lint-clean (ruff), as docs/STYLE.md asks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_is_clean():
    proc = _run("mypy", "marginopt")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    proc = _run("ruff", "check", "marginopt", "tests", "benchmarks", "scripts")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_strict_where_backends_and_solvers_live():
    """Issue 16: optimizer/ and solvers/ are checked with every flag of mypy --strict that can be set
    per module (the rest of the package may follow); test_mypy_is_clean then holds them to it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    strict = next(o for o in config["overrides"] if "marginopt.optimizer.*" in o["module"])
    assert "marginopt.solvers.*" in strict["module"]
    for flag in ("disallow_any_generics", "disallow_subclassing_any", "disallow_untyped_calls", "disallow_untyped_defs",
                 "disallow_incomplete_defs", "check_untyped_defs", "disallow_untyped_decorators", "warn_unused_ignores",
                 "warn_return_any", "no_implicit_reexport", "strict_equality", "extra_checks"):
        assert strict.get(flag) is True, flag
    assert config.get("warn_redundant_casts") is True
