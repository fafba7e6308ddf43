"""The registry of outside formats (``marginopt.formats``): every declaration points at code that
exists, and the command line, the service and the measure parser take what they know of a
format from it alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from marginopt import formats
from marginopt.cli.main import cli
from marginopt.errors import CaseError
from marginopt.formats import format_names, format_of_family, get_format
from marginopt.models.margin import measure_kinds
from marginopt.presets import get_preset, known_ids
from tests.test_derive_hedge import hand_book
from tests.test_derive_pmrm2 import write

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("fmt", formats.formats(), ids=lambda f: f.name)
def test_each_declaration_names_code_that_exists(fmt):
    import importlib

    for target in (fmt.reader, fmt.case_writer):
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target
    for kind, module in fmt.measures.items():
        importlib.import_module(module)
        assert kind in measure_kinds()
    assert any(get_preset(p).family == fmt.family for p in known_ids()), f"no preset of family {fmt.family}"


def test_unknown_format_is_a_case_error_listing_the_known():
    with pytest.raises(CaseError, match="derive-pm2"):
        get_format("nope")
    assert format_of_family("deribit-pm") is None and format_of_family("derive-pmrm2") is get_format("derive-pm2")


def test_the_command_line_offers_every_format():
    for fmt in formats.formats():
        assert fmt.case_command in cli.commands
        for name in ("margin", "optimize", "hedge", "allocate"):
            source = next(p for p in cli.commands[name].params if p.name == "source")
            assert set(source.type.choices) == {"case", *format_names()}


def test_measure_kinds_of_a_format_load_on_first_use(tmp_path):
    """``import marginopt.models.margin`` does not import the Derive package; a case naming
    ``kind: derive_pmrm2`` (not through the preset) imports and registers it."""
    source = write(tmp_path, hand_book())
    CliRunner().invoke(cli, ["derive-case", str(source), "--out", str(tmp_path / "c")], catch_exceptions=False)
    case = yaml.safe_load((tmp_path / "c" / "case.yaml").read_text())
    case["venues"]["derive"] = {"initial_margin": {"kind": "derive_pmrm2", "snapshot": "snapshot.json"}}
    (tmp_path / "c" / "direct.yaml").write_text(yaml.safe_dump(case))
    code = ("import sys, json\nimport marginopt.models as m\nbefore = 'marginopt.models.derive.measure' in sys.modules\n"
            f"r = m.margin_report(m.load_case({str(tmp_path / 'c' / 'direct.yaml')!r}))\n"
            "print(json.dumps([before, 'marginopt.models.derive.measure' in sys.modules, r.venues[0].initial_margin]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    before, after, im = json.loads(out.stdout.splitlines()[-1])
    assert (before, after) == (False, True) and im > 0


def test_an_unknown_measure_kind_lists_the_kinds_of_formats_too():
    from marginopt.models.margin.base import parse_measure
    from marginopt.models.reader import Node

    with pytest.raises(CaseError, match="derive_pmrm2"):
        parse_measure(Node(Path("case.yaml"), "venues.v.initial_margin", {"kind": "nope"}, None))
