"""What a command imports before it works: --help and --version load no solver or data library,
and the margin path no cvxpy, numba or pandas (their import times are in benchmarks/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("cvxpy", "pandas", "numba", "scipy", "pyarrow", "dask", "distributed", "fastapi", "uvicorn", "matplotlib")


def _imported(code: str) -> set[str]:
    """Top-level packages among ``HEAVY`` that a fresh interpreter has imported after ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.splitlines()[-1])) & set(HEAVY)


def test_the_command_line_imports_no_heavy_library_before_a_command_runs():
    assert _imported("import marginopt.cli.main") == set()
    assert _imported("import marginopt") == set()


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["margin", "--help"]])
def test_version_and_help_import_no_heavy_library(args):
    code = f"import sys\nsys.argv = ['marginopt', *{args!r}]\nfrom marginopt.cli.main import cli\ntry:\n    cli()\nexcept SystemExit:\n    pass"
    assert _imported(code) == set()


def test_the_margin_path_imports_neither_cvxpy_nor_numba_nor_pandas():
    code = ("import marginopt.models as m\nfrom marginopt import demo_case_path\n"
            "r = m.margin_report(m.load_case(demo_case_path()))\nassert r.total_initial_margin > 0")
    assert _imported(code) & {"cvxpy", "numba", "pandas", "pyarrow", "dask", "fastapi", "matplotlib"} == set()


def test_version_is_the_packages():
    from importlib.metadata import version

    import marginopt

    code = "import sys\nsys.argv = ['marginopt', '--version']\nfrom marginopt.cli.main import main\nmain()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith(version("marginopt")) and marginopt.__version__ == version("marginopt")
