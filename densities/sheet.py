"""A contact sheet: every density as a viridis tile with its name above it, as one RGB image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from .grid import Density
from .resample import area_resample

MIN_TILE, MAX_TILE = 160, 512  # tile side in pixels: small grids are enlarged, big ones averaged
GAP, LABEL = 12, 28  # pixels between tiles, height of the name strip
BACKGROUND, INK = (255, 255, 255), (20, 20, 20)


def tile(density: Density) -> np.ndarray:
    """The density as a (side, side, 3) uint8 viridis image, scaled by its own maximum.

    Grids under 160 bins are enlarged by whole-pixel repetition (cells stay square and sharp),
    grids over 512 bins are area-averaged down to 512 pixels.
    """
    array = density.array
    bins = density.bins
    if bins > MAX_TILE:
        array = area_resample(array, MAX_TILE)
    elif bins < MIN_TILE:
        k = math.ceil(MIN_TILE / bins)
        array = np.kron(array, np.ones((k, k)))
    rgb = colormaps["viridis"](array / array.max())[..., :3]
    return np.round(rgb * 255).astype(np.uint8)


def contact_sheet(items: Sequence[Density], columns: int | None = None) -> Image.Image:
    """Lay the densities out in a grid (about square) of labelled tiles; returns an RGB image."""
    if not items:
        raise ValueError("a contact sheet needs at least one density")
    tiles = [tile(d) for d in items]
    side = tiles[0].shape[0]
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    width = GAP + columns * (side + GAP)
    height = GAP + rows * (LABEL + side + GAP)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=LABEL - 10)
    for index, (density, pixels) in enumerate(zip(items, tiles, strict=True)):
        row, col = divmod(index, columns)
        left = GAP + col * (side + GAP)
        top = GAP + row * (LABEL + side + GAP)
        draw.text(
            (left + side / 2, top + LABEL / 2), density.name, fill=INK, font=font, anchor="mm"
        )
        sheet.paste(Image.fromarray(pixels, "RGB"), (left, top + LABEL))
    return sheet
