"""Keeping what solver libraries print off standard output, for the few that offer no option.

Every solver is silenced at its source where the library allows it (HiGHS's ``output_flag``
before its first call, in ``solvers.highs``; ``verbose=False`` for cvxpy's OSQP, Clarabel and
ECOS and for OSQP called directly). One path has no such option: cvxpy's HiGHS interface builds
``highspy.Highs()`` itself (twice per solve), and from highspy 1.16 that constructor writes the
"Running HiGHS ... Copyright" banner before any option can be passed. Only there is file
descriptor 1 pointed at /dev/null for the duration of the call (``guarded_stdout``).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class _ProcessSetting:
    """A process-wide setting (a file descriptor, the warning filters) shared by threads.

    Both belong to the process, not the thread: when solves run on several threads (the HTTP
    service), the first to enter applies the setting and the last to leave restores it. Nested
    save/restore per thread would let one thread "restore" another's /dev/null, losing stdout
    for good.
    """

    def __init__(self, apply: Callable[[], Callable[[], None]]) -> None:
        self._apply = apply  # applies the setting, returns how to undo it
        self._lock = threading.Lock()
        self._depth = 0
        self._undo: Callable[[], None] | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._undo = self._apply()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._undo is not None:
                    undo, self._undo = self._undo, None
                    undo()


def _stdout_to_devnull() -> Callable[[], None]:
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (embedded interpreter): nothing to protect
        return lambda: None
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
    finally:
        os.close(devnull)

    def restore() -> None:
        os.dup2(saved, 1)
        os.close(saved)

    return restore


def _ignore_warnings() -> Callable[[], None]:
    caught = warnings.catch_warnings()
    caught.__enter__()
    warnings.simplefilter("ignore")
    return lambda: caught.__exit__(None, None, None)


guarded_stdout = _ProcessSetting(_stdout_to_devnull)
"""File descriptor 1 at /dev/null while inside: only around a library call that offers no option to keep quiet."""

ignored_warnings = _ProcessSetting(_ignore_warnings)
"""Python warnings ignored while inside (a solver's status says what matters)."""
