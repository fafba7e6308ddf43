"""Derive (formerly Lyra) portfolio margin, PMRM_2, as its public contracts stood on 21 January 2026.

The whole model is ``kind: derive_pmrm2`` (``marginopt/models/derive``): the spot x vol grid
with days-to-expiry vol scaling and the floor on shocked vols, dampened tail moves, LINEAR
and ABS skew shocks, static discounts, the basis, perp, naked-short, haircut, oracle and
depeg contingencies, IM and MM loss factors. Derive's parameters and market (spot, perp,
SVI per expiry, collateral) come from a snapshot in Derive's JSON, the ``snapshot``
parameter; the case gives the positions. Reproduces all 139 of Derive's published cases
(tests/test_derive_pmrm2.py).
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.presets import Param, Preset

PRESETS = (
    Preset(
        id="derive-pmrm2-2026-01",
        family="derive-pmrm2",
        title="Derive portfolio margin (PMRM_2)",
        models="Derive's PMRM_2 exactly: IM and MM requirements from a snapshot's market and parameters "
               "(every scenario, discount and contingency of the methodology)",
        source=(
            "https://github.com/derivexyz/v2-core src/risk-managers/PMRM_2.sol and its libraries at commit 7736900d "
            "(2026-01-21), read for the model only (Business Source License); our description is "
            "docs/derive-pmrm2/methodology.md",
            "derivexyz/v2-core test/risk-managers/unit-tests/PMRM_2/portfolio_cases/*.json (139 cases, reproduced)",
        ),
        as_of="2026-01-21",
        not_modelled=(
            "Parameters and market data are the snapshot's: the preset holds no parameter values of its own, "
            "so a snapshot must be taken from Derive (or written) for the date to margin.",
            "The venue's instruments must be named as Derive's lines (C-<seconds to expiry>-<strike>, "
            "P-<seconds to expiry>-<strike>, PERP) at an expiry the snapshot has a feed for.",
            "Derive's fixed-point arithmetic: values are float64 (the published cases agree to 2.2e-11).",
            "A skew scenario with a spot move, which Derive's contract refuses, is valued as Derive's published "
            "case 67 does (the LINEAR shape with the ABS cap), on the evidence of that one case.",
            "The optimizer works against a convex majorant equal to the margin at the snapshot's book; "
            "far from it the plan is conservative, never optimistic.",
            "Collateral, cash and equity are the snapshot's; the venue's posted collateral is not read by the measure.",
        ),
        venue=MappingProxyType({
            "initial_margin": {"kind": "derive_pmrm2", "margin": "initial", "snapshot": Param("snapshot")},
            "maintenance_margin": {"kind": "derive_pmrm2", "margin": "maintenance", "snapshot": Param("snapshot")},
        }),
        parameters=MappingProxyType({"snapshot": "a Derive PMRM_2 snapshot in Derive's JSON, relative to the case file"}),
    ),
)
