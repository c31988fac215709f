"""Node updates: the reference's sequential SGD rule, vectorized, and a sparse Adam.

Only matched nodes move. A point's loss is ||x - node||^2, its gradient on the node 2 (node - x).

SGD: the reference moves a matched node toward each of its points in turn,
node <- node + 2 lr (x - node). On CPU that loop runs as written, compiled with numba. On a
GPU (torch) it runs vectorized: with a = 2 lr, a node matched by points x_1..x_m (batch order)
ends at (1 - a)^m node + sum_r a (1 - a)^(m - r) x_r, the same result up to rounding.

Adam: per-node moments and per-node step counts (like torch.optim.SparseAdam): a node's
moments change only when it is matched, and its bias correction counts its own updates. Its
gradient is the sum over its points of 2 (node - x).

Arrays are numpy on CPU and torch tensors on a GPU, through the method's `Backend`; both paths
compute the same thing. Per-node state is declared (`state_fields`) and saved by StateMixin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toylab.compiled import AVAILABLE as COMPILED
from toylab.compiled import njit, warms_up
from toylab.fitting.backend import NUMPY, Backend, StateMixin, group_by_node
from toylab.params import DEFAULT_LR, OPTIMIZERS

__all__ = ["DEFAULT_LR", "OPTIMIZERS", "SGD", "Adam", "group_by_node", "make_optimizer"]


@njit()
def _sgd_in_order(pos: np.ndarray, points: np.ndarray, idx: np.ndarray, a: float) -> None:
    """The reference's loop itself, compiled: node += a (x - node), point by point."""
    for k in range(idx.shape[0]):
        n = idx[k]
        pos[n, 0] += a * (points[k, 0] - pos[n, 0])
        pos[n, 1] += a * (points[k, 1] - pos[n, 1])


class SGD(StateMixin):
    """Sequential SGD: a step of a = 2 lr toward each matched point in batch order."""

    name = "sgd"

    def __init__(self, positions: Any, lr: float, backend: Backend = NUMPY):
        self.positions = positions
        self.lr = float(lr)
        self.backend = backend

    def step(self, points: Any, idx: Any) -> Any:
        """Move the matched nodes; return the nodes that moved (repeats allowed)."""
        a = 2.0 * self.lr
        pos, b = self.positions, self.backend
        if COMPILED and b is NUMPY:
            _sgd_in_order(
                pos,
                np.ascontiguousarray(points, dtype=np.float64),
                np.ascontiguousarray(idx, dtype=np.int64),
                a,
            )
            return idx
        if b.all_distinct(idx):  # the common case at small batch: one point per node
            pos[idx] = pos[idx] * (1.0 - a) + points * a
            return idx
        order, nodes, group, rank, sizes = b.group_by_node(idx)
        keep = 1.0 - a
        weights = a * b.power(keep, sizes[group] - rank)
        pulled = b.rows(nodes.shape[0])
        b.add_at(pulled, group, points[order] * weights[:, None])
        pos[nodes] = pos[nodes] * b.power(keep, sizes)[:, None] + pulled
        return nodes

    def copy_state(self, src: Any, dst: Any) -> None:
        """SGD keeps no per-node state."""


class Adam(StateMixin):
    """Adam on matched nodes only, with per-node moments and step counts."""

    name = "adam"
    state_fields = ("exp_avg", "exp_avg_sq", "steps")

    def __init__(
        self,
        positions: Any,
        lr: float,
        backend: Backend = NUMPY,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.positions = positions
        self.lr = float(lr)
        self.backend = backend
        self.betas = betas
        self.eps = eps
        self.exp_avg = backend.zeros_like(positions)
        self.exp_avg_sq = backend.zeros_like(positions)
        self.steps = backend.int_zeros(positions.shape[0])

    def step(self, points: Any, idx: Any) -> Any:
        """One Adam update of every matched node; return the distinct nodes that moved."""
        b1, b2 = self.betas
        b = self.backend
        order, nodes, group, _, _ = b.group_by_node(idx)
        diff = 2.0 * (self.positions[idx[order]] - points[order])
        grad = b.rows(nodes.shape[0])
        b.add_at(grad, group, diff)
        m = self.exp_avg[nodes] * b1 + grad * (1 - b1)
        v = self.exp_avg_sq[nodes] * b2 + grad * grad * (1 - b2)
        t = self.steps[nodes] + 1
        self.exp_avg[nodes], self.exp_avg_sq[nodes], self.steps[nodes] = m, v, t
        tf = t[:, None] * 1.0
        m_hat = m / (1 - b1**tf)
        v_hat = v / (1 - b2**tf)
        self.positions[nodes] -= self.lr * m_hat / (b.sqrt(v_hat) + self.eps)
        return nodes

    def copy_state(self, src: Any, dst: Any) -> None:
        """A split copies the split node's moments and step count into the reused slot."""
        self.exp_avg[dst] = self.exp_avg[src]
        self.exp_avg_sq[dst] = self.exp_avg_sq[src]
        self.steps[dst] = self.steps[src]


def make_optimizer(
    name: str, positions: Any, lr: float | None, backend: Backend = NUMPY
) -> SGD | Adam:
    """The optimizer called `name` over these positions (lr None = its default)."""
    lr = DEFAULT_LR[name] if lr is None else lr
    return SGD(positions, lr, backend) if name == "sgd" else Adam(positions, lr, backend)


@warms_up
def _warm_up(methods: tuple[str, ...], distance: str, max_splits: int) -> None:
    """Load the in-order SGD kernel."""
    SGD(np.array([[0.0, 0.0], [0.5, 0.5]]), 0.2).step(np.array([[0.1, 0.1]]), np.array([0]))
