"""Self-contained HTML reports (tables and inline SVG charts) of margin reports and plans.

``margin_html(report, case)`` and ``plan_html(result, case)`` return the page as text;
``write_report(path, text)`` writes it. The charts need the ``plots`` extra (matplotlib).
"""

from __future__ import annotations

from pathlib import Path

from marginopt.errors import CaseError
from marginopt.reports.charts import PlotsUnavailableError, require_plots
from marginopt.reports.html import margin_html, plan_html


def write_report(path: Path, text: str) -> None:
    """Write the page; a folder that does not exist or cannot be written is the user's input to fix
    (a ``CaseError`` about ``path``)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CaseError(None, "path", "a writable file in an existing folder", f"{path} ({exc.strerror})") from None


__all__ = ["PlotsUnavailableError", "margin_html", "plan_html", "require_plots", "write_report"]
