"""The tree of points: a hierarchical DDN whose every parent owns its K children as free points.

Layer l holds K^(l+1) points (absolute positions; at initialisation each child sits at its
parent plus a uniform offset of scale ratio^l, the first layer uniform in [-1, 1]^2). Training,
per batch: every point descends the tree, taking at each layer the nearest child of the node it
chose above (the DDN's selection); every chosen node moves toward the mean of the points that
chose it by a step that decays on a cosine (the flat DDN's direct update, one per layer); then
Split-and-Prune runs per parent: within each parent's K children the most used one is copied,
together with its whole subtree and its counts, into the least used slot when the usual shares
(split_ratio / K, prune_ratio / K of the parent's total) say so. Sampling: a uniform path.
"""

from __future__ import annotations

import math

import numpy as np

from toylab.fitting.tree.table import TreeTable


def cosine_step(start: float, end: float, t: int, total: int) -> float:
    """The step size at step t of `total`: start at t = 0 decaying on a half cosine to end."""
    frac = min(max(t / max(total, 1), 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))


def nearest_children(
    positions: list[np.ndarray], k: int, points: np.ndarray, distance: str = "l2"
) -> np.ndarray:
    """(B, L) node id chosen at every layer by the descent to each point (nearest child)."""
    b = points.shape[0]
    node = np.zeros(b, dtype=np.int64)
    out = np.empty((b, len(positions)), dtype=np.int64)
    for level, pos in enumerate(positions):
        cand = pos.reshape(-1, k, 2)[node]  # (B, K, 2)
        diff = cand - points[:, None, :]
        d = np.abs(diff).sum(axis=2) if distance == "l1" else (diff * diff).sum(axis=2)
        node = node * k + np.argmin(d, axis=1)
        out[:, level] = node
    return out


class PointTree:
    """K-ary tree of L layers of free points, trained by nearest-child selection."""

    def __init__(
        self,
        k: int,
        layers: int,
        ratio: float,
        rng: np.random.Generator,
        distance: str = "l2",
        split_ratio: float = 2.0,
        prune_ratio: float = 0.5,
        max_splits: int = 1,
    ):
        self.k, self.n_layers, self.ratio = k, layers, ratio
        self.distance = distance
        self.split_ratio, self.prune_ratio, self.max_splits = split_ratio, prune_ratio, max_splits
        self.positions: list[np.ndarray] = []
        parent = np.zeros((1, 2))
        for level in range(layers):
            scale = ratio**level
            offsets = rng.uniform(-scale, scale, size=(parent.shape[0], k, 2))
            parent = (parent[:, None, :] + offsets).reshape(-1, 2)
            self.positions.append(parent)
        self.counts = [np.zeros(k ** (level + 1)) for level in range(layers)]
        self.splits = [0] * layers  # splits done per layer since the target began

    @property
    def parameters(self) -> int:
        return sum(p.size for p in self.positions)

    def table(self) -> TreeTable:
        """The model as a TreeTable (views of the positions, uniform prior)."""
        return TreeTable(self.k, self.positions)

    def reset_counts(self) -> None:
        for c in self.counts:
            c[:] = 0
        self.splits = [0] * self.n_layers

    def step(self, points: np.ndarray, step_size: float) -> np.ndarray:
        """One training step on a (B, 2) batch; returns the (B, L) chosen node ids."""
        chosen = nearest_children(self.positions, self.k, points, self.distance)
        for level in range(self.n_layers):
            n = self.counts[level].shape[0]
            self.counts[level] += np.bincount(chosen[:, level], minlength=n)
        for level in range(self.n_layers):
            for _ in range(self.max_splits):
                if not self._split_layer(level):
                    break
        for level in range(self.n_layers):
            self._move(level, chosen[:, level], points, step_size)
        return chosen

    def _move(self, level: int, nodes: np.ndarray, points: np.ndarray, step: float) -> None:
        pos = self.positions[level]
        n = pos.shape[0]
        hits = np.bincount(nodes, minlength=n)
        moved = np.flatnonzero(hits)
        sx = np.bincount(nodes, weights=points[:, 0], minlength=n)[moved]
        sy = np.bincount(nodes, weights=points[:, 1], minlength=n)[moved]
        mean = np.stack([sx, sy], axis=1) / hits[moved, None]
        pos[moved] += step * (mean - pos[moved])

    def _split_layer(self, level: int) -> bool:
        """One Split-and-Prune pass over every parent of `level`; True if any pair was split."""
        k = self.k
        c = self.counts[level].reshape(-1, k)
        total = c.sum(axis=1)
        i = np.argmax(c, axis=1)
        j = np.argmin(c, axis=1)
        rows = np.arange(c.shape[0])
        ci, cj = c[rows, i], c[rows, j]
        do = (total > 0) & (i != j)
        do &= (ci > self.split_ratio / k * total) | (cj < self.prune_ratio / k * total)
        parents = np.flatnonzero(do)
        if parents.size == 0:
            return False
        src = parents * k + i[parents]
        dst = parents * k + j[parents]
        self.copy_subtrees(level, src, dst)
        half = ci[parents] / 2
        self.counts[level][src] = half
        self.counts[level][dst] = half
        self.splits[level] += int(parents.size)
        return True

    def copy_subtrees(self, level: int, src: np.ndarray, dst: np.ndarray) -> None:
        """Copy nodes src -> dst of `level` with their whole subtrees (positions and counts)."""
        self.positions[level][dst] = self.positions[level][src]
        for deeper in range(level + 1, self.n_layers):
            span = self.k ** (deeper - level)
            offs = np.arange(span)
            s = (src[:, None] * span + offs).ravel()
            d = (dst[:, None] * span + offs).ravel()
            self.positions[deeper][d] = self.positions[deeper][s]
            self.counts[deeper][d] = self.counts[deeper][s]

    def state_dict(self) -> dict:
        import torch

        return {
            "positions": [torch.from_numpy(p.copy()) for p in self.positions],
            "counts": [torch.from_numpy(c.copy()) for c in self.counts],
            "splits": list(self.splits),
        }

    def load_state_dict(self, state: dict) -> None:
        for level in range(self.n_layers):
            self.positions[level][:] = state["positions"][level].numpy()
            self.counts[level][:] = state["counts"][level].numpy()
        self.splits = [int(s) for s in state["splits"]]
