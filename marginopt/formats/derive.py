"""Derive's portfolio-margin (PMRM_2) snapshot: the JSON of Derive's PMRM_2 portfolio cases.

The code is the Derive package's (``marginopt/models/derive``): ``report.snapshot_margin``
prices a snapshot exactly as Derive does, ``case.write_case`` writes the case that runs its
account at one venue margined by ``kind: derive_pmrm2`` (``measure.py``), which the preset
family ``derive-pmrm2`` uses with the snapshot as its parameter.
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.formats import CaseOption, OutsideFormat

FORMATS = (
    OutsideFormat(
        name="derive-pm2",
        description="a Derive portfolio-margin (PMRM_2) snapshot in Derive's JSON",
        family="derive-pmrm2",
        reader="marginopt.models.derive.report:snapshot_margin",
        case_writer="marginopt.models.derive.case:write_case",
        case_command="derive-case",
        case_help="Write a marginopt case from a Derive PMRM_2 snapshot: its account at one venue margined as "
                  "Derive's, with hedge candidates around each expiry's forward (and the perp where priced).",
        case_options=(
            CaseOption("underlying", "UNDERLYING", "Name of the underlying (the snapshot does not say)."),
            CaseOption("cost_bp", 3.0, "Assumed cost of a hedge, in basis points of spot per contract.", minimum=0.0),
            CaseOption("unwind", False, "Offer the held lines as hedges too (closing them)."),
        ),
        measures=MappingProxyType({"derive_pmrm2": "marginopt.models.derive.measure"}),
    ),
)
