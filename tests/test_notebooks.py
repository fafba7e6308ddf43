"""The notebooks run top to bottom on the demo, say what they claim, and are committed without outputs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebooks are run with nbclient and nbformat (the test extra)")
nbclient = pytest.importorskip("nbclient", reason="the notebooks are run with nbclient and nbformat (the test extra)")
pytest.importorskip("ipykernel", reason="the notebooks need a Python kernel (ipykernel, the test extra)")
pytest.importorskip("matplotlib", reason="the notebooks draw charts (the plots extra)")

FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ("desk_hedge", "treasury_plan")


def execute(name: str, workdir: Path) -> list[str]:
    """Run a notebook in a fresh kernel of this interpreter; each code cell's printed text."""
    nb = nbformat.read(FOLDER / f"{name}.ipynb", as_version=4)
    # jupyter_client starts a kernelspec whose command is `python` with sys.executable, so the
    # kernel runs in the interpreter (and virtual environment) running the tests: checked last.
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('kernel prefix:', sys.prefix)"))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"]
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        text += "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs if o.output_type == "execute_result")
        out.append(text)
    assert out[-1].strip() == f"kernel prefix: {sys.prefix}"
    return out[:-1]


def money(pattern: str, text: str) -> tuple[float, ...]:
    found = re.search(pattern, text)
    assert found, (pattern, text)
    return tuple(float(g.replace(",", "")) for g in found.groups())


def test_desk_hedge_notebook_runs_and_the_plan_lowers_margin(tmp_path):
    text = "\n".join(execute("desk_hedge", tmp_path))
    assert "optimal - verification passed: True" in text
    before, after = money(r"total initial margin: before ([\d,]+), after ([\d,]+)", text)
    assert after < before
    incremental, = money(r"deribit_pm: [\d,]+ -> [\d,]+ \(([-+][\d,]+) USD\)", text)
    assert incremental < 0  # selling BTC perps offsets the desk's short puts
    assert "saves in the plan" in text


def test_treasury_notebook_runs_covers_every_venue_and_resolves_after_a_move(tmp_path):
    text = "\n".join(execute("treasury_plan", tmp_path))
    assert text.count("optimal - verification passed: True") == 2  # the plan and the warm re-solve
    cost, moved = money(r"yearly cost: ([\d,]+) -> ([\d,]+) USD", text)
    assert cost > 0 and moved > 0 and moved != cost
    assert "shadow price" in text


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_are_stripped(name):
    nb = nbformat.read(FOLDER / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert all(c.cell_type == "markdown" or "ExecuteTime" not in c.metadata for c in nb.cells)
