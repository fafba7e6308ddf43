"""Dated venue presets: a venue's published margin model, in the case-file schema, with its source and date.

A case uses one as ``venues: {<name>: {preset: <id>, ...}}``. The venue is the preset's
mapping with each top-level venue key given beside ``preset`` (``initial_margin``,
``collateral``, ``posted``...) replacing the preset's; a key the preset names under
``parameters`` fills the places in its mapping marked ``Param(name)`` (product data
such as SPAN's scan ranges, which no preset can know).

Every module of this package defines ``PRESETS``, a tuple of ``Preset``; the registry
finds the modules by itself, so a venue is added by adding one file. An id carries the
date of its parameters (``deribit-pm-2024-06``); its ``family`` (``deribit-pm``) is an
alias of the family's newest preset.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from marginopt.errors import NotFoundError


@dataclass(frozen=True)
class Param:
    """A place in a preset's venue mapping filled from the case.

    ``scale`` None: the case's value goes in as written (a mapping, a list, a number);
    a float: the case's value must be a number >= 0 and goes in times ``scale``.
    """

    name: str
    scale: float | None = None


@dataclass(frozen=True)
class Lot:
    """A venue's published trading increment for one product (issue 17): what one contract is, the
    order step and the minimum order, each with the page it was read from and that page's date.

    ``contract_size`` is in ``contract_unit`` (``0.01`` ``BTC``; ``10`` ``USD`` for an inverse
    contract); ``step`` and ``minimum`` are in contracts; ``min_notional`` in ``notional_unit``.
    A figure the venue does not publish on a page read here is None, and ``note`` says "not
    found": nothing is filled in from memory. A case's hedge row takes a figure from here by
    hand, converted to the row's units (CASE_FORMAT.md, "Execution terms": a case's instrument
    has its own multiplier and settlement, which the venue's product does not know).
    """

    product: str  # the venue's name for it: "BTCUSDT perpetual", "Bitcoin futures (BTC)"
    kind: str  # the case's instrument kind it corresponds to: option, future, perpetual
    underlying: str
    contract_size: float | None
    contract_unit: str
    step: float | None  # order increment, in contracts
    minimum: float | None  # smallest order, in contracts
    source: tuple[str, ...]
    as_of: str  # the date of the figures (the rule's effective date, else the page's), or "undated, read <date>"
    note: str = ""
    min_notional: float | None = None  # smallest order's value, in notional_unit
    notional_unit: str = ""

    def __post_init__(self) -> None:
        for name in ("contract_size", "step", "minimum", "min_notional"):
            value = getattr(self, name)
            if value is not None and not value > 0.0:
                raise ValueError(f"lot {self.product}: {name} must be > 0 or None (not published), got {value}")
        if not self.source or not self.as_of:
            raise ValueError(f"lot {self.product}: a source and a date are required")
        if None in (self.contract_size, self.step, self.minimum) and "not found" not in self.note:
            raise ValueError(f"lot {self.product}: a figure left out needs a note saying it was not found")


@dataclass(frozen=True)
class Preset:
    """One venue's margin model as published on a date.

    ``venue`` is a venue mapping exactly as a case file writes it (``initial_margin``,
    ``maintenance_margin``, ``collateral``...), with ``Param`` where the case supplies a
    value; ``parameters`` says what each of those is. ``not_modelled`` lists, in plain
    sentences, what the venue does that the preset does not.
    """

    id: str
    family: str
    title: str
    models: str
    source: tuple[str, ...]
    as_of: str
    not_modelled: tuple[str, ...]
    venue: Mapping[str, Any]
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lots: tuple[Lot, ...] = ()  # the venue's published trading increments (``Lot``), where published

    def mapping(self, fill: Callable[[Param], Any], skip: Collection[str] = ()) -> dict[str, Any]:
        """The venue mapping without the keys in ``skip``, as plain dicts and lists, each ``Param``
        replaced by ``fill(param)``."""
        return {k: _materialize(v, fill) for k, v in self.venue.items() if k not in skip}

    def params(self) -> tuple[Param, ...]:
        """Every ``Param`` in the venue mapping, in order of appearance."""
        found: list[Param] = []
        _materialize(self.venue, lambda p: found.append(p))
        return tuple(found)


def _materialize(value: Any, fill: Callable[[Param], Any]) -> Any:
    if isinstance(value, Param):
        return fill(value)
    if isinstance(value, Mapping):
        return {k: _materialize(v, fill) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_materialize(v, fill) for v in value]
    return value


def _load() -> tuple[dict[str, Preset], dict[str, str]]:
    presets: dict[str, Preset] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for preset in getattr(module, "PRESETS", ()):
            if preset.id in presets:  # the package's own data: only a mistake in a preset module reaches this
                raise RuntimeError(f"preset id {preset.id} defined twice ({info.name})")
            presets[preset.id] = preset
    newest: dict[str, str] = {}
    for p in sorted(presets.values(), key=lambda p: p.as_of):
        if p.family != p.id:
            newest[p.family] = p.id
    clash = set(newest) & set(presets)
    if clash:  # as above: the preset modules disagree, no input can cause it
        raise RuntimeError(f"preset family names clash with preset ids: {', '.join(sorted(clash))}")
    return presets, newest


_PRESETS, _ALIASES = _load()


def preset_ids() -> tuple[str, ...]:
    """The dated preset ids, sorted."""
    return tuple(sorted(_PRESETS))


def preset_aliases() -> dict[str, str]:
    """Short ids without a date, each naming its family's newest preset."""
    return dict(_ALIASES)


def get_preset(preset_id: str) -> Preset:
    """The preset with this id, or the newest of the family this short id names; an unknown id is a
    ``NotFoundError`` (a ``KeyError``) listing the known ones."""
    key = _ALIASES.get(preset_id, preset_id)
    if key not in _PRESETS:
        raise NotFoundError(f"venue preset {preset_id!r}: expected one of {', '.join(known_ids())}")
    return _PRESETS[key]


def known_ids() -> tuple[str, ...]:
    """Dated ids and short aliases, as a case file may name them."""
    return tuple(sorted([*_PRESETS, *_ALIASES]))


__all__ = ["Lot", "Param", "Preset", "get_preset", "known_ids", "preset_aliases", "preset_ids"]
