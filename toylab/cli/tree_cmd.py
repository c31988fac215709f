"""`toylab tree DIR`: pictures of a run's hierarchical DDN (--method tree).

Writes into DIR (or --out): tree_layers.png (the nodes layer by layer, coloured by the first
latent index), tree_guided.png (greedy vs exact guided samples beside the target's and the
model's conditionals, per guide), tree_reconstruction.png (error per layer), and prints the
TV of each sampler and the error per layer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from toylab.errors import ToylabError
from toylab.fitting.tree.guides import GUIDE_HELP, BoxGuide, XGuide, parse_guide
from toylab.store.rundir import read_checkpoint, read_config, require_run_dir

if TYPE_CHECKING:
    from toylab.fitting.tree.method import TreeMethod


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tree",
        help="pictures of a run's hierarchical DDN: layers, latent, guided sampling, errors",
        description=(
            "Draw a run's hierarchical DDN (toylab run --method tree): its nodes layer by layer "
            "coloured by the first latent index, guided samples by the greedy rule and by the "
            "exact sampler next to the conditional densities, and the reconstruction error per "
            "layer. Writes tree_layers.png, tree_guided.png and tree_reconstruction.png."
        ),
        epilog="example: toylab tree runs/spiral-tree --guide x:0.3 --guide box:0,0,0.5,0.5",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run directory with --method tree")
    p.add_argument(
        "--guide",
        action="append",
        metavar="KIND:ARGS",
        help=f"a condition to show, repeatable: {GUIDE_HELP} (default: an x and a box around "
        "a data point)",
    )
    p.add_argument(
        "-n",
        type=int,
        default=20000,
        metavar="N",
        help="guided samples per sampler (default 20000)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="where the PNGs go (default DIR)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=main)


def load_tree(path: Path) -> TreeMethod:
    from toylab.config import RunConfig
    from toylab.fitting.tree.method import model_from_state

    """The hierarchical DDN of a run directory, from its checkpoint (ToylabError if none)."""
    require_run_dir(path)
    config = RunConfig.from_dict(read_config(path).get("args", {}))
    if "tree" not in config.methods:
        raise ToylabError(
            f"{path} has no hierarchical DDN; fit one with toylab run --method tree "
            f"(this run fitted {','.join(config.methods)})"
        )
    state = read_checkpoint(path)
    return model_from_state(state["methods"]["tree"], config.validate().settings())


def default_guides(density, rng: np.random.Generator) -> list:
    """An x condition and a box around points drawn from the target."""
    a, b = density.sample(2, rng)
    x0 = float(np.round(a[0], 2))
    cx, cy = np.round(np.clip(b, -0.75, 0.75), 2)
    return [XGuide(x0), BoxGuide(cx - 0.25, cy - 0.25, cx + 0.25, cy + 0.25)]


def main(args: argparse.Namespace) -> int:
    from toylab.config import RunConfig
    from toylab.run import build_targets
    from toylab.viz import tree as draw

    if args.n < 1:
        raise ToylabError(f"-n must be a positive integer, got {args.n}")
    if args.seed < 0:
        raise ToylabError(f"--seed must be >= 0, got {args.seed}")
    guides = [parse_guide(g) for g in args.guide or []]
    method = load_tree(args.dir)
    config = RunConfig.from_dict(read_config(args.dir).get("args", {}))
    density = build_targets(config)[-1]  # the model was last trained on the final target
    out = args.out or args.dir
    if out.exists() and not out.is_dir():
        raise ToylabError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    guides = guides or default_guides(density, rng)
    table = method.table()
    draw.draw_layers(
        table, out / "tree_layers.png", f"{density.name}: K={table.k}, L={table.layers}"
    )
    rows = draw.guided_panels(table, density, guides, args.n, rng)
    draw.draw_guided(rows, out / "tree_guided.png")
    errors = draw.draw_reconstruction(table, density, out / "tree_reconstruction.png")
    print(
        "guide                        TV greedy  TV exact  TV rejection  (vs the model's conditional)"
    )
    for row in rows:
        print(
            f"{row['guide'].label:28s} {row['tv_greedy']:9.3f} {row['tv_exact']:9.3f} "
            f"{row['tv_rejection']:13.3f}"
        )
    print(
        "reconstruction error per layer (greedy): " + " ".join(f"{e:.4f}" for e in errors["greedy"])
    )
    print(
        "reconstruction error per layer (exact):  " + " ".join(f"{e:.4f}" for e in errors["exact"])
    )
    for name in ("tree_layers.png", "tree_guided.png", "tree_reconstruction.png"):
        print(out / name, file=sys.stderr)
    return 0
