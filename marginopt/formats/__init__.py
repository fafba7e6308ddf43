"""Outside formats: files a venue writes (a margin snapshot, an account export) that marginopt reads.

A format has a name (the command line's ``--from`` value), a line saying what it is, and
where its code is: a reader that prices a snapshot (``margin``), a writer that makes a
marginopt case from one (``write_case``), and the modules that register the margin
measure kinds reading its files in a case. It also names the preset family whose venues
read such a file (``family``), so the service can say that a request cannot use it.

Every module of this package defines ``FORMATS``, a tuple of ``OutsideFormat``; the
registry finds the modules by itself, as ``marginopt.presets`` finds presets, so a format
is added by one file here and its code beside the venue's model (``marginopt/models/<venue>/``).
The declarations are data: code is named as ``"module:function"`` and imported when a
format is used, so listing the formats (``marginopt --help``) loads nothing heavy.

An *account* format (``ACCOUNTS``, a tuple of ``AccountFormat``) is a venue account's export
(positions, balances, the instruments' terms and marks) that ``marginopt import --from <name>``
turns into a case, and, where the format is a client's, fetches live (``--exchange``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from marginopt.errors import CaseError

if TYPE_CHECKING:
    from marginopt.models.report import MarginReport
    from marginopt.typing import FloatArray


@dataclass(frozen=True)
class SnapshotMargin:
    """What a format's reader makes of a snapshot, for ``marginopt margin SNAPSHOT --from <format>``.

    ``report`` is the margin report (table, CSV, HTML), ``document`` the JSON printed for
    ``--format json`` (the report's JSON with the format's own fields), ``summary`` a line
    printed under the table, ``scenarios`` each venue's scenario labels and losses at the
    snapshot's book (the HTML report shows the largest).
    """

    title: str
    report: MarginReport
    document: dict[str, Any]
    summary: str
    scenarios: Mapping[str, tuple[Sequence[str], FloatArray]]


@dataclass(frozen=True)
class CaseOption:
    """A keyword argument of a format's ``write_case``, offered on the command line as
    ``--<name with dashes>``: a flag for a ``bool`` default, a number (at least ``minimum``)
    for a ``float`` default, text otherwise."""

    name: str
    default: str | float | bool
    help: str
    minimum: float | None = None


@dataclass(frozen=True)
class OutsideFormat:
    """One outside format and where its code is (each ``"module:function"``, imported on use).

    ``reader(path) -> SnapshotMargin`` prices a snapshot as the venue does;
    ``case_writer(snapshot, out, **options) -> Path`` writes a case (``out/case.yaml`` and
    its tables) that runs the snapshot's account at one venue, its keyword arguments
    offered by ``case_command`` as ``case_options``; ``measures`` maps each margin measure
    kind that reads the format's files to the module registering it; ``family`` is the
    preset family whose venues read such a file.
    """

    name: str
    description: str
    family: str
    reader: str
    case_writer: str
    case_command: str
    case_help: str
    case_options: tuple[CaseOption, ...] = ()
    measures: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def margin(self, path: Path) -> SnapshotMargin:
        """The snapshot's margin as the venue computes it."""
        result: SnapshotMargin = _resolve(self.reader)(path)
        return result

    def write_case(self, snapshot: Path, out: Path, **options: Any) -> Path:
        """Write a marginopt case from the snapshot into folder ``out``; the case file's path."""
        path: Path = _resolve(self.case_writer)(snapshot, out, **options)
        return path


@dataclass(frozen=True)
class AccountFormat:
    """A venue account's export that ``marginopt import`` turns into a case (each ``"module:function"``,
    imported on use).

    ``importer(files, out, **options) -> ImportResult`` writes the case from saved exports;
    ``fetcher(exchange, **options) -> payload`` fetches one account live (credentials from the
    environment), the payload the importer reads; ``extra`` names the optional dependencies it needs
    (``pip install marginopt[<extra>]``).
    """

    name: str
    description: str
    importer: str
    fetcher: str
    extra: str

    def import_files(self, files: Sequence[Path], out: Path, **options: Any) -> Any:
        """Write a case into ``out`` from the saved exports ``files``; what was imported and skipped."""
        return _resolve(self.importer)(files, out, **options)

    def fetch(self, exchange: str, **options: Any) -> Any:
        """One account fetched live from ``exchange``, as the importer reads a saved export."""
        return _resolve(self.fetcher)(exchange, **options)


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


def _load() -> tuple[dict[str, OutsideFormat], dict[str, AccountFormat]]:
    formats: dict[str, OutsideFormat] = {}
    accounts: dict[str, AccountFormat] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for fmt in getattr(module, "FORMATS", ()):
            if fmt.name in formats or fmt.name == "case":
                raise RuntimeError(f"outside format {fmt.name} defined twice or named 'case' ({info.name})")
            formats[fmt.name] = fmt
        for account in getattr(module, "ACCOUNTS", ()):
            if account.name in accounts:
                raise RuntimeError(f"account format {account.name} defined twice ({info.name})")
            accounts[account.name] = account
    for key in ("family", "case_command"):
        values = [getattr(f, key) for f in formats.values()]
        if len(set(values)) != len(values):
            raise RuntimeError(f"two outside formats share a {key}: {', '.join(sorted(values))}")
    kinds = [kind for f in formats.values() for kind in f.measures]
    if len(set(kinds)) != len(kinds):
        raise RuntimeError(f"two outside formats register the same measure kind: {', '.join(sorted(kinds))}")
    return formats, accounts


_FORMATS, _ACCOUNTS = _load()


def format_names() -> tuple[str, ...]:
    """The formats' names, as ``--from`` takes them."""
    return tuple(_FORMATS)


def formats() -> tuple[OutsideFormat, ...]:
    return tuple(_FORMATS.values())


def get_format(name: str) -> OutsideFormat:
    if name not in _FORMATS:
        raise CaseError(None, "format", f"one of {', '.join(_FORMATS)}", name)
    return _FORMATS[name]


def format_of_family(family: str) -> OutsideFormat | None:
    """The format whose files a preset family's venues read (they need a file), or None."""
    return next((f for f in _FORMATS.values() if f.family == family), None)


def measure_kinds() -> tuple[str, ...]:
    """The margin measure kinds that read an outside format's files."""
    return tuple(kind for f in _FORMATS.values() for kind in f.measures)


def measure_module(kind: str) -> str | None:
    """The module that registers measure ``kind`` when imported, for a kind an outside format supplies."""
    return next((f.measures[kind] for f in _FORMATS.values() if kind in f.measures), None)


def account_formats() -> tuple[AccountFormat, ...]:
    """The account formats, as ``marginopt import --from`` takes them."""
    return tuple(_ACCOUNTS.values())


def get_account_format(name: str) -> AccountFormat:
    if name not in _ACCOUNTS:
        raise CaseError(None, "from", f"one of {', '.join(_ACCOUNTS)}", name)
    return _ACCOUNTS[name]


__all__ = ["AccountFormat", "CaseOption", "OutsideFormat", "SnapshotMargin", "account_formats", "format_names",
           "format_of_family", "formats", "get_account_format", "get_format", "measure_kinds", "measure_module"]
