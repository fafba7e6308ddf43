"""The scenario-loss matrix and what every scenario set builds it from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from marginopt.errors import ArgumentError, CaseError, Location, ModelError
from marginopt.models import _kernels_numpy
from marginopt.models import kernel_codes as K
from marginopt.models.market import MarketData
from marginopt.models.pricing import PricingInputs
from marginopt.models.reader import Node
from marginopt.typing import FloatArray, IntArray

if TYPE_CHECKING:
    import pandas as pd

_CHECK_ROWS = 8192
_MOVE_ROWS = 1 << 15  # scenarios repriced at a time (``losses_from_moves``)


class NumberedLabels:
    """Scenario labels ``prefix + str(i)``, ``i`` from 0 to ``n - 1``, each made when it is asked for: a
    Monte Carlo set's names, which as an array of strings took 14 MiB at 400,000 draws, more than the
    set's loss matrix (12 MiB). Indexed like the array it stands for; ``astype`` builds that array."""

    def __init__(self, prefix: str, n: int) -> None:
        self.prefix, self.n = prefix, n

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        """A label for an integer; an array of them for a slice, a mask or an index array."""
        if isinstance(i, (int, np.integer)):
            k = int(i) + self.n if int(i) < 0 else int(i)
            if not 0 <= k < self.n:
                raise IndexError(f"scenario {int(i)} of {self.n}")
            return f"{self.prefix}{k}"
        return np.char.add(self.prefix, np.arange(self.n)[i].astype(str))

    def astype(self, dtype: object) -> np.ndarray:
        return np.char.add(self.prefix, np.arange(self.n).astype(str)).astype(dtype)  # type: ignore[call-overload]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return self.astype(dtype if dtype is not None else str)

    def setflags(self, write: bool) -> None:
        """Read-only already (as ``ScenarioLosses`` makes its arrays)."""


def equal_weights(n: int) -> FloatArray:
    """``n`` weights of 1 in the memory of one (a read-only broadcast): a Monte Carlo set's."""
    return np.broadcast_to(np.float64(1.0), (n,))


def is_constant(a: FloatArray) -> bool:
    """Whether ``a`` is one value repeated by a broadcast (stride 0), as ``equal_weights`` makes."""
    return a.ndim == 1 and a.strides == (0,)


@dataclass(frozen=True, eq=False)
class ScenarioLosses:
    """Loss per +1 contract of each instrument under each scenario, in base currency.

    ``matrix[s, j]`` is positive when holding one contract of ``instrument_ids[j]``
    loses money in scenario ``s``. Scenarios are ordered by group (one group per
    underlying for a per-underlying grid, one group otherwise):
    ``group_bounds[g]:group_bounds[g + 1]`` are the rows of group ``g``. A measure
    is applied within each group and summed over groups. ``weights`` are
    dampening multipliers for a scenario maximum and relative probabilities
    (within a group) for expected shortfall and VaR.
    """

    labels: np.ndarray | NumberedLabels  # (S,) str
    weights: FloatArray  # (S,) > 0
    instrument_ids: tuple[str, ...]
    matrix: FloatArray  # (S, J) C-contiguous float64
    group_names: tuple[str, ...] = ("all",)
    group_bounds: IntArray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        # Built by the scenario sets from checked input, or by a caller in code: a malformed argument
        # is an ArgumentError (a ValueError) naming it.
        m = self.matrix
        if m.dtype != np.float64 or m.ndim != 2 or not m.flags.c_contiguous:
            raise ArgumentError(f"ScenarioLosses matrix: expected a C-contiguous 2-D float64 array "
                                f"(np.ascontiguousarray(m, dtype=np.float64)), got {m.ndim}-D {m.dtype}")
        s, j = m.shape
        if j != len(self.instrument_ids):
            raise ArgumentError(f"ScenarioLosses matrix: expected one column per instrument id "
                                f"({len(self.instrument_ids)}), got {j}")
        if self.labels.shape != (s,) or self.weights.shape != (s,):
            raise ArgumentError(f"ScenarioLosses labels and weights: expected one entry per scenario (matrix row, {s}), "
                                f"got shapes {self.labels.shape} and {self.weights.shape}")
        if s == 0:
            raise ArgumentError("ScenarioLosses matrix: expected at least one scenario (row), got none")
        if not np.all(self.weights > 0) or not np.all(np.isfinite(self.weights)):
            raise ArgumentError("ScenarioLosses weights: expected finite positive numbers, got "
                                f"{float(self.weights[~((self.weights > 0) & np.isfinite(self.weights))][0])!r}")
        # In row blocks: a mask of the whole matrix would add an eighth of it to the peak memory.
        for lo in range(0, s, _CHECK_ROWS):
            block = m[lo:lo + _CHECK_ROWS]
            if not np.isfinite(block).all():
                bad = np.argwhere(~np.isfinite(block))[0]
                # Input can cause this (the magnitude guard keeps it from doing so): a user error, not a bug.
                iid = self.instrument_ids[bad[1]]
                raise ModelError(f"{self.source or 'scenario set'}: the loss of {iid} in scenario {self.labels[lo + bad[0]]} "
                                 f"is not finite: a number of instrument {iid} (price, multiplier, strike, vol) or a move "
                                 "of this scenario is too large to compute with")
        bounds = self.group_bounds if self.group_bounds is not None else np.array([0, s], dtype=np.int64)
        if bounds[0] != 0 or bounds[-1] != s or len(bounds) != len(self.group_names) + 1 or np.any(np.diff(bounds) <= 0):
            raise ArgumentError(f"ScenarioLosses group_bounds: expected {len(self.group_names) + 1} strictly increasing row "
                                f"numbers from 0 to {s} (one group per name, none empty), got {bounds.tolist()}")
        object.__setattr__(self, "group_bounds", bounds)
        for a in (m, self.weights, self.labels, bounds):
            a.setflags(write=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape  # type: ignore[return-value]

    def losses(self, q: FloatArray) -> FloatArray:
        """Portfolio loss per scenario for positions ``q`` (in ``instrument_ids`` order)."""
        return self.matrix @ q

    def largest_loss(self, q: FloatArray) -> float:
        """The largest ``|loss|`` at positions ``q``, read ``_MOVE_ROWS`` scenarios at a time (no loss vector)."""
        m = self.matrix
        return max(float(np.abs(m[lo:lo + _MOVE_ROWS] @ q).max(initial=0.0)) for lo in range(0, m.shape[0], _MOVE_ROWS))

    def worst_loss(self, q: FloatArray) -> float:
        """The largest weighted loss ``max_s w_s (L q)_s`` at positions ``q``, read block by block."""
        m, w = self.matrix, self.weights
        return max(float(np.max(w[lo:lo + _MOVE_ROWS] * (m[lo:lo + _MOVE_ROWS] @ q))) for lo in range(0, m.shape[0], _MOVE_ROWS))

    def groups(self) -> list[slice]:
        b = self.group_bounds
        assert b is not None
        return [slice(int(b[g]), int(b[g + 1])) for g in range(len(self.group_names))]

    def columns(self, ids: Collection[str]) -> ScenarioLosses:
        """The same scenarios restricted to (and ordered as) ``ids``."""
        pos = {iid: j for j, iid in enumerate(self.instrument_ids)}
        idx = [pos[i] for i in ids]
        return ScenarioLosses(self.labels, self.weights, tuple(ids), np.ascontiguousarray(self.matrix[:, idx]),
                              self.group_names, self.group_bounds, self.source)

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> ScenarioLosses:
        """The losses of the columns ``cols``, then one column: the loss of the rest of ``q0``
        (``margin.columns``)."""
        from marginopt.models.margin.columns import REST, reduce_rows

        ids = tuple(self.instrument_ids[int(j)] for j in cols) + (REST,)
        return ScenarioLosses(self.labels, self.weights, ids, reduce_rows(self.matrix, cols, q0), self.group_names,
                              self.group_bounds, self.source)

    def to_frame(self) -> pd.DataFrame:
        """scenario, group, weight, then one column of losses per instrument."""
        import pandas as pd  # only where a table is asked for: margin alone never loads pandas

        b = self.group_bounds
        assert b is not None
        group = np.repeat(np.array(self.group_names, dtype=object), np.diff(b))
        head = pd.DataFrame({"scenario": self.labels.astype(str), "group": group, "weight": self.weights})
        body = pd.DataFrame(self.matrix, columns=list(self.instrument_ids))
        return pd.concat([head, body], axis=1)


@dataclass(frozen=True)
class ScenarioContext:
    """What a scenario set is built for: a venue's instruments and the market."""

    inputs: PricingInputs
    market: MarketData
    valuation_date: dt.date
    all_instrument_ids: frozenset[str]


class ScenarioSpec(Protocol):
    """A parsed, hashable scenario set; ``build`` prices it for a venue's instruments.

    A spec may also define ``check(market)``, run at load time.
    """

    @property
    def kind(self) -> str: ...

    def build(self, ctx: ScenarioContext) -> ScenarioLosses: ...


@dataclass(frozen=True)
class Moves:
    """Market moves per scenario and underlying (columns in ``ctx.inputs.underlyings`` order)."""

    growth: FloatArray  # (S, U) price after / price now
    vol_move: FloatArray  # (S, U) relative vol shock
    labels: np.ndarray | NumberedLabels
    weights: FloatArray
    group_names: tuple[str, ...] = ("all",)
    group_bounds: IntArray | None = None


def losses_from_moves(
    ctx: ScenarioContext,
    moves: Moves,
    *,
    vol_scale: FloatArray | None = None,
    min_vol: float = 0.0,
    source: str = "",
    where: tuple[Location, str] | None = None,
) -> ScenarioLosses:
    """Reprice every instrument under every scenario with the loss kernel.

    ``where`` (location, field) names the vol moves in the case, for the error
    raised when a vol move would make a shocked vol non-positive.
    """
    inp = ctx.inputs
    n_s, n_j = moves.growth.shape[0], len(inp)
    if n_j == 0:  # a venue with no instruments (a treasury-only venue)
        return ScenarioLosses(moves.labels, moves.weights, (), np.zeros((n_s, 0)), moves.group_names, moves.group_bounds, source)
    scale = np.ones(n_j) if vol_scale is None else vol_scale
    opt = inp.is_option
    if opt.any() and min_vol <= 0.0:
        _check_vol_positive(inp, moves, scale, where)
    years = inp.days / 365.0
    sd_floor = np.where(opt, min_vol * np.sqrt(years), 0.0)
    # Block order: (kernel code, underlying); parameters gathered once so the
    # inner loop reads them contiguously.
    order = np.lexsort((np.arange(n_j), inp.uidx, inp.code))
    key = inp.code[order] * (len(inp.underlyings) + 1) + inp.uidx[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    block_start = np.r_[starts, n_j].astype(np.int64)
    delta_one_a = np.where(inp.code == K.DELTA_ONE_INVERSE, inp.spot * inp.multiplier / inp.forward,
                           inp.multiplier * inp.forward)
    a = np.where(opt, inp.forward, delta_one_a)
    lnfk = np.where(opt, np.log(inp.forward / inp.strike), 0.0)
    out = np.empty((n_s, n_j))
    kernel = _loss_kernel(n_s * int(opt.sum()))  # chosen by the whole set's size, whatever the blocks
    params = (block_start, inp.code[order][starts].copy(), inp.uidx[order][starts].copy(), order.astype(np.int64),
              a[order], inp.strike[order], lnfk[order], inp.sd[order], scale[order], sd_floor[order],
              inp.disc_mult[order], inp.cp[order], inp.value[order])
    # Block by block of scenarios, each row the same numbers: the log of the moves and the numpy
    # kernel's temporaries are a block's, not the set's (at 400,000 Monte Carlo draws over two
    # underlyings the log alone was half the four instruments' matrix).
    for lo in range(0, n_s, _MOVE_ROWS):
        growth = np.ascontiguousarray(moves.growth[lo:lo + _MOVE_ROWS], dtype=float)
        kernel(out[lo:lo + _MOVE_ROWS], growth, np.log(growth),
               np.ascontiguousarray(moves.vol_move[lo:lo + _MOVE_ROWS], dtype=float), *params)
    return ScenarioLosses(moves.labels, moves.weights, inp.ids, out, moves.group_names, moves.group_bounds, source)


def _loss_kernel(option_cells: int) -> Callable[..., None]:
    """numpy for a small book, the compiled kernel above (_kernels_numpy says why). Chosen by size
    alone, so a case gives the same matrix to the last bit in every process."""
    if option_cells < _kernels_numpy.SMALL_OPTION_CELLS:
        return _kernels_numpy.loss_kernel
    from marginopt.models import _kernels

    return _kernels.loss_kernel


def _check_vol_positive(inp: PricingInputs, moves: Moves, scale: FloatArray, where: tuple[Location, str] | None) -> None:
    lowest = moves.vol_move.min(axis=0)  # per underlying
    factor = 1.0 + lowest[inp.uidx] * scale
    bad = np.flatnonzero(inp.is_option & (factor <= 0.0))
    if bad.size:
        j = int(bad[0])
        loc, path = where if where is not None else (None, "vol_moves")
        raise CaseError(
            loc, path,
            f"vol moves that keep every shocked vol above 0, or min_vol (option {inp.ids[j]}, {inp.days[j]:g} days to "
            f"expiry: the move is scaled by {scale[j]:.4g})", float(lowest[inp.uidx[j]]),
        )


Parser = Callable[[Node], ScenarioSpec]
_REGISTRY: dict[str, Parser] = {}


_P = TypeVar("_P", bound=Parser)


def register(kind: str) -> Callable[[_P], _P]:
    def deco(fn: _P) -> _P:
        _REGISTRY[kind] = fn
        return fn

    return deco


def parse_scenario_set(node: Node) -> ScenarioSpec:
    if not isinstance(node.value, dict):
        raise node.error("a scenario set: a mapping with kind (" + ", ".join(_REGISTRY) + ")", node.value)
    kind_node = node.mapping().get("kind")
    if kind_node is None:
        raise node.error("a scenario set with a kind (" + ", ".join(_REGISTRY) + ")", node.value)
    kind = kind_node.string(choices=_REGISTRY)
    return _REGISTRY[kind](node)
