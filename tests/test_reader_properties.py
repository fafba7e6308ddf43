"""Property tests of the case reader: whatever bytes or YAML values a case file holds, the loader
gives a case or a ``MarginoptError``, and ``marginopt margin`` exits 0 or 2, never 70 (an internal
error) and never with a traceback (issue 15, part 3).

Three generators: random bytes as the whole file; random bytes spliced into a valid case (so
parsing gets past the first line); random YAML values (scalars of every type, NaN, infinity,
huge integers, dates, nested lists and mappings) put at a random field of a valid case. Together
they run in a few seconds: small examples, no deadline (the first margin run loads pricing code).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import marginopt
from marginopt import MarginoptError
from marginopt.cli.main import cli
from tests.test_validation import BASE, base, dump

# Each test writes into one temporary folder per example it makes (function-scoped fixtures are
# shared across Hypothesis examples, so the file is simply overwritten).
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list index of the valid case, as a path from its root."""
    out = []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return out
    for key, child in items:
        out.append((*at, key))
        out += _paths(child, (*at, key))
    return out


PATHS = _paths(BASE)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e300, -1e300, 1e16, 5e-324, 1e15]),
    st.text(max_size=12), st.sampled_from(["2026-13-45", "2026-02-30", "", "nan", "1e999", "pm", "F_BTC", "grid"]),
    st.dates(), st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=6)


def _margin_exit(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["margin", str(path), "--format", "json"], prog_name="marginopt")
    return result.exit_code, result.stderr


def _assert_refused_or_reported(path: Path) -> None:
    """The CLI exits 0 with a report or 2 with one located ``error:`` line; the library agrees."""
    code, stderr = _margin_exit(path)
    assert code in (0, 2), f"exit {code}: {stderr[-1500:]}"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if code == 2:
        assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
    try:
        report = marginopt.margin(marginopt.load_case(path))
    except MarginoptError:
        assert code == 2
        return
    assert code == 0
    assert all(math.isfinite(v.initial_margin) and math.isfinite(v.collateral_value) for v in report.venues)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_as_a_case_file(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "case.yaml"
    path.write_bytes(raw)
    code, stderr = _margin_exit(path)
    assert code == 2, f"exit {code}: {stderr[-1500:]}"  # no byte string of 200 is a valid case
    assert stderr.startswith("error: ") and "case.yaml" in stderr, stderr


@SETTINGS
@given(st.binary(min_size=1, max_size=8), st.integers(min_value=0))
def test_random_bytes_spliced_into_a_valid_case(tmp_path: Path, junk: bytes, where: int) -> None:
    text = dump(BASE).encode()
    k = where % (len(text) + 1)
    path = tmp_path / "case.yaml"
    path.write_bytes(text[:k] + junk + text[k:])
    _assert_refused_or_reported(path)


@SETTINGS
@given(st.sampled_from(PATHS), VALUES)
def test_random_yaml_value_at_a_random_field(tmp_path: Path, at: tuple[Any, ...], value: Any) -> None:
    case = base()
    parent: Any = case
    for key in at[:-1]:
        parent = parent[key]
    parent[at[-1]] = value
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False, default_flow_style=None, allow_unicode=True))
    _assert_refused_or_reported(path)
