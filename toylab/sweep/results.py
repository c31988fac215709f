"""results.csv (and results.parquet when pyarrow is installed): one row per cell, target and
method, with every option of the cell and every metric; rewritten atomically as cells finish."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from toylab.config import RunConfig
from toylab.metrics import METRIC_NAMES
from toylab.store.atomic import write_text, write_with

RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
HEAD = ["cell", "status", "attempts", "error", "target", "method"]
METRICS = [*METRIC_NAMES, "stray", "seconds", "steps"]
REAL = [f"real_{k}" for k in METRIC_NAMES]
TAIL = [*METRICS, *REAL, "cell_seconds"]
# Target-option keywords of densities.get -> their `toylab run` option (results column).
TARGET_OPTION_COLUMNS = {
    "data": "qr_data",
    "text": "text",
    "path": "image",
    "invert": "invert",
    "turns": "spiral_turns",
    "width": "spiral_width",
}


def option_columns(config: RunConfig) -> dict[str, Any]:
    """Every option of a cell as flat columns (lists joined with commas, lr resolved)."""
    d = config.to_dict()
    out: dict[str, Any] = {}
    for key, value in d.items():
        if key in ("target_options", "threads"):
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value))
        out[key] = value
    out["lr"] = config.learning_rate
    for kw, col in TARGET_OPTION_COLUMNS.items():
        out[col] = config.target_options.get(kw)
    return out


def cell_rows(
    name: str,
    config: RunConfig,
    metrics: dict[str, Any] | None,
    status: str,
    attempts: int,
    error: str = "",
    wall: float | None = None,
) -> list[dict[str, Any]]:
    """The rows of one cell: per target and method; a failed cell gets rows without metrics."""
    options = option_columns(config)
    base = {"cell": name, "status": status, "attempts": attempts, "error": error}
    rows = []
    targets = metrics["targets"] if metrics else [{"target": t} for t in config.targets]
    for t in targets:
        real = t.get("real_samples") or {}
        for method in config.methods:
            m = (t.get("methods") or {}).get(method, {})
            row = base | {"target": t["target"], "method": method} | options
            row |= {k: m.get(k) for k in METRICS}
            row |= {f"real_{k}": real.get(k) for k in METRIC_NAMES}
            row["cell_seconds"] = wall
            rows.append(row)
    return rows


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """HEAD, the option columns in config order, then the metrics."""
    cols = list(HEAD)
    for r in rows:
        for k in r:
            if k not in cols and k not in TAIL:
                cols.append(k)
    return cols + TAIL


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    cols = columns(rows)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for r in rows:
        writer.writerow([_text(r.get(c)) for c in cols])
    return buf.getvalue()


def have_parquet() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def write_results(out: Path, rows: list[dict[str, Any]], parquet: bool = True) -> list[Path]:
    """Rewrite results.csv (and results.parquet if `parquet` and pyarrow is installed)
    atomically; return the files written."""
    written = [write_text(out / RESULTS_CSV, csv_text(rows))]
    if parquet and have_parquet():
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = columns(rows)
        table = pa.table({c: _column(rows, c) for c in cols})
        written.append(write_with(out / RESULTS_PARQUET, lambda tmp: pq.write_table(table, tmp)))
    return written


def _column(rows: list[dict[str, Any]], col: str) -> list[Any]:
    """One column with a single type (pyarrow needs it): mixed int/float become float,
    anything else mixed becomes text."""
    values = [r.get(col) for r in rows]
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float} and float in kinds:
        return [None if v is None else float(v) for v in values]
    if len(kinds) > 1:
        return [None if v is None else str(v) for v in values]
    return values


def read_results(path: Path) -> list[dict[str, str]]:
    """results.csv as a list of dicts (strings), for tests and the summary."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
