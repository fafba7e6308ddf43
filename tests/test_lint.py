"""The package stays typed (mypy) and lint-clean (ruff), as STYLE.md asks."""

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
