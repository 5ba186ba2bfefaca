"""Small charts as PNG bytes, drawn with Pillow: cheap enough to draw after every fit.

A chart here costs 1-4 ms where matplotlib needs 50-100 ms, which matters against the 30 ms
budget of a tiny fit. The charts are plain but complete: title, axes with round-number ticks,
axis labels, a legend where there are several series.

- :func:`bar_chart_png`: horizontal bars, largest on top (feature importance);
- :func:`confusion_matrix_png`: counts in a grid, cells shaded by their share of the true class;
- :func:`line_chart_png`: curves (ROC with the chance diagonal, precision-recall);
- :func:`scatter_png`: points, optionally a horizontal reference line (residuals vs fitted);
- :func:`time_series_png`: lines over positions or dates (fitted vs actual).

How it stays cheap: the chart is one 8-bit image whose values are palette indices, saved as a
palette PNG (a third of the bytes to compress of an RGB image). Text is composed from glyph
masks rendered once per character and size. Antialiased text is pasted through its mask, which
blends *index* values linearly; the palette is laid out in ramps (white to black, and each
confusion-matrix shade to its text colour) so that the blended index is the blended colour.
The part of an x/y chart that its data does not change (grid, ticks, labels, title, a ROC
curve's diagonal) is drawn once per process and copied for each chart with the same axes.
Pillow encodes the PNG, with zlib's run-length strategy (see :meth:`Canvas.png`).

The drawing layer (palette, text, canvas, ticks) is :mod:`autolog.plot_canvas`.

Every function returns None when Pillow (>= 10.1, with FreeType) is missing. Non-finite values
are left out of a chart (a line is broken where they were). Imports neither numpy nor Pillow at
import time.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from autolog.plot_canvas import (
    AXIS,
    BLUE,
    GRID,
    INK,
    MAX_LINE_POINTS,
    MAX_SCATTER_POINTS,
    PAPER,
    REFERENCE,
    SERIES_COLORS,
    SHADE_STEPS,
    SHADES,
    TEXT,
    Canvas,
    _available,
    _date_ticks,
    _limits,
    _shorten,
    nice_step,
    nice_ticks,
    text_width,
    tick_label,
)

# -- x/y charts -----------------------------------------------------------------------------------


class _Plot:
    """One plot area with a frame, grid, round-number ticks, axis labels and a title;
    ``diagonal``: the dashed y = x line under the data (a ROC curve's chance line)."""

    LEFT, RIGHT, TOP, BOTTOM = 70, 18, 34, 46

    def __init__(
        self,
        title: str,
        x_label: str,
        y_label: str,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        x_ticks: list[tuple[float, str]] | None = None,
        width: int = 560,
        height: int = 400,
        diagonal: bool = False,
    ):
        self._place(xlim, ylim, width, height)
        ticks = None if x_ticks is None else tuple(x_ticks)
        background = _plot_background(title, x_label, y_label, xlim, ylim, ticks, width, height,
                                      diagonal)  # fmt: skip
        self.canvas = Canvas(width, height, background.copy())

    def _place(
        self, xlim: tuple[float, float], ylim: tuple[float, float], width: int, height: int
    ) -> None:
        """The plot area inside a width x height canvas, and the data limits it shows."""
        self.x0, self.x1 = self.LEFT, width - self.RIGHT
        self.y0, self.y1 = self.TOP, height - self.BOTTOM
        self.xlim, self.ylim = xlim, ylim

    def _draw_background(
        self,
        title: str,
        x_label: str,
        y_label: str,
        x_ticks: Sequence[tuple[float, str]] | None,
        diagonal: bool,
    ) -> None:
        c = self.canvas
        xlim, ylim = self.xlim, self.ylim
        if x_ticks is None:
            step = nice_step(xlim[1] - xlim[0], 6)
            x_ticks = [(v, tick_label(v, step)) for v in nice_ticks(*xlim, 6)]
        ystep = nice_step(ylim[1] - ylim[0], 6)
        y_ticks = [(v, tick_label(v, ystep)) for v in nice_ticks(*ylim, 6)]
        draw = c.draw
        for v, text in x_ticks:
            x = round(self.px(v))
            draw.line([(x, self.y0), (x, self.y1)], fill=GRID)
            draw.line([(x, self.y1), (x, self.y1 + 4)], fill=AXIS)
            c.text(x, self.y1 + 6, text, size=11, color=TEXT, align="center")
        for v, text in y_ticks:
            y = round(self.py(v))
            draw.line([(self.x0, y), (self.x1, y)], fill=GRID)
            draw.line([(self.x0 - 4, y), (self.x0, y)], fill=AXIS)
            c.text(self.x0 - 7, y, text, size=11, color=TEXT, align="right", valign="middle")
        c.text((self.x0 + self.x1) / 2, c.height - 6, x_label, size=12, valign="bottom")
        widest = max((text_width(t, 11) for _, t in y_ticks), default=0)
        c.text(max(self.x0 - 14 - widest, 2), (self.y0 + self.y1) / 2, y_label, 12, INK,
               "right", "middle", vertical=True)  # fmt: skip
        c.text(c.width / 2, 9, _shorten(title, c.width - 20, 14), size=14, align="center")
        if diagonal:
            self.line([0.0, 1.0], [0.0, 1.0], REFERENCE, dashed=True)

    def px(self, x: Any) -> Any:
        return self.x0 + (x - self.xlim[0]) * (self.x1 - self.x0) / (self.xlim[1] - self.xlim[0])

    def py(self, y: Any) -> Any:
        return self.y1 - (y - self.ylim[0]) * (self.y1 - self.y0) / (self.ylim[1] - self.ylim[0])

    def line(self, xs: Any, ys: Any, color: int, thick: bool = True, dashed: bool = False) -> None:
        """A polyline through the finite points (broken where a value is missing)."""
        import numpy as np

        px = np.clip(self.px(np.asarray(xs, dtype=float)), -1e6, 1e6)
        py = np.clip(self.py(np.asarray(ys, dtype=float)), -1e6, 1e6)
        ok = np.isfinite(px) & np.isfinite(py)
        draw = self.canvas.draw
        for seg_x, seg_y in _runs(px, py, ok):
            seg_x, seg_y = _decimate(seg_x, seg_y)
            seg_x, seg_y = np.round(seg_x), np.round(seg_y)
            moved = np.concatenate([[True], (np.diff(seg_x) != 0) | (np.diff(seg_y) != 0)])
            xy = np.column_stack([seg_x[moved], seg_y[moved]])
            if dashed:
                dashes = _dashes(list(map(tuple, xy.tolist())))
                for a, b in zip(dashes[::2], dashes[1::2]):
                    draw.line([a, b], fill=color)
                continue
            if len(xy) == 1:
                draw.point(xy.ravel().tolist(), fill=color)
                continue
            draw.line(xy.ravel().tolist(), fill=color)  # flat [x, y, x, y, ...]: no tuples
            if thick:  # a second line a pixel lower: cheaper than width=2 (joints)
                xy[:, 1] += 1
                draw.line(xy.ravel().tolist(), fill=color)

    def points(self, xs: Any, ys: Any, color: int) -> None:
        """2x2-pixel dots at the finite points."""
        import numpy as np

        c = self.canvas
        px = self.px(np.asarray(xs, dtype=float))
        py = self.py(np.asarray(ys, dtype=float))
        ok = np.isfinite(px) & np.isfinite(py)
        x = np.clip(np.round(px[ok]).astype(np.int64), 0, c.width - 2)
        y = np.clip(np.round(py[ok]).astype(np.int64), 0, c.height - 2)
        pixels = np.array(c.image)  # numpy sets thousands of pixels faster than ImageDraw
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            pixels[y + dy, x + dx] = color
        c.replace(pixels)

    def frame(self) -> None:
        self.canvas.draw.rectangle([self.x0, self.y0, self.x1, self.y1], outline=AXIS)

    def legend(self, entries: list[tuple[str, int]], occupied: list[tuple[Any, Any]]) -> None:
        """A boxed legend in the plot corner holding the fewest data points."""
        if not entries:
            return
        import numpy as np

        entries = [(_shorten(name, 260, 11), color) for name, color in entries]
        w = round(max(text_width(name, 11) for name, _ in entries)) + 40
        h = 18 * len(entries) + 8
        corners = {
            "upper left": (self.x0 + 8, self.y0 + 8),
            "upper right": (self.x1 - 8 - w, self.y0 + 8),
            "lower right": (self.x1 - 8 - w, self.y1 - 8 - h),
            "lower left": (self.x0 + 8, self.y1 - 8 - h),
        }

        at = [
            (self.px(np.asarray(xs, float)), self.py(np.asarray(ys, float))) for xs, ys in occupied
        ]

        def crowding(corner: tuple[int, int]) -> int:
            x, y = corner
            n = 0
            for px, py in at:
                n += int(np.count_nonzero((px >= x) & (px <= x + w) & (py >= y) & (py <= y + h)))
            return n

        x, y = min(corners.values(), key=crowding)  # ties: the first (upper left)
        draw = self.canvas.draw
        draw.rectangle([x, y, x + w, y + h], fill=PAPER, outline=GRID)
        for i, (name, color) in enumerate(entries):
            cy = y + 4 + 18 * i + 9
            draw.rectangle([x + 8, cy - 1, x + 28, cy], fill=color)
            self.canvas.text(x + 34, cy, name, size=11, valign="middle")

    def note(self, text: str) -> None:
        """A line in the middle of the plot area (e.g. "no data")."""
        self.canvas.text((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2, text, 12, TEXT,
                         "center", "middle")  # fmt: skip


@functools.lru_cache(maxsize=16)  # 16 images of 560 x 400: 3.6 MB
def _plot_background(
    title: str,
    x_label: str,
    y_label: str,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    x_ticks: tuple[tuple[float, str], ...] | None,
    width: int,
    height: int,
    diagonal: bool,
) -> Any:
    """The image of a :class:`_Plot` before its data: the same for every chart with these
    axes (a ROC curve's, fit after fit). Shared: draw on a copy."""
    plot = _Plot.__new__(_Plot)  # its geometry and drawing, without a background of its own
    plot._place(xlim, ylim, width, height)
    plot.canvas = Canvas(width, height)
    plot._draw_background(title, x_label, y_label, x_ticks, diagonal)
    return plot.canvas.image


def _runs(px: Any, py: Any, ok: Any) -> list[tuple[Any, Any]]:
    """The stretches of consecutive finite points."""
    import numpy as np

    if ok.all():
        return [(px, py)] if len(px) else []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    return [(px[a:b], py[a:b]) for a, b in zip(edges[::2], edges[1::2])]


def _decimate(px: Any, py: Any) -> tuple[Any, Any]:
    """At most ~4 points per pixel column (first, min, max, last) when x only grows."""
    import numpy as np

    if len(px) <= MAX_LINE_POINTS:
        return px, py
    if not np.all(np.diff(px) >= 0):  # a curve going back and forth: an even subsample
        keep = np.linspace(0, len(px) - 1, MAX_LINE_POINTS).astype(int)
        return px[keep], py[keep]
    col = np.floor(px).astype(np.int64)
    starts = np.flatnonzero(np.concatenate([[True], col[1:] != col[:-1]]))
    ends = np.concatenate([starts[1:], [len(px)]]) - 1
    lo, hi = np.minimum.reduceat(py, starts), np.maximum.reduceat(py, starts)
    x = np.repeat(col[starts].astype(float), 4)
    y = np.stack([py[starts], lo, hi, py[ends]], axis=1).ravel()
    return x, y


def _dashes(points: list[tuple[float, float]], on: float = 6, off: float = 4) -> list[Any]:
    """Pairs of points (start, end) of the dashes along a polyline of straight segments."""
    out: list[tuple[float, float]] = []
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        length = math.hypot(xb - xa, yb - ya)
        t = 0.0
        while t < length:
            u = min(t + on, length)
            out += [(xa + (xb - xa) * t / length, ya + (yb - ya) * t / length)]
            out += [(xa + (xb - xa) * u / length, ya + (yb - ya) * u / length)]
            t = u + off
    return out


def _series_arrays(xs: Any, ys: Any) -> tuple[Any, Any]:
    import numpy as np

    x = np.asarray(xs, dtype=float).ravel()
    y = np.asarray(ys, dtype=float).ravel()
    n = min(len(x), len(y))
    return x[:n], y[:n]


def line_chart_png(
    series: Sequence[tuple[str, Any, Any]],
    title: str,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
) -> bytes | None:
    """Lines of (name, xs, ys), a legend naming them; ``diagonal``: the y = x line, and both
    axes include [0, 1] (a ROC curve's chance line)."""
    if not _available():
        return None
    import numpy as np

    data = [(name, *_series_arrays(xs, ys)) for name, xs, ys in series]
    all_x = np.concatenate([x for _, x, _ in data]) if data else np.zeros(0)
    all_y = np.concatenate([y for _, _, y in data]) if data else np.zeros(0)
    include = (0.0, 1.0) if diagonal else ()
    xlim, ylim = _limits(all_x, include, 0.02), _limits(all_y, include)
    plot = _Plot(title, x_label, y_label, xlim, ylim, diagonal=diagonal)
    entries = []
    for i, (name, x, y) in enumerate(data):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        plot.line(x, y, color)
        entries.append((name, color))
    plot.frame()
    if not np.isfinite(all_x).any() or not np.isfinite(all_y).any():
        plot.note("no data")
    elif any(name for name, _ in entries):
        plot.legend([e for e in entries if e[0]], [(x, y) for _, x, y in data])
    return plot.canvas.png()


def scatter_png(
    xs: Any,
    ys: Any,
    title: str,
    x_label: str,
    y_label: str,
    hline: float | None = None,
) -> bytes | None:
    """Points (an even subsample of MAX_SCATTER_POINTS when there are more, said in the title)
    and an optional horizontal reference line (``hline=0.0`` for residuals)."""
    if not _available():
        return None
    import numpy as np

    x, y = _series_arrays(xs, ys)
    if len(x) > MAX_SCATTER_POINTS:
        keep = np.linspace(0, len(x) - 1, MAX_SCATTER_POINTS).astype(int)
        title = f"{title} ({MAX_SCATTER_POINTS:,} of {len(x):,} points)"
        x, y = x[keep], y[keep]
    ok = np.isfinite(x) & np.isfinite(y)
    include = (hline,) if hline is not None and math.isfinite(hline) else ()
    plot = _Plot(title, x_label, y_label, _limits(x[ok]), _limits(y[ok], include))
    if include:
        plot.line(plot.xlim, [hline, hline], REFERENCE, thick=False)
    plot.points(x, y, BLUE)
    plot.frame()
    if not ok.any():
        plot.note("no data")
    return plot.canvas.png()


def time_series_png(
    series: Sequence[tuple[str, Any, Any]],
    title: str,
    y_label: str,
    x_label: str = "",
) -> bytes | None:
    """Lines of (name, xs, ys) over time: xs are positions (numbers) or datetime64 values, the
    same kind for every series; dates get calendar ticks (years, months, days or hours)."""
    if not _available():
        return None
    import numpy as np

    dates = any(np.asarray(xs).dtype.kind == "M" for _, xs, _ in series)
    data = []
    for name, xs, ys in series:
        x = np.asarray(xs)
        if x.dtype.kind == "M":
            x = np.where(np.isnat(x), np.nan, x.astype("datetime64[ns]").astype("int64"))
        data.append((name, *_series_arrays(x, ys)))
    all_x = np.concatenate([x for _, x, _ in data]) if data else np.zeros(0)
    all_y = np.concatenate([y for _, _, y in data]) if data else np.zeros(0)
    xlim = _limits(all_x, pad=0.01)
    ticks = _date_ticks(*xlim) if dates and np.isfinite(all_x).any() else None
    plot = _Plot(title, x_label or ("date" if dates else "index"), y_label, xlim,
                 _limits(all_y), x_ticks=ticks)  # fmt: skip
    entries = []
    for i, (name, x, y) in enumerate(data):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        plot.line(x, y, color, thick=i == 0)
        entries.append((name, color))
    plot.frame()
    if not np.isfinite(all_y).any():
        plot.note("no data")
    else:
        plot.legend(entries, [(x, y) for _, x, y in data])
    return plot.canvas.png()


# -- confusion matrix -----------------------------------------------------------------------------


def confusion_matrix_png(matrix: Any, labels: Sequence[Any], title: str) -> bytes | None:
    """A k x k grid of counts (rows: true class, columns: predicted class), each cell shaded by
    its share of its row; the share is printed under the count where the cell has room."""
    if not _available():
        return None
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        m = np.zeros((0, 0))
    k = m.shape[0]
    names = [str(label) for label in labels][:k]
    names += [str(i) for i in range(len(names), k)]
    cell = max(8, min(72, 420 // max(k, 1)))
    show_labels = cell >= 14
    names = [_shorten(n, 110, 11) for n in names] if show_labels else []
    label_w = max((text_width(n, 11) for n in names), default=0)
    vertical_x = show_labels and label_w > cell - 4
    left = 34 + round(label_w) + 10
    top = 40
    grid = k * cell
    bottom = 14 + (round(label_w) + 8 if vertical_x else 18) + 20
    width = max(left + grid + 24, 300, round(text_width(title, 14)) + 24)
    height = top + grid + bottom
    c = Canvas(width, height)
    draw = c.draw
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.nan_to_num(m / m.sum(axis=1, keepdims=True), nan=0.0, posinf=0.0, neginf=0.0)
    share = np.clip(share, 0.0, 1.0)
    _matrix_cells(c, m, share, left, top, cell)
    if k:
        draw.rectangle([left - 1, top - 1, left + grid, top + grid], outline=AXIS)
    for i, name in enumerate(names):
        mid = i * cell + cell / 2
        c.text(left - 6, top + mid, name, 11, TEXT, "right", "middle")
        if vertical_x:
            c.text(left + mid, top + grid + 6, name, 11, TEXT, "center", "top", vertical=True)
        else:
            c.text(left + mid, top + grid + 6, name, 11, TEXT, "center", "top")
    c.text(left + grid / 2, height - 6, "predicted", 12, INK, "center", "bottom")
    c.text(8, top + grid / 2, "true", 12, INK, "left", "middle", vertical=True)
    c.text(width / 2, 10, title, 14, INK, "center")
    if not k:
        c.text(width / 2, top + 30, "no data", 12, TEXT, "center")
    return c.png()


def _matrix_cells(c: Any, m: Any, share: Any, left: int, top: int, cell: int) -> None:
    """The confusion matrix's cells: shaded by share, with the count (and share) where it fits."""
    import numpy as np

    k = m.shape[0]
    draw = c.draw
    counts_fit = cell >= 26
    integral = bool(np.all(np.isnan(m) | (m == np.round(m))))
    for i in range(k):
        for j in range(k):
            x, y = left + j * cell, top + i * cell
            shade = int(round(share[i, j] * (SHADES - 1)))
            base = shade * SHADE_STEPS
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=base)
            if not counts_fit:
                continue
            v = m[i, j]
            text = "nan" if math.isnan(v) else (f"{v:.0f}" if integral else f"{v:.4g}")
            size = 12 if text_width(text, 12) <= cell - 6 else 10
            if text_width(text, size) > cell - 4:
                continue
            fg = base + SHADE_STEPS - 1
            if cell >= 44:
                c.text(x + cell / 2, y + cell / 2 - 1, text, size, fg, "center", "bottom")
                c.text(x + cell / 2, y + cell / 2 + 1, f"{share[i, j]:.0%}", 10, fg, "center")
            else:
                c.text(x + cell / 2, y + cell / 2, text, size, fg, "center", "middle")


# -- bar chart ------------------------------------------------------------------------------------


def bar_chart_png(title: str, labels: list[str], values: list[float]) -> bytes | None:
    """A horizontal bar chart of ``values`` in the order given (callers sort, largest first)."""
    if not _available():
        return None
    labels = [s if len(s) <= 40 else s[:39] + "..." for s in labels]
    widths = [text_width(label, 13) for label in labels]
    width, row, top, pad = 640, 20, 40, 10
    height = top + row * max(len(labels), 1) + pad
    c = Canvas(width, height)
    c.text(pad, 12, title, size=13)
    label_w = round(max(widths, default=0)) + 2 * pad
    bar_max = width - label_w - 80
    finite = [abs(v) for v in values if math.isfinite(v)]
    biggest = max(finite, default=0.0) or 1.0
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * row
        c.text(label_w - pad, y + row / 2, label, 13, INK, "right", "middle")
        length = bar_max * max(value, 0.0) / biggest if math.isfinite(value) else 0.0
        if length >= 1:
            c.draw.rectangle([label_w, y + 3, label_w + length, y + row - 4], fill=BLUE)
        c.text(label_w + length + 5, y + row / 2, f"{value:.4g}", 13, INK, "left", "middle")
    return c.png()
