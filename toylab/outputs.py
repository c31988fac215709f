"""Everything a run directory shows: the saved state, final.png, the GIF, report.html and the
outputs record. The state and the pictures are written at once on two threads (the save is
always finished, so a failed picture never costs the fit), then the report, then the record.

Used by `toylab run` (cli/driver), the live lab's "Save run" and anything else that writes a
normal run directory; above store/ and viz/, below the commands.
"""

from __future__ import annotations

import os
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from toylab.errors import ToylabError
from toylab.run import Run
from toylab.store import rundir
from toylab.transport import HelperFailed
from toylab.viz.gif_stream import GifStream


def describe_os_error(err: OSError) -> str:
    """'cannot write PATH: reason' for an OSError from writing a file."""
    path = err.filename if err.filename is not None else "a file"
    return f"cannot write {path}: {err.strerror or err}"


def real_kls(run: Run) -> list[float]:
    """Each target's real-samples KL so far (NaN for a target not begun), for the pictures."""
    return [run.real.get(t, {}).get("kl", float("nan")) for t in range(len(run.targets))]


def write_pictures(
    out: Path,
    run: Run,
    gif_options: dict[str, Any],
    quiet: bool,
    current: dict[str, Path] | None = None,
    *,
    final_png: bool = True,
    gif_file: bool = True,
    stream: GifStream | None = None,
) -> list[Path]:
    """final.png of the current target and comparison.gif of every recorded frame (each can
    be left out); current["path"] names the file being written (for an error that does not).
    With a usable `stream` the helper process writes the GIF it drew during the fit while
    this one draws final.png; if it cannot, the GIF is drawn here."""
    from toylab.viz import gif, render

    current = current if current is not None else {}
    written = []
    real = real_kls(run)
    drawing = None
    if gif_file and len(run.frames) and stream is not None:
        drawing = stream.start_writing(run, out / rundir.GIF_FILE)
    if final_png:
        current["path"] = out / rundir.FINAL_PNG
        density = run.density
        fitted, scores = run.current_fit()
        render.render_final_png(
            out / rundir.FINAL_PNG,
            np.stack([fitted[name] for name in run.methods]),
            list(run.methods),
            density.array,
            run.config.nodes,
            [scores[name]["kl"] for name in run.methods],
            density.name,
            step=run.config.steps if run.done else run.step,
            real_kl=real[min(run.target_pos, len(real) - 1)],
            theme=gif_options.get("theme", render.DEFAULT_THEME),
        )
        written.append(out / rundir.FINAL_PNG)
    if gif_file and len(run.frames):
        current["path"] = out / rundir.GIF_FILE
        if drawing is not None:
            try:
                written.append(Path(drawing.result()))
            except HelperFailed:
                drawing = None  # drawn here instead; a real error (a full disk) shows here
        if drawing is None:
            written += gif.render_run(
                run.frames, out / rundir.GIF_FILE, progress=not quiet, real_kl=real, **gif_options
            )
    return written


def finish(
    out: Path,
    run: Run,
    gif_options: dict[str, Any],
    quiet: bool,
    saver: rundir.Saver | None = None,
    save: bool = True,
    stream: GifStream | None = None,
) -> list[Path]:
    """Write every output file of the run as it stands (complete or interrupted): the state
    (unless save=False: it is saved already) beside the pictures, then the report, then
    outputs.json. A file that cannot be written is one line; a fit already saved says how to
    finish its outputs."""
    saver = saver or rundir.Saver(out, run_id=os.urandom(8).hex())
    current = {"path": out}
    try:
        if save:
            written = _save_while_drawing(out, run, saver, gif_options, quiet, current, stream)
        else:
            saver.write_derived(run)
            written = write_pictures(out, run, gif_options, quiet, current, stream=stream)
        from toylab.viz.report import write_report

        current["path"] = out / rundir.REPORT_FILE
        written.append(
            write_report(out, run, {"gif": gif_options})
        )  # after the pictures: it inlines them
        current["path"] = out / rundir.OUTPUTS_FILE
        saver.write_outputs_record(written, complete=run.done)
    except OSError as err:
        if err.filename is None:
            err.filename = str(current["path"])
        raise ToylabError(
            f"{describe_os_error(err)}; the fit is saved: once that is fixed, "
            f"write the outputs with: toylab run --resume {shlex.quote(str(out))}"
        ) from None
    return written


def _save_while_drawing(
    out: Path,
    run: Run,
    saver: rundir.Saver,
    gif_options: dict[str, Any],
    quiet: bool,
    current: dict[str, Any],
    stream: GifStream | None = None,
) -> list[Path]:
    """The state save (frames.npz, checkpoint.pt, derived files) on a second thread while this
    one draws final.png and the GIF, whose paths it returns. The save is mostly deflate, which
    runs outside the GIL, so the two overlap (about 0.3 s of the default run). Both only read the run. The save's
    failure is reported first (the previous save stays); the thread is always waited for, so
    an interrupt never leaves a save half done."""
    run.current_fit()  # fill the shared per-step cache before two threads read it
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="toylab-save") as pool:
        saving = pool.submit(saver.save_state, run)
        try:
            written = write_pictures(out, run, gif_options, quiet, current, stream=stream)
        finally:
            error = saving.exception()  # waits for the save
            if isinstance(error, OSError):
                raise ToylabError(
                    f"{describe_os_error(error)}; this save failed, the previous one stays "
                    f"(continue from it with: toylab run --resume {shlex.quote(str(out))})"
                ) from None
            if error is not None:
                raise error
    return written


def expected_outputs(run: Run, gif_options: dict[str, Any]) -> list[str]:
    """The files a finished run directory shows besides its state."""
    names = [rundir.METRICS_FILE, rundir.KL_FILE, rundir.NODES_FILE, rundir.FINAL_PNG]
    if len(run.frames):
        names.append(rundir.GIF_FILE)
        if gif_options.get("mp4"):
            names.append(rundir.MP4_FILE)
    return [*names, rundir.REPORT_FILE]
