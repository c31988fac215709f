"""`toylab run`: fit every method to a target (or a sequence of targets) and write a run dir."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toylab.cli import driver as runner
from toylab.cli.common import add_target_options, target_options
from toylab.config import DEFAULT_METHODS, RunConfig
from toylab.errors import ToylabError
from toylab.fitting.methods import METHODS
from toylab.fitting.nearest import INDEXES
from toylab.fitting.optim import DEFAULT_LR
from toylab.fitting.schedule import SCHEDULES
from toylab.run import Run, build_targets
from toylab.store import rundir
from toylab.viz import gif

DEFAULTS = RunConfig()
# Options that may be given together with --resume (they do not change the numbers).
RESUME_OPTIONS = {"quiet", "threads", "resume", "fps", "scale", "mp4", "command", "func"}


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
    p.add_argument(
        "--target",
        default=None,
        metavar="NAMES",
        help=f"target or comma sequence fitted one after another, nodes carried over (default {DEFAULTS.targets[0]}); see `toylab densities --list`",
    )
    p.add_argument(
        "--nodes",
        "-k",
        type=int,
        default=None,
        metavar="K",
        help=f"number of nodes K (default {DEFAULTS.nodes})",
    )
    p.add_argument(
        "--method",
        default=None,
        metavar="LIST",
        help=f"comma list from {{{', '.join(METHODS)}}} (default {','.join(DEFAULT_METHODS)})",
    )
    p.add_argument(
        "--steps", type=int, default=None, help=f"steps per target (default {DEFAULTS.steps})"
    )
    p.add_argument(
        "--batch", type=int, default=None, help=f"points per step (default {DEFAULTS.batch})"
    )
    p.add_argument(
        "--distance",
        default=None,
        choices=None,
        metavar="{l1,l2}",
        help="matching distance (default l1, as the reference)",
    )
    p.add_argument(
        "--optimizer",
        default=None,
        metavar="{sgd,adam}",
        help=f"sgd: the reference's rule, node += 2 lr (x - node) per point (default lr {DEFAULT_LR['sgd']}); "
        f"adam: per-node Adam on matched nodes (default lr {DEFAULT_LR['adam']})",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: the optimizer's, see --optimizer)",
    )
    p.add_argument(
        "--max-splits",
        type=int,
        default=None,
        metavar="N",
        help=f"Split-and-Prune: splits at most per step (default {DEFAULTS.max_splits}, the paper's pace)",
    )
    p.add_argument(
        "--split-ratio",
        type=float,
        default=None,
        metavar="R",
        help=f"split a node whose share exceeds R/K (default {DEFAULTS.split_ratio})",
    )
    p.add_argument(
        "--prune-ratio",
        type=float,
        default=None,
        metavar="R",
        help=f"prune a node whose share is below R/K (default {DEFAULTS.prune_ratio})",
    )
    soft = p.add_argument_group(
        "soft selection (--method soft): node k picked with probability ~ exp(-beta d_k)"
    )
    soft.add_argument(
        "--beta-start",
        type=float,
        default=None,
        metavar="B0",
        help=f"beta at the start of each target, per unit distance (default {DEFAULTS.beta_start:g})",
    )
    soft.add_argument(
        "--beta-end",
        type=float,
        default=None,
        metavar="B1",
        help=f"beta at the end of each target, >= B0 (default {DEFAULTS.beta_end:g})",
    )
    soft.add_argument(
        "--beta-schedule",
        default=None,
        metavar="{" + ",".join(SCHEDULES) + "}",
        help=f"how beta goes from B0 to B1 (default {DEFAULTS.beta_schedule})",
    )
    # -- hierarchical DDN (--method tree) ----------------------------------------------------
    tree = p.add_argument_group(
        "hierarchical DDN (--method tree): L layers of K candidates, a sample is a path in a "
        "K-ary tree; best with a large --batch (e.g. 1024)"
    )
    tree.add_argument(
        "--tree-form",
        default=None,
        metavar="{points,neural}",
        help="points: every parent owns K free child points (default); neural: an MLP per layer "
        "proposes the K candidates (the paper's model)",
    )
    tree.add_argument(
        "--layers",
        type=int,
        default=None,
        metavar="L",
        help="layers L (default 5 for points, 2 for neural)",
    )
    tree.add_argument(
        "--k",
        type=int,
        default=None,
        metavar="K",
        help="candidates per layer (default 8 for points, 64 for neural; -k is --nodes)",
    )
    tree.add_argument(
        "--tree-step",
        type=float,
        default=None,
        metavar="S",
        help=f"points: a chosen node moves this fraction toward its points (default {DEFAULTS.tree_step:g}), cosine-decayed over each target to --tree-step-end",
    )
    tree.add_argument(
        "--tree-step-end",
        type=float,
        default=None,
        metavar="S",
        help=f"points: the step at the end of each target (default {DEFAULTS.tree_step_end:g})",
    )
    tree.add_argument(
        "--tree-ratio",
        type=float,
        default=None,
        metavar="R",
        help=f"points: initial offset scale of layer l is R^l (default {DEFAULTS.tree_ratio:g})",
    )
    tree.add_argument(
        "--tree-lr",
        type=float,
        default=None,
        metavar="LR",
        help=f"neural: Adam learning rate, cosine-decayed (default {DEFAULTS.tree_lr:g})",
    )
    tree.add_argument(
        "--tree-eval-samples",
        type=int,
        default=None,
        metavar="N",
        help=f"the model is also scored on N samples: kl_model in metrics.json (default {DEFAULTS.tree_eval_samples})",
    )
    tree.add_argument(
        "--tree-prior",
        default=None,
        metavar="{learned,uniform}",
        help="how a sample picks a child: learned = in proportion to its recent use by the data "
        "(default), uniform = 1/K as in the paper",
    )
    # -- end of the tree block ---------------------------------------------------------------
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--device", default=None, help="torch device: cpu (default) or cuda[:N]")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"torch threads (default {runner.DEFAULT_THREADS}, measured fastest for the small per-step work)",
    )
    p.add_argument(
        "--index",
        default=None,
        metavar="{" + ",".join(INDEXES) + "}",
        help="nearest-node search: kdtree (exact index that follows moving nodes), brute, or auto (default: brute force when K x batch < 2e5 or on a GPU)",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=None,
        help=f"GIF frames recorded per target (default {DEFAULTS.frames}; 0 = none)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=None,
        metavar="N",
        help="also log the KL every N steps (default: once per frame)",
    )
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
    out.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress bar")
    p.set_defaults(func=main)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """A validated RunConfig from the parsed options (unset ones take the defaults)."""
    cfg = RunConfig()
    if args.target is not None:
        import densities

        cfg.targets = densities.parse_names(args.target)
    if args.method is not None:
        cfg.methods = [m.strip() for m in args.method.split(",")]
    for dest in (
        "nodes",
        "steps",
        "batch",
        "distance",
        "optimizer",
        "lr",
        "max_splits",
        "split_ratio",
        "prune_ratio",
        "seed",
        "device",
        "threads",
        "frames",
        "eval_every",
        "index",
        "bins",
        "beta_start",
        "beta_end",
        "beta_schedule",
        # hierarchical DDN (--method tree)
        "tree_form",
        "layers",
        "k",
        "tree_step",
        "tree_step_end",
        "tree_ratio",
        "tree_lr",
        "tree_eval_samples",
        "tree_prior",
    ):
        value = getattr(args, dest, None)
        if value is not None:
            setattr(cfg, dest, value)
    cfg.target_options = target_options(args)
    return cfg.validate()


def gif_options(args: argparse.Namespace, saved: dict | None = None) -> dict:
    saved = saved or {}
    opts = {
        "fps": args.fps if args.fps is not None else saved.get("fps", gif.DEFAULT_FPS),
        "scale": args.scale if args.scale is not None else saved.get("scale"),
        "mp4": bool(args.mp4) if args.mp4 is not None else bool(saved.get("mp4", False)),
    }
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
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
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
