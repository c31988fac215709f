"""Pictures of a hierarchical DDN: the tree layer by layer (coloured by the latent's first
index), guided samples beside the true and the model's conditionals, reconstruction error per
layer. Each function writes one PNG (atomically) with matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

import densities
from toylab.fitting.tree.guides import (
    Guide,
    grid_conditional,
    model_conditional_grid,
    reconstruct,
    sample_exact,
    sample_greedy,
    sample_rejection,
)
from toylab.fitting.tree.table import TreeTable
from toylab.store.atomic import write_with

EXTENT = (-1.0, 1.0, -1.0, 1.0)


def _figure(rows: int, cols: int, size: float = 3.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        rows, cols, figsize=(size * cols, (size + 0.35) * rows + 0.4), squeeze=False
    )
    return fig, axes


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    def writer(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=100)

    write_with(path, writer)
    plt.close(fig)


def _square(ax, title: str) -> None:
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _first_index_colours(k: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "hsv"]
    return [cmap(i % cmap.N) if k <= 20 else cmap(i / k) for i in range(k)]


def draw_layers(table: TreeTable, path: Path, title: str = "") -> None:
    """One panel per layer, coarse to fine: the nodes of the layer that the prior samples,
    coloured by the first index of their latent code (the nested regions of the tree latent)."""
    fig, axes = _figure(1, table.layers)
    colours = np.array(_first_index_colours(table.k))
    for level in range(table.layers):
        pos = table.positions[level]
        first = np.arange(pos.shape[0]) // table.k**level
        # nodes the prior never samples (mass below 1% of uniform) are left out
        keep = table.node_mass(level) * pos.shape[0] >= 0.01
        size = max(0.3, 40.0 / (level + 1) ** 2.5)
        ax = axes[0, level]
        ax.scatter(pos[keep, 0], pos[keep, 1], s=size, c=colours[first[keep]], linewidths=0)
        _square(ax, f"layer {level + 1}: {int(keep.sum())} of {pos.shape[0]} nodes")
    fig.suptitle(title or "samples layer by layer (colour: first latent index)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def guided_panels(
    table: TreeTable,
    density: densities.Density,
    guides: Sequence[Guide],
    n: int,
    rng: np.random.Generator,
) -> list[dict]:
    """For each guide: the true and the model's conditional grids, greedy, exact and rejection
    sample histograms, and TV of each sampler against the model's conditional."""
    bins = density.bins
    out = []
    for guide in guides:
        model = model_conditional_grid(table, guide, bins)
        true = grid_conditional(density.array, guide)
        row = {"guide": guide, "model": model, "true": true}
        for name, sampler in (("greedy", sample_greedy), ("exact", sample_exact)):
            pts = sampler(table, guide, n, rng).points
            row[name] = densities.histogram(pts, bins) / n
        rejected = sample_rejection(table, guide, n, rng)  # fewer than n if 10^8 draws ran out
        row["rejection"] = densities.histogram(rejected, bins) / max(len(rejected), 1)
        for name in ("greedy", "exact", "rejection"):
            row[f"tv_{name}"] = float(0.5 * np.abs(row[name] - model).sum())
        out.append(row)
    return out


def _outline(ax, guide: Guide) -> None:
    """Draw an x line or a box's edges in white (other conditions have no outline)."""
    from toylab.fitting.tree.guides import BoxGuide, PointGuide, XGuide

    style = {"color": "white", "lw": 0.6, "alpha": 0.6}
    if isinstance(guide, XGuide):  # ticks at the edges, not a line over the column itself
        ax.plot([guide.x0, guide.x0], [0.9, 1.0], **style)
        ax.plot([guide.x0, guide.x0], [-1.0, -0.9], **style)
    elif isinstance(guide, BoxGuide):
        ax.plot(
            [guide.x0, guide.x1, guide.x1, guide.x0, guide.x0],
            [guide.y0, guide.y0, guide.y1, guide.y1, guide.y0],
            **style,
        )
    elif isinstance(guide, PointGuide):
        ax.plot([guide.x], [guide.y], "+", color="white")


def draw_guided(rows: list[dict], path: Path) -> None:
    """Per guide: true conditional, model's conditional, greedy samples, exact samples."""
    fig, axes = _figure(len(rows), 4)
    for r, row in enumerate(rows):
        panels = [
            ("target's conditional", row["true"]),
            ("model's conditional", row["model"]),
            (f"greedy (TV {row['tv_greedy']:.2f})", row["greedy"]),
            (f"exact (TV {row['tv_exact']:.2f})", row["exact"]),
        ]
        for c, (name, grid) in enumerate(panels):
            ax = axes[r, c]
            if grid is not None:
                ax.imshow(grid, extent=EXTENT, cmap="viridis", interpolation="nearest")
            _outline(ax, row["guide"])
            _square(ax, name)
            if c == 0:
                ax.set_ylabel(row["guide"].label, fontsize=9)
    fig.suptitle(
        "guided sampling: greedy rule vs exact subtree-mass sampler "
        "(TV against the model's own conditional)",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, path)


def reconstruction_errors(table: TreeTable, points: np.ndarray, sampler: str) -> np.ndarray:
    """(L,) mean Euclidean error after each layer when encoding `points`."""
    errs = np.stack([reconstruct(table, x, y, sampler).errors for x, y in points])
    return errs.mean(axis=0)


def draw_reconstruction(
    table: TreeTable, density: densities.Density, path: Path, n: int = 200
) -> dict:
    """Mean reconstruction error per layer of n data points (greedy = the DDN's encoding, exact
    = the nearest leaf's path) and one point's path through the tree."""
    rng = np.random.default_rng(0)
    data = density.sample(n, rng)
    greedy = reconstruction_errors(table, data, "greedy")
    exact = reconstruction_errors(table, data, "exact")
    fig, axes = _figure(1, 2, 3.6)
    ax = axes[0, 0]
    layers = np.arange(1, table.layers + 1)
    ax.semilogy(layers, greedy, "o-", label="greedy (nearest child)")
    ax.semilogy(layers, exact, "s--", label="exact (nearest leaf's path)")
    ax.set_xlabel("layer")
    ax.set_ylabel("mean error")
    ax.set_xticks(layers)
    ax.legend(fontsize=8)
    ax.set_title(f"reconstruction of {n} data points", fontsize=9)
    ax = axes[0, 1]
    ax.imshow(density.array, extent=EXTENT, cmap="Greys", interpolation="nearest")
    x, y = data[0]
    rec = reconstruct(table, x, y, "greedy")
    ax.plot(*np.vstack([[0, 0], rec.points]).T, "o-", color="tab:red", ms=3, lw=1)
    ax.plot([x], [y], "x", color="tab:blue", ms=8)
    code = "".join(str(c) if table.k <= 10 else f"{c}," for c in rec.code)
    _square(ax, f"path of one point, code {code}")
    fig.tight_layout()
    _save(fig, path)
    return {"greedy": greedy.tolist(), "exact": exact.tolist()}
