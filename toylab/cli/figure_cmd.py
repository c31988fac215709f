"""`toylab figure`: regenerate the paper's 2D density figure and its table of KLs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toylab import params
from toylab.cli.common import add_target_options, target_options
from toylab.cli.driver import set_threads, stop_on_interrupt
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.store import rundir
from toylab.viz import figure, render


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "figure",
        help="regenerate the paper's 2D density figure (PNG, PDF, Markdown and CSV table)",
        description=(
            "Fit spiral, blur_circles, qr and words, each from fresh uniform nodes, with every "
            "method, and draw the paper's grid: one row per target, columns target / methods / "
            "real samples, with the KL under each panel (mean ± sd over --seeds). Writes "
            "figure.png, figure.pdf, figure.md and figure.csv (the paper's numbers beside ours; "
            "the tables also give each target's data-budget and allocation KL floors and every "
            "method's W2, see README 'Beyond the paper')."
        ),
        epilog="example: toylab figure --seeds 0,1,2 --out figure",
    )
    params.add_options(p, ["nodes", "steps", "batch", "methods"])
    p.add_argument("--seeds", default="0", metavar="LIST", help="comma list of seeds (default 0)")
    params.add_options(p, ["max_splits", "threads"])
    p.add_argument(
        "--paper-images",
        type=Path,
        metavar="DIR",
        help="use the paper's own target images from DIR (sprial.png, QR_code.png, words.png, as "
        "shipped in the reference distribution_playground package's density_map_imgs/: "
        "pip download distribution_playground --no-deps, then unzip the wheel; see the README)",
    )
    add_target_options(p)
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output directory (default runs/figure-<YYYYmmdd-HHMMSS>)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing figure directory")
    p.add_argument(
        "--theme",
        default=render.DEFAULT_THEME,
        choices=tuple(render.THEMES),
        help="dark (default: viridis on a dark page, as the GIFs) or light (white page, "
        "white where there is no mass: for papers)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise ToylabError(f"--seeds must be a comma list of integers >= 0, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ToylabError(f"--seeds must be a comma list of integers >= 0, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ToylabError(f"--seeds lists a seed twice: {text!r}")
    return seeds


def main(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    chosen = params.given(
        args, ["nodes", "steps", "batch", "methods", "max_splits", "threads", "bins"]
    )
    config = RunConfig(targets=list(figure.FIGURE_TARGETS), frames=0, **chosen).validate()
    targets = figure.build_figure_targets(config.bins, target_options(args), args.paper_images)
    out = args.out if args.out is not None else rundir.default_out("figure")
    rundir.check_new_out(out, args.force, figure.is_figure_dir, "toylab figure output")
    set_threads(config.threads)
    with stop_on_interrupt() as should_stop:
        result = figure.compute(config, seeds, targets, quiet=args.quiet, should_stop=should_stop)
        if not result.targets:
            print(
                "toylab figure: interrupted before the first fit finished; nothing written",
                file=sys.stderr,
            )
            return 130
        rundir.claim_out(out, args.force, figure.is_figure_dir)
        figure.draw(result, out / "figure.png", out / "figure.pdf", args.theme)
        figure.write_tables(
            result, out / "figure.csv", out / "figure.md", args.paper_images is not None
        )
    print((out / "figure.md").read_text(encoding="utf-8"))
    print(f"figure: {out / 'figure.png'}", file=sys.stderr)
    return 0 if result.complete else 130
