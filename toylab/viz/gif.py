"""Comparison GIF (and optional MP4) of a run's recorded frames.

Frames come from `render.frame_indices` as indices into the one fixed `render.PALETTE`, so the
GIF is written with Pillow directly: every frame keeps that palette, nothing is quantised
per frame and nothing is dithered. (imageio's pillow plugin takes RGB arrays and lets Pillow
build an adaptive palette for each frame: 10x slower here, and exact only while a frame has at
most 256 colours.) The palette is the GIF's one global colour table, and Pillow stores each
frame as just the rectangle that changed since the previous one (the static target panel is
stored once per target). Marking unchanged pixels transparent (`optimize=True`) was measured
5% larger on noisy node histograms, so it is off.

MP4 goes through imageio's ffmpeg plugin and needs the optional `imageio-ffmpeg` package.
Every file is written to a temporary name and renamed, so Ctrl-C leaves no partial file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from toylab import progress as progress_bar
from toylab.errors import ToylabError
from toylab.store.atomic import atomic_path
from toylab.store.frames import Frames
from toylab.viz import render

DEFAULT_FPS = 20
"""GIF delays are whole 1/100 s, so fps should divide 100; 20 fps = 4.8 s per 96-frame target."""

MAX_FPS = 50
"""Browsers play GIF delays under 2/100 s at 1/10 s, so faster GIFs would play slower."""

HOLD_LAST_MS = 1000
"""Extra time on the last frame before the GIF loops, so the final fit can be read."""


@cache
def _gif_palette(theme: str) -> bytes:
    """The GIF's global colour table: the theme's palette entries frames use (not slot 255)."""
    return render.palette(theme)[: render.FREE_INDEX].tobytes()


@cache
def _palette_keys(theme: str) -> tuple[np.ndarray, np.ndarray]:
    rgb = render.palette(theme)[: render.FREE_INDEX].astype(np.uint32)
    keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    order = np.argsort(keys, kind="stable")
    return keys[order], order.astype(np.uint8)


def rgb_to_indices(rgb: np.ndarray, theme: str = render.DEFAULT_THEME) -> np.ndarray:
    """Map an (H, W, 3) uint8 image to the theme's palette indices: exact for palette colours
    (the renderer's), nearest colour without dithering otherwise."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    sorted_keys, key_index = _palette_keys(theme)
    c = rgb.astype(np.uint32)
    keys = (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    if np.array_equal(sorted_keys[pos], keys):
        return key_index[pos]
    table = _gif_palette(theme)
    pal = Image.new("P", (1, 1))
    pal.putpalette(table + table[-3:])  # slot 255 repeats 254's colour
    img = Image.fromarray(rgb, "RGB").quantize(palette=pal, dither=Image.Dither.NONE)
    idx = np.asarray(img)
    return np.where(idx == render.FREE_INDEX, render.FREE_INDEX - 1, idx).astype(np.uint8)


def _as_indices(image: np.ndarray, theme: str) -> np.ndarray:
    """A frame as palette indices: (H, W) uint8 arrays are taken as indices already."""
    a = np.asarray(image)
    if a.ndim == 2 and a.dtype == np.uint8:
        return a
    return rgb_to_indices(a, theme)


def save_indexed_gif(
    indices: Iterable[np.ndarray],
    path: str | os.PathLike,
    palette: bytes,
    fps: int,
    hold_last_ms: int,
    transparency: int | None = None,
) -> Path:
    """The one GIF writer: (H, W) uint8 palette-index frames on one global `palette` (RGB
    bytes), an endless loop, `fps` frames a second with the last held `hold_last_ms` longer,
    written atomically. With `transparency`, that index means "as in the previous frame"."""
    fps = check_fps(fps)
    with atomic_path(path) as tmp:
        encode_indexed_gif(indices, tmp, palette, fps, hold_last_ms, transparency)
    return Path(path)


def encode_indexed_gif(
    indices: Iterable[np.ndarray],
    fp: str | os.PathLike | BinaryIO,
    palette: bytes,
    fps: int,
    hold_last_ms: int,
    transparency: int | None = None,
) -> None:
    """`save_indexed_gif`'s encoding into a file name or object. Pillow takes the frames as
    they come (mapping each to the palette and finding what changed, half of the work) and
    writes only once the last has come, so a lazy `indices` lets that half run meanwhile."""
    fps = check_fps(fps)
    duration = round(1000 / fps / 10) * 10  # what the GIF can store: whole centiseconds

    def frames() -> Iterator[Image.Image]:
        prev: Image.Image | None = None
        for idx in indices:
            img = Image.fromarray(idx, "P")
            img.putpalette(palette)
            img.info["duration"] = duration
            if prev is not None:
                yield prev
            prev = img
        if prev is None:
            raise ToylabError("no frames to write")
        prev.info["duration"] = duration + hold_last_ms
        yield prev

    it = frames()
    first = next(it)
    extra = {} if transparency is None else {"transparency": transparency}
    first.save(
        fp,
        format="GIF",
        save_all=True,
        append_images=it,
        loop=0,
        palette=palette,  # one global colour table, no per-frame tables
        optimize=False,
        disposal=1,  # keep each frame in place: the next one only paints what changed
        **extra,
    )


def check_fps(fps: int) -> int:
    """fps as an int in 1..MAX_FPS, else a ToylabError saying why."""
    if not float(fps).is_integer() or not 1 <= fps <= MAX_FPS:
        raise ToylabError(
            f"fps must be a whole number from 1 to {MAX_FPS}, got {fps} "
            "(GIF delays are whole 1/100 s; browsers slow down faster GIFs)"
        )
    return int(fps)


def check_scale(scale: int) -> int:
    """scale as an int >= 1 (pixels per histogram cell), else a ToylabError."""
    if not float(scale).is_integer() or scale < 1:
        raise ToylabError(
            f"scale must be a whole number of pixels per cell, at least 1, got {scale}"
        )
    return int(scale)


def write_gif(
    images: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: int = DEFAULT_FPS,
    *,
    hold_last_ms: int = HOLD_LAST_MS,
    theme: str = render.DEFAULT_THEME,
) -> Path:
    """Write an endlessly looping GIF atomically, every frame on the theme's fixed palette.

    images: (H, W) uint8 palette indices (as render.frame_indices gives) or (H, W, 3) uint8
    RGB (mapped to the palette without dithering); all the same size. Consumed lazily.
    """
    fps = check_fps(fps)
    with atomic_path(path) as tmp:
        encode_gif(images, tmp, fps, hold_last_ms=hold_last_ms, theme=theme)
    return Path(path)


def encode_gif(
    images: Iterable[np.ndarray],
    fp: str | os.PathLike | BinaryIO,
    fps: int = DEFAULT_FPS,
    *,
    hold_last_ms: int = HOLD_LAST_MS,
    theme: str = render.DEFAULT_THEME,
) -> None:
    """`write_gif`'s encoding into a file name or object (see `encode_indexed_gif`)."""
    theme = render.check_theme(theme)
    indices = (_as_indices(image, theme) for image in images)
    encode_indexed_gif(indices, fp, _gif_palette(theme), fps, hold_last_ms)


def have_ffmpeg() -> bool:
    """Whether the optional imageio-ffmpeg package (MP4 output) is installed."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def require_ffmpeg() -> None:
    """A one-line ToylabError naming the install command when MP4 output is unavailable."""
    if not have_ffmpeg():
        raise ToylabError(
            "MP4 output needs imageio-ffmpeg: pip install imageio-ffmpeg (or pip install 'toylab[mp4]')"
        )


def _pad_even(rgb: np.ndarray, theme: str = render.DEFAULT_THEME) -> np.ndarray:
    """H.264 with yuv420p needs even width and height: pad with the background colour."""
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    out = np.empty((h + h % 2, w + w % 2, 3), dtype=np.uint8)
    out[:] = render.palette(theme)[render.BG_INDEX]
    out[:h, :w] = rgb
    return out


@contextlib.contextmanager
def _mp4_writer(tmp: Path, fps: int) -> Iterator[object]:
    import imageio.v2 as iio

    writer = iio.get_writer(
        tmp,
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",  # what every player decodes
        quality=None,
        output_params=["-crf", "18"],  # near-lossless; 96 frames at scale 3: ~6 MB
        macro_block_size=1,  # we pad to even sizes ourselves instead of imageio resizing
        ffmpeg_log_level="error",
    )
    try:
        yield writer
    finally:
        writer.close()


def render_run(
    frames: Frames,
    out_path: str | os.PathLike,
    fps: int = DEFAULT_FPS,
    scale: int | None = None,
    panels: list[str] | None = None,
    mp4: bool = False,
    progress: bool = False,
    real_kl: list[float] | None = None,
    theme: str = render.DEFAULT_THEME,
) -> list[Path]:
    """Render every frame (a whole target sequence) into one GIF at out_path, and with
    mp4=True also out_path with suffix .mp4. Returns the paths written. scale is pixels per
    cell; None picks render.default_scale(bins) (3 at 100 bins, ~300 px panels). real_kl
    (per target of the run) puts each target's real-samples KL on the frames; theme is
    "dark" (screens) or "light" (papers).

    All arguments are checked before anything is written; `progress` shows a tqdm bar on
    stderr. Interrupted (Ctrl-C), neither file is left behind half-written.
    """
    frames.check()
    fps = check_fps(fps)
    scale = render.default_scale(frames.bins) if scale is None else check_scale(scale)
    chosen = render.resolve_panels(frames, panels)
    theme = render.check_theme(theme)
    pal = render.palette(theme)
    if mp4:
        require_ffmpeg()
    out_path = Path(out_path)
    mp4_path = out_path.with_suffix(".mp4")
    if mp4 and mp4_path == out_path:
        raise ToylabError(f"the GIF path {out_path} ends in .mp4; give it a .gif name")

    def rendered() -> Iterator[np.ndarray]:
        with progress_bar.bar(
            len(frames), "rendering", not progress, unit="frame", leave=False
        ) as bar:
            for i in range(len(frames)):
                yield render.frame_indices(frames, i, scale, chosen, real_kl)
                bar.update(1)

    if not mp4:
        return [write_gif(rendered(), out_path, fps, theme=theme)]

    with atomic_path(mp4_path) as tmp, _mp4_writer(tmp, fps) as writer:

        def tee() -> Iterator[np.ndarray]:
            for idx in rendered():
                writer.append_data(_pad_even(pal[idx], theme))  # type: ignore[attr-defined]
                yield idx

        write_gif(tee(), out_path, fps, theme=theme)
    return [out_path, mp4_path]
