"""Names a package imports on first use, so importing it costs only what a caller touches.

    __getattr__, __dir__ = lazy(__name__, {"Case": "marginopt.models.case", ...})

Each name maps to the module that defines it (or to ``(module, attribute)`` where the
package exports it under another name); the first lookup imports it and keeps it on the
package, so later lookups never come back here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy(package: str, names: Mapping[str, str | tuple[str, str]],
         extra: Callable[[str], Any] | None = None) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; ``extra`` answers names outside ``names``
    (raising AttributeError for those it does not know either)."""

    def getattr_(name: str) -> Any:
        if name not in names:
            if extra is not None:
                return extra(name)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = names[name]
        module, attr = (target, name) if isinstance(target, str) else target
        value = getattr(importlib.import_module(module), attr)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return getattr_, dir_
