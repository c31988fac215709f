"""Drawing the `toylab explain` frames with matplotlib (Agg), and writing the GIF and stills.

One figure is built once and its artists are updated per frame (a few dozen to ~120 frames).
Each method gets a square panel over [-1, 1]^2:

    grey background   the target density
    thin dark lines   borders of the region each node wins (nearest-node labels on a grid)
    coloured dots     nodes; colour and area show the match share over the last W steps
                      against the fair 1/K (blue under, red over, log scale from 1/4 to 4)
    grey crosses      dead nodes: no match in the last W steps
    green dots        the step's data points, each linked to the node it matched
    orange arrows     split events: from the split node to the pruned slot's old position

The GIF cannot use `render.PALETTE` (viridis and greys only: no red or blue for the shares),
so it gets one global 255-colour palette, median-cut from a few sample frames plus a swatch of
every colour the drawing uses, and every frame is mapped to it without dithering. Pixels equal
to the previous frame's are stored as the transparent index 255 (disposal 1 keeps the previous
frame below): long runs of one index compress well, ~2 MB instead of ~6 MB for 100 frames.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from PIL import Image

import densities
from toylab.catalog import CATALOG, title
from toylab.config import RunConfig
from toylab.fitting.methods import SplitAndPrune
from toylab.progress import bar as progress_bar
from toylab.store.atomic import write_with
from toylab.viz.explain.record import (
    GIF_FILE,
    GRID,
    STILL_END,
    STILL_SPLIT,
    STILL_START,
    FrameView,
    MethodView,
    owner_labels,
    region_boundaries,
)
from toylab.viz.gif import save_indexed_gif

DPI = 100
PANEL_IN = 4.4
MARGIN_IN = 0.3
GAP_IN = 0.45
HEADER_IN = 0.8
TITLE_IN = 0.4
CAPTION_IN = 0.85
LEGEND_IN = 1.05
MIN_WIDTH_IN = 8.6

SHARE_CMAP = colormaps["RdBu_r"]
SHARE_NORM = LogNorm(vmin=0.25, vmax=4.0)
POINT_RGB = "#1b7837"  # data points and their links
EVENT_RGB = "#f07800"  # split arrows and markers
DEAD_RGB = "#3a3a3a"
EDGE_RGBA = (0.12, 0.12, 0.12, 0.55)
TRANSPARENT = 255  # GIF index of "same as the previous frame"
MAX_ARROWS = 24  # per panel and frame; a caption still counts all splits
MAX_LINKED_POINTS = 64  # beyond this batch size points are drawn without links

_OUTLINE = [patheffects.withStroke(linewidth=3, foreground="white")]


def node_area(share: np.ndarray) -> np.ndarray:
    """Marker area (pt^2) growing with the share: 18 at 0, 60 at 1/K, 150 at 4/K and above."""
    return 18.0 + 42.0 * np.clip(share, 0.0, 3.2)


class Drawer:
    """The explain figure: one panel per method; `render(frame)` returns RGB and what it drew."""

    def __init__(self, config: RunConfig, density: densities.Density, window: int, real_kl: float):
        self.config = config
        self.methods = list(config.methods)
        self.window = window
        m = len(self.methods)
        panels_w = 2 * MARGIN_IN + m * PANEL_IN + (m - 1) * GAP_IN
        width = max(MIN_WIDTH_IN, panels_w)
        height = HEADER_IN + TITLE_IN + PANEL_IN + CAPTION_IN + LEGEND_IN
        self.fig = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
        FigureCanvasAgg(self.fig)
        self.height = height
        left0 = (width - panels_w) / 2 + MARGIN_IN
        bottom = LEGEND_IN + CAPTION_IN
        q = density.array
        self.edge_rgba = np.zeros((GRID, GRID, 4), dtype=np.float32)
        self.panels: list[dict[str, Any]] = []
        for n, name in enumerate(self.methods):
            x0 = left0 + n * (PANEL_IN + GAP_IN)
            ax = self.fig.add_axes(
                (x0 / width, bottom / height, PANEL_IN / width, PANEL_IN / height)
            )
            ax.set_xlim(-1, 1)
            ax.set_ylim(-1, 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            ax.imshow(
                q,
                cmap="Greys",
                vmin=0.0,
                vmax=float(q.max()) / 0.55,
                extent=(-1, 1, -1, 1),
                origin="upper",
                interpolation="nearest",
                zorder=0,
            )
            edges = ax.imshow(
                self.edge_rgba,
                extent=(-1, 1, -1, 1),
                origin="upper",
                interpolation="nearest",
                zorder=1,
            )
            links = LineCollection([], colors=POINT_RGB, linewidths=1.0, alpha=0.75, zorder=2)
            ax.add_collection(links)
            points = ax.scatter(
                [], [], s=16, c=POINT_RGB, edgecolors="white", linewidths=0.5, zorder=3
            )
            nodes = ax.scatter(
                np.zeros(1),
                np.zeros(1),
                c=np.ones(1),
                s=[40],
                cmap=SHARE_CMAP,
                norm=SHARE_NORM,
                edgecolors="black",
                linewidths=0.7,
                zorder=4,
            )
            dead = ax.scatter([], [], marker="x", s=70, c=DEAD_RGB, linewidths=2.2, zorder=5)
            ax.set_title(
                f"{name}: {title(name)}", loc="left", fontsize=14, fontweight="bold", pad=6
            )
            kl_text = ax.set_title("", loc="right", fontsize=13, pad=6)
            caption = self.fig.text(
                x0 / width,
                (bottom - 0.1) / height,
                "",
                ha="left",
                va="top",
                fontsize=11,
                linespacing=1.35,
            )
            self.panels.append(
                {
                    "ax": ax,
                    "edges": edges,
                    "links": links,
                    "points": points,
                    "nodes": nodes,
                    "dead": dead,
                    "kl": kl_text,
                    "caption": caption,
                    "events": [],
                }
            )
        left, right = MARGIN_IN / width, 1 - MARGIN_IN / width
        self.step_text = self.fig.text(
            left, 1 - 0.16 / height, "", ha="left", va="top", fontsize=18, fontweight="bold"
        )
        self.fig.text(
            right,
            1 - 0.2 / height,
            f"target {density.name}  ·  K = {config.nodes} nodes  ·  batch {config.batch}  ·  "
            f"{config.distance.upper()} distance",
            ha="right",
            va="top",
            fontsize=12,
        )
        self.fig.text(
            left,
            1 - 0.56 / height,
            "Each step: every data point pulls its nearest node toward it.",
            ha="left",
            va="top",
            fontsize=11,
            color="#333333",
        )
        self.fig.text(
            right,
            1 - 0.56 / height,
            f"KL to the target (lower is better)  ·  K real samples: {real_kl:.2f}",
            ha="right",
            va="top",
            fontsize=11,
            color="#333333",
        )
        self._legend(width, height)
        self._background: Any = None
        for artist in self._dynamic():
            artist.set_animated(True)  # left out of the static background, drawn per frame
        self.chars = max(40, int(PANEL_IN * 72 / 11 / 0.52))  # caption characters per line

    def _legend(self, width: float, height: float) -> None:
        w = self.window
        cax = self.fig.add_axes(
            ((MARGIN_IN + 0.1) / width, 0.42 / height, 4.2 / width, 0.14 / height)
        )
        bar = self.fig.colorbar(
            _mappable(), cax=cax, orientation="horizontal", ticks=[0.25, 0.5, 1, 2, 4]
        )
        bar.ax.set_xticklabels(
            ["≤ ¼/K", "½/K prune", "1/K fair", "2/K split", "≥ 4/K"], fontsize=10
        )
        bar.ax.xaxis.set_minor_locator(NullLocator())
        bar.ax.tick_params(length=3)
        cax.set_title(
            f"node colour and size: share of matches over the last {w} steps",
            fontsize=10.5,
            loc="left",
            pad=4,
        )
        handles = [
            Line2D(
                [],
                [],
                ls="none",
                marker="x",
                ms=9,
                mew=2.2,
                color=DEAD_RGB,
                label=f"dead node: no match in the last {w} steps",
            ),
            Line2D(
                [],
                [],
                color=POINT_RGB,
                marker="o",
                ms=5,
                mec="white",
                label="data point of this step, linked to its node",
            ),
            Line2D(
                [],
                [],
                color=EVENT_RGB,
                lw=2.5,
                marker=">",
                ms=8,
                label="split: node copied into the pruned slot (○ = old spot)",
            ),
            Line2D([], [], color=EDGE_RGBA[:3], lw=1.2, label="border of the region a node wins"),
        ]
        self.fig.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1 - MARGIN_IN / width, 0.06 / height),
            fontsize=10,
            frameon=False,
            ncol=1,
            handlelength=2.2,
            borderaxespad=0.2,
        )

    def render(self, frame: FrameView) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
        """Draw one frame: (H, W, 3) uint8 RGB, and per method the split arrows and dead
        crosses actually drawn."""
        cfg = self.config
        if frame.step == 0:
            self.step_text.set_text(f"step 0 of {cfg.steps}: the start")
        elif frame.first_step < frame.step:
            self.step_text.set_text(f"steps {frame.first_step}-{frame.step} of {cfg.steps}")
        else:
            self.step_text.set_text(f"step {frame.step} of {cfg.steps}")
        drawn = {}
        for name, panel in zip(self.methods, self.panels, strict=True):
            drawn[name] = self._draw_method(panel, name, frame, frame.methods[name])
        canvas = self.fig.canvas
        if self._background is None:  # the static part (target, legend, titles), drawn once
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        canvas.restore_region(self._background)
        for artist in self._dynamic():
            self.fig.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy(), drawn

    def _dynamic(self) -> list[Any]:
        """The artists a frame changes, in drawing order."""
        out: list[Any] = [self.step_text]
        for p in self.panels:
            out += [
                p["edges"],
                p["links"],
                p["points"],
                p["nodes"],
                p["dead"],
                *p["events"],
                p["kl"],
                p["caption"],
            ]
        return out

    def _draw_method(
        self, panel: dict[str, Any], name: str, frame: FrameView, v: MethodView
    ) -> dict[str, int]:
        pos = v.positions
        edge = region_boundaries(owner_labels(pos, GRID, self.config.distance))
        self.edge_rgba[...] = 0
        self.edge_rgba[edge] = EDGE_RGBA
        panel["edges"].set_data(self.edge_rgba)
        pts = frame.points
        panel["points"].set_offsets(pts if pts.size else np.empty((0, 2)))
        if pts.size and v.matched.size == len(pts) and len(pts) <= MAX_LINKED_POINTS:
            panel["links"].set_segments(np.stack([pts, pos[v.matched]], axis=1))
        else:
            panel["links"].set_segments([])
        alive = ~v.dead
        nodes = panel["nodes"]
        nodes.set_offsets(pos[alive])
        share = np.maximum(v.share[alive], 1e-3) if frame.step > 0 else np.ones(int(alive.sum()))
        nodes.set_array(share)
        nodes.set_sizes(node_area(share))
        panel["dead"].set_offsets(pos[v.dead] if v.dead.any() else np.empty((0, 2)))
        panel["kl"].set_text(f"KL {v.kl:.2f}")
        for artist in panel["events"]:
            artist.remove()
        panel["events"] = self._draw_splits(panel["ax"], v)
        for artist in panel["events"]:
            artist.set_animated(True)
        panel["caption"].set_text(self._caption(name, frame, v))
        return {"splits": min(len(v.splits), MAX_ARROWS), "dead": int(v.dead.sum())}

    def _draw_splits(self, ax: Any, v: MethodView) -> list[Any]:
        artists = []
        for e in v.splits[:MAX_ARROWS]:
            src, dst = np.array(e.split_from), np.array(e.pruned_old)
            artists.append(
                ax.scatter(
                    *dst,
                    s=130,
                    facecolors="none",
                    edgecolors=EVENT_RGB,
                    linewidths=2.0,
                    linestyles="--",
                    zorder=6,
                )
            )
            artists.append(
                ax.scatter(
                    *src, s=190, facecolors="none", edgecolors=EVENT_RGB, linewidths=2.4, zorder=6
                )
            )
            if np.abs(src - dst).sum() > 1e-9:
                artists.append(
                    ax.annotate(
                        "",
                        xy=dst,
                        xytext=src,
                        zorder=7,
                        arrowprops={
                            "arrowstyle": "-|>,head_length=0.7,head_width=0.35",
                            "color": EVENT_RGB,
                            "lw": 2.4,
                            "shrinkA": 7,
                            "shrinkB": 6,
                            "path_effects": [
                                patheffects.withStroke(linewidth=4, foreground="white")
                            ],
                        },
                    )
                )
            for label, at, off in ((str(e.split), src, (7, 7)), (str(e.pruned), dst, (7, -13))):
                artists.append(
                    ax.annotate(
                        label,
                        xy=at,
                        xytext=off,
                        textcoords="offset points",
                        fontsize=10,
                        fontweight="bold",
                        color=EVENT_RGB,
                        zorder=8,
                        path_effects=_OUTLINE,
                    )
                )
        return artists

    def _caption(self, name: str, frame: FrameView, v: MethodView) -> str:
        k = self.config.nodes
        if frame.step == 0:
            start = (
                f"Start: {k} nodes uniform in the square, the same for every method."
                if v.shared_start
                else f"Start: {k} nodes from this method's own initialisation"
                + (" (k-means++ on a sample of the target)." if name == "kmeans" else ".")
            )
            text = f"{start} Lines: the region each node wins ({self.config.distance.upper()})."
            return textwrap.fill(text, self.chars)
        span = "" if frame.first_step == frame.step else " since the last frame"
        parts = [
            f"{v.points_seen} points matched {v.moved} node{'s' if v.moved != 1 else ''}{span}; "
            "each moved toward its points."
        ]
        dead = int(v.dead.sum())
        if v.splits:
            if len(v.splits) == 1:
                e = v.splits[0]
                parts.append(f"Split node {e.split} into slot {e.pruned} ({e.reason}).")
            else:
                pairs = ", ".join(f"{e.split}→{e.pruned}" for e in v.splits[:8])
                more = "…" if len(v.splits) > 8 else ""
                parts.append(f"{len(v.splits)} splits (node→slot): {pairs}{more}.")
        elif splits_nodes(name):
            parts.append("No split: every node's share of the counts is within ½/K..2/K.")
        if dead:
            parts.append(f"{dead} dead node{'s' if dead != 1 else ''} (×).")
        elif frame.step >= self.window:
            parts.append("No dead node.")
        return textwrap.fill(" ".join(parts), self.chars)


def splits_nodes(name: str) -> bool:
    """Whether the method splits and prunes (Split-and-Prune and its subclasses)."""
    return name in CATALOG and issubclass(CATALOG[name].load(), SplitAndPrune)


def _mappable() -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=SHARE_NORM, cmap=SHARE_CMAP)


# --------------------------------------------------------------------------- writing


def _fixed_colours() -> np.ndarray:
    """(n, 3) uint8 colours the palette always keeps: greys, the share ramp, the marker
    colours and their blends with white (anti-aliased edges)."""
    from matplotlib.colors import to_rgb

    greys = np.linspace(0, 1, 24)[:, None].repeat(3, axis=1)
    ramp = SHARE_CMAP(np.linspace(0, 1, 40))[:, :3]
    marks = np.array([to_rgb(c) for c in (POINT_RGB, EVENT_RGB, DEAD_RGB)])
    blends = np.concatenate([marks * (1 - t) + t for t in (0.25, 0.5, 0.75)])
    edge = np.array(EDGE_RGBA[:3]) * EDGE_RGBA[3] + (1 - EDGE_RGBA[3])
    colours = np.concatenate([greys, ramp, marks, blends, edge[None]])
    return np.round(colours * 255).astype(np.uint8)


def build_palette(samples: list[np.ndarray]) -> tuple[Image.Image, list[int]]:
    """The GIF's palette: the fixed colours plus median-cut colours of the sample frames, 255
    in all; slot 255 (transparent) repeats slot 254 so nothing maps to it by accident. Returns
    the palette image for `quantize` and the 768 palette bytes to store."""
    fixed = _fixed_colours()
    free = TRANSPARENT - len(fixed)
    montage = np.concatenate(samples, axis=0)[::2, ::2]  # every colour area of note survives
    cut = Image.fromarray(np.ascontiguousarray(montage), "RGB").quantize(
        colors=free, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    learned = np.array(cut.getpalette()[: 3 * free], dtype=np.uint8).reshape(-1, 3)
    colours = np.concatenate([fixed, learned])
    colours = np.concatenate([colours, np.repeat(colours[-1:], 256 - len(colours), axis=0)])
    flat = colours.ravel().tolist()
    image = Image.new("P", (1, 1))
    image.putpalette(flat)
    return image, flat


def to_palette(rgb: np.ndarray, palette: Image.Image) -> np.ndarray:
    """(H, W) palette indices of an RGB frame: nearest colour, no dithering, never 255."""
    idx = np.asarray(
        Image.fromarray(rgb, "RGB").quantize(palette=palette, dither=Image.Dither.NONE)
    )
    return np.where(idx == TRANSPARENT, TRANSPARENT - 1, idx).astype(np.uint8)


def still_indices(frames: list[FrameView]) -> dict[int, str]:
    """Frame index -> still file: the start, the first frame with a split, the end."""
    out = {0: STILL_START}
    first_split = next(
        (i for i, f in enumerate(frames) if any(v.splits for v in f.methods.values())), None
    )
    if first_split is not None:
        out[first_split] = STILL_SPLIT
    out[len(frames) - 1] = STILL_END
    return out


def write_outputs(
    drawer: Drawer,
    frames: list[FrameView],
    out: Path,
    fps: int,
    hold_last_ms: int,
    progress: bool = False,
) -> tuple[Path, list[Path], list[dict[str, dict[str, int]]]]:
    """Render every frame once into explain.gif (atomically) and the stills; return the GIF
    path, the still paths and per frame what each panel drew."""
    stills = still_indices(frames)
    samples = sorted({0, len(frames) // 2, *stills})
    palette, palette_bytes = build_palette([drawer.render(frames[i])[0] for i in samples])
    drawn: list[dict[str, dict[str, int]]] = []
    still_paths: list[Path] = []

    def images() -> Any:
        bar = progress_bar(len(frames), "drawing", not progress, unit="frame", leave=False)
        previous = None
        with bar:
            for i, frame in enumerate(frames):
                bar.update(1)
                rgb, counts = drawer.render(frame)
                drawn.append(counts)
                if i in stills:
                    still_paths.append(write_png(out / stills[i], rgb))
                idx = to_palette(rgb, palette)
                stored = idx.copy()
                if previous is not None:  # unchanged pixels stay as drawn: 1/3 of the bytes
                    stored[idx == previous] = TRANSPARENT
                previous = idx
                yield stored

    gif_path = save_indexed_gif(
        images(), out / GIF_FILE, palette_bytes, fps, hold_last_ms, transparency=TRANSPARENT
    )
    return gif_path, still_paths, drawn


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """An RGB array as a PNG, atomically."""
    img = Image.fromarray(rgb, "RGB")
    return write_with(path, lambda tmp: img.save(tmp, format="PNG", optimize=True))
