"""CME SPAN (the risk-array methodology, not SPAN 2): 16-scenario scan, inter-commodity spread credit, SOM.

Per combined commodity (an underlying here), the scan risk is the worst of 16 scenarios:
price unchanged, +-1/3, +-2/3 and +-1 of the price scan range, each with the vol scan
range up and down, and the extreme moves +-2 ranges at unchanged vol of which 35% is
covered. The delta-based inter-commodity spread credit (weighted futures price risk,
capped at the price scan range) is subtracted; the short option minimum floors the result.

Scan ranges, spread definitions and rates are product data in CME's risk-parameter files,
not part of the method: the case gives them beside ``preset``.
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.presets import Lot, Param, Preset

EXTREME_MULTIPLE, EXTREME_COVER = 2.0, 0.35

_SCAN = {
    "kind": "grid",
    "price_moves": [0.0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1.0, -1.0],
    "vol_moves": [Param("vol_scan_range", 1.0), Param("vol_scan_range", -1.0)],
    "extended": [{"price_move": s * EXTREME_MULTIPLE, "vol_move": 0.0, "weight": EXTREME_COVER} for s in (1.0, -1.0)],
    "scan_ranges": Param("scan_ranges"),
}

LOTS = (
    Lot(product="Bitcoin futures (BTC)", kind="future", underlying="BTC", contract_size=5.0, contract_unit="BTC",
        step=1.0, minimum=1.0,
        source=("https://www.cmegroup.com/trading/equity-index/us-index/bitcoin_contractSpecs_options.html "
                "(options on it: \"1 futures contract for 5 bitcoin\")",
                "https://www.cmegroup.com/activetrader/microbitcoin (\"the larger five-bitcoin contract\")"),
        as_of="undated, read 2026-12-06", note="whole contracts (a futures contract is the unit traded)"),
    Lot(product="Micro Bitcoin futures (MBT)", kind="future", underlying="BTC", contract_size=0.1, contract_unit="BTC",
        step=1.0, minimum=1.0,
        source=("https://www.cmegroup.com/activetrader/microbitcoin (\"Contract Size 0.10 bitcoin\")",
                "https://www.cmegroup.com/markets/cryptocurrencies/micro-bitcoin-and-micro-ether-options.html "
                "(\"CONTRACT UNIT 0.10 bitcoin\")"),
        as_of="undated, read 2026-12-06", note="whole contracts"),
    Lot(product="Ether futures (ETH)", kind="future", underlying="ETH", contract_size=50.0, contract_unit="ETH",
        step=1.0, minimum=1.0,
        source=("https://www.cmegroup.com/education/courses/introduction-to-ether/ether-futures-product-overview.html "
                "(\"Each futures contract has a value of 50 ether\")",
                "https://www.cmegroup.com/trading/ether-futures.html (contract specifications: 50 ether)"),
        as_of="undated, read 2026-12-06", note="whole contracts"),
    Lot(product="Micro Ether futures (MET)", kind="future", underlying="ETH", contract_size=0.1, contract_unit="ETH",
        step=1.0, minimum=1.0,
        source=("https://www.cmegroup.com/markets/cryptocurrencies/micro-bitcoin-and-micro-ether-options.html "
                "(\"CONTRACT UNIT ... 0.10 ether\")",),
        as_of="undated, read 2026-12-06", note="whole contracts"),
)

PRESETS = (
    Preset(
        id="cme-span-2024",
        family="cme-span",
        title="CME SPAN (risk arrays), per combined commodity",
        models="scan risk over 16 scenarios (+-1/3, 2/3, 1 of the price scan range x vol up/down; +-2 ranges at "
               "35% cover), minus the inter-commodity spread credit (WFPR capped at the range), floored by the "
               "short option minimum",
        source=(
            "https://www.cmegroup.com/clearing/margins/spread-calc.html (Spread Calculations; undated, the worked "
            "spread examples)",
            "https://www.cmegroup.com/clearing/risk-management/span-overview.html (CME SPAN Methodology Overview)",
            "https://cmegroupclientsite.atlassian.net/wiki/spaces/pubspan/pages/46923800/Inter+Spreads "
            "(PC-SPAN documentation, 2024: scan points, inter spreads, WPR methods)",
            "https://www.cmegroup.com/tools-information/lookups/advisories/clearing/ChAdv09253.html "
            "(2009-06-15: CME/CBOT cap the weighted price risk at the scan range)",
        ),
        as_of="2024",
        lots=LOTS,
        not_modelled=(
            "SPAN 2, which CME has been moving asset classes to since 2023, is a different (VaR-style) method.",
            "The extreme move (2 ranges) and its 35% cover are the usual SPAN values, not read from a CME page; CME's "
            "risk-parameter files may set others.",
            "Each underlying is one combined commodity with one price scan range: scan tiers, and so the "
            "intra-commodity (calendar) spread charge between tiers, are not modelled.",
            "The vol scan range is a relative move of each option's vol (CME often publishes it in vol points); "
            "scenarios take no time off expiry (SPAN's look-ahead).",
            "The weighted futures price risk uses the whole scan risk (SPAN uses its price-risk part: the same for "
            "futures-only combined commodities); net delta is not rounded.",
            "The short option minimum is a fraction of the underlying's price per short option contract (CME sets a "
            "dollar rate per combined commodity and tier), counts calls and puts together, and floors the venue's "
            "total rather than each combined commodity's risk.",
            "Super-inter spreads, delivery-month rules and charges, net option value, and the initial / maintenance "
            "ratio by account class: the initial margin here is SPAN's requirement.",
        ),
        venue=MappingProxyType({
            "initial_margin": {"kind": "max", "terms": [
                {"kind": "sum", "name": "risk", "terms": [
                    {"kind": "scenario_max", "name": "scan", "scenarios": _SCAN},
                    {"kind": "spread_credit", "name": "inter_spread_credit", "scenarios": _SCAN, "spreads": Param("spreads")},
                ]},
                {"kind": "short_option_minimum", "per_contract": Param("short_option_minimum", 1.0)},
            ]},
        }),
        parameters=MappingProxyType({
            "scan_ranges": "{UNDERLYING: price scan range as a fraction of its price}, one per combined commodity",
            "vol_scan_range": "the volatility scan range, a relative move of each option's vol (a number >= 0)",
            "spreads": "inter-commodity spreads in priority order: [{rate, legs: [{underlying, ratio, side: A|B}]}], "
                       "ratio = delta per spread in units of the underlying; [] for none",
            "short_option_minimum": "per short option contract, as a fraction of its underlying's price (a number >= 0)",
        }),
    ),
)
