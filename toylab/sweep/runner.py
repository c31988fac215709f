"""Drive a sweep: skip finished cells, run the others on an executor, retry a failing cell
once, keep results.csv and sweep.json current as cells finish, then draw the summary.

OUT/
    spec.toml       the spec this sweep ran (a copy)
    sweep.json      per cell: status, attempts, error, seconds, host
    cells/<name>/   an ordinary run directory per cell (error.txt for a failed one)
    results.csv     one row per cell, target and method (results.parquet with pyarrow)
    summary.png / summary.pdf / summary.md
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toylab import progress
from toylab.errors import ToylabError
from toylab.store.atomic import write_json, write_text
from toylab.sweep.results import cell_rows, write_results
from toylab.sweep.spec import Cell, SweepSpec

SPEC_FILE = "spec.toml"
SWEEP_FILE = "sweep.json"
CELLS_DIR = "cells"
ERROR_FILE = "error.txt"
RETRIES = 1
PARQUET_EVERY = 5.0  # seconds


@dataclass
class Outcome:
    """What a sweep did: counts of cells, the failed ones with their errors, interrupted?"""

    total: int
    skipped: int = 0
    done: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # start, cells, summary

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


def is_sweep_dir(path: Path) -> bool:
    return (path / SPEC_FILE).is_file()


def check_out(out: Path, resume: bool) -> None:
    """Refuse an --out that is a file, or a non-empty folder that is not a sweep."""
    if out.exists() and not out.is_dir():
        raise ToylabError(f"--out {out} is a file, not a directory")
    if resume and not is_sweep_dir(out):
        raise ToylabError(f"--resume {out}: not a sweep directory (no {SPEC_FILE})")
    if out.is_dir() and any(out.iterdir()) and not is_sweep_dir(out):
        raise ToylabError(f"--out {out} is not empty and is not a sweep directory; choose another")


def finished_metrics(cell_dir: Path, n_targets: int) -> dict[str, Any] | None:
    """The cell's metrics if its metrics.json says every target is complete, else None."""
    try:
        metrics = json.loads((cell_dir / "metrics.json").read_text(encoding="utf-8"))
        targets = metrics["targets"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(targets) == n_targets and all(t.get("complete") for t in targets):
        return metrics
    return None


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip().rstrip(":")


class _Term(Exception):
    pass


def run_sweep(
    spec: SweepSpec,
    out: Path,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    quiet: bool = False,
    resume: bool = False,
) -> Outcome:
    """Run every unfinished cell of `spec` into `out`; see the module docstring."""
    out = Path(out)
    check_out(out, resume)
    cells_dir = out / CELLS_DIR
    state = _read_state(out)
    outcome = Outcome(total=len(spec.cells))
    rows: dict[str, list[dict[str, Any]]] = {}
    pending: list[Cell] = []
    for cell in spec.cells:
        metrics = finished_metrics(cells_dir / cell.name, len(cell.config.targets))
        if metrics is not None:
            info = state.get(cell.name, {})
            rows[cell.name] = cell_rows(
                cell.name,
                cell.config,
                metrics,
                "done",
                info.get("attempts", 1),
                "",
                info.get("wall"),
            )
            state[cell.name] = info | {"status": "done", "error": ""}
            outcome.skipped += 1
        else:
            pending.append(cell)
    runner = None
    if pending:  # before anything is written: a bad --address or no Ray leaves no files
        from toylab.sweep.executors import make_executor

        t0 = time.perf_counter()
        runner = make_executor(executor, workers, address)
        outcome.seconds["start"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    cells_dir.mkdir(exist_ok=True)
    write_text(out / SPEC_FILE, spec.text)

    last_parquet = [0.0]

    def save(final: bool = False) -> None:
        """results.csv and sweep.json after every cell; results.parquet (40 ms at 200 rows)
        at most every PARQUET_EVERY seconds and at the end. A cell missing from them after a
        crash is not lost: its run directory is complete, and the next run reads it back."""
        ordered = [r for c in spec.cells for r in rows.get(c.name, [])]
        parquet = final or time.monotonic() - last_parquet[0] >= PARQUET_EVERY
        outcome.files = write_results(out, ordered, parquet)
        if parquet:
            last_parquet[0] = time.monotonic()
        write_json(out / SWEEP_FILE, {"cells": state})

    save()
    if runner is not None:
        try:
            _execute(spec, pending, out, runner, quiet, rows, state, outcome, save)
        finally:
            save(final=True)
    if not quiet and outcome.skipped:
        print(f"skipped {outcome.skipped} finished cell(s)", file=sys.stderr)
    from toylab.sweep.summary import write_summary

    t0 = time.perf_counter()
    ordered = [r for c in spec.cells for r in rows.get(c.name, [])]
    outcome.files += write_summary(out, spec, ordered)
    outcome.seconds["summary"] = time.perf_counter() - t0
    return outcome


def _read_state(out: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads((out / SWEEP_FILE).read_text(encoding="utf-8"))["cells"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _execute(
    spec: SweepSpec,
    pending: list[Cell],
    out: Path,
    executor: Any,
    quiet: bool,
    rows: dict[str, list[dict[str, Any]]],
    state: dict[str, dict[str, Any]],
    outcome: Outcome,
    save: Any,
) -> None:
    from toylab.sweep.cell import unpack

    cells_dir = out / CELLS_DIR

    def on_term(signum: int, frame: Any) -> None:
        raise _Term

    previous = None
    bar = None
    try:
        # After the executor: ray.init installs its own SIGTERM handler.
        with contextlib.suppress(ValueError):  # ValueError: not the main thread
            previous = signal.signal(signal.SIGTERM, on_term)
        t0 = time.perf_counter()
        bar = progress.bar(
            outcome.total,
            f"sweep ({executor.workers} workers)",
            quiet,
            initial=outcome.skipped,
            unit="cell",
        )
        by_token: dict[Any, Cell] = {}
        attempts: dict[str, int] = {}
        queue = list(pending)
        in_flight = max(1, executor.workers) * 2  # a short queue: Ctrl-C loses little

        def submit(cell: Cell) -> None:
            attempts[cell.name] = attempts.get(cell.name, 0) + 1
            by_token[executor.submit(cell.payload(spec.output))] = cell

        while queue and len(by_token) < in_flight:
            submit(queue.pop(0))
        while by_token:
            for token, result in executor.wait(list(by_token)):
                cell = by_token.pop(token)
                n = attempts[cell.name]
                if isinstance(result, BaseException):
                    if n <= RETRIES:
                        submit(cell)
                        continue
                    error = one_line(result)
                    outcome.failed[cell.name] = error
                    (cells_dir / cell.name).mkdir(parents=True, exist_ok=True)
                    write_text(cells_dir / cell.name / ERROR_FILE, error + "\n")
                    rows[cell.name] = cell_rows(cell.name, cell.config, None, "failed", n, error)
                    state[cell.name] = {"status": "failed", "attempts": n, "error": error}
                    if not quiet:
                        bar.write(f"cell {cell.name} failed twice: {error}", file=sys.stderr)
                else:
                    t_driver = time.perf_counter()
                    unpack(result["zip"], cells_dir / cell.name)
                    wall = round(result["wall"], 4)
                    rows[cell.name] = cell_rows(
                        cell.name, cell.config, result["metrics"], "done", n, "", wall
                    )
                    state[cell.name] = {
                        "status": "done",
                        "attempts": n,
                        "error": "",
                        "wall": wall,
                        "fit": round(result["fit"], 4),
                        "host": result.get("host", ""),
                        "parts": {k: round(v, 4) for k, v in result.get("parts", {}).items()},
                        "span": result.get("span"),
                        "cpu": round(result.get("cpu", float("nan")), 4),
                    }
                    outcome.done += 1
                save()
                if not isinstance(result, BaseException):
                    state[cell.name]["parts"]["driver"] = round(time.perf_counter() - t_driver, 4)
                bar.update(1)
                if outcome.failed:
                    bar.set_postfix_str(f"{len(outcome.failed)} failed", refresh=False)
                while queue and len(by_token) < in_flight:
                    submit(queue.pop(0))
        outcome.seconds["cells"] = time.perf_counter() - t0
        executor.close()
        executor = None
    except (KeyboardInterrupt, _Term):
        outcome.interrupted = True
        print(
            "\ninterrupted: finished cells are saved; rerun the same command to resume",
            file=sys.stderr,
        )
    finally:
        if bar is not None:
            bar.close()
        if executor is not None:
            executor.close(cancel=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
