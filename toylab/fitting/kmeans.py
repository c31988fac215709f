"""Online k-means (MacQueen) pieces: k-means++ seeding and the running-mean update.

MacQueen's rule moves a matched node by 1/n of its offset to the point, n its match count
(the seed point counts as the first member). For a node matched by m points x_1..x_m in one
batch, applying the rule point by point gives exactly the running mean
(n p + sum x) / (n + m), which `running_mean_update` computes in one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toylab.compiled import njit
from toylab.fitting.backend import NUMPY, Backend

_jit = njit()


@_jit
def _seed_centres(
    sample: np.ndarray, k: int, rng: np.random.Generator, l1: bool, centres: np.ndarray
) -> None:
    """k-means++ in two passes over the sample per centre: update each point's squared
    distance to its nearest centre (and their total), then walk the running sum to the draw."""
    n = sample.shape[0]
    d2 = np.full(n, np.inf)
    j = rng.integers(0, n)
    for c in range(k):
        cx, cy = sample[j, 0], sample[j, 1]
        centres[c, 0], centres[c, 1] = cx, cy
        total = 0.0
        for p in range(n):
            dx = abs(sample[p, 0] - cx)
            dy = abs(sample[p, 1] - cy)
            d = (dx + dy) ** 2 if l1 else dx * dx + dy * dy
            if d < d2[p]:
                d2[p] = d
            total += d2[p]
        if total <= 0.0:  # every sample point is a centre already: pick uniformly
            j = rng.integers(0, n)
            continue
        target = rng.random() * total
        acc = 0.0
        j = n - 1
        for p in range(n):
            acc += d2[p]
            if acc > target:
                j = p
                break


def kmeans_plus_plus(
    sample: np.ndarray, k: int, rng: np.random.Generator, distance: str = "l2"
) -> np.ndarray:
    """k centres from `sample` by k-means++: each next centre drawn with probability
    proportional to its squared distance (L1 or L2) to the nearest centre chosen so far."""
    n = sample.shape[0]
    if k > n:
        raise ValueError(f"k-means++ needs at least k = {k} sample points, got {n}")
    centres = np.empty((k, 2))
    _seed_centres(np.ascontiguousarray(sample, dtype=np.float64), k, rng, distance == "l1", centres)
    return centres


def running_mean_update(
    pos: Any, counts: Any, points: Any, idx: Any, backend: Backend = NUMPY
) -> Any:
    """MacQueen's update of the matched nodes, in place; returns the distinct nodes moved."""
    order, nodes, group, _, sizes = backend.group_by_node(idx)
    sums = backend.rows(nodes.shape[0])
    backend.add_at(sums, group, points[order])
    n = counts[nodes]
    new_n = n + sizes
    pos[nodes] = (pos[nodes] * n[:, None] + sums) / new_n[:, None]
    counts[nodes] = new_n
    return nodes
