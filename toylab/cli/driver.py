"""Drive a Run to completion with a progress bar, Ctrl-C handling and the run directory.

The first Ctrl-C (or SIGTERM) asks the run to stop after the current step; then the
checkpoint, metrics, KL log, nodes, frames, final picture and GIF of what was done are written
and the process exits with 130. A second one aborts at once: the state saved last (at the
latest `--checkpoint-every` seconds ago) stays whole and consistent, and `--resume` repairs
the rest. The state is saved before any picture, so a failed picture never loses a fit.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from toylab import progress
from toylab.outputs import (  # noqa: F401 (the commands use them through the driver)
    describe_os_error,
    expected_outputs,
    finish,
    real_kls,
    write_pictures,
)
from toylab.run import Run, set_threads  # noqa: F401 (used by commands)
from toylab.store import rundir

if TYPE_CHECKING:
    from tqdm import tqdm

DEFAULT_CHECKPOINT_EVERY = 60.0
"""Seconds between periodic saves of the state: kill -9 loses at most this much work. A save
at K = 10^4 takes a few ms, so even 1 s would cost well under 1% of the run."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_interrupt() -> Any:
    """Yield a callable that turns true after the first SIGINT or SIGTERM; a second aborts."""
    flag = {"stop": False}
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True
        what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        print(f"\n{what}: saving what was computed (Ctrl-C again to abort)", file=sys.stderr)

    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, handler)
    except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
        yield lambda: False
        return
    try:
        yield lambda: flag["stop"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class PeriodicSave:
    """Called after every step; saves the state when `every` seconds have passed since the
    last save (one clock read per step otherwise). A failed save is reported once and the fit
    goes on: the previous save stays consistent."""

    def __init__(self, saver: rundir.Saver, every: float | None):
        self.saver, self.every = saver, every
        self.next = time.monotonic() + every if every else float("inf")
        self.warned = False

    def __call__(self, run: Run) -> None:
        if time.monotonic() < self.next:
            return
        try:
            self.saver.save_state(run)
        except OSError as err:
            if not self.warned:
                print(f"\nwarning: {describe_os_error(err)}; the fit goes on", file=sys.stderr)
                self.warned = True
        self.next = time.monotonic() + self.every


def progress_bar(run: Run, quiet: bool, file: Any = None) -> tqdm:
    """The run's bar (target, steps; the caller adds the live KL): redrawn in place in a
    terminal, a plain line every few seconds in a log (see toylab.progress)."""
    return progress.bar(
        run.total_steps, run.density.name, quiet, initial=run.global_step, file=file
    )


def _postfix(run: Run) -> str:
    return " ".join(f"{name} KL {s['kl']:.3g}" for name, s in run.latest.items())


def advance_with_progress(
    run: Run,
    should_stop: Callable[[], bool],
    quiet: bool,
    after_step: Callable[[Run], None] | None = None,
) -> bool:
    """Run.advance with a tqdm bar showing the target and the live KL of every method;
    `after_step(run)` (e.g. a PeriodicSave) is called after every step."""
    with progress_bar(run, quiet) as bar:
        last = {"frame": -1}

        def on_step(r: Run, steps: dict) -> None:
            if after_step is not None:
                after_step(r)
            bar.update(1)
            if len(r.frames) != last["frame"] or r.step == 1:
                last["frame"] = len(r.frames)
                bar.set_description(r.density.name, refresh=False)
                bar.set_postfix_str(_postfix(r), refresh=False)

        return run.advance(should_stop, on_step)


def results_table(metrics: dict[str, Any]) -> str:
    """The end-of-run table: one row per (target, method), with the real-samples KL."""
    header = [
        "target",
        "method",
        "KL",
        "JS",
        "TV",
        "Hellinger",
        "real KL",
        "stray",
        "steps",
        "seconds",
    ]
    rows = []
    for t in metrics["targets"]:
        real = t["real_samples"].get("kl", float("nan"))
        for name, m in t["methods"].items():
            rows.append(
                [
                    t["target"],
                    name,
                    f"{m['kl']:.4f}",
                    f"{m['js']:.4f}",
                    f"{m['tv']:.4f}",
                    f"{m['hellinger']:.4f}",
                    f"{real:.4f}",
                    str(m["stray"]),
                    str(m["steps"]),
                    f"{m['seconds']:.2f}",
                ]
            )
    if any("kl_model" in m for t in metrics["targets"] for m in t["methods"].values()):
        # a model that can be sampled beyond its K shown points (tree): KL on 10^6 samples
        header.insert(3, "model KL")
        for r, m in zip(
            rows, (m for t in metrics["targets"] for m in t["methods"].values()), strict=True
        ):
            r.insert(3, f"{m['kl_model']:.4f}" if "kl_model" in m else "-")
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = [
        "  ".join(
            h.ljust(w) if i < 2 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)
