"""`toylab explain`: the small-K teaching view (GIF and stills) of gradient descent vs
Split-and-Prune; see toylab.viz.explain.record."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toylab import params
from toylab.catalog import DEFAULT_METHODS
from toylab.cli import driver as runner
from toylab.cli.common import add_target_options, target_options
from toylab.viz import explain as ex


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="teaching view: a GIF of a few dozen nodes showing dead nodes, density shift and Split-and-Prune",
        description=(
            "Fit a few dozen nodes with each method side by side (same initial nodes, same data "
            "stream as `toylab run`) and draw every step: the target in grey, the region each "
            "node wins (nearest-node labels on a 256x256 grid, so L1 regions appear as they are), "
            "each node coloured and sized by its share of matches over a recent window against "
            "1/K (blue under, red over), dead nodes as grey crosses, the step's data points "
            "linked to their nodes, and split events as orange arrows from the split node to the "
            "pruned slot's old position, with a caption saying what the step did. Writes "
            f"{ex.GIF_FILE}, stills ({ex.STILL_START}, {ex.STILL_SPLIT}, {ex.STILL_END}) and "
            f"{ex.SUMMARY_FILE} into --out."
        ),
        epilog=(
            "Dead-node window W: a node is drawn dead when it matched no point in the last W "
            f"steps, W = max({ex.MIN_WINDOW}, ceil({ex.WINDOW_MATCHES} K / batch)) by default (20 at "
            "K 32, batch 10): a node with the fair share 1/K expects 6 matches in W steps, so it "
            "looks dead by bad luck with probability e^-6 = 0.25%. Nothing is drawn dead before "
            "step W. The same window gives the colours. "
            f"example: toylab explain --target blur_circles --nodes {ex.DEFAULT_NODES}"
        ),
    )
    p.add_argument(
        "--target",
        default=ex.DEFAULT_TARGET,
        metavar="NAME",
        help=f"one target (default {ex.DEFAULT_TARGET}); see `toylab densities --list`",
    )
    params.add_options(
        p,
        ["nodes", "methods", "steps", "batch", "seed", "distance"],
        {"nodes": ex.DEFAULT_NODES, "steps": ex.DEFAULT_STEPS},
    )
    p.add_argument(
        "--window",
        type=int,
        default=None,
        metavar="W",
        help="dead-node and share window in steps (default max(10, ceil(6 K / batch)); see below)",
    )
    p.add_argument(
        "--every",
        type=int,
        default=None,
        metavar="N",
        help=f"a frame every N steps (default 1, or ceil(steps / {ex.MAX_FRAMES}) for more than {ex.MAX_FRAMES} steps)",
    )
    add_target_options(p)
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default runs/explain-<target>-<YYYYmmdd-HHMMSS>); a non-empty one needs --force",
    )
    out.add_argument(
        "--force", action="store_true", help="replace an earlier explain output in --out"
    )
    out.add_argument(
        "--fps",
        type=int,
        default=ex.DEFAULT_FPS,
        help=f"GIF frames per second (default {ex.DEFAULT_FPS}: 20 s for 100 steps; the last frame holds {ex.HOLD_LAST_MS // 1000} s more)",
    )
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    runner.set_threads(None)
    try:
        result = ex.explain(
            target=args.target,
            nodes=ex.DEFAULT_NODES if args.nodes is None else args.nodes,
            methods=(args.methods or ",".join(DEFAULT_METHODS)).split(","),
            steps=ex.DEFAULT_STEPS if args.steps is None else args.steps,
            batch=params.BY_NAME["batch"].default if args.batch is None else args.batch,
            seed=params.BY_NAME["seed"].default if args.seed is None else args.seed,
            out=args.out,
            force=args.force,
            fps=args.fps,
            window=args.window,
            every=args.every,
            distance=args.distance or params.BY_NAME["distance"].default,
            bins=args.bins,
            target_options=target_options(args),
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print("toylab explain: interrupted; no GIF written", file=sys.stderr)
        return 130
    for name in result.splits_per_frame:
        splits = sum(result.splits_per_frame[name])
        dead = result.dead_per_frame[name][-1]
        print(
            f"{name}: KL {result.kl[name][-1]:.3f}, {splits} splits drawn, {dead} dead node{'s' if dead != 1 else ''} at the end "
            f"(window {result.window} steps)"
        )
    print(f"real samples: KL {result.real_kl:.3f}")
    for path in [result.gif, *result.stills]:
        print(path)
    return 0
