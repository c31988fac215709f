"""The lab's targets: every registry target with its parameters, a drawing, an uploaded picture.

Nothing here touches the file system: a drawing arrives as DRAW_SIZE x DRAW_SIZE bytes of ink
(0 = empty, 255 = most mass) and an upload as the bytes of a picture, decoded in memory with
size and pixel limits. Both become a Density through `densities.from_mass`, the image target's
letterbox and area-average onto the grid.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from typing import Any

import numpy as np

import densities
from toylab.errors import ToylabError

DRAW_SIZE = 128
"""Side of the drawing raster (pixels) the page sends; it is area-averaged onto the grid."""

MAX_UPLOAD_BYTES = 2_000_000
MAX_UPLOAD_PIXELS = 4096 * 4096
"""A picture larger than this (width x height) is refused before decoding: a decompression bomb
is a small file that decodes to gigabytes."""

HIDDEN = {"image"}  # needs a file path: the page offers an upload instead
DRAWING = "drawing"


def catalogue() -> list[dict[str, Any]]:
    """Every registry target the page can build from parameters, with their defaults and help."""
    out = []
    for name in densities.names():
        if name in HIDDEN:
            continue
        spec = densities.target(name)
        params = [
            {"name": k, "default": v, "kind": _kind(v), "help": spec.params.get(k, "")}
            for k, v in spec.defaults().items()
        ]
        out.append({"name": name, "summary": spec.summary, "params": params})
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _coerce(target: str, key: str, value: Any, default: Any) -> Any:
    """A page value as the type of the parameter's default, or a ToylabError naming it."""
    kind = _kind(default)
    bad = ToylabError(f"target {target} parameter {key} must be a {kind}, got {value!r}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        try:
            number = float(value)
        except ValueError:
            raise bad from None
        if not np.isfinite(number):
            raise bad
        if kind == "int":
            if number != int(number):
                raise bad
            return int(number)
        return number
    if not isinstance(value, str) or len(value) > 2000:
        raise ToylabError(f"target {target} parameter {key} must be a text of <= 2000 characters")
    return value


def registry_density(name: Any, params: Any, bins: int) -> densities.Density:
    """The registry target `name` with page parameters, checked like the CLI's options."""
    if not isinstance(name, str) or name in HIDDEN:
        choices = ", ".join([t["name"] for t in catalogue()] + [DRAWING])
        raise ToylabError(f"unknown target {name!r}; choose from: {choices}")
    spec = densities.target(name)  # DensityError lists the valid names
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ToylabError(f"target parameters must be an object, got {params!r}")
    defaults = spec.defaults()
    for key in params:
        if key not in defaults:
            known = ", ".join(defaults) or "none"
            raise ToylabError(f"target {name} takes no parameter {key!r}; its parameters: {known}")
    typed = {k: _coerce(name, k, v, defaults[k]) for k, v in params.items()}
    return densities.get(name, bins, **typed)


def drawing_pixels(encoded: Any) -> np.ndarray:
    """The DRAW_SIZE x DRAW_SIZE uint8 ink raster from its base64 text."""
    if not isinstance(encoded, str) or len(encoded) > 4 * DRAW_SIZE * DRAW_SIZE:
        raise ToylabError(f"a drawing must be base64 text of {DRAW_SIZE}x{DRAW_SIZE} bytes")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ToylabError("the drawing is not valid base64") from None
    if len(raw) != DRAW_SIZE * DRAW_SIZE:
        raise ToylabError(
            f"a drawing must hold {DRAW_SIZE * DRAW_SIZE} pixels, got {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(DRAW_SIZE, DRAW_SIZE)


def drawing_density(encoded: Any, bins: int) -> densities.Density:
    """The density of a drawing: ink is mass; an empty canvas is refused."""
    pixels = drawing_pixels(encoded)
    if not pixels.any():
        raise ToylabError("the drawing is empty: paint some mass with the brush first")
    return densities.from_mass(pixels.astype(np.float64), bins, name="image")


def decode_upload(data: Any, invert: bool = False) -> np.ndarray:
    """An uploaded picture (base64 text of its file bytes) as a DRAW_SIZE^2 uint8 ink raster.

    Brightness (RGB mean times alpha) is mass, or darkness with `invert`; the picture is
    letterboxed and area-averaged to DRAW_SIZE and scaled so its brightest pixel is 255.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not isinstance(data, str):
        raise ToylabError("an upload must be the picture's bytes as base64 text")
    if len(data) > (MAX_UPLOAD_BYTES * 4) // 3 + 4:
        raise ToylabError(f"the picture is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ToylabError("the upload is not valid base64") from None
    if not raw:
        raise ToylabError("the uploaded file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as opened:
                width, height = opened.size
                if width * height > MAX_UPLOAD_PIXELS:
                    raise ToylabError(
                        f"the picture is {width}x{height} pixels; at most "
                        f"{MAX_UPLOAD_PIXELS:,} pixels are accepted (a decompression bomb?)"
                    )
                picture = ImageOps.exif_transpose(opened)
                picture.load()
    except UnidentifiedImageError:
        raise ToylabError("the uploaded file is not an image (PNG, JPEG, GIF, BMP, WebP)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ToylabError("the picture decodes to too many pixels (a decompression bomb)") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ToylabError(f"the picture could not be decoded: {err}") from None
    rgba = np.asarray(picture.convert("RGBA"), dtype=np.float64) / 255.0
    opacity = rgba[..., 3]
    brightness = rgba[..., :3].mean(axis=2) * opacity
    mass = np.clip(opacity - brightness if invert else brightness, 0.0, None)
    if not mass.max() > 0:
        what = "all white (try without invert)" if invert else "all black (try invert)"
        raise ToylabError(f"the picture has no mass: it is {what}")
    from densities.resample import area_resample, letterbox

    small = area_resample(letterbox(mass), DRAW_SIZE)
    return np.round(small / small.max() * 255).astype(np.uint8)


def encode_pixels(pixels: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).decode()
