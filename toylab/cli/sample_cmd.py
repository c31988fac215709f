"""`toylab sample DIR -n N`: draw points from a fitted DDN (each node with probability 1/K)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from toylab import budget
from toylab.errors import ToylabError
from toylab.store.atomic import write_text, write_with
from toylab.store.rundir import load_run

FORMATS = (".csv", ".npy")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw points from a fitted DDN",
        description="Draw N points from a run's fitted nodes: a flat DDN samples a node uniformly at random.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run directory written by `toylab run`")
    p.add_argument("-n", type=int, required=True, metavar="N", help="number of points")
    p.add_argument(
        "--out", type=Path, metavar="FILE", help="points.csv or points.npy (default: CSV on stdout)"
    )
    p.add_argument(
        "--method", help="which method's nodes (default sp if it was fitted, else the first)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
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
    record = load_run(args.dir)
    if not record.nodes:
        raise ToylabError(f"{args.dir} has no fitted nodes yet (no nodes.npz)")
    method = args.method or ("sp" if "sp" in record.nodes else next(iter(record.nodes)))
    if method not in record.nodes:
        raise ToylabError(
            f"--method {method!r} was not fitted in {args.dir}; choose from: {', '.join(record.nodes)}"
        )
    points = sample_nodes(record.nodes[method], args.n, np.random.default_rng(args.seed))
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
