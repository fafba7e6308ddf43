"""Enumerations of the case format (values are the strings used in case files)."""

from __future__ import annotations

from enum import Enum


class InstrumentKind(str, Enum):
    SPOT = "spot"
    FUTURE = "future"
    PERPETUAL = "perpetual"
    OPTION = "option"


class Right(str, Enum):
    CALL = "call"
    PUT = "put"


class Settlement(str, Enum):
    LINEAR = "linear"
    INVERSE = "inverse"  # P&L paid in the underlying coin


class Distribution(str, Enum):
    NORMAL = "normal"
    STUDENT_T = "student_t"


class Objective(str, Enum):
    MIN_COST = "min_cost"
    MIN_MARGIN = "min_margin"
