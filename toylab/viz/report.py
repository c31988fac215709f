"""report.html: one self-contained page per run directory, readable straight from disk.

It shows the comparison GIF, final.png, the KL of every method over the steps (log scale, with
the real-samples KL of each target dashed, its data-budget floor dash-dotted, the target switches
marked), the final
metrics table (one block per target) and the run's configuration. An interrupted run (a target
with "complete": false in metrics.json, or targets not begun) says so in a banner at the top.

Images are inlined as base64 data URIs (SVG for the curves, PNG for final.png), so the page needs
no other file; the GIF is inlined too up to INLINE_GIF_MAX bytes and otherwise referenced as
comparison.gif beside the report (a relative URL, which file:// pages load).

`write_report(out, run, extra)` builds it from a Run in memory (toylab.outputs.finish calls it after the
pictures, also on Ctrl-C); `write_report_from_dir(out)` rebuilds it from metrics.json, kl.csv
and config.json alone. Both write atomically.
"""

from __future__ import annotations

import base64
import html
import json
import math
import shlex
from pathlib import Path
from typing import Any

from toylab.errors import ToylabError
from toylab.metrics import METRIC_NAMES
from toylab.store import rundir
from toylab.store.atomic import write_text
from toylab.store.rundir import (
    CONFIG_FILE,
    FINAL_PNG,
    GIF_FILE,
    KL_FILE,
    METRICS_FILE,
    REPORT_FILE,
    read_kl_csv,
)

INLINE_GIF_MAX = 4 * 1024 * 1024
"""A GIF up to this size is inlined; a larger one is referenced beside the report."""

TABLE_COLUMNS = (
    ("kl", "KL"),
    ("js", "JS"),
    ("tv", "TV"),
    ("hellinger", "Hellinger"),
    ("real_kl", "real-samples KL"),
    ("wasserstein", "W2"),
    ("stray", "stray nodes"),
    ("steps", "steps"),
    ("seconds", "seconds"),
)


# --------------------------------------------------------------------------- entry points


def write_report(out: Path, run: Any, extra: dict[str, Any] | None = None) -> Path:
    """Write out/report.html for a Run as it stands (complete or interrupted); `extra` holds
    what config.json adds to the run's arguments (e.g. the GIF options)."""
    return _write(out, run.metrics(), list(run.kl_rows), rundir.config_payload(run.config, extra))


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


# matplotlib's default colour cycle (C0, C1, ...), so the curves match the other pictures.
_CYCLE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_W, _H = 950, 420  # the SVG's size in CSS pixels
_L, _R, _T, _B = 76, 740, 50, 365  # plot area: left, right, top, bottom


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values on a log axis from lo to hi: decades, with 2 and 5 when few decades show."""
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if d1 - d0 <= 3 else (1,)
    ticks = [m * 10.0**d for d in range(d0, d1 + 1) for m in mults]
    return [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]


_REAL_STYLE = ' stroke="black" stroke-dasharray="5,3"'
_FLOOR_COLOUR = "#2a7f2a"
_FLOOR_STYLE = f' stroke="{_FLOOR_COLOUR}" stroke-dasharray="8,3,2,3"'


def kl_curves_svg(
    rows: list[dict[str, Any]], metrics: dict[str, Any], args: dict[str, Any]
) -> bytes | None:
    """SVG of KL over steps per method (log y), the real-samples KL per target, target switches.

    Written directly as SVG text (a few ms): drawing it with matplotlib cost ~1 s of a default
    run, most of it importing matplotlib.
    """
    if not rows:
        return None
    methods = list(dict.fromkeys(r["method"] for r in rows))
    order = [m for m in args.get("methods", []) if m in methods] + [
        m for m in methods if m not in args.get("methods", [])
    ]
    steps = int(args.get("steps") or max(r["step"] for r in rows) or 1)
    last = max(r["step"] for r in rows)
    targets = metrics.get("targets", [])
    names = list(args.get("targets") or [t.get("target", "") for t in targets])
    n_targets = max(len(names), len(targets))
    planned = n_targets * steps
    x_max = max(planned, last, 1)
    curves = {m: [(r["step"], max(r["kl"], 1e-6)) for r in rows if r["method"] == m] for m in order}
    curves = {m: [p for p in pts if math.isfinite(p[1])] for m, pts in curves.items()}
    reals = [t.get("real_samples", {}).get("kl") for t in targets]
    reals = [max(v, 1e-6) if v is not None and math.isfinite(v) else None for v in reals]
    floors = [(t.get("floors") or {}).get("data_floor") for t in targets]  # toylab.floors
    floors = [max(v, 1e-6) if v is not None and math.isfinite(v) else None for v in floors]
    values = [y for pts in curves.values() for _, y in pts] + [v for v in reals + floors if v]
    lo, hi = (min(values), max(values)) if values else (0.1, 1.0)
    lo, hi = lo / 1.3, hi * 1.3
    if hi / lo < 10:  # at least a decade, centred
        mid = math.sqrt(lo * hi)
        lo, hi = mid / math.sqrt(10), mid * math.sqrt(10)
    span = math.log10(hi / lo)

    def px(x: float) -> float:
        return _L + (_R - _L) * x / x_max

    def py(y: float) -> float:
        return _B - (_B - _T) * math.log10(y / lo) / span

    esc = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_L}" y="{_T - 14}" font-size="15">'
        "KL divergence over training (lower is better)</text>",
    ]
    if last < planned:  # an interrupted run: show what was not done
        out.append(
            f'<rect x="{px(last):.1f}" y="{_T}" width="{px(planned) - px(last):.1f}" '
            f'height="{_B - _T}" fill="#999999" fill-opacity="0.12"/>'
            f'<text x="{(px(last) + px(planned)) / 2:.1f}" y="{(_T + _B) / 2:.1f}" '
            'text-anchor="middle" font-size="13" fill="#666666">not run (interrupted)</text>'
        )
    for t in _log_ticks(lo, hi):  # grid and y labels
        y = py(t)
        out.append(
            f'<line x1="{_L}" x2="{_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#b0b0b0" '
            f'stroke-opacity="0.5"/><text x="{_L - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{t:g}</text>"
        )
    x_step = 10 ** math.floor(math.log10(x_max / 2))
    x_step *= 2 if x_max / x_step > 12 else 1
    for k in range(0, int(x_max // x_step) + 1):
        x = px(k * x_step)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_B}" y2="{_B + 5}" stroke="black"/>'
            f'<text x="{x:.1f}" y="{_B + 19}" text-anchor="middle">{k * x_step:g}</text>'
        )
    for t in range(n_targets):
        if t:
            out.append(
                f'<line x1="{px(t * steps):.1f}" x2="{px(t * steps):.1f}" y1="{_T}" y2="{_B}" '
                'stroke="grey" stroke-dasharray="1,3"/>'
            )
        if n_targets > 1 and t < len(names):
            out.append(
                f'<text x="{px(t * steps) + 4:.1f}" y="{_T + 14}" font-size="11" '
                f'fill="#444444">{esc(str(names[t]))}</text>'
            )
        x0, x1 = px(t * steps), px(min((t + 1) * steps, max(last, t * steps + 1)))
        for level, style in (
            (reals[t] if t < len(reals) else None, _REAL_STYLE),
            (floors[t] if t < len(floors) else None, _FLOOR_STYLE),
        ):
            if level is not None:
                out.append(
                    f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{py(level):.1f}" '
                    f'y2="{py(level):.1f}" stroke-width="1.3"{style}/>'
                )
    legend = []
    for i, m in enumerate(order):
        colour = _CYCLE[i % len(_CYCLE)]
        pts = curves[m]
        if pts:
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
            )
            if len(pts) < 30:
                out += [
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>'
                    for x, y in pts
                ]
        legend.append((m, colour, ""))
    if any(r is not None for r in reals):
        legend.append(("real samples", "black", ' stroke-dasharray="5,3"'))
    if any(f is not None for f in floors):
        legend.append(("data-budget floor", _FLOOR_COLOUR, ' stroke-dasharray="8,3,2,3"'))
    for i, (label, colour, dash) in enumerate(legend):
        y = _T + 10 + 22 * i
        out.append(
            f'<line x1="{_R + 20}" x2="{_R + 48}" y1="{y}" y2="{y}" stroke="{colour}" '
            f'stroke-width="1.8"{dash}/><text x="{_R + 56}" y="{y + 4}">{esc(label)}</text>'
        )
    out += [
        f'<rect x="{_L}" y="{_T}" width="{_R - _L}" height="{_B - _T}" fill="none" '
        'stroke="black"/>',
        f'<text x="{(_L + _R) / 2}" y="{_B + 40}" text-anchor="middle">'
        "step (since the run began)</text>",
        f'<text transform="translate({_L - 52},{(_T + _B) / 2}) rotate(-90)" '
        'text-anchor="middle">KL(nodes ‖ target), nats</text>',
        "</svg>",
    ]
    return "\n".join(out).encode("utf-8")


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
            f"<tbody>{''.join(rows)}</tbody></table>{_floors_note(target)}</section>"
        )
    return "\n".join(blocks)


def _floors_note(target: dict[str, Any]) -> str:
    """The target's KL floors (toylab.floors) and which W2 estimate the table shows."""
    f = target.get("floors") or {}
    parts = [
        f"{label} {f[key]:.4f}"
        for key, label in (
            ("data_floor", "data-budget floor"),
            ("allocation_floor", "allocation floor"),
        )
        if key in f
    ]
    if target.get("wasserstein_estimate"):
        parts.append(f"W2 {target['wasserstein_estimate']}")
    return f'<p class="note floors">{html.escape("; ".join(parts))}</p>' if parts else ""


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
        banner += f" Continue it with <code>toylab run --resume {html.escape(shlex.quote(str(out)))}</code>."
    curves = kl_curves_svg(rows, metrics, args)
    curves_html = (
        _image_tag(_data_uri(curves, "image/svg+xml"), "KL over steps", "curves")
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
