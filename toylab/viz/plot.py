"""Pictures for the library: `plot()` (a matplotlib Figure of the final fit, shown inline in a
notebook) and `save_gif(path)`, shared by `toylab.fit`'s FitResult and `toylab.load_run`'s runs.

A class gets both by inheriting `Pictures` and providing `final_fit()` (a `FinalFit`) and
`gif_frames()` (the recorded Frames and each target's real-samples KL).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from toylab.errors import ToylabError
from toylab.store.frames import Frames
from toylab.viz.numbers import sig

if TYPE_CHECKING:  # matplotlib and the renderer load on first use: `import toylab` stays light
    from matplotlib.figure import Figure

DEFAULT_THEME = "dark"
DEFAULT_FPS = 20  # gif.DEFAULT_FPS (checked in the tests)


@dataclass
class FinalFit:
    """What the final-fit picture needs: node counts per method on the target's grid."""

    target_name: str
    target_array: np.ndarray
    nodes: int
    methods: list[str]
    hists: np.ndarray  # (M, bins, bins) counts
    kls: list[float]
    real_kl: float | None = None
    step: int | None = None


def fit_figure(fit: FinalFit, theme: str = DEFAULT_THEME) -> Figure:
    """One panel per method (title and KL in nats) and the target, on the shared colour scale
    of the GIF, with a colour bar in nodes per cell; a title with target, K and the
    real-samples KL. A plain Figure (no pyplot state): Jupyter displays it inline."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from toylab.viz import render

    theme = render.check_theme(theme)
    style = render.matplotlib_style(theme)
    columns = [*fit.methods, render.TARGET]
    fig = Figure(figsize=(2.6 * len(columns) + 0.8, 3.2), layout="constrained")
    fig.set_facecolor(style["figure.facecolor"])
    fg = style["text.color"]
    vmax = render.colour_vmax(fit.target_array, fit.nodes)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    for ax, column in zip(axes, columns, strict=True):
        if column == render.TARGET:
            values, title = fit.target_array, "target"
        else:
            k = fit.methods.index(column)
            values = fit.hists[k] / fit.nodes
            title = f"{render.method_title(column)}\n{render.format_kl(fit.kls[k])}"
        ax.imshow(render.density_rgb(values, vmax, theme=theme), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10, color=fg)
        for spine in ax.spines.values():
            spine.set_color(fg)
    bar = fig.colorbar(
        ScalarMappable(Normalize(0, vmax * fit.nodes), render.colormap(theme)),
        ax=list(axes),
        fraction=0.025,
        pad=0.01,
    )
    bar.set_label("nodes per cell", color=fg, fontsize=9)
    bar.ax.tick_params(colors=fg, labelsize=8)
    parts = [fit.target_name, f"K = {fit.nodes:,}"]
    if fit.step is not None:
        parts.append(f"step {fit.step:,}")
    if fit.real_kl is not None and np.isfinite(fit.real_kl):
        parts.append(f"real samples KL {sig(fit.real_kl)}")
    fig.suptitle(",  ".join(parts) + "  (KL in nats)", fontsize=11, color=fg)
    return fig


class Pictures:
    """Mixin: `plot()` and `save_gif()` for anything that provides `final_fit()` and
    `gif_frames()`."""

    def final_fit(self) -> FinalFit:  # pragma: no cover - provided by the class
        raise NotImplementedError

    def gif_frames(self) -> tuple[Frames, list[float] | None]:  # pragma: no cover
        raise NotImplementedError

    def plot(self, theme: str = DEFAULT_THEME) -> Figure:
        """A matplotlib Figure of the final fit (the last target of a sequence): each method
        beside the target, KLs in nats, a colour bar. In a notebook it shows inline; elsewhere
        `fig.savefig("fit.png")`. theme: "dark" (default) or "light" (for papers)."""
        return fit_figure(self.final_fit(), theme)

    def save_gif(
        self,
        path: str | os.PathLike,
        *,
        fps: int = DEFAULT_FPS,
        scale: int | None = None,
        panels: Sequence[str] | None = None,
        theme: str = DEFAULT_THEME,
    ) -> Path:
        """Write the comparison GIF of the recorded frames to `path` (as `toylab gif` does)
        and return the path. Needs frames: fit with frames > 0 (the default records 96)."""
        from toylab.viz import gif, render

        frames, real = self.gif_frames()
        if len(frames) == 0:
            raise ToylabError("no frames were recorded (fit with frames > 0 to make a GIF)")
        chosen = render.resolve_panels(frames, list(panels) if panels is not None else None)
        return gif.render_run(
            frames, path, fps=fps, scale=scale, panels=chosen, real_kl=real, theme=theme
        )[0]
