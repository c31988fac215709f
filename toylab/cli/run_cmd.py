"""`toylab run`: fit every method to a target (or a sequence of targets) and write a run dir."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toylab import params
from toylab.cli import driver as runner
from toylab.cli.common import add_target_options, target_options
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.run import Run, build_targets
from toylab.store import rundir
from toylab.viz import gif

# Options that may be given together with --resume (they do not change the numbers).
RESUME_OPTIONS = {"quiet", "threads", "resume", "fps", "scale", "mp4", "theme", "command", "func"}


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


def main(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return resume(args)
    config = config_from_args(args)
    options = gif_options(args)
    config.threads = runner.set_threads(config.threads)
    targets = build_targets(config)  # reads image files etc. before anything is written
    out = args.out if args.out is not None else rundir.default_out(config)
    rundir.check_new_out(out, args.force)
    run = Run(config, targets)
    rundir.claim_out(out, args.force)
    rundir.write_config(out, config, {"gif": options})
    return execute(run, out, options, bool(args.quiet))


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
    saved = rundir.read_config(out)
    state = rundir.read_checkpoint(out)
    config = RunConfig.from_dict(saved.get("args", {}))
    if args.threads is not None:
        config.threads = args.threads
    config.validate()
    config.threads = runner.set_threads(config.threads)
    options = gif_options(args, saved.get("gif"))
    run = Run(config)
    from toylab.store.frames import Frames

    frames = Frames.load(out) if (out / "frames.npz").is_file() else None
    run.load_state_dict(state, frames)
    if run.done:
        print(f"{out}: the run is already complete", file=sys.stderr)
        print(runner.results_table(run.metrics()))
        return 0
    return execute(run, out, options, bool(args.quiet))


def execute(run: Run, out: Path, options: dict, quiet: bool) -> int:
    with runner.stop_on_interrupt() as should_stop:
        complete = runner.advance_with_progress(run, should_stop, quiet)
        # Still under the handler: a Ctrl-C now only asks to stop, which the files ignore.
        runner.finish(out, run, options, quiet)
    print(runner.results_table(run.metrics()))
    if not complete:
        print(
            f"interrupted at step {run.step} of target {run.target_pos + 1}/{len(run.targets)}; "
            f"continue with: toylab run --resume {out}",
            file=sys.stderr,
        )
        return 130
    print(f"run directory: {out}", file=sys.stderr)
    return 0
