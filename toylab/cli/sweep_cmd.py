"""`toylab sweep SPEC.toml --out DIR`: a grid of runs on every core or on a Ray cluster."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from toylab.errors import ToylabError
from toylab.sweep.spec import DEFAULT_MAX_CELLS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of experiments (fixed options x axes) on every core or a Ray cluster",
        description=(
            "Run every cell of a grid: a TOML spec gives [fixed] `toylab run` options and "
            "[axes] (lists of values; the cells are their product). Each cell is an ordinary "
            "run directory under DIR/cells/; DIR/results.csv has one row per cell and method "
            "with every option and metric, rewritten as cells finish; DIR/summary.png/.pdf/.md "
            "plot KL against each numeric axis and a grid of final fits. Re-running (or "
            "--resume) skips finished cells; a failing cell is retried once, then recorded "
            "with its error while the others go on (exit status 1)."
        ),
        epilog=(
            "example spec:\n"
            '  [fixed]\n  steps = 2000\n  method = "gd,sp"\n'
            '  [axes]\n  target = ["spiral", "qr"]\n  nodes = [1000, 10000]\n'
            "  seed = [0, 1, 2]\n"
            "  [output]        # optional pictures per cell: gif, report, final_png\n"
            "  gif = false\n\n"
            "example: toylab sweep sweep.toml --out sweeps/k --workers 2\n"
            "Ray: `ray start --head` on one machine, `ray start --address=HEAD:6379` on the "
            "others, then toylab sweep sweep.toml --out DIR --executor ray --address HEAD:6379"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", type=Path, nargs="?", metavar="SPEC.toml", help="the sweep spec")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="sweep directory")
    p.add_argument(
        "--executor",
        default="local",
        metavar="{local,ray}",
        help="local: a process pool on this machine (default); ray: tasks on a Ray cluster",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="HOST:PORT",
        help="Ray cluster to join (default: start a local Ray); only with --executor ray",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="cells at once, 1 thread each (default: every core; with Ray, the cluster's CPUs)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the sweep in DIR with its saved spec (re-running the command does too)",
    )
    p.add_argument(
        "--max-cells",
        type=int,
        default=DEFAULT_MAX_CELLS,
        metavar="N",
        help=f"refuse a grid of more than N cells unless --yes (default {DEFAULT_MAX_CELLS})",
    )
    p.add_argument("--yes", "-y", action="store_true", help="run a grid over --max-cells")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from toylab.sweep.executors import EXECUTORS
    from toylab.sweep.runner import SPEC_FILE, run_sweep
    from toylab.sweep.spec import load_spec

    if args.executor not in EXECUTORS:
        raise ToylabError(
            f"unknown --executor {args.executor!r}; choose from: {', '.join(EXECUTORS)}"
        )
    if args.address and args.executor != "ray":
        raise ToylabError("--address is for --executor ray")
    if args.workers is not None and args.workers < 1:
        raise ToylabError(f"--workers must be an integer >= 1, got {args.workers}")
    if args.max_cells < 1:
        raise ToylabError(f"--max-cells must be an integer >= 1, got {args.max_cells}")
    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            raise ToylabError("--resume DIR is the sweep directory; drop --out")
        out = args.resume
        spec_path = args.spec if args.spec is not None else out / SPEC_FILE
        if args.spec is None and not spec_path.is_file():
            raise ToylabError(f"--resume {out}: not a sweep directory (no {SPEC_FILE})")
    else:
        if args.spec is None:
            raise ToylabError("give a spec: toylab sweep SPEC.toml --out DIR")
        if args.out is None:
            raise ToylabError("give --out DIR, the sweep directory")
        out, spec_path = args.out, args.spec
    spec = load_spec(spec_path, max_cells=args.max_cells, yes=args.yes)
    outcome = run_sweep(
        spec,
        out,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        quiet=args.quiet,
        resume=args.resume is not None,
    )
    done = outcome.skipped + outcome.done
    print(
        f"{done}/{outcome.total} cells finished ({outcome.skipped} skipped as already done), "
        f"{len(outcome.failed)} failed; results: {out / 'results.csv'}, summary: {out / 'summary.png'}",
        file=sys.stderr,
    )
    for name, error in outcome.failed.items():
        print(f"failed: {name}: {error}", file=sys.stderr)
    if outcome.interrupted:
        print(f"continue with: toylab sweep --resume {shlex.quote(str(out))}", file=sys.stderr)
    return outcome.exit_code
