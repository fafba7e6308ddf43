"""Instrument codes of the scenario-loss kernels (``_kernels`` compiled, ``_kernels_numpy`` plain)."""

DELTA_ONE_LINEAR = 0  # -a * (g - 1),  a = multiplier * F0
DELTA_ONE_INVERSE = 1  # -a * (1 - 1/g), a = S0 * face / F0
OPTION_LINEAR = 2  # V0 - V1
OPTION_INVERSE = 3  # V0 - V1 / g
NO_PNL = 4  # coin held in its own coin: no P&L in coin
