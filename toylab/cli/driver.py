"""Drive a Run to completion with a progress bar, Ctrl-C handling and the run directory.

The first Ctrl-C asks the run to stop after the current step; then the checkpoint, metrics,
KL log, nodes, frames, final picture and GIF of what was done are written and the process
exits with 130. A second Ctrl-C aborts at once (files already written stay whole: every
write is atomic).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from toylab.metrics import node_histogram
from toylab.run import Run
from toylab.store import rundir

DEFAULT_THREADS = 1  # measured: the per-step work is tiny, extra threads only add overhead


@contextmanager
def stop_on_interrupt() -> Any:
    """Yield a callable that turns true after the first SIGINT; a second one aborts."""
    flag = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True
        print("\ninterrupted: saving what was computed (Ctrl-C again to abort)", file=sys.stderr)

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
        yield lambda: False
        return
    try:
        yield lambda: flag["stop"]
    finally:
        signal.signal(signal.SIGINT, previous)


def set_threads(threads: int | None) -> int:
    """Apply the thread count to torch (None = the measured default); return it."""
    n = DEFAULT_THREADS if threads is None else threads
    torch.set_num_threads(n)
    return n


def progress_bar(run: Run, quiet: bool) -> tqdm:
    return tqdm(
        total=run.total_steps,
        initial=run.global_step,
        unit="step",
        file=sys.stderr,
        disable=quiet,
        dynamic_ncols=True,
        desc=run.density.name,
        mininterval=0.25,
    )


def _postfix(run: Run) -> str:
    return " ".join(f"{name} KL {s['kl']:.3g}" for name, s in run.latest.items())


def advance_with_progress(run: Run, should_stop: Callable[[], bool], quiet: bool) -> bool:
    """Run.advance with a tqdm bar showing the target and the live KL of every method."""
    with progress_bar(run, quiet) as bar:
        last = {"frame": -1}

        def on_step(r: Run) -> None:
            bar.update(1)
            if len(r.frames) != last["frame"] or r.step == 1:
                last["frame"] = len(r.frames)
                bar.set_description(r.density.name, refresh=False)
                bar.set_postfix_str(_postfix(r), refresh=False)

        return run.advance(should_stop, on_step)


def write_pictures(out: Path, run: Run, gif_options: dict[str, Any], quiet: bool) -> list[Path]:
    """final.png of the current target and comparison.gif of every recorded frame."""
    from toylab.viz import gif, render

    written = []
    density = run.density
    hists = np.stack([node_histogram(m.positions, density.bins) for m in run.methods.values()])
    kls = [s["kl"] for s in run.target_result(final=False)["methods"].values()]
    render.render_final_png(
        out / rundir.FINAL_PNG,
        hists,
        list(run.methods),
        density.array,
        run.config.nodes,
        kls,
        density.name,
    )
    written.append(out / rundir.FINAL_PNG)
    if len(run.frames):
        written += gif.render_run(
            run.frames, out / rundir.GIF_FILE, progress=not quiet, **gif_options
        )
    return written


def finish(out: Path, run: Run, gif_options: dict[str, Any], quiet: bool) -> None:
    """Write every output file of the run as it stands (complete or interrupted)."""
    rundir.write_state(out, run)
    write_pictures(out, run, gif_options, quiet)
    from toylab.viz.report import write_report

    write_report(out, run)  # after the pictures: it inlines final.png and the GIF


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
