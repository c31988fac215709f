"""The words target: any text, rendered with Pillow's built-in scalable font; ink carries the mass.

The text (new lines allowed, lines centred) is drawn white on black at several times the grid's
resolution with FreeType antialiasing, a little emboldened (an outline of 4% of the font size) so
strokes stay a few cells wide at 100 bins, and cropped to its ink. A block wider than tall is
stretched up to 1.5 times vertically (condensed letters) so it covers more of the square; the
block is then centred with its longer side spanning 90% of the square and block-averaged down to
the grid: each cell's mass is the share of it that the glyph strokes cover.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .grid import DensityError
from .registry import register

DEFAULT_TEXT = "Discrete\nDistribution\nNetworks"
FILL = 0.9  # the ink block's longer side spans this share of the square
MIN_RENDER = 800  # the high-resolution canvas is at least this many pixels per side ...
MAX_RENDER = 8192  # ... and at most this many (2 pixels per cell at 4096 bins)
PROBE_SIZE = 200  # font size of the first rendering, which measures the text
LINE_SPACING = 0.3  # extra space between lines, as a share of the font size
BOLDEN = 0.04  # outline added around each glyph, as a share of the font size
MAX_STRETCH = 1.5  # most vertical stretch of a block that is wider than tall
MAX_CHARS = 2000  # longer texts would be unreadably small on any grid


def missing_glyphs(text: str) -> list[str]:
    """Characters of `text` that the built-in font draws as its empty box (.notdef).

    Pillow's built-in font covers printable ASCII and a few symbols (such as (c) and degree).
    """
    font = ImageFont.load_default(size=32)
    notdef = bytes(font.getmask("\uffff"))
    return sorted(c for c in set(text) if not c.isspace() and bytes(font.getmask(c)) == notdef)


def render_ink(text: str, size: int) -> np.ndarray:
    """The text's ink at font `size` as a uint8 array (255 = full ink), cropped to the ink."""
    font = ImageFont.load_default(size=size)
    spacing = round(LINE_SPACING * size)
    stroke = round(BOLDEN * size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = (
        math.floor(v)
        for v in probe.multiline_textbbox(
            (0, 0), text, font=font, spacing=spacing, align="center", stroke_width=stroke
        )
    )
    pad = 2 + size // 10 + stroke
    canvas = Image.new("L", (right - left + 2 * pad + 1, bottom - top + 2 * pad + 1), 0)
    ImageDraw.Draw(canvas).multiline_text(
        (pad - left, pad - top),
        text,
        fill=255,
        font=font,
        spacing=spacing,
        align="center",
        stroke_width=stroke,
        stroke_fill=255,
    )
    box = canvas.getbbox()
    if box is None:
        raise DensityError(f"words text {text!r} has no glyph the built-in font can draw")
    return np.asarray(canvas.crop(box))


@register(
    "words",
    "any text, centred and filling the square; the glyph strokes carry the mass",
    text="the text to draw; new lines start new lines (on the command line write \\n)",
)
def words(bins: int, text: str = DEFAULT_TEXT) -> np.ndarray:
    if not isinstance(text, str):
        raise DensityError(f"words text must be a string, got {text!r}")
    if not text.strip():
        raise DensityError("words text is empty; give some text with --text TEXT")
    if len(text) > MAX_CHARS:
        raise DensityError(
            f"words text has {len(text)} characters; at most {MAX_CHARS} are allowed"
        )
    missing = missing_glyphs(text)
    if missing:
        shown = "".join(missing[:10])
        raise DensityError(
            f"words text has characters the built-in font cannot draw: {shown!r}"
            " (it covers printable ASCII)"
        )
    factor = max(1, min(math.ceil(MIN_RENDER / bins), MAX_RENDER // bins))
    side = factor * bins
    probe = render_ink(text, PROBE_SIZE)
    stretch = min(MAX_STRETCH, max(1.0, probe.shape[1] / probe.shape[0]))
    longest = max(probe.shape[0] * stretch, probe.shape[1])
    size = max(1, math.floor(PROBE_SIZE * FILL * side / longest))
    ink = _stretched(render_ink(text, size), stretch)
    while max(ink.shape) > side and size > 1:  # font hinting can overshoot a little
        size = max(1, math.floor(size * side / max(ink.shape)) - 1)
        ink = _stretched(render_ink(text, size), stretch)
    if max(ink.shape) > side:
        raise DensityError(
            f"words text is too long to draw on a {bins}-bin grid; use a larger --bins"
        )
    canvas = np.zeros((side, side), dtype=np.float64)
    h, w = ink.shape
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top : top + h, left : left + w] = ink
    return canvas.reshape(bins, factor, bins, factor).mean(axis=(1, 3))


def _stretched(ink: np.ndarray, stretch: float) -> np.ndarray:
    """`ink` stretched vertically by `stretch` (bilinear, so no ringing), as float."""
    if stretch == 1.0:
        return ink.astype(np.float64)
    h, w = ink.shape
    picture = Image.fromarray(ink.astype(np.float32), "F")
    return np.asarray(
        picture.resize((w, round(h * stretch)), Image.Resampling.BILINEAR), np.float64
    )
