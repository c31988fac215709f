"""How close to the data-budget floor can nodes get that do not know the evaluation grid? (issue 16)

    /work/venv/bin/python benchmarks/floor_reach.py --paper-images DIR
    /work/venv/bin/python benchmarks/floor_reach.py --paper-images DIR --seeds 0 --multiples 1

The data floor (`toylab.floors`) rounds the histogram of a run's N points on the evaluation
grid. A node method places points in the plane instead, and the grid only counts them. This
script measures the best such placement we know, with no time limit: a capacity-constrained
Lloyd iteration (a centroidal power diagram in which every node holds the same number of
points: an equal-mass quantiser, the fixed point Split-and-Prune's balance and Lloyd's means
both aim at), run to its plateau offline, on

- the very N points the data floor is computed from (multiple 1: the issue's budget), and
- those N points plus (multiple - 1) x N more from the same target (more data than the floor).

Every point goes to the node of least power distance |x - p_i|^2 - w_i, found with scipy's
k-d tree on the lifted nodes (p_i, sqrt(max w - w_i)); a node that holds more than N / K
points loses weight, one that holds fewer gains it (in proportion to its region's area, from
its points' covariance), and every node moves to its points' mean.

Prints per target the data floor, this placement's KL and KL / data floor per multiple (mean
and sd over seeds), and the spread of the nodes' point counts. K = 10,000, N = 100,000, 100
bins (the paper's budget); the paper's images from --paper-images DIR as in floor_study.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

import densities
from toylab import kl_floors
from toylab.metrics import node_histogram
from toylab.paper import PAPER_IMAGES


def equal_mass_quantiser(
    points: np.ndarray, nodes: int, iterations: int, rng: np.random.Generator, rate: float = 0.5
) -> tuple[np.ndarray, float]:
    """K nodes by capacity-constrained Lloyd over `points`; returns the nodes and the relative
    spread (sd / mean) of their final point counts."""
    m = points.shape[0]
    pos = points[rng.choice(m, nodes, replace=False)].copy()
    weight = np.zeros(nodes)
    share = m / nodes
    lifted_points = np.c_[points, np.zeros(m)]
    spread = float("nan")
    for _ in range(iterations):
        lift = np.sqrt(weight.max() - weight)
        _, lab = cKDTree(np.c_[pos, lift]).query(lifted_points, workers=-1)
        c = np.bincount(lab, minlength=nodes).astype(np.float64)
        got = c > 0
        cc = np.maximum(c, 1.0)
        mx = np.where(got, np.bincount(lab, points[:, 0], nodes) / cc, pos[:, 0])
        my = np.where(got, np.bincount(lab, points[:, 1], nodes) / cc, pos[:, 1])
        vxx = np.bincount(lab, points[:, 0] ** 2, nodes) / cc - mx**2
        vyy = np.bincount(lab, points[:, 1] ** 2, nodes) / cc - my**2
        vxy = np.bincount(lab, points[:, 0] * points[:, 1], nodes) / cc - mx * my
        area = 4.0 * np.sqrt(np.maximum(vxx * vyy - vxy**2, 0.0))  # a uniform disc's area
        area = np.where(got & (area > 0), area, np.median(area[got]))
        weight += rate * (share - c) / share * area
        pos[:, 0], pos[:, 1] = mx, my
        spread = float(c.std() / share)
    return pos, spread


def target(paper_dir: Path, name: str, bins: int) -> densities.Density:
    if name in PAPER_IMAGES:
        return densities.get("image", bins, path=str(paper_dir / PAPER_IMAGES[name][0]))
    return densities.get(name, bins)


def int_list(p: argparse.ArgumentParser, flag: str, text: str, low: int) -> list[int]:
    """A comma-separated list of integers >= low, or a one-line usage error."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        p.error(f"{flag} must be comma-separated integers, got {text!r}")
    if min(values) < low:
        p.error(f"{flag} values must be >= {low}, got {text!r}")
    return values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--paper-images", required=True, type=Path, help="folder of the paper's PNGs")
    p.add_argument("--targets", default="spiral,blur_circles,qr,words")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--multiples", default="1,10", help="data, in multiples of --samples")
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=100_000, help="N, the data floor's points")
    p.add_argument("--iterations", type=int, default=150)
    p.add_argument("--bins", type=int, default=100)
    args = p.parse_args()
    seeds = int_list(p, "--seeds", args.seeds, 0)
    multiples = int_list(p, "--multiples", args.multiples, 1)
    for flag, value, low in (
        ("--nodes", args.nodes, 1),
        ("--samples", args.samples, args.nodes),
        ("--iterations", args.iterations, 1),
        ("--bins", args.bins, 2),
    ):
        if value < low:
            p.error(f"{flag} must be >= {low}, got {value}")
    try:  # every target loads before any work starts
        targets = [target(args.paper_images, n, args.bins) for n in args.targets.split(",")]
    except (densities.DensityError, ValueError, KeyError) as e:
        p.error(str(e).strip("'\""))
    print(
        f"K = {args.nodes}, N = {args.samples}, {args.bins} bins, {args.iterations} iterations,"
        f" seeds {seeds}, data multiples {multiples}",
        flush=True,
    )
    header = f"{'target':<14}{'data floor':>11}" + "".join(
        f"{f'x{m} KL [/floor] count sd':>34}" for m in multiples
    )
    rows = []
    for name, d in zip(args.targets.split(","), targets, strict=True):
        q = d.array / d.array.sum()
        floor_kl, kl = [], {m: [] for m in multiples}
        spread = {m: [] for m in multiples}
        for seed in seeds:
            rng = np.random.default_rng(seed)
            base = d.sample(args.samples, rng)
            extra = d.sample(args.samples * (max(multiples) - 1), rng)
            floor_kl.append(kl_floors.floors(d, args.nodes, base)["data_floor"])
            for m in multiples:
                pts = np.concatenate([base, extra[: args.samples * (m - 1)]])
                t = time.perf_counter()
                nodes, sd = equal_mass_quantiser(
                    pts, args.nodes, args.iterations, np.random.default_rng(seed)
                )
                kl[m].append(kl_floors.allocation_kl(node_histogram(nodes, args.bins), q))
                spread[m].append(sd)
                print(
                    f"  {name} seed {seed} x{m}: KL {kl[m][-1]:.4f} (data floor"
                    f" {floor_kl[-1]:.4f}), {time.perf_counter() - t:.0f} s",
                    flush=True,
                )
        fl = statistics.mean(floor_kl)
        cells = ""
        for m in multiples:
            mean = statistics.mean(kl[m])
            sd = statistics.stdev(kl[m]) if len(kl[m]) > 1 else 0.0
            cells += f"{mean:>12.4f} ±{sd:.4f} [{mean / fl:.2f}] {statistics.mean(spread[m]):>5.2f}"
        rows.append(f"{name:<14}{fl:>11.4f}{cells}")
    print("\n== the equal-mass quantiser's KL, mean over seeds; [KL / mean data floor] ==")
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
