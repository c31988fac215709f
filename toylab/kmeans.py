"""Online k-means (MacQueen) pieces: k-means++ seeding and the running-mean update.

MacQueen's rule moves a matched node by 1/n of its offset to the point, n its match count
(the seed point counts as the first member). For a node matched by m points x_1..x_m in one
batch, applying the rule point by point gives exactly the running mean
(n p + sum x) / (n + m), which `running_mean_update` computes in one pass.
"""

from __future__ import annotations

import numpy as np

from .optim import group_by_node


def kmeans_plus_plus(sample: np.ndarray, k: int, rng: np.random.Generator, distance: str = "l2") -> np.ndarray:
    """k centres from `sample` by k-means++: each next centre drawn with probability
    proportional to its squared distance to the nearest centre chosen so far."""
    n = sample.shape[0]
    if k > n:
        raise ValueError(f"k-means++ needs at least k = {k} sample points, got {n}")
    centres = np.empty((k, 2))
    first = int(rng.integers(n))
    centres[0] = sample[first]
    d2 = np.empty(n)
    cand = np.empty(n)
    tmp = np.empty(n)
    _sq_dist(sample, centres[0], distance, d2, tmp)
    cumulative = np.empty(n)
    for i in range(1, k):
        np.cumsum(d2, out=cumulative)
        total = cumulative[-1]
        if total <= 0:  # every sample point is already a centre: repeat uniformly chosen ones
            j = int(rng.integers(n))
        else:
            j = min(int(np.searchsorted(cumulative, rng.random() * total, side="right")), n - 1)
        centres[i] = sample[j]
        _sq_dist(sample, centres[i], distance, cand, tmp)
        np.minimum(d2, cand, out=d2)
    return centres


def _sq_dist(points: np.ndarray, centre: np.ndarray, distance: str, out: np.ndarray, tmp: np.ndarray) -> None:
    """Squared distance (L1 or L2) from every point to one centre, into `out`."""
    np.subtract(points[:, 0], centre[0], out=out)
    np.subtract(points[:, 1], centre[1], out=tmp)
    if distance == "l1":
        np.abs(out, out=out)
        np.abs(tmp, out=tmp)
        out += tmp
        out *= out
    else:
        out *= out
        tmp *= tmp
        out += tmp


def running_mean_update(pos, counts, points, idx):
    """MacQueen's update of the matched nodes, in place; returns the distinct nodes moved."""
    order, nodes, group, _, sizes = group_by_node(idx)
    if isinstance(pos, np.ndarray):
        sums = np.zeros((nodes.shape[0], 2))
        np.add.at(sums, group, points[order])
    else:
        import torch

        sums = torch.zeros(nodes.shape[0], 2, dtype=pos.dtype, device=pos.device)
        sums.index_add_(0, group, points[order])
    n = counts[nodes]
    new_n = n + sizes
    pos[nodes] = (pos[nodes] * n[:, None] + sums) / new_n[:, None]
    counts[nodes] = new_n
    return nodes
