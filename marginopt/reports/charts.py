"""Charts for the HTML reports: matplotlib figures drawn as SVG text to inline in the page.

matplotlib is the optional ``plots`` extra, imported only when a chart is drawn. Figures
are built with the object API on an Agg canvas, never through pyplot, so drawing a report
touches no global figure state (a notebook's inline backend keeps working beside it).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from marginopt.errors import MarginoptError

# Muted, colour-blind-safe colours (Okabe-Ito), cycled over series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")


class PlotsUnavailableError(MarginoptError):
    """matplotlib, needed to draw a report's charts, is not installed."""


def require_plots() -> None:
    """Fail early, before a long computation, when the charts cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotsUnavailableError(
            "an HTML report needs matplotlib for its charts: install the plots extra (pip install 'marginopt[plots]')"
        ) from exc


# Text as glyph paths: the page needs no font; no mathtext: a '$' in a venue name is just a '$'.
_RC: dict[str, Any] = {"svg.fonttype": "path", "text.parse_math": False, "font.size": 9.0, "axes.spines.top": False,
       "axes.spines.right": False, "axes.axisbelow": True}


@contextmanager
def _figure(width: float, height: float, key: str) -> Iterator[tuple[Any, list[str]]]:
    """A figure with an Agg canvas; the SVG text is appended to the yielded list on exit."""
    require_plots()
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out: list[str] = []
    # The salt makes ids depend on the chart only, so the same report gives the same page.
    with matplotlib.rc_context(cast(Any, {**_RC, "svg.hashsalt": key})):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig, out
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    out.append(_inline(buf.getvalue(), key))


def _inline(svg: str, key: str) -> str:
    """SVG for inlining in HTML: no XML prolog, DOCTYPE (it names a DTD URL) or RDF metadata,
    and every id prefixed with ``key`` so the glyphs and clip paths of two charts cannot clash."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{key}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{key}-\1"', svg)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", svg)


def compact(x: float) -> str:
    """Tick labels short enough not to collide in a small panel: 1.5M, 250k, 40."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:,.4g}{suffix}"
    return f"{x:.4g}"


def _money_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda x, _: compact(x)))


def grouped_bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], title: str, unit: str, key: str) -> str:
    """One group of bars per category, one bar per series (margin before / after per venue)."""
    n = max(len(series), 1)
    width = 0.8 / n
    with _figure(max(4.0, 1.2 + 1.1 * len(categories) * (0.5 + 0.25 * n)), 3.2, key) as (fig, out):
        ax = fig.add_subplot()
        for k, (name, values) in enumerate(series.items()):
            xs = [i + (k - (n - 1) / 2) * width for i in range(len(categories))]
            ax.bar(xs, list(values), width, label=name, color=PALETTE[k % len(PALETTE)])
        ax.set_xticks(range(len(categories)), list(categories))
        ax.set_title(title, loc="left")
        ax.set_ylabel(unit)
        _money_axis(ax.yaxis)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(frameon=False)
    return out[0]


def stacked_bars(categories: Sequence[str], stacks: Mapping[str, Sequence[float]], title: str, unit: str, key: str) -> str:
    """One bar per category, split into one segment per stack (collateral by asset at each venue)."""
    with _figure(max(4.0, 1.6 + 0.8 * len(categories)), 3.4, key) as (fig, out):
        ax = fig.add_subplot()
        base = [0.0] * len(categories)
        for k, (name, values) in enumerate(stacks.items()):
            ax.bar(range(len(categories)), list(values), 0.6, bottom=base, label=name, color=PALETTE[k % len(PALETTE)])
            base = [b + v for b, v in zip(base, values)]
        ax.set_xticks(range(len(categories)), list(categories), rotation=20 if len(categories) > 4 else 0, ha="right"
                      if len(categories) > 4 else "center")
        ax.set_title(title, loc="left")
        ax.set_ylabel(unit)
        _money_axis(ax.yaxis)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    return out[0]


def scenario_panels(panels: Sequence[tuple[str, Sequence[tuple[str, float]]]], title: str, unit: str, key: str,
                    columns: int = 1) -> str:
    """Horizontal bars of the largest scenario losses, one panel per (venue, book) in a grid."""
    rows = max(1, -(-len(panels) // columns))
    depth = max((len(p[1]) for p in panels), default=1)
    with _figure(4.6 * columns + 1.0, rows * (0.6 + 0.2 * depth) + 0.4, key) as (fig, out):
        # One scale per row: a venue's book now and after the plan side by side compare at a glance.
        axes = fig.subplots(rows, columns, squeeze=False, sharex="row")
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.set_axis_off()
                continue
            name, worst = panels[k]
            labels = [label for label, _ in worst][::-1]  # largest on top
            values = [loss for _, loss in worst][::-1]
            ax.barh(range(len(values)), values, color=[PALETTE[5] if v > 0 else PALETTE[2] for v in values])
            ax.set_yticks(range(len(values)), labels)
            ax.set_title(name, loc="left")
            _money_axis(ax.xaxis)
            ax.grid(axis="x", alpha=0.3)
            ax.set_xlabel(unit)
        fig.suptitle(title, x=0.01, ha="left")
    return out[0]


def level_panels(panels: Sequence[tuple[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]]], title: str, unit: str,
                 key: str, columns: int = 2) -> str:
    """Lines against the market move, one panel per (title, {series: (moves, values)}): a venue's margin
    balance, IM and MM along each direction; the move axis is in percent."""
    from matplotlib.ticker import PercentFormatter

    rows = max(1, -(-len(panels) // columns))
    with _figure(4.2 * columns + 0.6, 2.6 * rows + 0.5, key) as (fig, out):
        axes = fig.subplots(rows, columns, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.set_axis_off()
                continue
            name, series = panels[k]
            for i, (label, (xs, ys)) in enumerate(series.items()):
                ax.plot([100.0 * x for x in xs], list(ys), label=label, color=PALETTE[i % len(PALETTE)], linewidth=1.4)
            ax.axvline(0.0, color="#999999", linewidth=0.8)
            ax.set_title(name, loc="left")
            ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
            _money_axis(ax.yaxis)
            ax.grid(alpha=0.3)
            ax.set_ylabel(unit)
            if k == 0:
                ax.legend(frameon=False)
        fig.suptitle(title, x=0.01, ha="left")
    return out[0]


def fan_panels(panels: Sequence[tuple[str, Mapping[str, Mapping[float, Sequence[float]]]]], title: str, unit: str,
               key: str, columns: int = 2) -> str:
    """Fan charts against the day, one panel per (title, {series: {quantile level: values by day}}): each
    pair of levels symmetric about the median (5% and 95%) is a shaded band, the median a line, any other
    level a dashed line. A series named with "probability" is drawn in percent on a second axis."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    rows = max(1, -(-len(panels) // columns))
    with _figure(4.2 * columns + 0.6, 2.8 * rows + 0.5, key) as (fig, out):
        axes = fig.subplots(rows, columns, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.set_axis_off()
                continue
            name, series = panels[k]
            twin = None
            for i, (label, levels) in enumerate(series.items()):
                color = PALETTE[i % len(PALETTE)]
                if "probability" in label:
                    twin = twin or ax.twinx()
                    for ys in levels.values():
                        twin.plot(range(len(ys)), [100.0 * y for y in ys], color=color, linewidth=1.2, linestyle=":",
                                  label=label)
                    continue
                qs = sorted(levels)
                paired: set[float] = set()
                for lo in qs:
                    hi = next((h for h in qs if abs(h - (1.0 - lo)) < 1e-12 and h > lo), None)
                    if hi is None:
                        continue
                    paired |= {lo, hi}
                    days = range(len(levels[lo]))
                    ax.fill_between(days, list(levels[lo]), list(levels[hi]), color=color, alpha=0.12 + 0.5 * lo,
                                    linewidth=0, label=f"{label} {lo:.0%}-{hi:.0%}")
                for level in qs:
                    if level in paired and abs(level - 0.5) > 1e-12:
                        continue
                    median = abs(level - 0.5) < 1e-12
                    ax.plot(range(len(levels[level])), list(levels[level]), color=color, linewidth=1.4 if median else 1.0,
                            linestyle="-" if median else "--", label=f"{label} {level:.0%}")
            ax.set_title(name, loc="left")
            ax.set_xlabel("day")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _money_axis(ax.yaxis)
            ax.set_ylabel(unit)
            ax.grid(alpha=0.3)
            handles, labels = ax.get_legend_handles_labels()
            if twin is not None:
                twin.yaxis.set_major_formatter(PercentFormatter(decimals=0))
                twin.set_ylim(-2.0, 102.0)
                twin.spines["right"].set_visible(True)
                more = twin.get_legend_handles_labels()
                handles, labels = handles + more[0], labels + more[1]
            if k == 0:
                ax.legend(handles, labels, frameon=False, fontsize=7)
        fig.suptitle(title, x=0.01, ha="left")
    return out[0]


def waterfall(start: tuple[str, float], steps: Sequence[tuple[str, float]], end: tuple[str, float], title: str, unit: str,
              key: str) -> str:
    """A waterfall: the ``start`` level as a bar, each step as a bar floating from the running total
    (a rise in one colour, a fall in another), and the ``end`` level, which the steps reach."""
    labels = [start[0], *(s[0] for s in steps), end[0]]
    bottoms, heights, colours = [0.0], [start[1]], [PALETTE[0]]
    level = start[1]
    for _, delta in steps:
        bottoms.append(level if delta >= 0 else level + delta)
        heights.append(abs(delta))
        colours.append(PALETTE[5] if delta > 0 else PALETTE[2])
        level += delta
    bottoms.append(0.0)
    heights.append(end[1])
    colours.append(PALETTE[0])
    with _figure(max(4.6, 1.4 + 0.85 * len(labels)), 3.4, key) as (fig, out):
        ax = fig.add_subplot()
        xs = list(range(len(labels)))
        ax.bar(xs, heights, 0.6, bottom=bottoms, color=colours)
        running = start[1]
        for i, (_, delta) in enumerate(steps, start=1):  # the step's size over its bar, with its sign
            running += delta
            ax.annotate(("+" if delta > 0 else "") + compact(delta), (i, bottoms[i] + heights[i]), ha="center", va="bottom",
                        fontsize=8, xytext=(0, 2), textcoords="offset points")
            if i < len(labels) - 1:
                ax.plot([i - 0.3, i + 1.3], [running, running], color="#999999", linewidth=0.6)
        ax.set_xticks(xs, labels, rotation=25 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
        tops = [b + h for b, h in zip(bottoms, heights)]
        lo, hi = min(bottoms[1:-1] + [start[1], end[1]]), max(tops)
        # Where the levels dwarf the steps, the axis starts under the lowest step (the level bars are cut,
        # and the axis says where it starts), so the steps can be read.
        if lo > 0 and 0 < hi - lo < 0.5 * lo:
            ax.set_ylim(lo - 0.3 * (hi - lo), hi + 0.08 * (hi - lo))
        else:
            ax.set_ylim(min(0.0, lo), hi + 0.08 * (hi - min(0.0, lo)))
        ax.set_title(title, loc="left")
        ax.set_ylabel(unit)
        _money_axis(ax.yaxis)
        ax.grid(axis="y", alpha=0.3)
    return out[0]
