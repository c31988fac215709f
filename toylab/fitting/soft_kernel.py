"""Soft selection on CPU, compiled with numba: exact draws from exp(-beta d) in O(1) memory.

For each point the nearest node's distance d_min comes from the grid index. A node j proposed
uniformly at random is accepted with probability exp(-beta (d_j - d_min)) <= 1, which draws
exactly from the target law (rejection sampling). While beta is small almost every proposal is
accepted; once the expected number of proposals would pass K, a single pass over all K nodes
(inverse CDF of the same weights) is cheaper, so after K rejected proposals the point switches
to it. Once beta is large, the weight vanishes a short way past d_min: then only the grid
cells within d_min + TRUNCATE / beta are scanned (weights below e^-46 of the nearest node's
dropped, less than K e^-46 of the mass in all), when they hold fewer nodes than a quarter of K.
Random numbers come from the method's own numpy Generator (numba draws from it directly), so
runs are reproducible and resumable.
"""

from __future__ import annotations

import math

import numpy as np

from toylab.compiled import AVAILABLE, njit, warms_up  # noqa: F401 (AVAILABLE: methods.py reads it here)

TRUNCATE = 46.0  # weights below e^-46 of the nearest node's are dropped in the local scan


_jit = njit()


@_jit
def _distance(px: float, py: float, x: float, y: float, l1: bool) -> float:
    dx = abs(px - x)
    dy = abs(py - y)
    return dx + dy if l1 else math.sqrt(dx * dx + dy * dy)


@_jit
def _local_weights(px, py, pos, head, nxt, g, ci, cj, rings, d_min, beta, l1, target, total):
    """Sum of weights over the cells within `rings` of (ci, cj), or, with target >= 0, the
    node at which the running sum passes target (-1 if it never does)."""
    acc = 0.0
    for j in range(max(cj - rings, 0), min(cj + rings, g - 1) + 1):
        for i in range(max(ci - rings, 0), min(ci + rings, g - 1) + 1):
            n = head[j * g + i]
            while n >= 0:
                w = beta * (_distance(px, py, pos[n, 0], pos[n, 1], l1) - d_min)
                if w <= TRUNCATE:
                    acc += math.exp(-w)
                    if target >= 0.0 and acc > target:
                        return acc, n
                n = nxt[n]
    return acc, -1


@_jit
def _draw(points, pos, nearest, head, nxt, g, beta, l1, rng, out) -> None:
    k_nodes = pos.shape[0]
    h = 2.0 / g
    per_cell = k_nodes / (g * g)
    for k in range(points.shape[0]):
        px, py = points[k, 0], points[k, 1]
        n0 = nearest[k]
        d_min = _distance(px, py, pos[n0, 0], pos[n0, 1], l1)
        chosen = -1
        reach = d_min + TRUNCATE / beta if beta > 0.0 else math.inf
        rings = int(reach / h) + 1 if reach < 4.0 else g
        if (2 * rings + 1) ** 2 * per_cell < k_nodes / 4:  # few nodes within reach: scan them
            c0 = (
                int(min(max((px + 1.0) * (g / 2.0), 0.0), g - 1.0)),
                int(min(max((py + 1.0) * (g / 2.0), 0.0), g - 1.0)),
            )
            total, _ = _local_weights(
                px, py, pos, head, nxt, g, c0[0], c0[1], rings, d_min, beta, l1, -1.0, 0.0
            )
            _, chosen = _local_weights(
                px,
                py,
                pos,
                head,
                nxt,
                g,
                c0[0],
                c0[1],
                rings,
                d_min,
                beta,
                l1,
                rng.random() * total,
                total,
            )
            if chosen < 0:
                chosen = n0
            out[k] = chosen
            continue
        for _ in range(k_nodes):  # rejection sampling, at most K proposals
            j = rng.integers(0, k_nodes)
            d = _distance(px, py, pos[j, 0], pos[j, 1], l1)
            if rng.random() < math.exp(-beta * (d - d_min)):
                chosen = j
                break
        if chosen < 0:  # inverse CDF over every node: one pass for the total, one to find it
            total = 0.0
            for j in range(k_nodes):
                total += math.exp(-beta * (_distance(px, py, pos[j, 0], pos[j, 1], l1) - d_min))
            target = rng.random() * total
            acc = 0.0
            chosen = n0
            for j in range(k_nodes):
                acc += math.exp(-beta * (_distance(px, py, pos[j, 0], pos[j, 1], l1) - d_min))
                if acc > target:
                    chosen = j
                    break
        out[k] = chosen


def soft_draw(points: np.ndarray, index, beta: float, rng: np.random.Generator) -> np.ndarray:
    """One node per point, drawn with probability proportional to exp(-beta d), using the
    grid index over the nodes (`toylab.fitting.grid_index.GridIndex`) for d_min and the local scan."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    nearest = index.query(points)
    out = np.empty(points.shape[0], dtype=np.int64)
    _draw(
        points,
        index.positions,
        nearest,
        index._head,
        index._next,
        index.g,
        float(beta),
        index.distance == "l1",
        rng,
        out,
    )
    return out


@warms_up
def _warm_up(methods: tuple[str, ...], distance: str, max_splits: int) -> None:
    """Load the draw kernels if soft selection runs."""
    if "soft" in methods:
        from toylab.fitting.grid_index import GridIndex

        index = GridIndex(np.array([[0.0, 0.0], [0.5, 0.5]]), distance)
        soft_draw(np.array([[0.1, 0.1]]), index, 1.0, np.random.default_rng(0))
