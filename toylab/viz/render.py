"""Frame renderer: node histograms and the target density as viridis panels with text labels.

Every frame is drawn directly as palette indices into one fixed 256-entry palette (`PALETTE`):

    0 .. 239    viridis, 240 levels sampled from matplotlib's colormap
    240 .. 254  15 greys from the background to the text colour (anti-aliased text)
    255         never drawn (free for an encoder's transparency)

so a GIF needs no per-frame quantisation and never dithers; `render_frame` gives the same
picture as RGB.

Colours follow the reference: P = hist / K per method, Q the target, one shared scale per frame
with vmax = max(Q.max(), 1.5 / K) (the floor makes a single node visible), colour =
viridis(clip(v / vmax, 0, 1)). Panels are upscaled with nearest neighbour (`scale` pixels per
cell), so cells stay crisp.

Layout of a frame (all sizes in pixels, see `Layout`):

    margin | header | header | header |       one text strip above each panel
           | panel  | panel  | target |       bins * scale square, `gap` between panels
    margin
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from toylab.errors import ToylabError
from toylab.store.atomic import write_with
from toylab.store.frames import Frames

TARGET = "target"
"""Panel name of the target density (every other panel name is a method)."""

N_VIRIDIS = 240
GREY_BASE = N_VIRIDIS
N_GREYS = 15
FREE_INDEX = GREY_BASE + N_GREYS  # 255: never drawn
BACKGROUND_RGB = (24, 24, 28)
TEXT_RGB = (240, 240, 240)
BG_INDEX = GREY_BASE  # darkest grey = background

# Text brightness on the 0..255 "L" scale the strip is drawn in (mapped onto the greys).
NAME_LEVEL = 255
DETAIL_LEVEL = 200

GIF_PANEL_PX = 300
"""Panel size the default GIF scale aims at: scale 3 at 100 bins, ~2.5 MB per 96 frames."""

FINAL_PANEL_PX = 400
"""Panel size the default final.png scale aims at: one still image can afford more detail."""


def default_scale(bins: int, panel_px: int = GIF_PANEL_PX) -> int:
    """Whole pixels per cell giving panels near panel_px (at least 1): 3 at 100 bins."""
    return max(1, round(panel_px / bins))


DEFAULT_SCALE = default_scale(100)
"""The GIF scale at the paper's 100 bins (3: 300 px panels)."""

MIN_FONT = 8


def _build_palette() -> np.ndarray:
    """The fixed (256, 3) uint8 palette: viridis, greys, one free slot (black)."""
    from toylab.viz.viridis import viridis_240  # matplotlib's table, without importing it

    viridis = viridis_240()[:N_VIRIDIS] / 255.0
    t = np.linspace(0.0, 1.0, N_GREYS)[:, None]
    greys = (1 - t) * np.array(BACKGROUND_RGB) + t * np.array(TEXT_RGB)
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[:N_VIRIDIS] = np.round(viridis * 255)
    pal[GREY_BASE : GREY_BASE + N_GREYS] = np.round(greys)
    return pal


PALETTE: np.ndarray = _build_palette()
"""(256, 3) uint8: the one palette every frame and GIF uses."""

# "L" value 0..255 of a text strip -> palette index of the nearest grey.
_L_TO_INDEX = (GREY_BASE + np.round(np.arange(256) / 255 * (N_GREYS - 1))).astype(np.uint8)


# --------------------------------------------------------------------------- colours


def colour_vmax(target: np.ndarray, nodes: int) -> float:
    """The shared top of the colour scale: max(Q.max(), 1.5 / K), so one node is visible."""
    return max(float(np.max(target)), 1.5 / nodes)


def to_indices(values: np.ndarray, vmax: float) -> np.ndarray:
    """Map probabilities to viridis palette indices 0..N_VIRIDIS-1 (as matplotlib does)."""
    x = np.clip(np.asarray(values, dtype=np.float64) / vmax, 0.0, 1.0)
    return np.minimum((x * N_VIRIDIS).astype(np.intp), N_VIRIDIS - 1).astype(np.uint8)


def density_rgb(values: np.ndarray, vmax: float, scale: int = 1) -> np.ndarray:
    """A probability array as an RGB image on the shared scale, each cell `scale` px square."""
    return PALETTE[upscale(to_indices(values, vmax), scale)]


def upscale(a: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale of a 2D array by an integer factor (crisp cells)."""
    if scale == 1:
        return a
    h, w = a.shape
    return np.broadcast_to(a[:, None, :, None], (h, scale, w, scale)).reshape(h * scale, w * scale)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Pixel geometry of a frame with `n` panels of `bins * scale` pixels square."""

    bins: int
    scale: int
    n: int

    @property
    def panel(self) -> int:
        return self.bins * self.scale

    @property
    def font_size(self) -> int:
        """Label size: about a 20th of a panel, between 11 and 22 px."""
        return int(min(22, max(11, round(self.panel / 20))))

    @property
    def header(self) -> int:
        """Height of the text strip above each panel."""
        return int(round(self.font_size * 1.8))

    @property
    def gap(self) -> int:
        """Space between two panels."""
        return max(4, self.panel // 40)

    @property
    def margin(self) -> int:
        """Border around the whole frame."""
        return self.gap

    @property
    def width(self) -> int:
        return 2 * self.margin + self.n * self.panel + (self.n - 1) * self.gap

    @property
    def height(self) -> int:
        return 2 * self.margin + self.header + self.panel

    def panel_x(self, k: int) -> int:
        """Left edge of panel k (and of its header)."""
        return self.margin + k * (self.panel + self.gap)

    @property
    def panel_y(self) -> int:
        """Top edge of every panel (just below the header)."""
        return self.margin + self.header


# --------------------------------------------------------------------------- labels


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in scalable font (falls back to the bitmap font without FreeType)."""
    return ImageFont.load_default(size=size)


def _text_width(text: str, size: int) -> float:
    return _font(size).getlength(text) if text else 0.0


@dataclass(frozen=True)
class Label:
    """A header: `name` bright at the left, `detail` dimmer after it, `right` right-aligned.

    The KL sits right-aligned so its digits stay put while the step count grows.
    """

    name: str
    detail: str = ""
    right: str = ""


def _label_fits(label: Label, size: int, width: int) -> bool:
    sep = _text_width("   ", size)
    need = _text_width(label.name, size) + _text_width(label.right, size)
    if label.detail:
        need += sep + _text_width(label.detail, size)
    if label.right:
        need += sep
    return need <= width


def _fit_label(label: Label, size: int, width: int) -> tuple[Label, int]:
    """Shrink the font down to MIN_FONT until the label fits; then drop the detail, then the
    right part, then shorten the name: a narrow panel shows less, never overlapping text."""
    candidates = [label, Label(label.name, "", label.right), Label(label.name)]
    for cand in candidates:
        for s in range(size, MIN_FONT - 1, -1):
            if _label_fits(cand, s, width):
                return cand, s
    name = label.name
    while len(name) > 1 and not _label_fits(Label(name + "..."), MIN_FONT, width):
        name = name[:-1]
    return Label(name + "..." if name != label.name else name), MIN_FONT


@lru_cache(maxsize=512)
def _label_strip(label: Label, width: int, height: int, size: int) -> np.ndarray:
    """The header strip of one panel as palette indices (height, width); cached per text."""
    pad = max(3, size // 3)
    label, size = _fit_label(label, size, width - 2 * pad)
    font = _font(size)
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    y = height / 2
    x = float(pad)
    draw.text((x, y), label.name, fill=NAME_LEVEL, font=font, anchor="lm")
    x += _text_width(label.name, size) + _text_width("   ", size)
    if label.detail:
        draw.text((x, y), label.detail, fill=DETAIL_LEVEL, font=font, anchor="lm")
    if label.right:
        draw.text((width - pad, y), label.right, fill=NAME_LEVEL, font=font, anchor="rm")
    strip = _L_TO_INDEX[np.asarray(img)]
    strip.flags.writeable = False
    return strip


def format_kl(kl: float) -> str:
    """KL with three significant-ish digits; '-' when it was not evaluated (NaN)."""
    if not math.isfinite(kl):
        return "KL -" if math.isnan(kl) else "KL inf"
    if abs(kl) < 10:
        return f"KL {kl:.3f}"
    if abs(kl) < 100:
        return f"KL {kl:.2f}"
    return f"KL {kl:.1f}"


def method_label(method: str, step: int | None, kl: float, extra: str = "") -> Label:
    """e.g. Label('sp', 'step 4,000', 'KL 0.112'); `extra` goes before the step."""
    parts = [p for p in (extra, f"step {step:,}" if step is not None else "") if p]
    return Label(method, "  ".join(parts), format_kl(kl))


def target_label(name: str, index: int = 0, count: int = 1) -> Label:
    """'target: spiral', with '(3/5)' when the run is a sequence of several targets."""
    return Label(f"{TARGET}: {name}", f"({index + 1}/{count})" if count > 1 else "")


# --------------------------------------------------------------------------- composition


def compose(
    panels: Sequence[tuple[np.ndarray, Label]],
    scale: int,
) -> np.ndarray:
    """Lay out panels side by side, each under its header: (H, W) uint8 palette indices.

    Each panel is a (bins, bins) array of viridis indices (see `to_indices`).
    """
    if not panels:
        raise ToylabError("nothing to draw: no panels selected")
    bins = panels[0][0].shape[0]
    lay = Layout(bins, scale, len(panels))
    canvas = np.full((lay.height, lay.width), BG_INDEX, dtype=np.uint8)
    p, y0 = lay.panel, lay.panel_y
    for k, (cells, label) in enumerate(panels):
        x0 = lay.panel_x(k)
        canvas[lay.margin : y0, x0 : x0 + p] = _label_strip(label, p, lay.header, lay.font_size)
        canvas[y0 : y0 + p, x0 : x0 + p] = upscale(cells, scale)
    return canvas


def resolve_panels(frames: Frames, panels: Sequence[str] | None) -> list[str]:
    """Validate a panel selection; None means every method, then the target."""
    available = [*frames.methods, TARGET]
    if panels is None:
        return available
    chosen = [p.strip() for p in panels if p.strip()]
    if not chosen:
        raise ToylabError(f"no panels given; available: {','.join(available)}")
    unknown = [p for p in chosen if p not in available]
    if unknown:
        raise ToylabError(f"unknown panel {','.join(unknown)}; available: {','.join(available)}")
    dupes = sorted({p for p in chosen if chosen.count(p) > 1})
    if dupes:
        raise ToylabError(f"panel {','.join(dupes)} given more than once")
    return chosen


def panel_labels(frames: Frames, i: int, panels: Sequence[str]) -> list[Label]:
    """The header of each chosen panel of frame i.

    Methods: name, step and KL. The target: its name, with "(t/T)" in a sequence. Without a
    target panel, a sequence names the target in every method header instead.
    """
    t = frames.target_index[i]
    name, n_targets = frames.target_names[t], len(frames.target_names)
    extra = f"{name} {t + 1}/{n_targets}" if TARGET not in panels and n_targets > 1 else ""
    return [
        target_label(name, t, n_targets)
        if p == TARGET
        else method_label(p, frames.step[i], float(frames.kl[i][frames.methods.index(p)]), extra)
        for p in panels
    ]


def frame_indices(
    frames: Frames,
    i: int,
    scale: int | None = None,
    panels: Sequence[str] | None = None,
) -> np.ndarray:
    """Frame i as (H, W) uint8 indices into PALETTE (what the GIF writer stores)."""
    scale = default_scale(frames.bins) if scale is None else scale
    chosen = resolve_panels(frames, panels)
    q = frames.target_arrays[frames.target_index[i]]
    k = frames.nodes
    vmax = colour_vmax(q, k)
    cells = [
        to_indices(q if p == TARGET else frames.hist[i][frames.methods.index(p)] / k, vmax)
        for p in chosen
    ]
    return compose(list(zip(cells, panel_labels(frames, i, chosen), strict=True)), scale)


def render_frame(
    frames: Frames,
    i: int,
    scale: int | None = None,
    panels: Sequence[str] | None = None,
) -> np.ndarray:
    """Frame i as an (H, W, 3) uint8 RGB image: one panel per selected method, then the target.

    `scale` is pixels per cell (None: `default_scale(bins)`, 3 at 100 bins); `panels` picks
    and orders the panels by name (methods and "target"); None shows all.
    """
    return PALETTE[frame_indices(frames, i, scale, panels)]


def render_final_png(
    path: str | os.PathLike,
    hists: np.ndarray,
    methods: Sequence[str],
    target_array: np.ndarray,
    nodes: int,
    kls: Sequence[float],
    target_name: str,
    *,
    step: int | None = None,
    scale: int | None = None,
) -> Path:
    """Write final.png atomically: one panel per method (with its KL) and then the target.

    hists is (M, bins, bins) node counts in the target's orientation, kls is (M,); `step`
    adds "step N" to the labels; scale None aims at FINAL_PANEL_PX panels.
    """
    hists = np.asarray(hists)
    if hists.ndim != 3 or hists.shape[0] != len(methods) or len(kls) != len(methods):
        raise ToylabError(
            f"render_final_png: {len(methods)} methods but hists {hists.shape} and {len(kls)} KLs"
        )
    q = np.asarray(target_array, dtype=np.float64)
    if hists.shape[1:] != q.shape:
        raise ToylabError(f"render_final_png: histograms {hists.shape[1:]} vs target {q.shape}")
    scale = default_scale(q.shape[0], FINAL_PANEL_PX) if scale is None else scale
    vmax = colour_vmax(q, nodes)
    drawn = [
        (to_indices(h / nodes, vmax), method_label(m, step, float(kl)))
        for m, h, kl in zip(methods, hists, kls, strict=True)
    ]
    drawn.append((to_indices(q, vmax), target_label(target_name)))
    img = Image.fromarray(PALETTE[compose(drawn, scale)], "RGB")
    return write_with(path, lambda tmp: img.save(tmp, format="PNG", optimize=True))
