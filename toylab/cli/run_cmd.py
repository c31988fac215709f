"""`toylab run`: fit every method to a target (or a sequence of targets) and write a run dir."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from toylab import budget, params, transport
from toylab.cli import driver as runner
from toylab.cli.common import add_target_options, target_options
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.run import Run, build_targets
from toylab.store import rundir
from toylab.store.frames import FRAMES_FILE, Frames
from toylab.viz import gif, render
from toylab.viz.gif_stream import GifStream

# Options that may be given together with --resume (they do not change the numbers).
RESUME_OPTIONS = {
    "quiet",
    "threads",
    "resume",
    "fps",
    "scale",
    "mp4",
    "theme",
    "command",
    "func",
    "checkpoint_every",
}
# config keys that may differ between config.json and the checkpoint (no effect on results)
FREE_KEYS = {"threads"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="fit a flat DDN to a target with every method and write a run directory",
        description=(
            "Fit K nodes to a 2D target with each method in --method, side by side from the "
            "same initial nodes on the same data stream; report the KL of each fit against "
            "K real samples, and write a run directory (config, metrics, KL log, nodes, "
            "frames, final.png, comparison.gif). Ctrl-C saves everything so far; "
            "--resume DIR continues bit-exactly."
        ),
        epilog="example: toylab run --target spiral --nodes 10000",
    )
    fit_names = [q.name for q in params.CONFIG_PARAMS if q.group == "fit"]
    params.add_options(p, fit_names)
    soft = p.add_argument_group(
        "soft selection (--method soft): node k picked with probability ~ exp(-beta d_k)"
    )
    params.add_options(soft, [q.name for q in params.CONFIG_PARAMS if q.group == "soft"])
    tree = p.add_argument_group(
        "hierarchical DDN (--method tree): L layers of K candidates, a sample is a path in a "
        "K-ary tree; best with a large --batch (e.g. 1024)"
    )
    params.add_options(tree, [q.name for q in params.CONFIG_PARAMS if q.group == "tree"])
    add_target_options(p)
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run directory (default runs/<target>-<YYYYmmdd-HHMMSS>)",
    )
    out.add_argument("--force", action="store_true", help="replace an existing run directory")
    out.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue an interrupted run bit-exactly",
    )
    out.add_argument(
        "--fps", type=int, default=None, help=f"GIF frames per second (default {gif.DEFAULT_FPS})"
    )
    out.add_argument(
        "--scale", type=int, default=None, help="GIF pixels per grid cell (default: ~300 px panels)"
    )
    out.add_argument(
        "--mp4",
        action="store_true",
        default=None,
        help="also write comparison.mp4 (needs imageio-ffmpeg)",
    )
    out.add_argument(
        "--theme",
        default=None,
        choices=("dark", "light"),
        help="colours of comparison.gif and final.png: dark (default, for screens) or light "
        "(white background, for papers)",
    )
    out.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bar")
    out.add_argument(
        "--checkpoint-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"save the state every SECONDS during the fit, so even kill -9 loses at most that "
        f"much (default {runner.DEFAULT_CHECKPOINT_EVERY:g}; 0 = only at the end and on Ctrl-C)",
    )
    p.set_defaults(func=main)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """A validated RunConfig from the parsed options (unset ones take the table's defaults)."""
    given = params.given(args, [q.name for q in params.CONFIG_PARAMS])
    return RunConfig(**given, target_options=target_options(args)).validate()


def gif_options(args: argparse.Namespace, saved: dict | None = None) -> dict:
    saved = saved or {}
    opts = {
        "fps": args.fps if args.fps is not None else saved.get("fps", gif.DEFAULT_FPS),
        "scale": args.scale if args.scale is not None else saved.get("scale"),
        "mp4": bool(args.mp4) if args.mp4 is not None else bool(saved.get("mp4", False)),
    }
    theme = args.theme if getattr(args, "theme", None) is not None else saved.get("theme")
    if theme is not None:  # recorded only when chosen: default runs keep their config.json
        opts["theme"] = theme
    gif.check_fps(opts["fps"])
    if opts["scale"] is not None:
        gif.check_scale(opts["scale"])
    if opts["mp4"]:
        gif.require_ffmpeg()
    return opts


def checkpoint_every(args: argparse.Namespace, saved: dict | None = None) -> float:
    """--checkpoint-every in seconds (0 = off), else the saved or default value."""
    value = getattr(args, "checkpoint_every", None)
    if value is None:
        value = (saved or {}).get("checkpoint_every", runner.DEFAULT_CHECKPOINT_EVERY)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise ToylabError(f"--checkpoint-every must be a number of seconds >= 0, got {value}")
    return float(value)


def check_memory(config: RunConfig, options: dict) -> None:
    """What the run and its GIF would hold, against the available memory (before any work)."""
    budget.check_run(config, options["scale"])
    budget.check_gif_frames(config, options["scale"] or render.default_scale(config.bins))


def main(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return resume(args)
    config = config_from_args(args)
    options = gif_options(args)
    every = checkpoint_every(args)
    budget.check_threads(config.threads)
    check_memory(config, options)
    config.threads = runner.set_threads(config.threads)
    targets = build_targets(config)  # reads image files etc. before anything is written
    transport.start(config.nodes)  # POT's import happens on another core during the fit
    out = args.out if args.out is not None else rundir.default_out(config)
    rundir.check_new_out(out, args.force)
    run = Run(config, targets)
    out.mkdir(parents=True, exist_ok=True)
    with rundir.RunLock(out), runner.stop_on_interrupt() as should_stop:
        rundir.check_new_out(out, args.force)  # again under the lock: nobody got in between
        rundir.claim_out(out, args.force)
        saver = rundir.Saver(out, run_id=os.urandom(8).hex())
        extra = {"gif": options, "checkpoint_every": every, "run_id": saver.run_id}
        rundir.write_config(out, config, extra)
        saver.save_state(run)  # step 0: from here on the directory can always be resumed
        return execute(run, out, options, bool(args.quiet), saver, every, should_stop)


def checked_config(state: dict, saved: dict, out: Path) -> RunConfig:
    """The checkpoint's own config (the truth), refused when config.json says otherwise."""
    mine = state.get("config")
    if not isinstance(mine, dict):
        raise ToylabError(f"{out / rundir.CHECKPOINT_FILE} holds no config; cannot resume")
    theirs = saved.get("args", {}) if isinstance(saved, dict) else None
    if not isinstance(theirs, dict):
        raise ToylabError(f'{out / rundir.CONFIG_FILE} has no "args" object; cannot resume')
    normal = json.loads(json.dumps(mine, default=str))
    for key in sorted(set(normal) | set(theirs)):
        if key in FREE_KEYS:
            continue
        if normal.get(key) != theirs.get(key):
            raise ToylabError(
                f"{out / rundir.CONFIG_FILE} says {key} = {theirs.get(key)!r} but the checkpoint "
                f"was made with {normal.get(key)!r}; restore config.json (or start a new run)"
            )
    try:
        return RunConfig.from_dict(mine)
    except TypeError as err:
        raise ToylabError(f"{out / rundir.CHECKPOINT_FILE} has a malformed config: {err}") from None


def consistent_frames(out: Path, stamp: dict | None) -> tuple[Frames | None, str]:
    """frames.npz matched to the checkpoint: frames recorded after it are dropped (a repair,
    returned as a note); frames from another run, or fewer than it counted, are refused."""
    path = out / FRAMES_FILE
    if stamp is None:  # format 1: no generations to compare
        return (Frames.load(out) if path.is_file() else None), ""
    if not path.is_file():
        if stamp["frames"]:
            raise ToylabError(f"{out} has no {FRAMES_FILE}, which the checkpoint needs")
        return None, ""
    frames = Frames.load(out)
    if frames.saved.get("run_id") != stamp["run_id"]:
        raise ToylabError(f"{path} belongs to another run than {rundir.CHECKPOINT_FILE}")
    if len(frames) < stamp["frames"]:
        raise ToylabError(
            f"{path} holds {len(frames)} frames but the checkpoint counted {stamp['frames']} "
            "(it is older than the checkpoint); the run cannot be resumed consistently"
        )
    if len(frames) > stamp["frames"]:
        dropped = len(frames) - stamp["frames"]
        frames.truncate(stamp["frames"])
        return frames, f"dropped {dropped} frame(s) recorded after the last checkpoint"
    return frames, ""


def resume(args: argparse.Namespace) -> int:
    given = sorted(
        k for k, v in vars(args).items() if v not in (None, False) and k not in RESUME_OPTIONS
    )
    if given:
        flags = ", ".join(
            params.BY_NAME[k].flag if k in params.BY_NAME else "--" + k.replace("_", "-")
            for k in given
        )
        raise ToylabError(f"--resume continues a run with its saved settings; drop {flags}")
    out = args.resume
    rundir.require_run_dir(out, "a toylab run directory to resume")
    with rundir.RunLock(out):
        saved = rundir.read_config(out)
        state = rundir.read_checkpoint(out)
        stamp = state.pop("saved", None)
        config = checked_config(state, saved, out)
        if args.threads is not None:
            budget.check_threads(args.threads)
            config.threads = args.threads
        else:
            config.threads = min(config.threads or 1, os.cpu_count() or 1)
        config.validate()
        saved_gif = saved.get("gif")
        options = gif_options(args, saved_gif if isinstance(saved_gif, dict) else None)
        every = checkpoint_every(args, saved)
        check_memory(config, options)
        config.threads = runner.set_threads(config.threads)
        transport.start(config.nodes)
        run = Run(config)
        frames, note = consistent_frames(out, stamp)
        try:
            run.load_state_dict(state, frames)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
            raise ToylabError(
                f"{out / rundir.CHECKPOINT_FILE} does not fit this run ({type(e).__name__}: "
                f"{' '.join(str(e).split())[:120]}); cannot resume"
            ) from None
        if stamp is not None:
            saver = rundir.Saver(out, stamp["run_id"], int(stamp["generation"]))
        else:
            saver = rundir.Saver(out, saved.get("run_id") or os.urandom(8).hex())
        if note:
            print(f"{out}: repaired: {note}", file=sys.stderr)
            run.frames.save(out / FRAMES_FILE, stamp=saver.stamp())
        if not run.done:
            return execute(run, out, options, bool(args.quiet), saver, every)
        stale = saver.stale_outputs(runner.expected_outputs(run, options))
        if stale:
            print(
                f"{out}: the run is complete; rebuilding {', '.join(stale)} "
                "(missing or older than the checkpoint)",
                file=sys.stderr,
            )
            with runner.stop_on_interrupt():
                runner.finish(out, run, options, bool(args.quiet), saver, save=False)
        else:
            print(f"{out}: the run is already complete", file=sys.stderr)
        print(runner.results_table(run.metrics()))
        return 0


def execute(
    run: Run,
    out: Path,
    options: dict,
    quiet: bool,
    saver: rundir.Saver | None = None,
    every: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Fit until done or stopped, saving every `every` seconds; then write every output.
    `should_stop` comes from a stop_on_interrupt the caller holds (else one is installed)."""
    saver = saver or rundir.Saver(out, os.urandom(8).hex())
    handler = runner.stop_on_interrupt() if should_stop is None else contextlib.nullcontext()
    stream = GifStream(run, options)  # the helper process draws the GIF during the fit
    with handler as installed:
        should_stop = should_stop or installed
        periodic = runner.PeriodicSave(saver, every) if every else None

        def after_step(r: Run) -> None:
            stream.feed(r)
            if periodic is not None:
                periodic(r)

        try:
            complete = runner.advance_with_progress(run, should_stop, quiet, after_step)
            # Still under the handler: a Ctrl-C now only asks to stop, which the files ignore.
            runner.finish(out, run, options, quiet, saver, stream=stream)
        except KeyboardInterrupt:  # the second Ctrl-C: the last complete save stays
            print(
                f"\naborted; the state saved last stays consistent: continue with "
                f"toylab run --resume {shlex.quote(str(out))}",
                file=sys.stderr,
            )
            return 130
    print(runner.results_table(run.metrics()))
    if not complete:
        print(
            f"stopped at step {run.step} of target {run.target_pos + 1}/{len(run.targets)}; "
            f"continue with: toylab run --resume {shlex.quote(str(out))}",
            file=sys.stderr,
        )
        return 130
    print(f"run directory: {out}", file=sys.stderr)
    return 0
