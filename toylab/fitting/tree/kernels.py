"""Compiled hot paths of the tree of points (numba; plain Python fallback if it is missing).

All layers live in one flat (N, 2) array, layer l at rows offsets[l] .. offsets[l + 1]; node n
of layer l is row offsets[l] + n, its children rows offsets[l + 1] + n K .. + K - 1.
"""

from __future__ import annotations

import numpy as np

from toylab.compiled import njit

_jit = njit()  # toylab's one numba set-up: loaded on the first call, plain Python without numba


@_jit
def descend(flat, offsets, k, points, l1, chosen, sums, hits):
    """For every point, the nearest child at each layer below the node chosen above: writes
    chosen[b, l] (node id within layer l) and adds the point to sums/hits of each chosen row."""
    layers = offsets.shape[0] - 1
    for b in range(points.shape[0]):
        px = points[b, 0]
        py = points[b, 1]
        node = 0
        for level in range(layers):
            base = offsets[level] + node * k
            best = 0
            best_d = np.inf
            for c in range(k):
                dx = flat[base + c, 0] - px
                dy = flat[base + c, 1] - py
                d = abs(dx) + abs(dy) if l1 else dx * dx + dy * dy
                if d < best_d:
                    best_d = d
                    best = c
            node = node * k + best
            chosen[b, level] = node
            row = offsets[level] + node
            sums[row, 0] += px
            sums[row, 1] += py
            hits[row] += 1.0


@_jit
def split_layer(flat, counts, usage, offsets, k, level, split_ratio, prune_ratio):
    """One Split-and-Prune pass over every parent of `level`: within a parent's K children the
    most counted (first on ties) is copied with its whole subtree (positions, counts and use)
    into the least counted's slot when max > split/K total or min < prune/K total; the pair
    shares the max count (and the source's use). Returns the number of splits."""
    layers = offsets.shape[0] - 1
    parents = (offsets[level + 1] - offsets[level]) // k
    done = 0
    for p in range(parents):
        base = offsets[level] + p * k
        total = 0.0
        i = 0
        j = 0
        for c in range(k):
            v = counts[base + c]
            total += v
            if v > counts[base + i]:
                i = c
            if v < counts[base + j]:
                j = c
        if total <= 0.0 or i == j:
            continue
        ci = counts[base + i]
        if not (ci > split_ratio / k * total or counts[base + j] < prune_ratio / k * total):
            continue
        src = p * k + i
        dst = p * k + j
        flat[offsets[level] + dst, 0] = flat[offsets[level] + src, 0]
        flat[offsets[level] + dst, 1] = flat[offsets[level] + src, 1]
        counts[offsets[level] + src] = ci / 2
        counts[offsets[level] + dst] = ci / 2
        half = usage[offsets[level] + src] / 2
        usage[offsets[level] + src] = half
        usage[offsets[level] + dst] = half
        span = 1
        for deeper in range(level + 1, layers):
            span *= k
            s0 = offsets[deeper] + src * span
            d0 = offsets[deeper] + dst * span
            for r in range(span):
                flat[d0 + r, 0] = flat[s0 + r, 0]
                flat[d0 + r, 1] = flat[s0 + r, 1]
                counts[d0 + r] = counts[s0 + r]
                usage[d0 + r] = usage[s0 + r]
        done += 1
    return done


def warm_up() -> None:
    """Compile (or load) the kernels on a 2 x 2 tree."""
    flat = np.zeros((6, 2))
    offsets = np.array([0, 2, 6], dtype=np.int64)
    counts = np.array([1.0, 0, 0, 0, 0, 0])
    pts = np.zeros((1, 2))
    descend(flat, offsets, 2, pts, False, np.zeros((1, 2), np.int64), np.zeros((6, 2)), counts)
    split_layer(flat, counts, counts.copy(), offsets, 2, 0, 2.0, 0.5)
