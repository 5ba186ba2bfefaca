"""The drawing layer under :mod:`autolog.plots`: the palette, glyph-mask text, the palette-indexed
canvas that encodes a PNG, and round-number ticks. See :mod:`autolog.plots` for why it is built
this way (cheap enough to draw after every fit). Imports neither numpy nor Pillow at import time.
"""

from __future__ import annotations

import functools
import io
import math
import zlib
from collections.abc import Sequence
from typing import Any

# -- the palette ----------------------------------------------------------------------------------

PAPER = 255  # white; 192..255 run from black to white
INK = 192  # black
TEXT = 198  # near-black, for tick labels
AXIS = 222  # mid gray: frame and ticks
REFERENCE = 232  # light gray: chance diagonal, zero line
GRID = 250  # very light gray
BLUE, ORANGE, GREEN, RED, PURPLE, BROWN = 128, 129, 130, 131, 132, 133
SERIES_COLORS = (BLUE, ORANGE, GREEN, RED, PURPLE, BROWN)
_NAMED = {
    BLUE: (31, 119, 180),
    ORANGE: (255, 127, 14),
    GREEN: (44, 160, 44),
    RED: (214, 39, 40),
    PURPLE: (148, 103, 189),
    BROWN: (140, 86, 75),
}
# Confusion-matrix shades: SHADES ramps of SHADE_STEPS entries, from the shade to its text colour.
SHADES, SHADE_STEPS = 16, 8
_LIGHTEST, _DARKEST = (247, 251, 255), (8, 69, 148)

MAX_LINE_POINTS = 4000  # points a line is drawn through (more: per-pixel-column min/max)
MAX_SCATTER_POINTS = 2000  # points a scatter draws (more: an even subsample)


def _lerp(a: Sequence[int], b: Sequence[int], t: float) -> list[int]:
    return [round(x + (y - x) * t) for x, y in zip(a, b)]


@functools.lru_cache(maxsize=1)
def _palette() -> list[int]:
    entries = [[0, 0, 0] for _ in range(256)]
    for i in range(INK, 256):
        level = round(255 * (i - INK) / (255 - INK))
        entries[i] = [level, level, level]
    for index, rgb in _NAMED.items():
        entries[index] = list(rgb)
    for s in range(SHADES):
        shade = _lerp(_LIGHTEST, _DARKEST, s / (SHADES - 1))
        text = (255, 255, 255) if s >= SHADES // 2 + 1 else (0, 0, 0)
        for j in range(SHADE_STEPS):
            entries[s * SHADE_STEPS + j] = _lerp(shade, text, j / (SHADE_STEPS - 1))
    return [v for rgb in entries for v in rgb]


# -- text -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


_glyphs: dict[tuple[str, int], tuple[Any, float]] = {}


def _glyph(ch: str, size: int) -> tuple[Any, float]:
    found = _glyphs.get((ch, size))
    if found is None:
        from PIL import Image, ImageDraw

        font = _font(size)
        ascent, descent = font.getmetrics()
        advance = font.getlength(ch)
        mask = Image.new("L", (int(advance) + 3, ascent + descent), 0)
        ImageDraw.Draw(mask).text((0, 0), ch, fill=255, font=font)
        found = _glyphs[(ch, size)] = (mask, advance)
    return found


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: int = 12) -> float:
    return sum(_glyph(ch, size)[1] for ch in text)


@functools.lru_cache(maxsize=2048)
def _text_mask(text: str, size: int) -> Any:
    """The coverage mask of one line of text (composed from cached glyphs)."""
    from PIL import Image

    font = _font(size)
    ascent, descent = font.getmetrics()
    mask = Image.new("L", (math.ceil(text_width(text, size)) + 3, ascent + descent), 0)
    x = 0.0
    for ch in text:
        glyph, advance = _glyph(ch, size)
        if not ch.isspace():
            mask.paste(255, (round(x), 0), glyph)
        x += advance
    return mask


def _shorten(text: str, width: float, size: int) -> str:
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "...", size) > width:
        text = text[:-1]
    return text + "..."


# -- the canvas -----------------------------------------------------------------------------------


class Canvas:
    """An 8-bit image of palette indices, with text placement and PNG output."""

    def __init__(self, width: int, height: int, image: Any = None):
        """A blank canvas, or one continuing on ``image`` (mode "L", this size; not copied)."""
        from PIL import Image, ImageDraw

        self.width, self.height = width, height
        self.image = Image.new("L", (width, height), PAPER) if image is None else image
        self.draw = ImageDraw.Draw(self.image)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: int = 12,
        color: int = INK,
        align: str = "left",
        valign: str = "top",
        vertical: bool = False,
    ) -> None:
        """Write one line at (x, y); ``align`` / ``valign`` say which edge (x, y) is.

        The background under the text must be one index whose ramp ends at ``color``: white
        (any gray) or a confusion-matrix shade (its text colour).
        """
        if not text:
            return
        mask = _text_mask(text, size)
        if vertical:  # reads bottom to top
            from PIL import Image

            mask = mask.transpose(Image.Transpose.ROTATE_90)
        w, h = mask.size
        dx = {"left": 0.0, "center": w / 2, "right": float(w)}[align]
        dy = {"top": 0.0, "middle": h / 2, "bottom": float(h)}[valign]
        self.image.paste(color, (round(x - dx), round(y - dy)), mask)

    def replace(self, pixels: Any) -> None:
        """Continue on ``pixels`` (a uint8 array of this canvas's shape)."""
        from PIL import Image, ImageDraw

        self.image = Image.fromarray(pixels)  # 2-D uint8: mode "L"
        self.draw = ImageDraw.Draw(self.image)

    def png(self) -> bytes:
        """The chart as an 8-bit palette PNG (the canvas's values are palette indices).

        Encoded by Pillow, with zlib's run-length strategy (Z_RLE) at level 1: a chart is long
        runs of one index, which run-length matching compresses about as well as the default
        strategy for a fraction of the work.
        """
        image = self.image.copy()  # putpalette turns the "L" image into a "P" one in place
        image.putpalette(_palette_bytes())
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
        return out.getvalue()


@functools.lru_cache(maxsize=1)
def _palette_bytes() -> bytes:
    return bytes(_palette())


def _available() -> bool:
    try:
        _font(12)
    except (ImportError, TypeError, OSError):  # no Pillow, or one without FreeType
        return False
    return True


# -- ticks ----------------------------------------------------------------------------------------


def nice_step(span: float, target: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``target`` ticks."""
    raw = span / max(target, 1)
    if not math.isfinite(raw) or raw <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * magnitude >= raw * 0.999:
            return m * magnitude
    return 10.0 * magnitude


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round-number ticks within [lo, hi]."""
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9)
    ticks: list[float] = []
    k = first
    while k * step <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(k * step)
        k += 1
    return ticks


def tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as ``step`` needs (0.25 -> 2, 20 -> 0)."""
    if abs(value) < step * 1e-6:
        return "0"
    big = max(abs(value), step)
    if big >= 1e6 or big < 1e-4:
        return f"{value:.3g}"
    decimals = 0
    while decimals < 8 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return f"{value:.{decimals}f}"


def _limits(values: Any, include: Sequence[float] = (), pad: float = 0.04) -> tuple[float, float]:
    """(lo, hi) around the finite values, padded; a sensible range for one value or none."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    bounds = [float(finite.min()), float(finite.max())] if len(finite) else []
    bounds += [v for v in include if math.isfinite(v)]
    lo, hi = min(bounds, default=math.nan), max(bounds, default=math.nan)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi - lo <= abs(hi) * 1e-12:
        half = abs(lo) * 0.1 or 1.0
        return lo - half, hi + half
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def _date_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks for an axis of datetime64[ns] values (as floats): whole years, months, days, hours."""
    import numpy as np

    span_days = (hi - lo) / 86_400e9
    start, end = np.datetime64(int(lo), "ns"), np.datetime64(int(hi), "ns")
    steps: tuple[int, ...]
    if span_days > 3 * 365:
        unit, steps, fmt = "Y", (1, 2, 5, 10, 20, 50, 100), 4
        count = span_days / 365.25
    elif span_days > 80:
        unit, steps, fmt = "M", (1, 2, 3, 6), 7
        count = span_days / 30.44
    elif span_days > 3:
        unit, steps, fmt = "D", (1, 2, 7, 14), 10
        count = span_days
    else:
        unit, steps, fmt = "m", (1, 5, 15, 30, 60, 120, 180, 360, 720), 16
        count = span_days * 1440
    step = next((s for s in steps if count / s <= 6), steps[-1])
    first = start.astype(f"datetime64[{unit}]")
    if first.astype("datetime64[ns]") < start:
        first = first + 1
    base = first.astype("int64")
    base = base + (-base % step)
    ticks: list[tuple[float, str]] = []
    for k in range(base, end.astype(f"datetime64[{unit}]").astype("int64") + 1, step):
        moment = np.datetime64(int(k), unit)  # type: ignore[call-overload]
        text = str(moment)[:fmt].replace("T", " ")
        if unit == "m" and span_days <= 1:
            text = text[11:]  # the time alone within one day
        ticks.append((float(moment.astype("datetime64[ns]").astype("int64")), text))
        if len(ticks) > 12:
            break
    return ticks
