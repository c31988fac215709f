"""The sweep's summary: summary.md (tables) and summary.png / summary.pdf (figure).

The figure has, on top, one panel per numeric axis (seeds excluded): the KL of each method
against that axis, the mean over seeds with a bar from the lowest to the highest seed, on log
axes where the values span a decade; the real-samples KL is drawn dashed for scale. Below, a
grid of final fits like an ablation figure: rows are the values of one axis, columns the
values of another (times the methods of a cell), each panel a cell's final node histogram.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from toylab.store.atomic import write_text, write_with
from toylab.sweep.spec import SweepSpec, option_dest

SUMMARY_MD = "summary.md"
SUMMARY_PNG = "summary.png"
SUMMARY_PDF = "summary.pdf"
MAX_LINES = 12  # curves per panel before other axes are averaged together
MAX_GRID = (6, 10)  # rows, columns of the grid of final fits


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def numeric_axes(spec: SweepSpec) -> list[str]:
    """Axes whose values are all numbers and that have two or more (seed excluded)."""
    return [
        k
        for k, vs in spec.axes.items()
        if option_dest(k) != "seed" and len(vs) > 1 and all(_is_number(v) for v in vs)
    ]


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std()), float(a.min()), float(a.max())


def markdown(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    """Two tables: KL mean ± sd over seeds per setting, then every row of results.csv."""
    done = [r for r in rows if r["status"] == "done"]
    # the seed is averaged over; a target axis is the row's own `target` column already
    plain_targets = all(r["targets"] == r["target"] for r in rows)
    axes = [
        k
        for k in spec.axes
        if option_dest(k) != "seed" and not (option_dest(k) == "targets" and plain_targets)
    ]
    lines = [f"# Sweep summary: {len(spec.cells)} cells", ""]
    if spec.fixed:
        lines += ["Fixed: " + ", ".join(f"`{k} = {v!r}`" for k, v in spec.fixed.items()), ""]
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in done:
        key = (*(r.get(option_dest(k)) for k in axes), r["target"], r["method"])
        groups[key].append(r)
    head = [*(option_dest(k) for k in axes), "target", "method", "seeds", "KL mean", "KL sd"]
    head += ["real KL", "JS", "TV", "stray", "seconds"]
    lines += ["## KL over seeds", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, rs in groups.items():
        mean, sd, _, _ = _stats([r["kl"] for r in rs])
        cells = [*(_fmt(v) for v in key), str(len(rs)), f"{mean:.4f}", f"{sd:.4f}"]
        cells += [
            f"{_stats([r['real_kl'] for r in rs])[0]:.4f}",
            f"{_stats([r['js'] for r in rs])[0]:.4f}",
            f"{_stats([r['tv'] for r in rs])[0]:.4f}",
            f"{_stats([r['stray'] for r in rs])[0]:.1f}",
            f"{_stats([r['seconds'] for r in rs])[0]:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    failed = {r["cell"]: r["error"] for r in rows if r["status"] == "failed"}
    if failed:
        lines += ["", f"## Failed cells ({len(failed)})", ""]
        lines += [f"- `{name}`: {err}" for name, err in failed.items()]
    cols = ["cell", "target", "method", "kl", "js", "tv", "hellinger", "real_kl", "stray"]
    cols += ["seconds", "steps", "status"]
    lines += ["", "## Every cell", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _curve_panels(fig: Any, spec: SweepSpec, rows: list[dict[str, Any]]) -> None:
    """KL against each numeric axis, one curve per method (and target / other setting)."""
    axes_keys = numeric_axes(spec)
    done = [r for r in rows if r["status"] == "done" and r.get("kl") is not None]
    if not axes_keys or not done:
        ax = fig.subplots(1, 1)
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            "no finished cell, or no numeric axis (besides seed) to plot KL against",
            ha="center",
        )
        return
    panels = fig.subplots(1, len(axes_keys), squeeze=False)[0]
    methods = list(dict.fromkeys(r["method"] for r in done))
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    others_all = [k for k in spec.axes if option_dest(k) != "seed"]
    for ax, key in zip(panels, axes_keys, strict=True):
        col = option_dest(key)
        others = [option_dest(k) for k in others_all if k != key]
        label_keys = ["target", *(c for c in others if c != "targets")]
        curves: dict[tuple, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
        real: dict[Any, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in done:
            label = tuple(r.get(c) for c in label_keys)
            curves[(r["method"], label)][r[col]].append(float(r["kl"]))
            if r.get("real_kl") is not None and r["method"] == methods[0]:  # once per cell
                real[r["target"]][r[col]].append(float(r["real_kl"]))
        averaged = len(curves) > MAX_LINES
        if averaged:  # too many settings: average them, keep one curve per method
            merged: dict[tuple, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
            for (m, _), pts in curves.items():
                for x, ys in pts.items():
                    merged[(m, ())][x].extend(ys)
            curves = merged
        labels_vary = [
            i for i, k in enumerate(label_keys) if len({lab[i] for _, lab in curves}) > 1
        ]
        markers = "osD^v<>p*h"
        label_ids = {lab: j for j, lab in enumerate(dict.fromkeys(lab for _, lab in curves))}
        all_y: list[float] = []
        for (m, lab), pts in curves.items():
            xs = sorted(pts)
            st = [_stats(pts[x]) for x in xs]
            mean = np.array([s[0] for s in st])
            lo = mean - np.array([s[2] for s in st])
            hi = np.array([s[3] for s in st]) - mean
            name = m + "".join(f" {label_keys[i]}={lab[i]}" for i in labels_vary)
            ax.errorbar(
                xs,
                mean,
                yerr=[lo, hi],
                color=colours[m],
                marker=markers[label_ids[lab] % len(markers)],
                capsize=3,
                label=name,
                lw=1.4,
                ms=4,
            )
            all_y += [y for x in xs for y in pts[x]]
        for j, (target, pts) in enumerate(real.items()):
            xs = sorted(pts)
            name = "real samples" + (f" {target}" if len(real) > 1 else "")
            ax.plot(
                xs,
                [np.mean(pts[x]) for x in xs],
                ls="--",
                color=f"{0.2 + 0.15 * j % 0.6}",
                lw=1,
                marker=markers[j % len(markers)],
                ms=3,
                label=name,
            )
            all_y += [y for x in xs for y in pts[x]]
        xvals = [float(v) for v in spec.axes[key]]
        if min(xvals) > 0 and max(xvals) / min(xvals) >= 10:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(xvals, [f"{v:g}" for v in xvals])
        if all_y and min(all_y) > 0:
            ax.set_yscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel("KL (nats)")
        title = f"KL vs {key}: mean over seeds, bars min to max"
        ax.set_title(title + (" (other axes averaged)" if averaged else ""), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)


def _grid_axes(spec: SweepSpec) -> tuple[str | None, str | None]:
    """The two axes (seed last in preference) whose values make the rows and columns."""
    keys = [k for k, vs in spec.axes.items() if len(vs) > 1 and option_dest(k) != "seed"]
    keys += [k for k, vs in spec.axes.items() if len(vs) > 1 and option_dest(k) == "seed"]
    row = keys[0] if keys else None
    col = keys[1] if len(keys) > 1 else None
    return row, col


def _final_hist(cell_dir: Path, method: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The node histogram / K of a finished cell's method, and its (last) target array."""
    import densities

    try:
        with np.load(cell_dir / "nodes.npz") as z:
            nodes = z[method]
        with np.load(cell_dir / "frames.npz") as z:
            target = z["target_arrays"][-1]
    except (OSError, KeyError, ValueError):
        return None
    hist = densities.histogram(nodes.astype(np.float64), target.shape[0])
    return hist / len(nodes), target


def _fit_grid(fig: Any, spec: SweepSpec, rows: list[dict[str, Any]], out: Path) -> None:
    from toylab.viz import render

    row_key, col_key = _grid_axes(spec)
    row_vals = spec.axes[row_key][: MAX_GRID[0]] if row_key else [None]
    col_vals = spec.axes[col_key] if col_key else [None]
    by_cell = {c.name: c for c in spec.cells}
    kl = {(r["cell"], r["method"]): r.get("kl") for r in rows}

    def pick(rv: Any, cv: Any):
        """The first cell (first seed, first value of other axes) at this row and column."""
        for c in spec.cells:
            if (row_key is None or c.values[row_key] == rv) and (
                col_key is None or c.values[col_key] == cv
            ):
                return c
        return None

    panels = []
    for rv in row_vals:
        line = []
        for cv in col_vals:
            cell = pick(rv, cv)
            for m in cell.config.methods if cell else []:
                line.append((rv, cv, cell, m))
        panels.append(line[: MAX_GRID[1]])
    ncols = max((len(p) for p in panels), default=0)
    if not ncols:
        return
    grid = fig.subplots(len(panels), ncols, squeeze=False)
    for i, line in enumerate(panels):
        for j in range(ncols):
            ax = grid[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(line):
                ax.axis("off")
                continue
            rv, cv, cell, m = line[j]
            got = _final_hist(out / "cells" / cell.name, m) if cell.name in by_cell else None
            if got is None:
                ax.text(0.5, 0.5, "failed" if cell else "", ha="center", va="center")
            else:
                p, q = got
                ax.imshow(render.density_rgb(p, render.colour_vmax(q, cell.config.nodes)))
            value = kl.get((cell.name, m))
            head = f"{col_key}={cv}\n" if col_key else ""
            ax.set_title(f"{head}{m}  KL {_fmt(value, 3)}", fontsize=7)
            if j == 0 and row_key:
                ax.set_ylabel(f"{row_key}={rv}", fontsize=8)


def write_figure(out: Path, spec: SweepSpec, rows: list[dict[str, Any]]) -> list[Path]:
    """summary.png and summary.pdf (matplotlib without pyplot: safe in any thread)."""
    from matplotlib.figure import Figure

    n_curves = max(1, len(numeric_axes(spec)))
    row_key, col_key = _grid_axes(spec)
    n_rows = min(len(spec.axes[row_key]), MAX_GRID[0]) if row_key else 1
    methods = max(len(c.config.methods) for c in spec.cells)
    n_cols = min((len(spec.axes[col_key]) if col_key else 1) * methods, MAX_GRID[1])
    width = max(4.5 * n_curves, 1.7 * n_cols, 6.0)
    height = 3.6 + 1.9 * n_rows
    fig = Figure(figsize=(width, height), dpi=100, facecolor="white", layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.6, 1.9 * n_rows])
    _curve_panels(top, spec, rows)
    _fit_grid(bottom, spec, rows, out)
    rows_text = f"rows {row_key}, " if row_key else ""
    cols_text = f"columns {col_key} x method" if col_key else "columns method"
    bottom.suptitle(
        f"final fits ({rows_text}{cols_text}; other axes at their first value)", fontsize=9
    )
    written = []
    for name, fmt in ((SUMMARY_PNG, "png"), (SUMMARY_PDF, "pdf")):
        written.append(write_with(out / name, lambda tmp, f=fmt: fig.savefig(tmp, format=f)))
    return written


def write_summary(out: Path, spec: SweepSpec, rows: list[dict[str, Any]]) -> list[Path]:
    """summary.md, summary.png and summary.pdf of the rows so far."""
    written = [write_text(out / SUMMARY_MD, markdown(spec, rows))]
    return written + write_figure(out, spec, rows)
