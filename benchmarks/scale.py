"""Speed and scale of Split-and-Prune: seconds per step from K = 10^3 to 10^6, and two large fits.

    python benchmarks/scale.py                 # per-step table + the K = 10^5 fit (~2 min)
    python benchmarks/scale.py --large         # also K = 10^6 with 10^7 samples (~10 min)
    python benchmarks/scale.py --table-only

The per-step table times `sp` alone (the default one split a step, so the index dominates)
with each nearest-node search: the compiled grid (the default), the KD-tree index (the
fallback without numba) and, where affordable, brute force. Beside it, a measured floor: one
pass of the same points through a compiled nearest-cell lookup (each point's grid cell and the
first node of that cell's list: the least any exact index must touch), and grid / floor. The large fits check quality at
scale: KL below the real-samples KL at a grid where cells hold several nodes, with
--max-splits scaled with the batch (B / 5: the paper's 1 split per 10 points is too slow to
recycle K = 10^6 dead nodes in 1,000 steps). Peak memory is the process's max RSS.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

import densities
import toylab
from toylab import compiled
from toylab.fitting.grid_index import GridIndex, _cell
from toylab.fitting.methods import Settings, SplitAndPrune


@compiled.njit()
def _cell_lookup(points: np.ndarray, g: int, head: np.ndarray, out: np.ndarray) -> None:
    """The floor: each point's cell (as the grid index computes it) and that cell's first node."""
    for k in range(points.shape[0]):
        out[k] = head[_cell(points[k, 0], points[k, 1], g)]


def floor_per_step(k: int, batch: int, steps: int, target: densities.Density) -> float:
    """Seconds per step of the nearest-cell lookup alone, on the points `per_step` uses."""
    rng = np.random.default_rng(0)
    index = GridIndex(rng.uniform(-1, 1, (k, 2)), "l1")
    batches = [target.sample(batch, rng) for _ in range(steps + 5)]
    out = np.empty(batch, dtype=np.int64)
    for b in batches[:5]:
        _cell_lookup(b, index.g, index._head, out)
    start = time.perf_counter()
    for b in batches[5:]:
        _cell_lookup(b, index.g, index._head, out)
    return (time.perf_counter() - start) / steps


def per_step(k: int, batch: int, index: str, steps: int, target: densities.Density) -> float:
    """Mean seconds per step of `sp` after a short warm-up."""
    rng = np.random.default_rng(0)
    method = SplitAndPrune(
        torch.from_numpy(rng.uniform(-1, 1, (k, 2))), Settings(index=index, batch=batch)
    )
    batches = [target.sample(batch, rng) for _ in range(steps + 5)]
    for b in batches[:5]:
        method.step(b)
    start = time.perf_counter()
    for b in batches[5:]:
        method.step(b)
    return (time.perf_counter() - start) / steps


def table(max_k: int) -> None:
    target = densities.get("spiral", 100)
    print("seconds per step, method sp (1 split a step), target spiral, 1 thread")
    print(
        f"{'K':>9} {'batch':>6} {'grid':>10} {'kd-tree':>10} {'brute':>10} {'brute/grid':>11}"
        f" {'floor':>10} {'grid/floor':>11}"
    )
    for k in (10**3, 10**4, 10**5, 10**6):
        if k > max_k:
            continue
        for batch in (10, 1000):
            steps = max(5, min(2000, int(2e7 / (k * batch) * 10)))
            grid = per_step(k, batch, "grid", steps, target)
            tree = per_step(k, batch, "kdtree", steps, target)
            brute = (
                per_step(k, batch, "brute", max(3, steps // 10), target)
                if k * batch <= 10**8
                else float("nan")
            )
            ratio = brute / grid if np.isfinite(brute) else float("nan")
            floor = floor_per_step(k, batch, steps, target)
            print(
                f"{k:>9,} {batch:>6} {grid:>10.2e} {tree:>10.2e} {brute:>10.2e} {ratio:>10.1f}x"
                f" {floor:>10.2e} {grid / floor:>10.1f}x",
                flush=True,
            )


def large_fit(k: int, samples: int, batch: int, bins: int, threads: int) -> None:
    steps = samples // batch
    max_splits = batch // 5
    print(
        f"\nK = {k:,}: {samples:,} samples (batch {batch:,} x {steps:,} steps), --max-splits {max_splits}, "
        f"{bins} bins ({k / bins**2:.1f} nodes a cell)",
        flush=True,
    )
    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    r = toylab.fit(
        "spiral",
        nodes=k,
        methods="sp",
        steps=steps,
        batch=batch,
        bins=bins,
        max_splits=max_splits,
        frames=0,
        threads=threads,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    t = r.metrics["targets"][0]
    sp, real = t["methods"]["sp"], t["real_samples"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "below" if sp["kl"] < real["kl"] else "ABOVE"
    print(
        f"  sp KL {sp['kl']:.4f} ({verdict} real samples {real['kl']:.4f}), stray nodes {sp['stray']:,}, "
        f"fit {sp['seconds']:.1f} s, wall {wall:.1f} s (CPU {cpu:.1f} s, {threads} threads), "
        f"peak RSS {rss:,.0f} MB",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--large", action="store_true", help="also fit K = 10^6 with 10^7 samples")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--large-only", action="store_true", help="only the K = 10^6 fit")
    ap.add_argument("--max-k", type=int, default=10**6, help="largest K in the per-step table")
    ap.add_argument(
        "--threads", type=int, default=1, help="threads of the large fits (the table uses 1)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    compiled.set_threads(1)
    if args.large_only:
        large_fit(10**6, 10**7, batch=10_000, bins=300, threads=args.threads)
        return
    table(args.max_k)
    if args.table_only:
        return
    large_fit(10**5, 10**6, batch=1000, bins=100, threads=args.threads)
    if args.large:
        large_fit(10**6, 10**7, batch=10_000, bins=300, threads=args.threads)


if __name__ == "__main__":
    main()
