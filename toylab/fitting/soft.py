"""Soft selection: each point picks node k with probability proportional to exp(-beta d_k).

d_k is the point's distance to node k in domain units (L1, or Euclidean for l2), so beta is
per unit distance. beta = 0 picks uniformly; as beta grows the choice sharpens toward the
nearest node (exactly the nearest in the limit, ties shared).

Memory stays O(K): points are handled in chunks of rows so a distance table never exceeds
~2M entries, and no B x K probability matrix is kept. Weights are exp(-beta (d - d_min)):
shifting by each row's d_min keeps the nearest node's weight at 1, so nothing underflows to an
all-zero row. Nodes with beta (d - d_min) > TRUNCATE (weight < e^-TRUNCATE, about 1e-20, so
all of them together carry less than K e^-46 of the mass) are dropped, which leaves few
candidates once beta is large; each row's node is then drawn by inverse CDF over its
candidates' running sums with one uniform number. While beta is small nearly every node is a
candidate; then rejection sampling is cheaper: propose a node uniformly and accept it with
probability exp(-beta (d - d_min)), exact since that is at most 1. Rows that reject every
proposal of a few rounds fall back to the inverse CDF over all nodes. On a GPU the same
draw is done with the Gumbel-max trick in torch.
"""

from __future__ import annotations

import numpy as np

from toylab.fitting.nearest import CHUNK_ELEMENTS, Scratch, distances_np, distances_torch
from toylab.fitting.soft_kernel import TRUNCATE
from toylab.lazy import is_torch, torch

_SPARSE_BELOW = 0.25  # use the candidate list when it holds under this share of the table
_BLOCK = 128  # nodes per block in the dense path's two-level running sums
_REJECTION_ROUNDS = (16, 64, 256)  # proposals per row in each round before the dense fallback


class SoftSelector:
    """Draws soft-selection matches on CPU (numpy) or GPU (torch) with reusable buffers."""

    def __init__(self, distance: str):
        self.distance = distance
        self.scratch = Scratch()
        self._mask = np.empty(0, dtype=bool)

    def select(
        self,
        points,
        nodes,
        beta: float,
        rng: np.random.Generator,
        gen: torch.Generator | None = None,
    ):
        """One node index per point, drawn with probability proportional to exp(-beta d)."""
        if is_torch(nodes):
            return self._select_torch(points, nodes, beta, gen)
        k = nodes.shape[0]
        out = np.empty(points.shape[0], dtype=np.int64)
        chunk = max(1, CHUNK_ELEMENTS // k)
        for s in range(0, points.shape[0], chunk):
            pts = points[s : s + chunk]
            table = distances_np(pts, nodes, self.distance, self.scratch)
            if self.distance == "l2":
                np.sqrt(table, out=table)
            table -= table.min(axis=1, keepdims=True)  # now d - d_min >= 0
            table *= beta  # now the negative log weight, 0 for the nearest node
            u = rng.random(pts.shape[0])
            size = table.size
            if self._mask.size < size:
                self._mask = np.empty(size, dtype=bool)
            mask = self._mask[:size].reshape(table.shape)
            np.less_equal(table, TRUNCATE, out=mask)
            candidates = np.flatnonzero(mask)
            if candidates.size < _SPARSE_BELOW * size:
                out[s : s + chunk] = self._draw_sparse(table, candidates, u)
            else:
                out[s : s + chunk] = self._draw_rejection(table, mask, u, rng)
        return out

    def _draw_rejection(
        self, table: np.ndarray, mask: np.ndarray, u: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Rejection sampling while weights are broad: propose a node uniformly, accept it
        with probability exp(-beta (d - d_min)) (at most 1, so the draw is exact). Rows with
        no acceptance after a few rounds of proposals fall back to the dense inverse CDF."""
        rows, k = table.shape
        out = np.full(rows, -1, dtype=np.int64)
        pending = np.arange(rows)
        for proposals in _REJECTION_ROUNDS:
            cols = rng.integers(0, k, size=(pending.size, proposals))
            accept = rng.random((pending.size, proposals)) < np.exp(-table[pending[:, None], cols])
            hit = accept.any(axis=1)
            first = accept.argmax(axis=1)
            out[pending[hit]] = cols[hit, first[hit]]
            pending = pending[~hit]
            if pending.size == 0:
                return out
        out[pending] = self._draw_dense(table[pending], mask[pending], u[pending])
        return out

    @staticmethod
    def _draw_dense(table: np.ndarray, mask: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Inverse CDF over every node, the table turned into weights in place.

        Running sums are found in two levels (sums of blocks of _BLOCK nodes, then within the
        chosen block) because a full row cumsum is several times slower than block sums.
        """
        np.minimum(table, TRUNCATE + 1.0, out=table)  # no subnormal exp results (slow)
        np.negative(table, out=table)
        np.exp(table, out=table)
        table *= mask  # weights past the truncation are dropped, as in the sparse path
        rows, k = table.shape
        block_sums = np.add.reduceat(table, np.arange(0, k, _BLOCK), axis=1)
        block_cum = np.cumsum(block_sums, axis=1)
        targets = u * block_cum[:, -1]
        out = np.empty(rows, dtype=np.int64)
        for r in range(rows):
            b = min(
                int(np.searchsorted(block_cum[r], targets[r], side="right")), block_cum.shape[1] - 1
            )
            before = block_cum[r, b - 1] if b > 0 else 0.0
            inside = np.cumsum(table[r, b * _BLOCK : (b + 1) * _BLOCK])
            j = int(np.searchsorted(inside, targets[r] - before, side="right"))
            out[r] = min(b * _BLOCK + j, b * _BLOCK + inside.size - 1)
        return out

    @staticmethod
    def _draw_sparse(table: np.ndarray, candidates: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Inverse CDF over each row's candidates only (every row has one: its nearest)."""
        rows, cols = np.divmod(candidates, table.shape[1])  # row-major: rows come grouped
        weights = np.exp(-table.ravel()[candidates])
        running = np.cumsum(weights)
        counts = np.bincount(rows, minlength=table.shape[0])
        ends = np.cumsum(counts)
        starts = ends - counts
        before = np.where(starts > 0, running[np.maximum(starts - 1, 0)], 0.0)
        totals = running[ends - 1] - before
        pick = np.searchsorted(running, before + u * totals, side="right")
        return cols[np.clip(pick, starts, ends - 1)]

    def _select_torch(self, points, nodes, beta: float, gen: torch.Generator | None):
        k = nodes.shape[0]
        chunk = max(1, CHUNK_ELEMENTS // k)
        parts = []
        for s in range(0, points.shape[0], chunk):
            d = distances_torch(points[s : s + chunk], nodes, self.distance)
            if self.distance == "l2":
                d = d.sqrt_()
            u = torch.rand(d.shape, generator=gen, device=d.device, dtype=d.dtype).clamp_(
                min=1e-300
            )
            gumbel = -torch.log(-torch.log(u))
            parts.append(torch.argmax(gumbel - beta * d, dim=1))
        return torch.cat(parts)
