"""`toylab sample DIR -n N`: draw points from a fitted DDN (each node with probability 1/K), or
from a hierarchical DDN's model, optionally under a condition (--guide, --sampler)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from toylab import budget
from toylab.errors import ToylabError
from toylab.fitting.tree.guides import GUIDE_HELP, SAMPLERS, guided_sample, parse_guide, reconstruct
from toylab.store.atomic import write_text, write_with
from toylab.store.rundir import load_run

FORMATS = (".csv", ".npy")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw points from a fitted DDN",
        description="Draw N points from a run's fit: a flat DDN samples a node uniformly at "
        "random; a hierarchical DDN (--method tree) samples a path of its tree, optionally "
        "under a condition (--guide, --sampler).",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run directory written by `toylab run`")
    p.add_argument("-n", type=int, required=True, metavar="N", help="number of points")
    p.add_argument(
        "--out", type=Path, metavar="FILE", help="points.csv or points.npy (default: CSV on stdout)"
    )
    p.add_argument(
        "--method",
        help="which method's fit (default: tree with --guide, else sp if it was fitted, else "
        "the first)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--guide",
        metavar="KIND:ARGS",
        help="hierarchical DDN (--method tree) only: sample under a condition, "
        f"{GUIDE_HELP} (x tolerance default 0.01; a mask's brightness is the weight); "
        "point:x,y also prints the latent code and the error per layer",
    )
    p.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="exact",
        help="with --guide: exact = the model's own conditional (children weighted by the mass "
        "of their subtree that satisfies it; default), greedy = the paper's rule (best "
        "candidate at each layer; collapses onto one path when many points fit)",
    )
    p.set_defaults(func=main)


def sample_nodes(nodes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points drawn uniformly from the K nodes (with replacement)."""
    return nodes[rng.integers(0, nodes.shape[0], size=n)]


def main(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ToylabError(f"-n must be a positive integer, got {args.n}")
    budget.check_sample(args.n)
    if args.seed < 0:
        raise ToylabError(f"--seed must be >= 0, got {args.seed}")
    if args.out is not None and args.out.suffix.lower() not in FORMATS:
        raise ToylabError(f"--out {args.out}: use a .csv or .npy file name")
    if args.out is not None and args.out.is_dir():
        raise ToylabError(f"--out {args.out} is a directory")
    guide = parse_guide(args.guide) if args.guide is not None else None
    record = load_run(args.dir)
    if not record.nodes:
        raise ToylabError(f"{args.dir} has no fitted nodes yet (no nodes.npz)")
    default = "tree" if guide is not None else "sp"
    method = args.method or (default if default in record.nodes else next(iter(record.nodes)))
    if method not in record.nodes:
        raise ToylabError(
            f"--method {method!r} was not fitted in {args.dir}; choose from: {', '.join(record.nodes)}"
        )
    rng = np.random.default_rng(args.seed)
    if method == "tree":  # a hierarchical DDN: draw from the model itself, not its K shown points
        from toylab.cli.tree_cmd import load_tree

        table = load_tree(args.dir).table()
        if guide is None:
            points = table.sample(args.n, rng)
        else:
            points = guided_sample(table, guide, args.n, args.sampler, rng).points
            if args.guide.strip().lower().startswith("point"):
                report_reconstruction(table, guide, args.sampler)
    elif guide is not None:
        raise ToylabError(
            f"--guide needs a hierarchical DDN (--method tree); {method!r} is a flat DDN"
        )
    else:
        points = sample_nodes(record.nodes[method], args.n, rng)
    if args.out is not None and args.out.suffix.lower() == ".npy":
        write_with(args.out, lambda tmp: np.save(open(tmp, "wb"), points))  # noqa: SIM115
        return 0
    buf = io.StringIO()
    buf.write("x,y\n")
    np.savetxt(buf, points, delimiter=",", fmt="%.7g")
    if args.out is None:
        sys.stdout.write(buf.getvalue())
    else:
        write_text(args.out, buf.getvalue())
    return 0


def report_reconstruction(table, guide, sampler: str) -> None:
    """Print a point's latent code and the error after each layer on stderr."""
    rec = reconstruct(table, guide.x, guide.y, sampler)
    code = " ".join(str(int(c)) for c in rec.code)
    bits = table.layers * np.log2(table.k)
    print(f"latent code ({sampler}, {bits:.0f} bits): {code}", file=sys.stderr)
    print("layer  point              error", file=sys.stderr)
    for level, (pt, err) in enumerate(zip(rec.points, rec.errors, strict=True)):
        print(f"{level + 1:5d}  {pt[0]:+.5f},{pt[1]:+.5f}  {err:.5f}", file=sys.stderr)
