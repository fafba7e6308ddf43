"""One exception family for marginopt.

Every error a user can cause says where (file, row or line, field) and what was
expected, so it can be fixed without reading the code. Messages name what to change in
the case or the call (a field, an argument), never a command-line flag: the CLI adds the
flag where one is the remedy (``argument``).

    MarginoptError
    ├── CaseError              a case's input: file, row or line, field, what was expected
    ├── ArgumentError          a malformed argument of a call (also a ValueError)
    ├── NotFoundError          a name looked up is not there: a preset, a report's venue (also a KeyError)
    ├── ModelError             a model cannot be evaluated as asked
    ├── StoreError             the run history cannot be opened, read or written as asked
    ├── NonConvexMeasureError  a measure without a convex form asked for one
    └── OptimizationError      a plan cannot be computed as asked (objective, mode, backend)
        ├── SolverError        a solver unknown, not installed, or not for this problem class
        └── InfeasibleError    no plan satisfies the case; ``shortfalls`` say what is short

The command line exits 2 for each of them but ``InfeasibleError`` (3, as for an infeasible
plan) and answers none with a traceback; the service answers them 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MarginoptError(Exception):
    """Base class of every error marginopt raises on purpose."""


class MarginoptWarning(UserWarning):
    """A result is usable but something about it deserves attention."""


@dataclass(frozen=True)
class Location:
    """Where in the input a value came from.

    ``row`` is 1-based: the data row of a table (CSV: the header is line 1, so
    row r is on line r + 1), or the line of a YAML file.
    """

    file: Path | str | None = None
    row: int | None = None
    row_kind: str = "row"  # "row" for tables, "line" for YAML

    def describe(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(str(self.file))
        if self.row is not None:
            parts.append(f"{self.row_kind} {self.row}")
        return ", ".join(parts)


def _show(value: Any) -> str:
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalar: show 0, not np.int64(0)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def printable(text: str) -> str:
    """``text`` with each character that is not printable (a line break, NUL, U+001E) escaped as Python
    writes it: a key or file name from the input cannot split the message or hide part of it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class CaseError(MarginoptError):
    """Bad input in a case: names the file, row or line, field and what was expected."""

    _MISSING = object()

    def __init__(
        self,
        where: Location | None,
        field: str,
        expected: str,
        got: Any = _MISSING,
    ) -> None:
        self.where = where or Location()
        self.field = field
        self.expected = expected
        self.got = got
        head = self.where.describe()
        text = f"{head}: " if head else ""
        text += f"field '{field}': expected {expected}"
        if got is not CaseError._MISSING:
            text += f", got {_show(got)}"
        super().__init__(printable(text))

    def renamed(self, field: str) -> CaseError:
        """The same error about ``field``, the name the caller knows the value by (the CLI: a flag)."""
        return CaseError(self.where, field, self.expected, self.got)


class ArgumentError(MarginoptError, ValueError):
    """An argument of a call is malformed (a shape, a range, an option): the message names the
    argument and what it must be. Also a ``ValueError``, as Python's own checks of an argument are,
    so code that caught those still does."""


class NotFoundError(MarginoptError, KeyError):
    """A name looked up is not there (a venue preset, a venue of a report): the message names it
    and what there is. Also a ``KeyError``, as a failed lookup in a mapping is."""

    def __str__(self) -> str:
        return Exception.__str__(self)  # the message as written, not KeyError's repr of it


class ModelError(MarginoptError):
    """A model cannot be evaluated as asked (for example a shocked volatility <= 0)."""


class StoreError(MarginoptError):
    """The run history (``--db``) cannot be opened, migrated, read or written: the message names the
    store (its URL without a password) and what to do."""


class NonConvexMeasureError(MarginoptError):
    """A measure that is not convex was asked for its convex (cvxpy) form."""


class OptimizationError(MarginoptError):
    """A plan cannot be computed as asked: a backend or solver named for a problem it cannot
    hold, an objective or mode that does not exist, or no verified plan found
    (``OptimizationResult.raise_for_status``). The message says what to change in the case or call;
    ``argument`` names the argument of the call at fault (``solver``, ``objective``, ``mode``), if one is."""

    def __init__(self, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class SolverError(OptimizationError):
    """A solver is unknown, not installed, or cannot solve the problem's class."""


class InfeasibleError(OptimizationError):
    """No plan satisfies the case; ``shortfalls`` says what is short and by how much."""

    def __init__(self, message: str, shortfalls: tuple[tuple[str, float], ...] = ()) -> None:
        super().__init__(message)
        self.shortfalls = shortfalls
