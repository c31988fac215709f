"""`toylab gif DIR`: re-render a finished (or interrupted) run's GIF from DIR/frames.npz."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from toylab import budget
from toylab.errors import ToylabError
from toylab.store import rundir
from toylab.store.frames import FRAMES_FILE, Frames
from toylab.store.rundir import METRICS_FILE
from toylab.viz import gif, render


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gif",
        help="re-render a run's comparison GIF from its saved frames",
        description=(
            "Re-render the comparison GIF of a run from DIR/frames.npz: a title line (target, K, "
            "step and the real-samples KL from metrics.json), one panel per method (its name and "
            "KL) and the target, on one colour scale shown below them in nodes per cell. A run "
            "over a sequence of targets gives one GIF through all of them. The run's own "
            f"{rundir.GIF_FILE} is kept: the new GIF goes to DIR/comparison-N.gif unless --out or "
            "--force."
        ),
        epilog=(
            f"Defaults: scale for ~{render.GIF_PANEL_PX} px panels ({render.DEFAULT_SCALE} at 100 "
            "bins; a 96-frame, three-panel GIF is then about 2.7 MB) and "
            f"{gif.DEFAULT_FPS} fps (4.8 s per 96-frame target; GIF delays are whole 1/100 s, "
            "so prefer an fps that divides 100)."
        ),
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="run directory holding frames.npz")
    p.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help=f"GIF to write (default: a new DIR/comparison-N.gif, so the run's own {rundir.GIF_FILE} "
        "is kept); --mp4 writes FILE with suffix .mp4 too",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help=f"replace the run's own DIR/{rundir.GIF_FILE} instead of writing a new file",
    )
    p.add_argument(
        "--fps",
        type=int,
        metavar="N",
        default=gif.DEFAULT_FPS,
        help=f"frames per second, 1..{gif.MAX_FPS} (default {gif.DEFAULT_FPS})",
    )
    p.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help=f"pixels per histogram cell, at least 1 (default: about {render.GIF_PANEL_PX} px "
        f"per panel, {render.DEFAULT_SCALE} at 100 bins)",
    )
    p.add_argument(
        "--panels",
        metavar="LIST",
        help="comma list of panels in order, from the run's methods and 'target' "
        "(default: every method, then target), e.g. sp,target",
    )
    p.add_argument(
        "--mp4",
        action="store_true",
        help="also write an MP4 (needs imageio-ffmpeg: pip install 'toylab[mp4]')",
    )
    p.add_argument(
        "--theme",
        default=render.DEFAULT_THEME,
        choices=tuple(render.THEMES),
        help="dark (default, for screens) or light (white background, for papers)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def load_run(run_dir: Path) -> Frames:
    """The frames of a run directory; anything else is a one-line ToylabError."""
    if not run_dir.exists():
        raise ToylabError(f"{run_dir} does not exist")
    if not run_dir.is_dir():
        raise ToylabError(f"{run_dir} is not a directory (give a run directory)")
    path = run_dir / FRAMES_FILE
    if not path.is_file():
        raise ToylabError(f"{run_dir} is not a toylab run directory (no {FRAMES_FILE})")
    try:
        frames = Frames.load(path)
    except (zipfile.BadZipFile, EOFError, TypeError, IndexError) as err:
        raise ToylabError(f"cannot read {path}: {err or type(err).__name__}") from None
    frames.check()
    return frames


def read_real_kls(run_dir: Path) -> list[float] | None:
    """Each target's real-samples KL from DIR/metrics.json (None when it cannot be read:
    the frames are then drawn without it)."""
    import json

    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
        return [
            float(t.get("real_samples", {}).get("kl", float("nan"))) for t in metrics["targets"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def default_out(run_dir: Path, force: bool, mp4: bool) -> Path:
    """DIR/comparison.gif when it is free or under --force; else the first free
    comparison-N.gif (N = 2, 3, ...; with its .mp4 when --mp4), so a re-render never
    replaces the run's own GIF."""

    def free(path: Path) -> bool:
        return not path.exists() and not (mp4 and path.with_suffix(".mp4").exists())

    own = run_dir / rundir.GIF_FILE
    if force or free(own):
        return own
    n = 2
    while not free(run_dir / f"{own.stem}-{n}{own.suffix}"):
        n += 1
    return run_dir / f"{own.stem}-{n}{own.suffix}"


def main(args: argparse.Namespace) -> int:
    fps = gif.check_fps(args.fps)
    scale = gif.check_scale(args.scale) if args.scale is not None else None
    if args.mp4:
        gif.require_ffmpeg()
    frames = load_run(args.dir)
    panels = args.panels.split(",") if args.panels is not None else None
    panels = render.resolve_panels(frames, panels)
    budget.check_gif(
        frames.bins, scale or render.default_scale(frames.bins), len(panels)
    )  # issue 12: a frame that would not fit is refused before rendering
    out = args.out if args.out is not None else default_out(args.dir, args.force, args.mp4)
    written = gif.render_run(
        frames,
        out,
        fps=fps,
        scale=scale,
        panels=panels,
        mp4=args.mp4,
        progress=not args.quiet,
        real_kl=read_real_kls(args.dir),
        theme=args.theme,
    )
    for path in written:
        print(path)
    return 0
