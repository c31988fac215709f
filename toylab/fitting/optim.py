"""Node updates: the reference's sequential SGD rule, vectorized, and a sparse Adam.

Only matched nodes move. A point's loss is ||x - node||^2, its gradient on the node 2 (node - x).

SGD: the reference moves a matched node toward each of its points in turn,
node <- node + 2 lr (x - node). On CPU that loop runs as written, compiled with numba. On a
GPU (torch) it runs vectorized: with a = 2 lr, a node matched by points x_1..x_m (batch order)
ends at (1 - a)^m node + sum_r a (1 - a)^(m - r) x_r, the same result up to rounding.

Adam: per-node moments and per-node step counts (like torch.optim.SparseAdam): a node's
moments change only when it is matched, and its bias correction counts its own updates. Its
gradient is the sum over its points of 2 (node - x).

Arrays are numpy on CPU (views of the torch positions: tiny per-step work is several times
cheaper in numpy than in torch) and torch tensors on a GPU; both paths compute the same thing.
"""

from __future__ import annotations

import numpy as np

from toylab.fitting.compiled import AVAILABLE as COMPILED
from toylab.fitting.compiled import njit, warms_up
from toylab.lazy import torch

OPTIMIZERS = ("sgd", "adam")
DEFAULT_LR = {"sgd": 0.2, "adam": 0.01}


def group_by_node(idx):
    """Group matches by node, keeping batch order within a node (numpy or torch).

    Returns (order, nodes, group, rank, sizes): points[order] are grouped by node; `nodes` the
    distinct matched nodes; group[p] the position in `nodes` of sorted point p; rank[p] its
    1-based place among its node's points; sizes[g] the number of points of node g.
    """
    if isinstance(idx, torch.Tensor):
        order = torch.argsort(idx, stable=True)
        nodes, sizes = torch.unique_consecutive(idx[order], return_counts=True)
        group = torch.repeat_interleave(torch.arange(nodes.shape[0], device=idx.device), sizes)
        starts = torch.cumsum(sizes, 0) - sizes
        rank = torch.arange(idx.shape[0], device=idx.device) - starts[group] + 1
        return order, nodes, group, rank, sizes
    order = np.argsort(idx, kind="stable")
    s = idx[order]
    new = np.empty(s.size, dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, s.size))
    group = np.cumsum(new) - 1
    rank = np.arange(s.size) - starts[group] + 1
    return order, s[starts], group, rank, sizes


def _all_distinct(idx) -> bool:
    if isinstance(idx, torch.Tensor):
        return torch.unique(idx).numel() == idx.numel()
    s = np.sort(idx)
    return bool((s[1:] != s[:-1]).all())


@njit()
def _sgd_in_order(pos: np.ndarray, points: np.ndarray, idx: np.ndarray, a: float) -> None:
    """The reference's loop itself, compiled: node += a (x - node), point by point."""
    for k in range(idx.shape[0]):
        n = idx[k]
        pos[n, 0] += a * (points[k, 0] - pos[n, 0])
        pos[n, 1] += a * (points[k, 1] - pos[n, 1])


class SGD:
    """Sequential SGD: a step of a = 2 lr toward each matched point in batch order."""

    name = "sgd"

    def __init__(self, positions, lr: float):
        self.positions = positions
        self.lr = float(lr)

    def step(self, points, idx):
        """Move the matched nodes; return the nodes that moved (repeats allowed)."""
        a = 2.0 * self.lr
        pos = self.positions
        if COMPILED and isinstance(pos, np.ndarray):
            _sgd_in_order(
                pos,
                np.ascontiguousarray(points, dtype=np.float64),
                np.ascontiguousarray(idx, dtype=np.int64),
                a,
            )
            return idx
        if _all_distinct(idx):  # the common case at small batch: one point per node
            pos[idx] = pos[idx] * (1.0 - a) + points * a
            return idx
        order, nodes, group, rank, sizes = group_by_node(idx)
        keep = 1.0 - a
        if isinstance(idx, torch.Tensor):
            m = sizes[group]
            weights = a * torch.pow(
                torch.tensor(keep, dtype=points.dtype, device=points.device),
                (m - rank).to(points.dtype),
            )
            pulled = torch.zeros(nodes.shape[0], 2, dtype=points.dtype, device=points.device)
            pulled.index_add_(0, group, points[order] * weights[:, None])
            decay = torch.pow(
                torch.tensor(keep, dtype=points.dtype, device=points.device), sizes.to(points.dtype)
            )
        else:
            weights = a * keep ** (sizes[group] - rank).astype(np.float64)
            pulled = np.zeros((nodes.shape[0], 2))
            np.add.at(pulled, group, points[order] * weights[:, None])
            decay = keep ** sizes.astype(np.float64)
        pos[nodes] = pos[nodes] * decay[:, None] + pulled
        return nodes

    def copy_state(self, src, dst) -> None:
        """SGD keeps no per-node state."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to load."""


class Adam:
    """Adam on matched nodes only, with per-node moments and step counts."""

    name = "adam"

    def __init__(
        self, positions, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
        self.positions = positions
        self.lr = float(lr)
        self.betas = betas
        self.eps = eps
        if isinstance(positions, torch.Tensor):
            self.exp_avg = torch.zeros_like(positions)
            self.exp_avg_sq = torch.zeros_like(positions)
            self.steps = torch.zeros(positions.shape[0], dtype=torch.int64, device=positions.device)
        else:
            self.exp_avg = np.zeros_like(positions)
            self.exp_avg_sq = np.zeros_like(positions)
            self.steps = np.zeros(positions.shape[0], dtype=np.int64)

    def step(self, points, idx):
        """One Adam update of every matched node; return the distinct nodes that moved."""
        b1, b2 = self.betas
        order, nodes, group, _, _ = group_by_node(idx)
        diff = 2.0 * (self.positions[idx[order]] - points[order])
        if isinstance(idx, torch.Tensor):
            grad = torch.zeros(nodes.shape[0], 2, dtype=points.dtype, device=points.device)
            grad.index_add_(0, group, diff)
            sqrt = torch.sqrt
        else:
            grad = np.zeros((nodes.shape[0], 2))
            np.add.at(grad, group, diff)
            sqrt = np.sqrt
        m = self.exp_avg[nodes] * b1 + grad * (1 - b1)
        v = self.exp_avg_sq[nodes] * b2 + grad * grad * (1 - b2)
        t = self.steps[nodes] + 1
        self.exp_avg[nodes], self.exp_avg_sq[nodes], self.steps[nodes] = m, v, t
        tf = t[:, None] * 1.0
        m_hat = m / (1 - b1**tf)
        v_hat = v / (1 - b2**tf)
        self.positions[nodes] -= self.lr * m_hat / (sqrt(v_hat) + self.eps)
        return nodes

    def copy_state(self, src, dst) -> None:
        """A split copies the split node's moments and step count into the reused slot."""
        self.exp_avg[dst] = self.exp_avg[src]
        self.exp_avg_sq[dst] = self.exp_avg_sq[src]
        self.steps[dst] = self.steps[src]

    def state_dict(self) -> dict:
        return {
            k: torch.as_tensor(v).cpu().clone()
            for k, v in (
                ("exp_avg", self.exp_avg),
                ("exp_avg_sq", self.exp_avg_sq),
                ("steps", self.steps),
            )
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("exp_avg", "exp_avg_sq", "steps"):
            target = getattr(self, key)
            value = state[key]
            target[...] = (
                value.to(target.device) if isinstance(target, torch.Tensor) else value.numpy()
            )


def make_optimizer(name: str, positions, lr: float | None) -> SGD | Adam:
    """The optimizer called `name` over these positions (lr None = its default)."""
    lr = DEFAULT_LR[name] if lr is None else lr
    return SGD(positions, lr) if name == "sgd" else Adam(positions, lr)


@warms_up
def _warm_up(methods: tuple[str, ...], distance: str, max_splits: int) -> None:
    """Load the in-order SGD kernel."""
    SGD(np.array([[0.0, 0.0], [0.5, 0.5]]), 0.2).step(np.array([[0.1, 0.1]]), np.array([0]))
