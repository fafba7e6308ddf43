"""A stored run as values: what ``Store.add`` writes and ``Store.get`` reads back, field for field.

``new_run`` builds one from what a command computed: the case document (``models/document.py``),
the margin report of the case as it is, and the command's JSON answer (a plan's, a health report's,
or the margin report's own). Everything is plain data (text, floats, dates, JSON-able mappings), so
two runs compare equal exactly when every stored value is the same.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marginopt.json_values import json_safe

if TYPE_CHECKING:  # listing runs reads no case: the case reader (numpy, yaml) is not imported for it
    from marginopt.models.document import CaseDocument

COMMANDS = ("margin", "optimize", "hedge", "allocate", "health")


@dataclass(frozen=True)
class VenueMarginRow:
    stage: str  # now: the case as it is; after: after the plan
    venue: str
    initial_margin: float
    maintenance_margin: float | None = None
    collateral_value: float | None = None
    excess: float | None = None
    worst_scenario: str | None = None


@dataclass(frozen=True)
class ComponentRow:
    venue: str
    component: str
    amount: float


@dataclass(frozen=True)
class HedgeRow:
    venue: str
    instrument: str
    quantity: float
    cost: float | None


@dataclass(frozen=True)
class AllocationRow:
    venue: str
    asset: str
    quantity: float
    value: float | None


@dataclass(frozen=True)
class StoredCase:
    fingerprint: str
    name: str
    source: str
    document: Mapping[str, Any]
    files: Mapping[str, str] = field(default_factory=dict)

    def as_document(self) -> CaseDocument:
        from pathlib import Path

        from marginopt.models.document import CaseDocument

        return CaseDocument(self.document, Path(self.source), self.files)


@dataclass(frozen=True)
class RunSummary:
    """A run as ``marginopt history`` lists it (the ``runs`` table alone)."""

    id: int
    created_at: dt.datetime
    command: str
    origin: str
    case_name: str
    case_fingerprint: str
    valuation_date: dt.date
    status: str
    total_initial_margin: float
    total_initial_margin_after: float | None
    objective_value: float | None
    verification_passed: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at.isoformat() + "Z", "command": self.command,
                "origin": self.origin, "case": self.case_name, "fingerprint": self.case_fingerprint,
                "valuation_date": self.valuation_date.isoformat(), "status": self.status,
                "total_initial_margin": self.total_initial_margin,
                "total_initial_margin_after": self.total_initial_margin_after,
                "objective_value": self.objective_value, "verification_passed": self.verification_passed}


@dataclass(frozen=True)
class Run:
    created_at: dt.datetime  # naive UTC, to the microsecond
    command: str
    origin: str  # cli | service
    command_line: str
    case: StoredCase
    valuation_date: dt.date
    base_currency: str
    status: str  # margin (a margin or health run) or the plan's status
    total_initial_margin: float
    version: str
    market: Mapping[str, Any]
    result: Mapping[str, Any]  # the command's whole JSON answer
    margins: tuple[VenueMarginRow, ...] = ()
    components: tuple[ComponentRow, ...] = ()
    hedges: tuple[HedgeRow, ...] = ()
    allocation: tuple[AllocationRow, ...] = ()
    total_initial_margin_after: float | None = None
    objective: str | None = None
    objective_value: float | None = None
    solver: str | None = None
    build_seconds: float | None = None
    solve_seconds: float | None = None
    verification_passed: bool | None = None
    max_violation: float | None = None
    id: int | None = None

    def summary(self) -> RunSummary:
        assert self.id is not None, "a run has an id once stored"
        return RunSummary(self.id, self.created_at, self.command, self.origin, self.case.name, self.case.fingerprint,
                          self.valuation_date, self.status, self.total_initial_margin, self.total_initial_margin_after,
                          self.objective_value, self.verification_passed)

    def margins_at(self, stage: str = "now") -> dict[str, VenueMarginRow]:
        return {m.venue: m for m in self.margins if m.stage == stage}

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``marginopt history show ID --format json`` (CASE_FORMAT.md, Run history)."""
        return {
            "id": self.id, "created_at": self.created_at.isoformat() + "Z", "command": self.command, "origin": self.origin,
            "command_line": self.command_line, "version": self.version,
            "case": {"fingerprint": self.case.fingerprint, "name": self.case.name, "source": self.case.source,
                     "files": dict(self.case.files), "document": self.case.document},
            "valuation_date": self.valuation_date.isoformat(), "base_currency": self.base_currency, "status": self.status,
            "market": self.market,
            "total_initial_margin": self.total_initial_margin, "total_initial_margin_after": self.total_initial_margin_after,
            "margins": [vars(m) for m in self.margins], "components": [vars(c) for c in self.components],
            "plan": None if self.objective is None and not self.hedges and not self.allocation else {
                "objective": self.objective, "objective_value": self.objective_value,
                "hedges": [vars(h) for h in self.hedges], "allocation": [vars(a) for a in self.allocation]},
            "solver": None if self.solver is None else {
                "name": self.solver, "build_seconds": self.build_seconds, "solve_seconds": self.solve_seconds},
            "verification": None if self.verification_passed is None else {
                "passed": self.verification_passed, "max_violation": self.max_violation},
            "result": self.result,
        }


@functools.cache
def _release() -> str:
    """marginopt's installed version (read once: the package metadata costs milliseconds a call)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("marginopt")
    except PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def new_run(doc: CaseDocument, report: Any, command: str, origin: str, command_line: str,
            result: Mapping[str, Any] | None = None, created_at: dt.datetime | None = None) -> Run:
    """The run of ``command`` on the case ``doc``: ``report`` is the case's margin report as it is
    (``MarginReport``), ``result`` the command's JSON answer (default: the margin report's JSON)."""
    answer = json_safe(dict(result) if result is not None else report.to_dict())
    market = {k: v for k, v in dict(doc.data.get("market") or {}).items() if k != "history"}  # history is in the case
    margins = [VenueMarginRow("now", v.venue, float(v.initial_margin), float(v.maintenance_margin), float(v.collateral_value),
                              float(v.excess), v.worst_scenario) for v in report.venues]
    components = [ComponentRow(v.venue, str(k), float(a)) for v in report.venues for k, a in v.components.items()]
    plan: dict[str, Any] = {}
    if command in ("optimize", "hedge", "allocate"):
        margins += [VenueMarginRow("after", str(m["venue"]), float(m["after"])) for m in answer.get("margins") or []
                    if m.get("after") is not None]
        solver = answer.get("solver") or {}
        verification = answer.get("verification") or {}
        after = [m.initial_margin for m in margins if m.stage == "after"]
        plan = {
            "hedges": tuple(HedgeRow(str(h["venue"]), str(h["instrument"]), float(h["quantity"]), _float(h.get("cost")))
                            for h in answer.get("hedges") or []),
            "allocation": tuple(AllocationRow(str(a["venue"]), str(a["asset"]), float(a["quantity"]), _float(a.get("value")))
                                for a in answer.get("allocation") or []),
            "total_initial_margin_after": float(sum(after)) if after else None,
            "objective": answer.get("objective"), "objective_value": _float(answer.get("objective_value")),
            "solver": solver.get("name"), "build_seconds": _float(solver.get("build_seconds")),
            "solve_seconds": _float(solver.get("solve_seconds")),
            "verification_passed": verification.get("passed"), "max_violation": _float(verification.get("max_violation")),
        }
    date = doc.data.get("valuation_date")
    return Run(
        created_at=created_at or utc_now(), command=command, origin=origin, command_line=command_line,
        case=StoredCase(doc.fingerprint, doc.name, str(doc.source), doc.data, dict(doc.files)),
        valuation_date=dt.date.fromisoformat(str(date)), base_currency=str(report.base_currency),
        status=str(answer.get("status", "margin")) if command in ("optimize", "hedge", "allocate") else "margin",
        total_initial_margin=float(report.total_initial_margin), version=_release(), market=json_safe(market),
        result=answer, margins=tuple(margins), components=tuple(components), **plan,
    )


def dumps(value: Any) -> str:
    """JSON text as stored: compact, key order kept, no NaN."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
