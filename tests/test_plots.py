"""autolog.plots: every chart is a valid PNG of the expected size, edge cases included."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from autolog import plot_canvas, plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def size_of(png):
    """(width, height) of PNG bytes that Pillow decodes; fails on anything else."""
    assert png[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", png[16:24])
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.size == (width, height)
    return width, height


def colors_of(png):
    with Image.open(io.BytesIO(png)) as image:
        return {rgb for _, rgb in image.convert("RGB").getcolors(1 << 20)}


BLUE = (31, 119, 180)
ORANGE = (255, 127, 14)


def test_line_chart_roc_with_diagonal_and_legend():
    fpr = np.array([0.0, 0.1, 0.3, 1.0])
    tpr = np.array([0.0, 0.6, 0.9, 1.0])
    png = plots.line_chart_png(
        [("AUC = 0.870", fpr, tpr)], "ROC curve", "False positive rate", "True positive rate", True
    )
    assert size_of(png) == (560, 400)
    assert BLUE in colors_of(png)
    assert plots.line_chart_png([], "empty", "x", "y") is not None  # "no data", axes 0..1
    assert size_of(plots.line_chart_png([("a", [], [])], "empty", "x", "y")) == (560, 400)


def test_line_chart_breaks_at_nan_and_takes_constant_and_huge_series():
    x = np.arange(10.0)
    y = np.array([1, 2, np.nan, 4, 5, np.inf, 7, 8, 9, 10], dtype=float)
    assert size_of(plots.line_chart_png([("y", x, y)], "gaps", "x", "y")) == (560, 400)
    assert size_of(plots.line_chart_png([("c", x, np.full(10, 3.0))], "flat", "x", "y"))
    all_nan = plots.line_chart_png([("n", x, np.full(10, np.nan))], "nan", "x", "y")
    assert size_of(all_nan) == (560, 400)
    many = np.linspace(0, 1, 200_000)
    png = plots.line_chart_png([("s", many, np.sin(many * 50))], "long", "x", "y")
    assert size_of(png) == (560, 400)
    two = plots.line_chart_png([("a", x, x), ("b", x, -x)], "two", "x", "y")
    assert {BLUE, ORANGE} <= colors_of(two)


def test_scatter_with_reference_line_subsamples_and_says_so():
    rng = np.random.default_rng(0)
    png = plots.scatter_png(rng.normal(size=10_000), rng.normal(size=10_000), "r", "f", "r", 0.0)
    assert size_of(png) == (560, 400)
    assert BLUE in colors_of(png)
    # constant values, one point, NaN only, nothing
    assert size_of(plots.scatter_png(np.ones(5), np.ones(5), "c", "x", "y", hline=0.0))
    assert size_of(plots.scatter_png([2.0], [3.0], "one", "x", "y"))
    assert size_of(plots.scatter_png([np.nan], [np.nan], "nan", "x", "y"))
    assert size_of(plots.scatter_png([], [], "none", "x", "y", hline=0.0)) == (560, 400)


def test_scatter_is_deterministic():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=5000), rng.normal(size=5000)
    assert plots.scatter_png(x, y, "t", "x", "y") == plots.scatter_png(x, y, "t", "x", "y")


@pytest.mark.parametrize("k", [1, 2, 3, 12, 40])
def test_confusion_matrix_sizes(k):
    matrix = np.arange(k * k).reshape(k, k)
    png = plots.confusion_matrix_png(matrix, [f"class {i}" for i in range(k)], "Confusion")
    width, height = size_of(png)
    assert width >= 300 and height > 100
    assert width >= min(72, 420 // k) * k  # one cell per class


def test_confusion_matrix_edge_cases():
    # an empty row (a class never true), weighted counts, NaN, one class, nothing
    weighted = np.array([[0.0, 0.0], [1.5, 2.25]])
    assert size_of(plots.confusion_matrix_png(weighted, ["a", "b"], "weighted"))
    assert size_of(plots.confusion_matrix_png([[np.nan, 1], [0, 2]], [0, 1], "nan"))
    assert size_of(plots.confusion_matrix_png([[5]], ["only"], "one class"))
    assert size_of(plots.confusion_matrix_png(np.zeros((0, 0)), [], "empty"))
    long_labels = ["a label much longer than any cell is wide " + str(i) for i in range(3)]
    assert size_of(plots.confusion_matrix_png(np.eye(3) * 10, long_labels, "long labels"))


def test_time_series_over_positions_and_dates():
    y = np.cumsum(np.random.default_rng(2).normal(size=500))
    png = plots.time_series_png(
        [("actual", np.arange(500), y), ("fitted", np.arange(1, 500), y[1:])], "ts", "y"
    )
    assert size_of(png) == (560, 400)
    assert {BLUE, ORANGE} <= colors_of(png)
    for start, periods in (("1990-01", 240), ("2024-01-01", 60), ("2024-01-01T00", 48)):
        first = np.datetime64(start)  # months, days, hours
        dates = np.arange(first, first + periods).astype("datetime64[ns]")
        png = plots.time_series_png([("actual", dates, y[:periods])], "dates", "y")
        assert size_of(png) == (560, 400)
    assert size_of(plots.time_series_png([("a", [0], [1.0])], "one point", "y"))
    assert size_of(plots.time_series_png([("a", [], [])], "empty", "y"))


def test_date_ticks_are_calendar_round():
    ns = np.array(["1990-01-01", "2010-01-01"], dtype="datetime64[ns]").astype("int64")
    ticks = plots._date_ticks(float(ns[0]), float(ns[1]))
    assert [label for _, label in ticks] == ["1990", "1995", "2000", "2005", "2010"]
    ns = np.array(["2024-01-01", "2024-12-31"], dtype="datetime64[ns]").astype("int64")
    labels = [label for _, label in plots._date_ticks(float(ns[0]), float(ns[1]))]
    assert labels == ["2024-01", "2024-03", "2024-05", "2024-07", "2024-09", "2024-11"]


def test_nice_ticks_and_labels():
    assert plots.nice_ticks(0.0, 1.0, 6) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert plots.nice_ticks(-3.2, 17.0, 5) == [0.0, 5.0, 10.0, 15.0]
    assert [plots.tick_label(v, 0.2) for v in (0.0, 0.4, 1.0)] == ["0", "0.4", "1.0"]
    assert plots.tick_label(2_000_000.0, 1_000_000.0) == "2e+06"
    assert plots.tick_label(15.0, 5.0) == "15"


def test_bar_chart():
    png = plots.bar_chart_png("importance", ["f0", "f1", "f2"], [3.0, 2.0, 0.5])
    assert size_of(png) == (640, 40 + 3 * 20 + 10)
    assert BLUE in colors_of(png)
    assert size_of(plots.bar_chart_png("none", [], [])) == (640, 70)
    assert size_of(plots.bar_chart_png("odd", ["nan", "neg"], [float("nan"), -1.0]))


def test_import_loads_neither_numpy_nor_pillow():
    code = (
        "import sys, autolog.plots, autolog.boosting; "
        "print(sorted(m for m in ('numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def pixels_of(png):
    """The palette indices of PNG bytes, after checking every chunk's CRC."""
    at = 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        body = png[at + 4 : at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length : at + 12 + length])[0] == zlib.crc32(body)
        at += 12 + length
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "P"
        return np.asarray(image)


def test_cached_backgrounds_give_the_charts_drawn_from_scratch():
    rng = np.random.default_rng(3)
    curves = [np.sort(rng.random((2, n)), axis=1) for n in (50, 5000, 50)]
    titles = ["ROC a", "ROC b", "ROC a"]  # the first background again, after another

    def roc(curve, title):
        return plots.line_chart_png([("AUC", *curve)], title, "fpr", "tpr", diagonal=True)

    warm = [roc(curve, title) for curve, title in zip(curves, titles)]
    for curve, title, png in zip(curves, titles, warm):
        plots._plot_background.cache_clear()
        fresh = roc(curve, title)
        assert np.array_equal(pixels_of(png), pixels_of(fresh))
    assert not np.array_equal(pixels_of(warm[0]), pixels_of(warm[2]))  # data, not the cache
    for i in range(40):  # the cache stays bounded
        plots.line_chart_png([("s", [0, 1], [0, i])], f"title {i}", "x", "y")
    assert plots._plot_background.cache_info().currsize <= 16


def test_png_holds_exactly_the_drawn_pixels():
    canvas = plots.Canvas(300, 200)
    canvas.draw.line([(0, 0), (299, 199)], fill=plots.BLUE)
    canvas.text(20, 20, "AUC = 0.812", size=12)
    canvas.draw.rectangle([100, 150, 140, 199], fill=0)  # index 0 under index 255: wraps
    assert np.array_equal(pixels_of(canvas.png()), np.asarray(canvas.image))
    with Image.open(io.BytesIO(canvas.png())) as image:
        assert image.getpalette() == plot_canvas._palette()
