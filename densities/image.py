"""The image target: any PNG/JPEG (or a 2D .npy array), brightness as mass.

Brightness is the mean of R, G and B in [0, 1], times alpha where there is one (transparent
pixels carry no mass either way); `invert` makes dark the mass. Row 0 of the picture (or of the
array) is the top of the square. A non-square picture is letterboxed: centred on a square of
side max(height, width) whose border carries no mass, so nothing is cut off and nothing is
stretched. The square is then area-averaged onto the grid.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .grid import Density, DensityError, check_bins, normalise
from .registry import register
from .resample import area_matrix, area_resample, letterbox

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}

BYTES_PER_PIXEL = 64
"""Peak bytes per source pixel while a picture becomes a density (RGBA as float64, brightness,
opacity, mass); measured about 57 for a 12,000 x 12,000 PNG."""

EXACT_SIDE = 4096
"""Up to this letterboxed side the square is built and resampled as before (results pinned);
beyond it the border is never materialised, so memory stays that of the picture itself."""


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _check_size(path: Path, height: int, width: int) -> None:
    """Refuse, before decoding, a picture whose conversion would not fit in memory."""
    need = height * width * BYTES_PER_PIXEL
    avail = available_bytes()
    if avail is not None and need > 0.8 * avail:
        raise DensityError(
            f"image {str(path)!r} is {width} x {height} pixels: turning it into a density needs "
            f"about {need / 1e9:.3g} GB but only {avail / 1e9:.3g} GB of memory is available; "
            "shrink the picture"
        )


def _letterboxed_resample(mass: np.ndarray, bins: int) -> np.ndarray:
    """area_resample(letterbox(mass), bins) without building the square for big pictures."""
    h, w = mass.shape
    side = max(h, w)
    if side <= EXACT_SIDE:
        return area_resample(letterbox(mass), bins)
    top, left = (side - h) // 2, (side - w) // 2
    full = area_matrix(side, bins)
    rows = full[:, top : top + h] @ mass  # (bins, w): the border rows hold no mass
    return np.asarray((full[:, left : left + w] @ rows.T).T)


def _array_brightness(path: Path) -> np.ndarray:
    """A .npy array as brightness: finite, non-negative, scaled by its maximum."""
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise DensityError(f"image {str(path)!r} is not a readable .npy array ({err})") from None
    if np.iscomplexobj(array):
        raise DensityError(
            f"image {str(path)!r} holds complex numbers ({array.dtype}); give a real array "
            "(e.g. its absolute value)"
        )
    if array.ndim in (2, 3):
        _check_size(path, array.shape[0], array.shape[1])
    array = np.array(array)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., :3].mean(axis=2)
    numeric = array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)
    if array.ndim != 2 or array.size == 0 or not numeric:
        raise DensityError(
            f"image {str(path)!r} must hold a 2D numeric array, got {array.dtype} {array.shape}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all() or (array < 0).any():
        raise DensityError(f"image {str(path)!r} has negative or non-finite values")
    peak = array.max()
    return array / peak if peak > 0 else array


def _picture_brightness(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(brightness, opacity) of a PNG/JPEG/... file in [0, 1], EXIF-rotated upright.

    Brightness is the RGB mean times alpha; 16-bit grey is scaled by 65535, float grey by its max.
    """
    try:
        with Image.open(path) as opened:
            _check_size(path, opened.height, opened.width)
            picture = ImageOps.exif_transpose(opened)
            picture.load()
    except UnidentifiedImageError:
        raise DensityError(f"image {str(path)!r} is not an image file PIL can read") from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DensityError(f"image {str(path)!r} could not be read: {err}") from None
    if picture.mode in _SIXTEEN_BIT or picture.mode == "F":
        values = np.nan_to_num(np.asarray(picture, dtype=np.float64), nan=0.0, posinf=0.0)
        values = np.clip(values, 0.0, None)
        scale = 65535.0 if picture.mode in _SIXTEEN_BIT else max(values.max(), 1e-300)
        return np.clip(values / scale, 0.0, 1.0), np.ones_like(values)
    rgba = np.asarray(picture.convert("RGBA"), dtype=np.float64) / 255.0
    opacity = rgba[..., 3]
    return rgba[..., :3].mean(axis=2) * opacity, opacity


def load_brightness(path: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    """(brightness, opacity) of the picture or array at `path`, both (h, w) in [0, 1]."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise DensityError("the image target needs --image PATH (a PNG, JPEG or .npy file)")
    if not isinstance(path, (str, os.PathLike)):
        raise DensityError(f"image path must be a file name, got {path!r}")
    file = Path(path)
    if not file.exists():
        raise DensityError(f"image file {str(file)!r} does not exist")
    if not file.is_file():
        raise DensityError(f"image {str(file)!r} is not a file")
    if file.suffix.lower() == ".npy":
        values = _array_brightness(file)
        return values, np.ones_like(values)
    return _picture_brightness(file)


@register(
    "image",
    "any PNG/JPEG or 2D .npy array; brightness is mass (letterboxed if not square)",
    path="the picture file (required; there is no default picture)",
    invert="make dark the mass instead of bright",
)
def image(bins: int, path: str | os.PathLike | None = None, invert: bool = False) -> np.ndarray:
    if not isinstance(invert, (bool, np.bool_)):
        raise DensityError(f"image invert must be true or false, got {invert!r}")
    brightness, opacity = load_brightness(path)
    mass = (opacity - brightness) if invert else brightness  # brightness already holds alpha
    mass = np.clip(mass, 0.0, None)
    if not mass.max() > 0:
        what = "all white (with --invert dark is mass)" if invert else "all black"
        raise DensityError(f"image {str(path)!r} has no mass: it is {what}")
    return _letterboxed_resample(mass, bins)


def from_mass(mass: np.ndarray, bins: int = 100, name: str = "image") -> Density:
    """A Density from a non-negative (h, w) mass array (a drawing, a decoded upload): the same
    letterbox and area-average onto the grid as the image target, so a picture gives the same
    density whether it arrives as a file or as an array. No mass is a DensityError."""
    bins = check_bins(bins)
    mass = np.asarray(mass, dtype=np.float64)
    if mass.ndim != 2 or mass.size == 0:
        raise DensityError(f"a mass array must be 2D and non-empty, got shape {mass.shape}")
    if not np.isfinite(mass).all() or (mass < 0).any():
        raise DensityError("a mass array must be finite and non-negative")
    if not mass.max() > 0:
        raise DensityError(f"the {name} has no mass: every pixel is empty")
    return Density(name, normalise(_letterboxed_resample(mass, bins)))
