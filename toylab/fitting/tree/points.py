"""The tree of points: a hierarchical DDN whose every parent owns its K children as free points.

Layer l holds K^(l+1) points (absolute positions; at initialisation each child sits at its
parent plus a uniform offset of scale ratio^l, the first layer uniform in [-1, 1]^2). Training,
per batch: every point descends the tree, taking at each layer the nearest child of the node it
chose above (the DDN's selection); every chosen node moves toward the mean of the points that
chose it by a step that decays on a cosine (the flat DDN's direct update, one per layer); then
Split-and-Prune runs per parent: within each parent's K children the most used one is copied,
together with its whole subtree and its counts, into the least used slot when the usual shares
(split_ratio / K, prune_ratio / K of the parent's total) say so. Sampling: a path drawn with
the learned prior (each child's decayed use by the data over its siblings', `prior = "learned"`)
or uniformly (`prior = "uniform"`, the paper's 1/K).
"""

from __future__ import annotations

import math
from functools import cache
from itertools import pairwise

import numpy as np

from toylab.fitting.tree import kernels
from toylab.fitting.tree.table import TreeTable
from toylab.lazy import as_numpy


def cosine_step(start: float, end: float, t: int, total: int) -> float:
    """The step size at step t of `total`: start at t = 0 decaying on a half cosine to end."""
    frac = min(max(t / max(total, 1), 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))


def nearest_children(
    positions: list[np.ndarray], k: int, points: np.ndarray, distance: str = "l2"
) -> np.ndarray:
    """(B, L) node id chosen at every layer by the descent to each point (nearest child)."""
    flat = np.concatenate(positions)
    offsets = np.cumsum([0] + [p.shape[0] for p in positions]).astype(np.int64)
    return _descend(flat, offsets, k, points, distance)[0]


def _descend(flat, offsets, k, points, distance):
    points = np.ascontiguousarray(points, dtype=np.float64)
    chosen = np.empty((points.shape[0], offsets.shape[0] - 1), dtype=np.int64)
    sums = np.zeros_like(flat)
    hits = np.zeros(flat.shape[0])
    kernels.descend(flat, offsets, k, points, distance == "l1", chosen, sums, hits)
    return chosen, sums, hits


def usage_prior(usage: np.ndarray, offsets: np.ndarray, k: int) -> list[np.ndarray]:
    """Per layer, each node's use divided by its siblings' total (1/K where that is 0)."""
    out = []
    for a, b in pairwise(offsets):
        use = usage[a:b].reshape(-1, k)
        total = use.sum(axis=1, keepdims=True)
        out.append(np.where(total > 0, use / np.where(total > 0, total, 1.0), 1.0 / k).ravel())
    return out


@cache
def _warm_up() -> None:
    kernels.warm_up()


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
        _warm_up()  # compile (or load) the kernels now, not inside a timed step
        sizes = [k ** (level + 1) for level in range(layers)]
        self.offsets = np.cumsum([0, *sizes]).astype(np.int64)
        self.flat = np.empty((int(self.offsets[-1]), 2))  # every layer, one array
        self.flat_counts = np.zeros(int(self.offsets[-1]))
        self.positions = [self.flat[a:b] for a, b in pairwise(self.offsets)]
        self.counts = [self.flat_counts[a:b] for a, b in pairwise(self.offsets)]
        # decayed use of every node by the data: the learned prior p(child | parent)
        self.flat_usage = np.zeros(int(self.offsets[-1]))
        self.prior = "learned"
        parent = np.zeros((1, 2))
        for level in range(layers):
            scale = ratio**level
            offsets = rng.uniform(-scale, scale, size=(parent.shape[0], k, 2))
            parent = (parent[:, None, :] + offsets).reshape(-1, 2)
            self.positions[level][:] = parent
        self.splits = [0] * layers  # splits done per layer since the target began

    @property
    def parameters(self) -> int:
        return sum(p.size for p in self.positions)

    def table(self) -> TreeTable:
        """The model as a TreeTable (views of the positions) with its prior: uniform, or the
        learned one (each child's decayed use over its parent's; uniform under unused parents)."""
        if self.prior == "uniform" or not self.flat_usage.any():
            return TreeTable(self.k, self.positions)
        return TreeTable(self.k, self.positions, usage_prior(self.flat_usage, self.offsets, self.k))

    def reset_counts(self) -> None:
        """A new target: split counts and the learned prior's use start from zero."""
        self.flat_counts[:] = 0
        self.flat_usage[:] = 0
        self.splits = [0] * self.n_layers

    def step(self, points: np.ndarray, step_size: float, decay: float = 1.0) -> np.ndarray:
        """One training step on a (B, 2) batch: descend, count, Split-and-Prune per parent
        (layer by layer, coarse first), then move every chosen node toward its points' mean.
        Returns the (B, L) chosen node ids."""
        chosen, sums, hits = _descend(self.flat, self.offsets, self.k, points, self.distance)
        self.flat_counts += hits
        self.flat_usage *= decay
        self.flat_usage += hits
        for level in range(self.n_layers):
            for _ in range(self.max_splits):
                if not self._split_layer(level):
                    break
        moved = np.flatnonzero(hits)
        mean = sums[moved] / hits[moved, None]
        self.flat[moved] += step_size * (mean - self.flat[moved])
        return chosen

    def _split_layer(self, level: int) -> bool:
        """One Split-and-Prune pass over the parents of `level`; True if any pair was split."""
        done = kernels.split_layer(
            self.flat,
            self.flat_counts,
            self.flat_usage,
            self.offsets,
            self.k,
            level,
            self.split_ratio,
            self.prune_ratio,
        )
        self.splits[level] += done
        return done > 0

    def state_dict(self) -> dict:
        return {
            "positions": [p.copy() for p in self.positions],
            "counts": [c.copy() for c in self.counts],
            "usage": self.flat_usage.copy(),
            "splits": list(self.splits),
        }

    def load_state_dict(self, state: dict) -> None:
        """Also reads checkpoints whose arrays were saved as tensors (before format 3)."""
        for level in range(self.n_layers):
            self.positions[level][:] = as_numpy(state["positions"][level])
            self.counts[level][:] = as_numpy(state["counts"][level])
        self.flat_usage[:] = as_numpy(state["usage"])
        self.splits = [int(s) for s in state["splits"]]
