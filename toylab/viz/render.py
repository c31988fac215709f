"""Frame renderer: node histograms and the target density as colour-mapped panels with text.

Every frame is drawn directly as palette indices into one fixed 256-entry palette per theme
(`palette(theme)`; `PALETTE` is the dark one):

    0 .. 239    the colour map, 240 levels sampled from matplotlib (dark: viridis; light: Blues,
                white where there is no mass, for pages)
    240 .. 254  15 greys from the background to the text colour (anti-aliased text)
    255         never drawn (free for an encoder's transparency)

so a GIF needs no per-frame quantisation and never dithers; `render_frame` gives the same
picture as RGB. A theme changes colours only, never indices: one frame, two palettes.

Colours follow the reference: P = hist / K per method, Q the target, one shared scale per frame
with vmax = max(Q.max(), 1.5 / K) (the floor makes a single node visible), colour =
viridis(clip(v / vmax, 0, 1)). Panels are upscaled with nearest neighbour (`scale` pixels per
cell), so cells stay crisp.

Layout of a frame (all sizes in pixels, see `Layout`):

    margin | title: target, K, step          real samples KL |   one line across the frame
           | method title  KL | ...         | target          |   a text strip above each panel
           | panel            | panel       | target          |   bins * scale square
           | colour bar 0 .. max   nodes per cell              |   the colour scale's legend
    margin
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from toylab.catalog import title
from toylab.errors import ToylabError
from toylab.store.atomic import write_with
from toylab.store.frames import Frames
from toylab.viz.numbers import sig

TARGET = "target"
"""Panel name of the target density (every other panel name is a method)."""

N_VIRIDIS = 240
"""Levels of the colour map (viridis in the dark theme, the name is historical)."""
GREY_BASE = N_VIRIDIS
N_GREYS = 15
FREE_INDEX = GREY_BASE + N_GREYS  # 255: never drawn
BG_INDEX = GREY_BASE  # darkest grey = background


@dataclass(frozen=True)
class Theme:
    """Colours of a picture: background, text and the colour map of the densities."""

    name: str
    background: tuple[int, int, int]
    text: tuple[int, int, int]
    cmap: str


THEMES = {
    "dark": Theme("dark", (24, 24, 28), (240, 240, 240), "viridis"),
    "light": Theme("light", (255, 255, 255), (20, 20, 24), "Blues"),
}
"""dark: the screen look (default); light: white paper, no mass = white, for papers."""

DEFAULT_THEME = "dark"
BACKGROUND_RGB = THEMES["dark"].background
TEXT_RGB = THEMES["dark"].text

# Text brightness on the 0..255 "L" scale the strip is drawn in (mapped onto the greys).
NAME_LEVEL = 255
DETAIL_LEVEL = 200

GIF_PANEL_PX = 300
"""Panel size the default GIF scale aims at: scale 3 at 100 bins, ~2.7 MB per 96 frames."""

FINAL_PANEL_PX = 400
"""Panel size the default final.png scale aims at: one still image can afford more detail."""


def default_scale(bins: int, panel_px: int = GIF_PANEL_PX) -> int:
    """Whole pixels per cell giving panels near panel_px (at least 1): 3 at 100 bins."""
    return max(1, round(panel_px / bins))


DEFAULT_SCALE = default_scale(100)
"""The GIF scale at the paper's 100 bins (3: 300 px panels)."""

MIN_FONT = 8


def check_theme(theme: str) -> str:
    """theme if it is one of THEMES, else a one-line ToylabError listing them."""
    if theme not in THEMES:
        raise ToylabError(f"unknown --theme {theme!r}; choose from: {', '.join(THEMES)}")
    return theme


@cache
def palette(theme: str = DEFAULT_THEME) -> np.ndarray:
    """The fixed (256, 3) uint8 palette of a theme: colour map, greys, one free slot."""
    t = THEMES[check_theme(theme)]
    if t.cmap == "viridis":  # the default: matplotlib's table, without importing matplotlib
        from toylab.viz.viridis import viridis_240

        cmap = viridis_240()[:N_VIRIDIS] / 255.0
    else:
        from matplotlib import colormaps

        cmap = colormaps[t.cmap].resampled(N_VIRIDIS)(np.arange(N_VIRIDIS))[:, :3]
    ramp = np.linspace(0.0, 1.0, N_GREYS)[:, None]
    greys = (1 - ramp) * np.array(t.background) + ramp * np.array(t.text)
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[:N_VIRIDIS] = np.round(cmap * 255)
    pal[GREY_BASE : GREY_BASE + N_GREYS] = np.round(greys)
    pal.flags.writeable = False
    return pal


PALETTE: np.ndarray = palette(DEFAULT_THEME)
"""(256, 3) uint8: the dark theme's palette (every frame and GIF by default)."""

# "L" value 0..255 of a text strip -> palette index of the nearest grey.
_L_TO_INDEX = (GREY_BASE + np.round(np.arange(256) / 255 * (N_GREYS - 1))).astype(np.uint8)


def matplotlib_style(theme: str = DEFAULT_THEME) -> dict[str, object]:
    """rcParams that give a matplotlib figure the theme's background and text colours."""
    t = THEMES[check_theme(theme)]
    bg = tuple(c / 255 for c in t.background)
    fg = tuple(c / 255 for c in t.text)
    return {
        "figure.facecolor": bg,
        "savefig.facecolor": bg,
        "axes.facecolor": bg,
        "axes.edgecolor": fg,
        "axes.labelcolor": fg,
        "axes.titlecolor": fg,
        "text.color": fg,
        "xtick.color": fg,
        "ytick.color": fg,
    }


def colormap(theme: str = DEFAULT_THEME):
    """The theme's colour map as a matplotlib ListedColormap of exactly the palette's levels
    (so a colour bar shows the very colours of the panels)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(palette(theme)[:N_VIRIDIS] / 255.0, name=f"toylab-{theme}")


def method_title(name: str) -> str:
    """A method's display title ("gradient descent", "Split-and-Prune"), from the catalog."""
    return title(name)


# --------------------------------------------------------------------------- colours


def colour_vmax(target: np.ndarray, nodes: int) -> float:
    """The shared top of the colour scale: max(Q.max(), 1.5 / K), so one node is visible."""
    return max(float(np.max(target)), 1.5 / nodes)


def to_indices(values: np.ndarray, vmax: float) -> np.ndarray:
    """Map probabilities to viridis palette indices 0..N_VIRIDIS-1 (as matplotlib does)."""
    x = np.clip(np.asarray(values, dtype=np.float64) / vmax, 0.0, 1.0)
    return np.minimum((x * N_VIRIDIS).astype(np.intp), N_VIRIDIS - 1).astype(np.uint8)


def density_rgb(
    values: np.ndarray, vmax: float, scale: int = 1, theme: str = DEFAULT_THEME
) -> np.ndarray:
    """A probability array as an RGB image on the shared scale, each cell `scale` px square."""
    return palette(theme)[upscale(to_indices(values, vmax), scale)]


def upscale(a: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale of a 2D array by an integer factor (crisp cells)."""
    if scale == 1:
        return a
    h, w = a.shape
    return np.broadcast_to(a[:, None, :, None], (h, scale, w, scale)).reshape(h * scale, w * scale)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Pixel geometry of a frame with `n` panels of `bins * scale` pixels square, a title line
    above them and a colour-scale legend below (each can be left out)."""

    bins: int
    scale: int
    n: int
    title_line: bool = True
    legend_line: bool = True

    @property
    def panel(self) -> int:
        return self.bins * self.scale

    @property
    def font_size(self) -> int:
        """Label size: a 14th of a panel, between 14 and 28 px, so a four-method GIF shrunk to
        a page's width (about 0.6x) still reads at 9 px or more."""
        return int(min(28, max(14, round(self.panel / 14))))

    @property
    def header(self) -> int:
        """Height of the text strip above each panel."""
        return int(round(self.font_size * 1.7))

    @property
    def title(self) -> int:
        """Height of the title line above the headers (0 without one)."""
        return int(round(self.font_size * 1.8)) if self.title_line else 0

    @property
    def legend(self) -> int:
        """Height of the colour-scale strip below the panels (0 without one)."""
        return int(round(self.font_size * 2.6)) if self.legend_line else 0

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
        return 2 * self.margin + self.title + self.header + self.panel + self.legend

    def panel_x(self, k: int) -> int:
        """Left edge of panel k (and of its header)."""
        return self.margin + k * (self.panel + self.gap)

    @property
    def header_y(self) -> int:
        """Top edge of the panel headers (just below the title line)."""
        return self.margin + self.title

    @property
    def panel_y(self) -> int:
        """Top edge of every panel (just below the header)."""
        return self.header_y + self.header

    @property
    def legend_y(self) -> int:
        """Top edge of the legend strip (just below the panels)."""
        return self.panel_y + self.panel


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
    """'KL 0.0726': three significant digits (the pictures' one rule, see viz.numbers)."""
    if math.isnan(kl):
        return "KL -"
    return f"KL {sig(kl)}"


def method_label(method: str, kl: float) -> Label:
    """A method panel's header: its title ("Split-and-Prune") and, at the right, its KL."""
    return Label(method_title(method), "", format_kl(kl))


def target_label() -> Label:
    """The target panel's header (its name is on the title line)."""
    return Label(TARGET)


def title_label(
    name: str,
    nodes: int,
    step: int | None = None,
    steps: int | None = None,
    index: int = 0,
    count: int = 1,
    real_kl: float | None = None,
) -> Label:
    """The title line: target (with "(3/5)" in a sequence), K and the step; at the right the
    real-samples KL, the "as good as real data" mark the panels' KLs compare with."""
    seq = f" ({index + 1}/{count})" if count > 1 else ""
    parts = [f"K = {nodes:,}"]
    if step is not None:
        parts.append(f"step {step:,}" + (f" / {steps:,}" if steps else ""))
    real = "" if real_kl is None or math.isnan(real_kl) else f"real samples {format_kl(real_kl)}"
    return Label(f"{name}{seq}", "   ".join(parts), real)


@dataclass(frozen=True)
class Legend:
    """The colour scale under the panels: a bar from 0 to `top` (nodes per cell), and a caption."""

    top: float
    caption: str = "nodes per cell (target: K x its probability); one scale for every panel"


def legend_for(vmax: float, nodes: int) -> Legend:
    """The legend of a frame whose colour scale tops out at vmax (a probability per cell)."""
    return Legend(vmax * nodes)


@lru_cache(maxsize=64)
def _legend_strip(legend: Legend, width: int, height: int, size: int, bar_px: int) -> np.ndarray:
    """The legend strip as palette indices: colour bar, its ticks, and the caption."""
    pad = max(3, size // 3)
    small = max(MIN_FONT, round(size * 0.85))
    bar_h = max(4, round(size * 0.7))
    bar_y = pad
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    font = _font(small)
    tick_y = bar_y + bar_h + 2
    draw.text((0, tick_y), "0", fill=DETAIL_LEVEL, font=font, anchor="lt")
    top = f"{sig(legend.top, 2)}+"
    draw.text((bar_px, tick_y), top, fill=DETAIL_LEVEL, font=font, anchor="rt")
    mid = sig(legend.top / 2, 2)
    if _text_width(mid, small) + _text_width(top, small) + _text_width("0", small) < bar_px * 0.8:
        draw.text((bar_px / 2, tick_y), mid, fill=DETAIL_LEVEL, font=font, anchor="mt")
    caption_x = bar_px + 2 * pad
    caption = legend.caption
    room = width - caption_x
    if room > 0 and _text_width(caption, small) > room:
        caption = caption.split(";")[0]
    if room > 0 and _text_width(caption, small) > room:
        caption = "nodes per cell"
    if room > 0 and _text_width(caption, small) <= room:
        draw.text(
            (caption_x, bar_y + bar_h / 2), caption, fill=DETAIL_LEVEL, font=font, anchor="lm"
        )
    strip = _L_TO_INDEX[np.asarray(img)]
    ramp = np.round(np.linspace(0, N_VIRIDIS - 1, bar_px))
    strip[bar_y : bar_y + bar_h, :bar_px] = ramp.astype(np.uint8)[None, :]
    strip.flags.writeable = False
    return strip


# --------------------------------------------------------------------------- composition


def compose(
    panels: Sequence[tuple[np.ndarray, Label]],
    scale: int,
    title: Label | None = None,
    legend: Legend | None = None,
) -> np.ndarray:
    """Lay out panels side by side, each under its header, with the title line above and the
    colour-scale legend below (when given): (H, W) uint8 palette indices.

    Each panel is a (bins, bins) array of colour-map indices (see `to_indices`).
    """
    if not panels:
        raise ToylabError("nothing to draw: no panels selected")
    bins = panels[0][0].shape[0]
    lay = Layout(bins, scale, len(panels), title is not None, legend is not None)
    canvas = np.full((lay.height, lay.width), BG_INDEX, dtype=np.uint8)
    p, y0, inner = lay.panel, lay.panel_y, lay.width - 2 * lay.margin
    size = lay.font_size
    if title is not None:
        canvas[lay.margin : lay.header_y, lay.margin : lay.margin + inner] = _label_strip(
            title, inner, lay.title, round(size * 1.1)
        )
    for k, (cells, label) in enumerate(panels):
        x0 = lay.panel_x(k)
        canvas[lay.header_y : y0, x0 : x0 + p] = _label_strip(label, p, lay.header, size)
        canvas[y0 : y0 + p, x0 : x0 + p] = upscale(cells, scale)
    if legend is not None:
        y1 = lay.legend_y
        strip = _legend_strip(legend, inner, lay.legend, size, min(p, inner))
        canvas[y1 : y1 + lay.legend, lay.margin : lay.margin + inner] = strip
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
    """The header of each chosen panel of frame i: a method's title and KL, or "target"."""
    return [
        target_label()
        if p == TARGET
        else method_label(p, float(frames.kl[i][frames.methods.index(p)]))
        for p in panels
    ]


def frame_title(frames: Frames, i: int, real_kl: Sequence[float] | None = None) -> Label:
    """Frame i's title line; real_kl[t] is target t's real-samples KL (None: not shown)."""
    t = frames.target_index[i]
    real = real_kl[t] if real_kl is not None and t < len(real_kl) else None
    return title_label(
        frames.target_names[t],
        frames.nodes,
        frames.step[i],
        frames.steps_per_target,
        t,
        len(frames.target_names),
        real,
    )


def frame_indices(
    frames: Frames,
    i: int,
    scale: int | None = None,
    panels: Sequence[str] | None = None,
    real_kl: Sequence[float] | None = None,
) -> np.ndarray:
    """Frame i as (H, W) uint8 indices into the palette (what the GIF writer stores).

    real_kl: per target of the run, its real-samples KL (metrics.json's), shown on the title
    line so the viewer knows what "good" is; None leaves it out.
    """
    scale = default_scale(frames.bins) if scale is None else scale
    chosen = resolve_panels(frames, panels)
    q = frames.target_arrays[frames.target_index[i]]
    k = frames.nodes
    vmax = colour_vmax(q, k)
    cells = [
        to_indices(q if p == TARGET else frames.hist[i][frames.methods.index(p)] / k, vmax)
        for p in chosen
    ]
    return compose(
        list(zip(cells, panel_labels(frames, i, chosen), strict=True)),
        scale,
        frame_title(frames, i, real_kl),
        legend_for(vmax, k),
    )


def render_frame(
    frames: Frames,
    i: int,
    scale: int | None = None,
    panels: Sequence[str] | None = None,
    real_kl: Sequence[float] | None = None,
    theme: str = DEFAULT_THEME,
) -> np.ndarray:
    """Frame i as an (H, W, 3) uint8 RGB image: one panel per selected method, then the target.

    `scale` is pixels per cell (None: `default_scale(bins)`, 3 at 100 bins); `panels` picks
    and orders the panels by name (methods and "target"); None shows all.
    """
    return palette(theme)[frame_indices(frames, i, scale, panels, real_kl)]


def final_image(
    hists: np.ndarray,
    methods: Sequence[str],
    target_array: np.ndarray,
    nodes: int,
    kls: Sequence[float],
    target_name: str,
    *,
    step: int | None = None,
    real_kl: float | None = None,
    scale: int | None = None,
    theme: str = DEFAULT_THEME,
) -> np.ndarray:
    """The final fit as an (H, W, 3) uint8 RGB image: one panel per method, then the target,
    with the title line and the colour scale (what final.png and `plot()` show)."""
    hists = np.asarray(hists)
    if hists.ndim != 3 or hists.shape[0] != len(methods) or len(kls) != len(methods):
        raise ToylabError(
            f"final image: {len(methods)} methods but hists {hists.shape} and {len(kls)} KLs"
        )
    q = np.asarray(target_array, dtype=np.float64)
    if hists.shape[1:] != q.shape:
        raise ToylabError(f"final image: histograms {hists.shape[1:]} vs target {q.shape}")
    scale = default_scale(q.shape[0], FINAL_PANEL_PX) if scale is None else scale
    vmax = colour_vmax(q, nodes)
    drawn = [
        (to_indices(h / nodes, vmax), method_label(m, float(kl)))
        for m, h, kl in zip(methods, hists, kls, strict=True)
    ]
    drawn.append((to_indices(q, vmax), target_label()))
    title = title_label(target_name, nodes, step, real_kl=real_kl)
    return palette(theme)[compose(drawn, scale, title, legend_for(vmax, nodes))]


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
    real_kl: float | None = None,
    scale: int | None = None,
    theme: str = DEFAULT_THEME,
) -> Path:
    """Write final.png atomically: `final_image` (hists is (M, bins, bins) node counts in the
    target's orientation, kls is (M,); scale None aims at FINAL_PANEL_PX panels)."""
    rgb = final_image(
        hists,
        methods,
        target_array,
        nodes,
        kls,
        target_name,
        step=step,
        real_kl=real_kl,
        scale=scale,
        theme=theme,
    )
    img = Image.fromarray(rgb, "RGB")
    return write_with(path, lambda tmp: img.save(tmp, format="PNG", optimize=True))
