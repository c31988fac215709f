"""report.html: one self-contained page per run directory, readable straight from disk.

It shows the comparison GIF, final.png, the KL of every method over the steps (log scale, with
the real-samples KL of each target as a dashed line and the target switches marked), the final
metrics table (one block per target) and the run's configuration. An interrupted run (a target
with "complete": false in metrics.json, or targets not begun) says so in a banner at the top.

Images are inlined as base64 data URIs (PNG for the curves and final.png), so the page needs
no other file; the GIF is inlined too up to INLINE_GIF_MAX bytes and otherwise referenced as
comparison.gif beside the report (a relative URL, which file:// pages load).

`write_report(out, run)` builds it from a Run in memory (runner.finish calls it after the
pictures, also on Ctrl-C); `write_report_from_dir(out)` rebuilds it from metrics.json, kl.csv
and config.json alone. Both write atomically.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from matplotlib.ticker import LogFormatter

from toylab.errors import ToylabError
from toylab.metrics import METRIC_NAMES
from toylab.store.atomic import write_text
from toylab.store.rundir import CONFIG_FILE, FINAL_PNG, GIF_FILE, KL_FILE, METRICS_FILE, REPORT_FILE

INLINE_GIF_MAX = 4 * 1024 * 1024
"""A GIF up to this size is inlined; a larger one is referenced beside the report."""

TABLE_COLUMNS = (
    ("kl", "KL"),
    ("js", "JS"),
    ("tv", "TV"),
    ("hellinger", "Hellinger"),
    ("real_kl", "real-samples KL"),
    ("stray", "stray nodes"),
    ("steps", "steps"),
    ("seconds", "seconds"),
)


# --------------------------------------------------------------------------- entry points


def write_report(out: Path, run: Any) -> Path:
    """Write out/report.html for a Run as it stands (complete or interrupted)."""
    config = _read_json(out / CONFIG_FILE) or {}
    config = {**config, "args": run.config.to_dict()}
    return _write(out, run.metrics(), list(run.kl_rows), config)


def write_report_from_dir(out: str | Path) -> Path:
    """Rebuild out/report.html from the run directory's metrics.json, kl.csv and config.json."""
    out = Path(out)
    config = _read_json(out / CONFIG_FILE)
    if config is None:
        raise ToylabError(f"{out} is not a toylab run directory (no readable {CONFIG_FILE})")
    metrics = _read_json(out / METRICS_FILE) or {"targets": []}
    return _write(out, metrics, read_kl_csv(out / KL_FILE), config)


def _write(
    out: Path, metrics: dict[str, Any], rows: list[dict[str, Any]], config: dict[str, Any]
) -> Path:
    return write_text(out / REPORT_FILE, render_report(out, metrics, rows, config))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_kl_csv(path: Path) -> list[dict[str, Any]]:
    """kl.csv as rows like Run.kl_rows (empty when the file is missing)."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                {"step": int(r["step"]), "target": r["target"], "method": r["method"]}
                | {k: float(r[k]) for k in METRIC_NAMES if k in r}
            )
    return rows


# --------------------------------------------------------------------------- status


def run_status(metrics: dict[str, Any], args: dict[str, Any]) -> tuple[bool, str]:
    """(complete, one sentence) for the banner."""
    targets = metrics.get("targets", [])
    names = list(args.get("targets") or [])
    steps = args.get("steps")
    if targets and all(t.get("complete", True) for t in targets) and len(targets) >= len(names):
        return (
            True,
            f"Complete: {len(targets)} target{'s' if len(targets) != 1 else ''}, {steps} steps each.",
        )
    if not targets:
        return False, "Interrupted before the first step: nothing was fitted yet."
    last = targets[-1]
    done = max((m.get("steps", 0) for m in last.get("methods", {}).values()), default=0)
    if last.get("complete", True):
        where = f"after target {len(targets)}/{len(names)} ({last['target']})"
    else:
        where = (
            f"at step {done} of {steps} on target {len(targets)}/{len(names)} ({last['target']})"
        )
    return False, f"Interrupted {where}. These are the numbers of what was done."


# --------------------------------------------------------------------------- pictures


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class _PlainLogFormatter(LogFormatter):
    """Log-axis labels as plain numbers (0.6, 2, 30), never 6e-01."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return f"{x:g}"


def kl_curves_png(
    rows: list[dict[str, Any]], metrics: dict[str, Any], args: dict[str, Any]
) -> bytes | None:
    """PNG of KL over steps per method (log y), the real-samples KL per target, target switches."""
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = list(dict.fromkeys(r["method"] for r in rows))
    order = [m for m in args.get("methods", []) if m in methods] + [
        m for m in methods if m not in args.get("methods", [])
    ]
    steps = int(args.get("steps") or max(r["step"] for r in rows) or 1)
    last = max(r["step"] for r in rows)
    fig = Figure(figsize=(9.5, 4.2), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.13, 0.7, 0.75))
    colours = {m: f"C{i}" for i, m in enumerate(order)}
    for m in order:
        pts = [(r["step"], r["kl"]) for r in rows if r["method"] == m and math.isfinite(r["kl"])]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(
                xs,
                [max(y, 1e-6) for y in ys],
                color=colours[m],
                lw=1.8,
                label=m,
                marker="o" if len(pts) < 30 else None,
                ms=3,
            )
    targets = metrics.get("targets", [])
    for t, target in enumerate(targets):
        real = target.get("real_samples", {}).get("kl")
        x0, x1 = t * steps, min((t + 1) * steps, max(last, t * steps + 1))
        if real is not None and math.isfinite(real):
            ax.hlines(
                max(real, 1e-6),
                x0,
                x1,
                colors="black",
                linestyles="--",
                lw=1.3,
                label="real samples" if t == 0 else None,
            )
    names = list(args.get("targets") or [t.get("target", "") for t in targets])
    n_targets = max(len(names), len(targets))
    planned = n_targets * steps
    for t in range(n_targets):
        if t:
            ax.axvline(t * steps, color="grey", lw=1, ls=":")
        if n_targets > 1 and t < len(names):
            ax.annotate(
                str(names[t]),
                xy=(t * steps, 1),
                xycoords=("data", "axes fraction"),
                xytext=(4, -14),
                textcoords="offset points",
                fontsize=9,
                color="#444444",
            )
    if last < planned:  # an interrupted run: show what was not done
        ax.axvspan(last, planned, color="#999999", alpha=0.12, lw=0)
        ax.annotate(
            "not run (interrupted)",
            xy=((last + planned) / 2, 0.5),
            xycoords=("data", "axes fraction"),
            ha="center",
            fontsize=10,
            color="#666666",
        )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlabel("step (since the run began)")
    ax.set_ylabel("KL(nodes ‖ target), nats")
    ax.set_xlim(0, max(planned, last, 1))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title("KL divergence over training (lower is better)", loc="left", fontsize=12)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _image_tag(src: str, alt: str, cls: str = "") -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}" class="{cls}">'


def _gif_tag(out: Path) -> str:
    gif = out / GIF_FILE
    if not gif.is_file():
        return '<p class="note">No comparison GIF (the run recorded no frames).</p>'
    size = gif.stat().st_size
    if size <= INLINE_GIF_MAX:
        return _image_tag(_data_uri(gif.read_bytes(), "image/gif"), "comparison GIF", "gif")
    note = (
        f'<p class="note">The GIF ({size / 2**20:.1f} MB) is shown from <code>{GIF_FILE}</code> '
        "beside this report.</p>"
    )
    return _image_tag(GIF_FILE, "comparison GIF", "gif") + note


# --------------------------------------------------------------------------- tables


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if key in ("stray", "steps"):
        return f"{int(value):,}"
    if key == "seconds":
        return f"{float(value):.2f}"
    return f"{float(value):.4f}"


def _cell(key: str, value: Any, method: str, target_pos: int, best: bool = False) -> str:
    raw = (
        ""
        if value is None
        else repr(float(value))
        if key not in ("stray", "steps")
        else str(int(value))
    )
    cls = ' class="best"' if best else ""
    return (
        f'<td data-target="{target_pos}" data-method="{html.escape(method)}" data-metric="{key}" '
        f'data-value="{raw}"{cls}>{_fmt(key, value)}</td>'
    )


def metrics_tables(metrics: dict[str, Any], args: dict[str, Any]) -> str:
    """One block per target: a row per method and one for the real samples."""
    targets = metrics.get("targets", [])
    if not targets:
        return '<p class="note">No target was begun, so there are no metrics yet.</p>'
    n = max(len(args.get("targets") or []), len(targets))
    columns = TABLE_COLUMNS
    if any("kl_model" in v for t in targets for v in t.get("methods", {}).values()):
        # a model sampled beyond its K shown points (--method tree): its KL on 10^6 samples
        columns = (TABLE_COLUMNS[0], ("kl_model", "model KL (10^6 samples)"), *TABLE_COLUMNS[1:])
    blocks = []
    for t, target in enumerate(targets):
        real = target.get("real_samples", {}) or {}
        methods = target.get("methods", {})
        kls = {m: v.get("kl") for m, v in methods.items() if v.get("kl") is not None}
        best = min(kls, key=lambda m: kls[m]) if kls else None
        state = (
            '<span class="badge ok">complete</span>'
            if target.get("complete", True)
            else '<span class="badge warn">interrupted</span>'
        )
        head = "".join(f"<th>{html.escape(label)}</th>" for _, label in columns)
        rows = []
        for m, v in methods.items():
            values = {**v, "real_kl": real.get("kl")}
            cells = "".join(
                _cell(k, values.get(k), m, t, best=(k == "kl" and m == best)) for k, _ in columns
            )
            rows.append(
                f'<tr data-method="{html.escape(m)}"><th class="method">{html.escape(m)}</th>{cells}</tr>'
            )
        if real:
            cells = "".join(
                _cell(k, real.get(k) if k in (*METRIC_NAMES, "stray") else None, "real_samples", t)
                if k != "real_kl"
                else _cell(k, real.get("kl"), "real_samples", t)
                for k, _ in columns
            )
            rows.append(
                f'<tr class="real" data-method="real_samples"><th class="method">real samples</th>{cells}</tr>'
            )
        blocks.append(
            f'<section class="target" data-target="{t}"><h3>Target {t + 1}/{n}: '
            f"{html.escape(str(target.get('target', '?')))} {state}</h3>"
            f'<table class="metrics"><thead><tr><th>method</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>"
        )
    return "\n".join(blocks)


def config_table(config: dict[str, Any]) -> str:
    """config.json's args as a key/value table, then seed, threads, versions and the command."""
    rows = []
    for key, value in (config.get("args") or {}).items():
        rows.append((key, value))
    for key in ("threads", "gif", "versions", "command"):
        if key in config and key not in (config.get("args") or {}):
            rows.append((key, config[key]))
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td><code>{html.escape(_config_text(k, v))}</code></td></tr>"
        for k, v in rows
    )
    return f'<table class="config"><tbody>{body}</tbody></table>'


def _config_text(key: str, value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, str):
        return value
    if key == "command" and isinstance(value, list):
        return " ".join(str(v) for v in value)
    if key == "versions" and isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;
background:#f6f6f8;color:#1d1d22;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:1.7em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 10px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:1.05em;margin:18px 0 6px}
.sub{color:#555;margin:0 0 14px}
.banner{padding:10px 14px;border-radius:6px;margin:12px 0 4px;font-weight:600}
.banner.ok{background:#e6f4ea;color:#1e5631;border:1px solid #b7dfc1}
.banner.warn{background:#fff4e0;color:#7a4b00;border:1px solid #f0c987}
img{max-width:100%;height:auto;display:block;margin:8px 0}
img.gif,img.final{image-rendering:pixelated;border:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0 10px;font-size:0.95em}
th,td{padding:5px 10px;border-bottom:1px solid #e5e5e5;text-align:right}
thead th{background:#f0f0f4;font-weight:600}
th.method,table.config th{text-align:left}
table.config td{text-align:left}
td{font-variant-numeric:tabular-nums;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
td.best{font-weight:700;color:#0b6b2c}
tr.real th,tr.real td{color:#555;font-style:italic;background:#fafafa}
.badge{font-size:0.75em;padding:2px 8px;border-radius:10px;margin-left:8px;vertical-align:middle}
.badge.ok{background:#e6f4ea;color:#1e5631}.badge.warn{background:#fff4e0;color:#7a4b00}
.note{color:#666;font-size:0.92em}
code{font-size:0.92em}
table.config code{font-size:1em}
"""


def render_report(
    out: Path, metrics: dict[str, Any], rows: list[dict[str, Any]], config: dict[str, Any]
) -> str:
    """The whole page as a string (pictures read from `out`, curves drawn from `rows`)."""
    args = config.get("args") or {}
    complete, status = run_status(metrics, args)
    names = args.get("targets") or [t.get("target", "?") for t in metrics.get("targets", [])]
    title = f"toylab run: {' → '.join(str(n) for n in names)}"
    sub = (
        f"K = {args.get('nodes', '?'):,} nodes · methods {', '.join(args.get('methods', []))} · "
        f"{args.get('steps', '?')} steps per target · batch {args.get('batch', '?')} · seed {args.get('seed', '?')}"
        if isinstance(args.get("nodes"), int)
        else ""
    )
    banner_cls = "ok" if complete else "warn"
    banner = html.escape(status)
    if not complete:
        banner += f" Continue it with <code>toylab run --resume {html.escape(str(out))}</code>."
    curves = kl_curves_png(rows, metrics, args)
    curves_html = (
        _image_tag(_data_uri(curves, "image/png"), "KL over steps", "curves")
        if curves
        else '<p class="note">No KL was logged (the run recorded no frames and had no --eval-every).</p>'
    )
    final = out / FINAL_PNG
    final_html = (
        _image_tag(_data_uri(final.read_bytes(), "image/png"), "final fit", "final")
        if final.is_file()
        else '<p class="note">No final.png.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(sub)}</p>
<div class="banner {banner_cls}" id="status" data-complete="{str(complete).lower()}">{banner}</div>

<h2>Training, side by side</h2>
<p class="note">Left to right: each method's node histogram, then the target, on one viridis scale
(at least 1.5/K per cell, so single nodes show). Every method starts from the same nodes and sees the
same data points.</p>
{_gif_tag(out)}

<h2>KL over the steps</h2>
<p class="note">KL(P‖Q) in nats between the node histogram P (nodes binned on the target's grid) and
the target Q; lower is better. The dashed line scores K real samples drawn from the target the same
way: a fit below it matches the target as well as real data of that size.</p>
{curves_html}

<h2>Final metrics</h2>
<p class="note">KL in nats, JS in bits, TV = total variation, Hellinger distance; stray nodes lie in
cells outside the target's support. Lowest KL of each target in bold.</p>
{metrics_tables(metrics, args)}

<h2>Final fit</h2>
{final_html}

<h2>Configuration</h2>
{config_table(config)}
</main>
</body>
</html>
"""
