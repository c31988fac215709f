"""The paper's 2D density figure: every method on spiral, blur circles, QR code and words.

Each target is fitted from fresh uniform nodes with every method (as in the paper's figure,
not as a sequence), for each seed. The grid has one row per target and the columns target /
one per method / real samples, the KL under each panel (mean ± sd over seeds when several).
The numbers also go to a CSV and a Markdown table with the paper's numbers beside them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import densities
from toylab import progress, streams
from toylab.catalog import title
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.metrics import node_histogram
from toylab.paper import FIGURE_TARGETS, PAPER_IMAGES, PAPER_KL, TITLES  # noqa: F401
from toylab.run import Run
from toylab.store.atomic import write_text, write_with
from toylab.viz import render
from toylab.viz.numbers import mean_sd, sig

# KL floors shown beside the methods (toylab.floors; the data floor from each seed's own points).
FLOORS = ("data_floor", "allocation_floor")
NOTE = (
    "Our targets are procedural (a two-armed tapering spiral, a real QR code, text in Pillow's "
    "font, our own blur circles), not the paper's images, so the numbers compare in kind, not "
    "digit for digit; `toylab figure --paper-images DIR` runs the paper's own target images."
)


def is_figure_dir(path: Path) -> bool:
    """A directory written by `toylab figure` (which --force may replace)."""
    return (path / "figure.md").is_file() and (path / "figure.csv").is_file()


@dataclass
class Cell:
    """One (target, column) of the figure: KLs over seeds and the first seed's histogram."""

    kls: list[float] = field(default_factory=list)
    stray: list[int] = field(default_factory=list)
    hist: np.ndarray | None = None
    wasserstein: list[float] = field(default_factory=list)

    def summary(self) -> str:
        """'KL 0.0726' or 'KL 0.069 ± 0.011' (nats; the rule of viz.numbers)."""
        if not self.kls:
            return ""
        if len(self.kls) == 1:
            return f"KL {sig(self.kls[0])}"
        return f"KL {mean_sd(float(np.mean(self.kls)), float(np.std(self.kls, ddof=1)))}"


@dataclass
class FigureResult:
    targets: list[densities.Density]
    methods: list[str]
    nodes: int
    cells: dict[tuple[str, str], Cell]
    seeds: list[int]
    steps: int
    complete: bool = True


def paper_image_targets(directory: Path, bins: int) -> dict[str, densities.Density]:
    """The paper's own target images in `directory`, loaded through the image target."""
    if not directory.is_dir():
        raise ToylabError(f"--paper-images {directory} is not a directory")
    out = {}
    for name, files in PAPER_IMAGES.items():
        path = next((directory / f for f in files if (directory / f).is_file()), None)
        if path is None:
            raise ToylabError(f"--paper-images {directory} has no {' or '.join(files)}")
        d = densities.get("image", bins=bins, path=str(path))
        d.name = name
        out[name] = d
    return out


def build_figure_targets(
    bins: int, target_options: dict[str, Any], paper_images: Path | None
) -> list[densities.Density]:
    images = paper_image_targets(paper_images, bins) if paper_images is not None else {}
    return [
        images.get(name) or densities.get(name, bins, **densities.params_for(name, target_options))
        for name in FIGURE_TARGETS
    ]


def compute(
    config: RunConfig,
    seeds: list[int],
    targets: list[densities.Density],
    quiet: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> FigureResult:
    """Fit every method to every target for every seed; collect KLs and histograms.

    When should_stop() turns true the fit in progress is dropped and the fits finished so far
    are returned (result.complete False): a Ctrl-C still gives a figure of what was done.
    """
    cells: dict[tuple[str, str], Cell] = {}
    total = len(seeds) * len(targets) * config.steps
    done_seeds: list[int] = []
    with progress.bar(total, "figure", quiet) as bar:
        for seed in seeds:
            for density in targets:
                bar.set_description(f"{density.name} seed {seed}")
                cfg = RunConfig(
                    **{**config.to_dict(), "targets": [density.name], "seed": seed, "frames": 0}
                )
                run = Run(cfg, [density])
                if not run.advance(should_stop, on_step=lambda r, s: bar.update(1)):
                    fitted = [t for t in targets if (t.name, "real") in cells]
                    return FigureResult(
                        fitted,
                        list(config.methods),
                        config.nodes,
                        cells,
                        done_seeds or [seed],
                        config.steps,
                        complete=False,
                    )
                result = run.results[0]
                for m in cfg.methods:
                    cell = cells.setdefault((density.name, m), Cell())
                    cell.kls.append(result["methods"][m]["kl"])
                    cell.stray.append(result["methods"][m]["stray"])
                    cell.wasserstein.append(result["methods"][m]["wasserstein"])
                    if cell.hist is None:
                        cell.hist = node_histogram(run.methods[m].positions, density.bins)
                for floor in FLOORS:  # the KL floors of this seed's data (toylab.floors)
                    c = cells.setdefault((density.name, floor), Cell())
                    c.kls.append(result["floors"][floor])
                    c.stray.append(0)
                real = cells.setdefault((density.name, "real"), Cell())
                real.kls.append(result["real_samples"]["kl"])
                real.stray.append(result["real_samples"]["stray"])
                if real.hist is None:  # the very draw the run scored: same evaluation stream
                    pts = density.sample(cfg.nodes, streams.generator(seed, "eval", 0))
                    real.hist = node_histogram(pts, density.bins)
            done_seeds.append(seed)
    return FigureResult(targets, list(config.methods), config.nodes, cells, seeds, config.steps)


def column_title(column: str) -> str:
    return {
        "real": "real samples",
        "target": "target",
        "data_floor": "data-budget floor",
        "allocation_floor": "allocation floor",
    }.get(column) or title(column)


def draw(result: FigureResult, png: Path, pdf: Path, theme: str = render.DEFAULT_THEME) -> None:
    """The grid as PNG and PDF: rows = targets; columns = target, methods, real samples; a
    colour bar per row (nodes per cell: each row has its target's own scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    columns = ["target", *result.methods, "real"]
    rows = len(result.targets)
    cmap = render.colormap(theme)
    with plt.rc_context(render.matplotlib_style(theme)):
        fig, axes = plt.subplots(
            rows,
            len(columns),
            figsize=(2.2 * len(columns) + 0.9, 2.45 * rows + 0.3),
            squeeze=False,
            layout="constrained",
        )
        for r, density in enumerate(result.targets):
            vmax = render.colour_vmax(density.array, result.nodes)
            for c, column in enumerate(columns):
                ax = axes[r, c]
                if column == "target":
                    values, label = density.array, TITLES.get(density.name, density.name)
                else:
                    cell = result.cells[(density.name, column)]
                    values, label = cell.hist / result.nodes, cell.summary()
                ax.imshow(render.density_rgb(values, vmax, theme=theme), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_xlabel(label, fontsize=9)
                if r == 0:
                    ax.set_title(column_title(column), fontsize=10)
            bar = fig.colorbar(
                ScalarMappable(Normalize(0, vmax * result.nodes), cmap),
                ax=list(axes[r]),
                fraction=0.02,
                pad=0.01,
                aspect=15,
            )
            bar.ax.tick_params(labelsize=7)
            bar.set_label("nodes per cell", fontsize=8)
        seeds = (
            f"{len(result.seeds)} seeds, mean ± sd"
            if len(result.seeds) > 1
            else f"seed {result.seeds[0]}"
        )
        fig.suptitle(
            f"K = {result.nodes:,} nodes, {result.steps:,} steps, {seeds}; "
            "KL(P || Q) in nats under each panel",
            fontsize=10,
        )
        for path, fmt in ((png, "png"), (pdf, "pdf")):
            write_with(path, lambda tmp, f=fmt: fig.savefig(tmp, format=f, dpi=150))
        plt.close(fig)


def table_rows(result: FigureResult) -> list[dict[str, Any]]:
    rows = []
    for density in result.targets:
        for column in [*result.methods, "real", *FLOORS]:
            cell = result.cells.get((density.name, column))
            if cell is None:  # floors of a figure computed before they existed
                continue
            kls = np.array(cell.kls)
            rows.append(
                {
                    "target": density.name,
                    "column": column,
                    "kl_mean": float(kls.mean()),
                    "kl_sd": float(kls.std(ddof=1)) if kls.size > 1 else 0.0,
                    "stray_mean": float(np.mean(cell.stray)),
                    "seeds": len(kls),
                    "paper_kl": PAPER_KL.get(density.name, {}).get(column, math.nan),
                    "wasserstein_mean": float(np.mean(cell.wasserstein))
                    if cell.wasserstein
                    else math.nan,
                }
            )
    return rows


def write_tables(result: FigureResult, csv_path: Path, md_path: Path, paper_images: bool) -> None:
    rows = table_rows(result)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(csv_path, buf.getvalue())

    columns = [*result.methods, "real"]
    columns += [f for f in FLOORS if (result.targets[0].name, f) in result.cells]
    lines = [
        f"# 2D density figure: K = {result.nodes:,}, {result.steps:,} steps, seeds {', '.join(map(str, result.seeds))}",
        "",
        f"KL(P || Q) in nats on the {result.targets[0].bins} x {result.targets[0].bins} grid (ours: three significant digits, mean ± sd over seeds with the sd to two; the paper's K = 10,000 numbers in brackets, as printed).",
        "",
        "| target | " + " | ".join(column_title(c) for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    by_key = {(r["target"], r["column"]): r for r in rows}
    for density in result.targets:
        cells = []
        for c in columns:
            r = by_key[(density.name, c)]
            ours = mean_sd(r["kl_mean"], r["kl_sd"]) if r["seeds"] > 1 else sig(r["kl_mean"])
            paper = f" ({r['paper_kl']:.2f})" if not math.isnan(r["paper_kl"]) else ""
            cells.append(ours + paper)
        lines.append(f"| {TITLES.get(density.name, density.name)} | " + " | ".join(cells) + " |")
    lines += ["", "Stray nodes (in cells outside the target's support), mean over seeds:", ""]
    stray_columns = [*result.methods, "real"]
    lines.append("| target | " + " | ".join(column_title(c) for c in stray_columns) + " |")
    lines.append("|---|" + "---|" * len(stray_columns))
    for density in result.targets:
        lines.append(
            f"| {TITLES.get(density.name, density.name)} | "
            + " | ".join(f"{by_key[(density.name, c)]['stray_mean']:.0f}" for c in stray_columns)
            + " |"
        )
    lines += ["", "W2 to the target (toylab.metrics.wasserstein; exact or sliced), mean:", ""]
    lines.append("| target | " + " | ".join(column_title(c) for c in result.methods) + " |")
    lines.append("|---|" + "---|" * len(result.methods))
    for density in result.targets:
        w = [by_key[(density.name, c)]["wasserstein_mean"] for c in result.methods]
        lines.append(
            f"| {TITLES.get(density.name, density.name)} | "
            + " | ".join(f"{v:.4g}" for v in w)
            + " |"
        )
    lines += [
        "",
        "Targets: the paper's own images (via the image target)." if paper_images else NOTE,
        "",
    ]
    if not result.complete:
        lines += ["Interrupted (Ctrl-C): only the fits finished before it are shown.", ""]
    write_text(md_path, "\n".join(lines))
