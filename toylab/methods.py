"""The fitting methods. Each owns its node positions and state and shares one step interface:

    method.begin_target(steps)      a new target starts (Split-and-Prune resets its counts)
    method.step(points) -> Step     match a batch of points to nodes and move nodes
    method.state_dict() / load_state_dict(state)   everything a bit-exact resume needs

`positions` is a (K, 2) float64 torch tensor on the run's device. On CPU the per-step work
runs on a numpy view of it (`self.pos`), on a GPU on the tensor itself. Methods never touch
files or rendering; a run holds any mix of them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .nearest import make_index
from .optim import make_optimizer
from .splitting import plan_splits


@dataclass(frozen=True)
class Settings:
    """Hyperparameters shared by the methods of a run (each method reads what it needs)."""

    distance: str = "l1"
    optimizer: str = "sgd"
    lr: float | None = None  # None: the optimizer's default (sgd 0.2, adam 0.01)
    max_splits: int = 1
    split_ratio: float = 2.0
    prune_ratio: float = 0.5
    index: str = "auto"
    batch: int = 10  # lets "auto" pick brute force or the KD-tree index


@dataclass
class Step:
    """What one step did: the node each point matched, and the (split, pruned) pairs."""

    matched: np.ndarray | torch.Tensor
    splits: list[tuple[int, int]] = field(default_factory=list)


def _work_array(tensor: torch.Tensor):
    """The array the hot path works on: a numpy view on CPU, the tensor itself elsewhere."""
    return tensor.numpy() if tensor.device.type == "cpu" else tensor


def _state_tensor(array) -> torch.Tensor:
    return torch.as_tensor(array).detach().cpu().clone()


class GradientDescent:
    """Plain DDN training: each point's nearest node moves toward it; nothing else happens."""

    name = "gd"
    title = "gradient descent"

    def __init__(self, positions: torch.Tensor, settings: Settings, rng: np.random.Generator | None = None):
        self.settings = settings
        self.positions = positions.detach().clone().to(torch.float64)
        self.pos = _work_array(self.positions)
        self.optimizer = make_optimizer(settings.optimizer, self.pos, settings.lr)
        self.index = make_index(self.pos, settings.distance, settings.index, settings.batch)

    def _points(self, points):
        """Points as the work array type (numpy on CPU, tensor on the device otherwise)."""
        if isinstance(self.pos, np.ndarray):
            return np.asarray(points.cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
        return torch.as_tensor(points, dtype=torch.float64, device=self.positions.device)

    def begin_target(self, steps: int) -> None:
        """Gradient descent keeps no per-target state."""

    def match(self, points):
        """The nearest node of each point."""
        return self.index.query(points)

    def step(self, points) -> Step:
        points = self._points(points)
        matched = self.match(points)
        self._update(points, matched)
        return Step(matched)

    def _update(self, points, matched) -> None:
        moved = self.optimizer.step(points, matched)
        self.index.mark_moved(moved)

    def state_dict(self) -> dict:
        return {"positions": _state_tensor(self.positions), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.positions.copy_(state["positions"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.index.rebuild()


class SplitAndPrune(GradientDescent):
    """Gradient descent plus the paper's Split-and-Prune on per-node match counts.

    After matching, counts are added and `splitting.plan_splits` copies the most matched node
    (with its optimizer state) into the least matched node's slot; then the matched nodes move
    (the reference's order: count, split, update).
    """

    name = "sp"
    title = "Split-and-Prune"

    def __init__(self, positions: torch.Tensor, settings: Settings, rng: np.random.Generator | None = None):
        super().__init__(positions, settings, rng)
        k = self.positions.shape[0]
        if isinstance(self.pos, np.ndarray):
            self.counts = np.zeros(k)
        else:
            self.counts = torch.zeros(k, dtype=torch.float64, device=self.positions.device)

    def begin_target(self, steps: int) -> None:
        """Counts describe the current target only: reset them when it changes."""
        self.counts[:] = 0

    def step(self, points) -> Step:
        points = self._points(points)
        matched = self.match(points)
        if isinstance(self.counts, np.ndarray):
            np.add.at(self.counts, matched, 1.0)
        else:
            self.counts.index_add_(0, matched, torch.ones_like(matched, dtype=self.counts.dtype))
        s = self.settings
        pairs = plan_splits(self.counts, s.max_splits, s.split_ratio, s.prune_ratio)
        if pairs:
            self._copy_nodes(pairs)
        self._update(points, matched)
        return Step(matched, pairs)

    def _copy_nodes(self, pairs: list[tuple[int, int]]) -> None:
        """Apply the splits in order (a later pair may read a slot an earlier one wrote)."""
        if len(pairs) == 1 and isinstance(self.pos, np.ndarray):
            i, j = pairs[0]
            self.pos[j] = self.pos[i]
            self.optimizer.copy_state(i, j)
            self.index.mark_moved(np.array([j]))
            return
        src = np.fromiter((p[0] for p in pairs), np.int64, len(pairs))
        dst = np.fromiter((p[1] for p in pairs), np.int64, len(pairs))
        if not isinstance(self.pos, np.ndarray):
            src_t = torch.from_numpy(src).to(self.positions.device)
            dst_t = torch.from_numpy(dst).to(self.positions.device)
        else:
            src_t, dst_t = src, dst
        independent = not np.isin(src, dst).any() and np.unique(dst).size == dst.size
        if independent:
            self.pos[dst_t] = self.pos[src_t]
            self.optimizer.copy_state(src_t, dst_t)
        else:
            for n in range(len(pairs)):
                self.pos[dst_t[n : n + 1]] = self.pos[src_t[n : n + 1]]
                self.optimizer.copy_state(src_t[n : n + 1], dst_t[n : n + 1])
        self.index.mark_moved(dst_t)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "counts": _state_tensor(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        value = state["counts"]
        self.counts[:] = value.numpy() if isinstance(self.counts, np.ndarray) else value.to(self.counts.device)


METHODS: dict[str, type[GradientDescent]] = {"gd": GradientDescent, "sp": SplitAndPrune}


def make_method(name: str, positions: torch.Tensor, settings: Settings, rng: np.random.Generator) -> GradientDescent:
    """A fresh method called `name`, starting from a copy of `positions`."""
    return METHODS[name](positions, settings, rng)
