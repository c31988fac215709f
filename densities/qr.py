"""The qr target: a real, scannable QR code of any payload; its dark modules carry the mass.

The code (segno, quiet zone of 4 modules included) is stretched over the whole square and
area-averaged onto the grid, so a module boundary that falls inside a cell shares that cell.

Readability rule (bins >= 1.5 x modules, quiet zone included), measured with the zxing-cpp
decoder: the density was area-averaged onto the grid, upsampled bilinearly, thresholded at half
its maximum (dark = mass) and decoded, for versions 1 to 40 at 8 to 12 grid sizes per ratio:
- 1.5 to 3 bins per module: every code decoded (M: 1920 of 1920; L and H: 960 of 960).
- 1.4: L and H 480 of 480; 1.35: M 319 of 320; 1.25: L 420, M 318 of 320, H 479 of 480.
- 1 bin per module: 57 of 320 (M), only where modules happen to align with cells.
Thresholding without the bilinear step (nearest-neighbour upscaling) read 91% of codes at 1.5
bins per module and about 99% from 1.75 on: the decoder's grid fit suffers from the uneven
staircase, not from missing information. So a 100-bin grid holds a version-10 code (65
modules): up to 213 bytes at error level M, 271 at L; the issue's rule of thumb of about 100
characters (versions 5 to 7) has room to spare.
"""

from __future__ import annotations

import math

import numpy as np

from .grid import DensityError
from .registry import register
from .resample import area_resample

QUIET_ZONE = 4  # modules of light border on each side, as the QR standard asks
BINS_PER_MODULE = 1.5  # fewest grid cells per module (quiet zone included) that stay readable
ERROR_LEVELS = ("L", "M", "Q", "H")
MAX_VERSION = 40
DEFAULT_PAYLOAD = "https://arxiv.org/abs/2401.00036"
# Largest byte-mode payload of a version-40 code per error level (ISO/IEC 18004, table 7).
MAX_BYTES = {"L": 2953, "M": 2331, "Q": 1663, "H": 1273}


def bins_needed(size: int) -> int:
    """Fewest bins per side at which a code `size` modules wide (quiet zone included) is readable."""
    return math.ceil(BINS_PER_MODULE * size)


def modules(data: str, error: str = "M") -> np.ndarray:
    """The QR code of `data` as a 0/1 array (1 = dark), quiet zone included.

    segno picks the smallest version and the most compact mode; it raises the error level for
    free when that fits the same version. A payload that no version holds is a DensityError that
    names the largest payload that fits and the --bins such a code would need.
    """
    import segno  # imported here: importing densities stays light

    try:
        data.encode("utf-8")
    except UnicodeEncodeError:
        raise DensityError(
            f"qr payload {ascii(data)} is not valid UTF-8 text; give text (any Unicode)"
        ) from None
    try:
        code = segno.make(data, error=error.lower(), micro=False)
    except segno.DataOverflowError:
        size = len(data.encode("utf-8"))
        limit = MAX_BYTES[error]
        raise DensityError(
            f"qr payload is too long ({size} bytes in UTF-8): a QR code holds at most {limit} bytes"
            f" (byte mode, version {MAX_VERSION}, error level {error}), and that code would need"
            f" --bins {bins_needed(4 * MAX_VERSION + 17 + 2 * QUIET_ZONE)}"
        ) from None
    dark = (np.array(code.matrix, dtype=np.uint8) & 1).astype(np.uint8)
    return np.pad(dark, QUIET_ZONE)


@register(
    "qr",
    "a scannable QR code of any payload; dark modules carry the mass",
    data="the payload text (any Unicode; about 100 characters fit a 100-bin grid readably)",
    error="error-correction level: L, M, Q or H (segno raises it when that costs no modules)",
)
def qr(bins: int, data: str = DEFAULT_PAYLOAD, error: str = "M") -> np.ndarray:
    if not isinstance(data, str):
        raise DensityError(f"qr data must be a string, got {data!r}")
    if not data:
        raise DensityError("qr data is empty; give a payload with --qr-data TEXT")
    if not isinstance(error, str) or error.upper() not in ERROR_LEVELS:
        raise DensityError(f"qr error level must be one of L, M, Q, H, got {error!r}")
    grid = modules(data, error.upper())
    need = bins_needed(grid.shape[0])
    if bins < need:
        version = (grid.shape[0] - 2 * QUIET_ZONE - 17) // 4
        raise DensityError(
            f"qr payload of {len(data)} characters needs a version-{version} code of"
            f" {grid.shape[0]} modules with its quiet zone, and {BINS_PER_MODULE:g} bins per module"
            f" to stay readable: use --bins {need} or more (got {bins})"
        )
    return area_resample(grid.astype(np.float64), bins)
