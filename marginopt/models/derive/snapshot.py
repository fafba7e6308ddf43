"""A Derive portfolio-margin snapshot (the JSON of Derive's PMRM_2 portfolio cases), parsed.

The format (``docs/derive-pmrm2/methodology.md`` section 1): ``Scenario`` holds the account
and its market (spot, perp, options, one feed per expiry with forward, rate and SVI
parameters, collateral, cash), ``Parameters`` the margin parameters and the scenario list.
Numbers come as JSON numbers or decimal strings. ``Result``, when present, is Derive's
expected output and is ignored here.

Every value is checked where it is read; an error names the file, the JSON path and what
was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marginopt.errors import CaseError, Location
from marginopt.models.magnitude import Bound, describe, within
from marginopt.models.reader import decode_utf8

VOL_DIRECTIONS = ("Up", "Down", "None", "LINEAR", "ABS")
SKEW_DIRECTIONS = ("LINEAR", "ABS")


@dataclass(frozen=True)
class DeriveScenario:
    spot_shock: float  # multiplier of spot (1.18 = +18%)
    direction: str  # Up | Down | None (vol shock) or LINEAR | ABS (skew shock)
    weight: float  # dampening factor

    @property
    def skew(self) -> bool:
        return self.direction in SKEW_DIRECTIONS


@dataclass(frozen=True)
class OptionLine:
    expiry: int  # seconds to expiry
    strike: float
    call: bool
    amount: float


@dataclass(frozen=True)
class Feed:
    """One expiry's market: forward, rate (continuously compounded), SVI and confidences."""

    expiry: int
    forward: float
    rate: float
    svi: tuple[float, float, float, float, float, float, float]  # a, b, rho, m, sigma, forward, tau (years)
    confidence: float  # min of the forward's, the rate's and the vols' confidences


@dataclass(frozen=True)
class CollateralAsset:
    name: str
    amount: float
    price: float
    confidence: float
    risk_cancelling: bool
    mm_haircut: float
    im_haircut: float


@dataclass(frozen=True)
class DeriveSnapshot:
    """An account at Derive with its market data and PMRM_2 parameters."""

    source: str
    spot: float
    spot_confidence: float
    perp_amount: float
    perp_price: float
    perp_confidence: float
    perp_value: float  # unrealised perp P&L plus unrealised funding
    unrealised_pnl: float
    unrealised_funding: float
    stable_price: float
    cash: float
    collateral: tuple[CollateralAsset, ...]
    options: tuple[OptionLine, ...]
    feeds: Mapping[int, Feed]  # by expiry, in the file's order
    scenarios: tuple[DeriveScenario, ...]
    params: Mapping[str, float]  # "Group.KEY" -> value (VolShock, Margin, BasisContingency, OtherContingency, SkewShock)
    valuation: dt.datetime | None = None  # from an option's absolute expiry less its seconds to expiry, when given

    def p(self, key: str) -> float:
        return self.params[key]


# Every parameter the model reads, by group.
PARAMETERS = {
    "VolShock": ("VOLRANGEUP", "VOLRANGEDOWN", "SHORTTERMPOWER", "LONGTERMPOWER", "DTE_FLOOR", "MIN_VOL_EVAL_SHOCKED"),
    "Margin": ("IM_LOSS_FACTOR", "MM_LOSS_FACTOR", "LONG_RATE_MULTSCALE", "LONG_RATE_ADDSCALE", "SHORT_RATE_MULTSCALE",
               "SHORT_RATE_ADDSCALE", "BASE_STATIC_DISCOUNT", "BASE_STATIC_DISCOUNT_NEG"),
    "BasisContingency": ("SCENARIO_SPOT_UP", "SCENARIO_SPOT_DOWN", "BASIS_CONT_ADD_FACTOR", "BASIS_CONT_MULT_FACTOR"),
    "OtherContingency": ("PEG_LOSS_THRESHOLD", "PEG_LOSS_FACTOR", "CONF_THRESHOLD", "CONF_MARGIN", "MM_PERP_PERCENT",
                         "IM_PERP_PERCENT", "MM_OPTION_PERCENT", "IM_OPTION_PERCENT"),
    "SkewShock": ("LINEAR_SCALE_CAP", "LINEAR_CBASE", "ABS_SCALE_CAP", "ABS_CBASE", "MIN_K_STAR", "MIN_WIDTH_SCALE",
                  "VOL_PARAM_STATIC", "VOL_PARAM_SCALE"),
}


class _Reader:
    """Typed access to the JSON with errors naming the file and the path of the value."""

    def __init__(self, path: Path) -> None:
        self.where = Location(path)

    def fail(self, at: str, expected: str, got: Any = CaseError._MISSING) -> CaseError:
        return CaseError(self.where, at, expected, got)

    def obj(self, parent: Any, key: str, at: str) -> Any:
        if not isinstance(parent, dict) or key not in parent:
            raise self.fail(f"{at}.{key}" if at else key, "a value (the key is missing)")
        return parent[key]

    def mapping(self, parent: Any, key: str, at: str) -> dict[str, Any]:
        value = self.obj(parent, key, at)
        if not isinstance(value, dict):
            raise self.fail(f"{at}.{key}" if at else key, "a JSON object", value)
        return value

    def items(self, parent: Any, key: str, at: str) -> list[Any]:
        value = self.obj(parent, key, at)
        if not isinstance(value, list):
            raise self.fail(f"{at}.{key}", "a JSON list", value)
        return value

    def number(self, parent: Any, key: str, at: str, lower: float | None = None, upper: float | None = None) -> float:
        name = f"{at}.{key}" if at else key
        return self.value(self.obj(parent, key, at), name, lower, upper)

    def value(self, raw: Any, name: str, lower: float | None = None, upper: float | None = None) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise self.fail(name, "a number (JSON number or decimal string)", raw)
        try:
            x = float(raw)
        except (ValueError, OverflowError):  # OverflowError: an integer past float range
            raise self.fail(name, "a number (JSON number or decimal string)", raw) from None
        if not math.isfinite(x) or not within(x):
            raise self.fail(name, f"a finite number, {describe(Bound.MAGNITUDE)}", raw)
        if (lower is not None and x < lower) or (upper is not None and x > upper):
            span = f"in [{lower if lower is not None else '-inf'}, {upper if upper is not None else 'inf'}]"
            raise self.fail(name, f"a number {span}", raw)
        return x

    def integer(self, parent: Any, key: str, at: str, lower: int = 0) -> int:
        x = self.number(parent, key, at, lower=lower)
        if x != int(x):
            raise self.fail(f"{at}.{key}", "a whole number of seconds", parent[key])
        return int(x)

    def flag(self, parent: Any, key: str, at: str) -> bool:
        raw = self.obj(parent, key, at)
        if raw in (0, 1, True, False):
            return bool(raw)
        raise self.fail(f"{at}.{key}", "true/false or 1/0", raw)


def load_snapshot(path: Path) -> DeriveSnapshot:
    """Parse a Derive PMRM_2 snapshot file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise CaseError(Location(path), "(file)", "a readable JSON file", str(exc)) from None
    text = decode_utf8(raw, path, "(file)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaseError(Location(path, exc.lineno, "line"), "(file)", f"valid JSON ({exc.msg})") from None
    except RecursionError:
        raise CaseError(Location(path), "(file)", "JSON nested at most a few hundred levels deep", "deeper nesting") from None
    return parse_snapshot(doc, path)


def parse_snapshot(doc: Any, path: Path) -> DeriveSnapshot:
    r = _Reader(path)
    s = r.mapping(doc, "Scenario", "")
    par = r.mapping(doc, "Parameters", "")
    at = "Scenario"
    params: dict[str, float] = {}
    for group, keys in PARAMETERS.items():
        g = r.mapping(par, group, "Parameters")
        for key in keys:
            params[f"{group}.{key}"] = r.number(g, key, f"Parameters.{group}")
    scenarios = []
    raw_scenarios = r.items(par, "Scenarios", "Parameters")
    if not raw_scenarios:
        raise r.fail("Parameters.Scenarios", "at least one scenario")
    for i, sc in enumerate(raw_scenarios):
        where = f"Parameters.Scenarios[{i}]"
        direction = r.obj(sc, "VolShockDirection", where)
        if direction not in VOL_DIRECTIONS:
            raise r.fail(f"{where}.VolShockDirection", f"one of {', '.join(VOL_DIRECTIONS)}", direction)
        scenarios.append(DeriveScenario(r.number(sc, "SpotShock", where, lower=0.0), direction,
                                        r.number(sc, "DampeningFactor", where, lower=0.0)))
    feeds: dict[int, Feed] = {}
    for i, fd in enumerate(r.items(s, "OptionFeeds", at)):
        where = f"{at}.OptionFeeds[{i}]"
        expiry = r.integer(fd, "FeedExpiry", where)
        if expiry in feeds:
            raise r.fail(f"{where}.FeedExpiry", "one feed per expiry", expiry)
        svi_raw = r.items(fd, "SVIparam", where)
        if len(svi_raw) != 7:
            raise r.fail(f"{where}.SVIparam", "7 numbers [a, b, rho, m, sigma, forward, tau]", svi_raw)
        svi = tuple(r.value(v, f"{where}.SVIparam[{k}]") for k, v in enumerate(svi_raw))
        conf = min(r.number(fd, "ForwardConfidence", where, 0.0, 1.0), r.number(fd, "RateConfidence", where, 0.0, 1.0),
                   r.number(fd, "OptionVolConfidences", where, 0.0, 1.0))
        feeds[expiry] = Feed(expiry, r.number(fd, "Forward", where, lower=0.0), r.number(fd, "Rate", where), svi, conf)  # type: ignore[arg-type]
    options = []
    seen: set[tuple[int, float, bool]] = set()
    for i, o in enumerate(r.items(s, "Options", at)):
        where = f"{at}.Options[{i}]"
        line = OptionLine(r.integer(o, "Expiry", where), r.number(o, "Strike", where, lower=0.0), r.flag(o, "IsCall", where),
                          r.number(o, "Amount", where))
        if line.expiry not in feeds:
            raise r.fail(f"{where}.Expiry", f"an expiry with a feed in {at}.OptionFeeds ({', '.join(map(str, feeds))})", line.expiry)
        line_key = (line.expiry, line.strike, line.call)
        if line_key in seen:
            raise r.fail(where, "one line per expiry, strike and type (Derive holds one balance per option)", line_key)
        seen.add(line_key)
        options.append(line)
    collateral = []
    for i, c in enumerate(r.items(s, "Collaterals", at)):
        where = f"{at}.Collaterals[{i}]"
        name = r.obj(c, "Name", where)
        collateral.append(CollateralAsset(str(name), r.number(c, "Amount", where, lower=0.0), r.number(c, "Price", where, lower=0.0),
                                          r.number(c, "Confidence", where, 0.0, 1.0), r.flag(c, "IsRiskCancelling", where),
                                          r.number(c, "MMHaircut", where, 0.0, 1.0), r.number(c, "IMHaircut", where, 0.0, 1.0)))
    pnl, funding = r.number(s, "UnrealisedPerpPNL", at), r.number(s, "UnrealisedFunding", at)
    valuation = None
    stamped = [(o, raw) for o, raw in zip(options, r.items(s, "Options", at), strict=True) if isinstance(raw, dict) and "ExiryTs" in raw]
    if stamped:  # "ExiryTs" (sic): Derive's harness names it so
        o, raw = stamped[0]
        valuation = dt.datetime.fromtimestamp(r.number(raw, "ExiryTs", f"{at}.Options[0]") - o.expiry, tz=dt.UTC)
    return DeriveSnapshot(
        source=str(path),
        spot=r.number(s, "SpotPrice", at, lower=0.0),
        spot_confidence=r.number(s, "SpotConfidence", at, 0.0, 1.0),
        perp_amount=r.number(s, "NumPerps", at),
        perp_price=r.number(s, "PerpPrice", at, lower=0.0),
        perp_confidence=r.number(s, "PerpConfidence", at, 0.0, 1.0),
        perp_value=pnl + funding,
        unrealised_pnl=pnl,
        unrealised_funding=funding,
        stable_price=r.number(s, "StablePrice", at, lower=0.0),
        cash=r.number(s, "Cash", at),
        collateral=tuple(collateral),
        options=tuple(options),
        feeds=feeds,
        scenarios=tuple(scenarios),
        params=params,
        valuation=valuation,
    )
