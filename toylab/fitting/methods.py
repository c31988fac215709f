"""The fitting methods. Each owns its node positions and state and shares one step interface:

    method.begin_target(steps, density)   a new target starts (e.g. Split-and-Prune resets counts)
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

import densities
from toylab.fitting.grid_index import GridIndex
from toylab.fitting.kmeans import kmeans_plus_plus, running_mean_update
from toylab.fitting.nearest import BruteForceIndex, make_index
from toylab.fitting.optim import make_optimizer
from toylab.fitting.schedule import DEFAULT_BETA_END, DEFAULT_BETA_START, DEFAULT_SCHEDULE, beta_at
from toylab.fitting.soft import SoftSelector
from toylab.fitting.soft_kernel import AVAILABLE as SOFT_COMPILED
from toylab.fitting.soft_kernel import soft_draw
from toylab.fitting.splitting import plan_splits
from toylab.fitting.tree.method import TreeMethod


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
    beta_start: float = DEFAULT_BETA_START
    beta_end: float = DEFAULT_BETA_END
    beta_schedule: str = DEFAULT_SCHEDULE
    # -- hierarchical DDN (--method tree; see fitting/tree/) ---------------------------------
    tree_form: str = "points"
    tree_k: int | None = None  # None: the form's default (points 8, neural 64)
    tree_layers: int | None = None  # None: the form's default (points 5, neural 2)
    tree_step: float = 0.3
    tree_step_end: float = 0.006
    tree_ratio: float = 0.45
    tree_lr: float = 2e-3
    tree_eval_samples: int = 1_000_000
    tree_prior: str = "learned"
    # -- end of the tree block ---------------------------------------------------------------


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
    uses_index = True  # matches by nearest node, so keeps a nearest-node index

    def __init__(
        self, positions: torch.Tensor, settings: Settings, rng: np.random.Generator | None = None
    ):
        self.settings = settings
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.positions = positions.detach().clone().to(torch.float64)
        self.pos = _work_array(self.positions)
        self.optimizer = make_optimizer(settings.optimizer, self.pos, settings.lr)
        if self.uses_index:
            self.index = make_index(self.pos, settings.distance, settings.index, settings.batch)
        else:
            self.index = BruteForceIndex(self.pos, settings.distance)

    def _points(self, points):
        """Points as the work array type (numpy on CPU, tensor on the device otherwise)."""
        if isinstance(self.pos, np.ndarray):
            return np.asarray(
                points.cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64
            )
        return torch.as_tensor(points, dtype=torch.float64, device=self.positions.device)

    def begin_target(self, steps: int, density: densities.Density) -> None:
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
        return {
            "positions": _state_tensor(self.positions),
            "optimizer": self.optimizer.state_dict(),
        }

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

    def __init__(
        self, positions: torch.Tensor, settings: Settings, rng: np.random.Generator | None = None
    ):
        super().__init__(positions, settings, rng)
        k = self.positions.shape[0]
        if isinstance(self.pos, np.ndarray):
            self.counts = np.zeros(k)
        else:
            self.counts = torch.zeros(k, dtype=torch.float64, device=self.positions.device)

    def begin_target(self, steps: int, density: densities.Density) -> None:
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
        """Apply the splits as if one after another: a later pair may read a slot that an
        earlier pair wrote, so each written slot takes the original node its chain leads to."""
        if len(pairs) == 1:
            i, j = pairs[0]
            src, dst = np.array([i]), np.array([j])
        else:
            origin: dict[int, int] = {}
            for i, j in pairs:
                origin[j] = origin.get(i, i)
            dst = np.fromiter(origin.keys(), np.int64, len(origin))
            src = np.fromiter(origin.values(), np.int64, len(origin))
        if not isinstance(self.pos, np.ndarray):
            src_t = torch.from_numpy(src).to(self.positions.device)
            dst_t = torch.from_numpy(dst).to(self.positions.device)
        else:
            src_t, dst_t = src, dst
        self.pos[dst_t] = self.pos[src_t]  # the right side is gathered before any write
        self.optimizer.copy_state(src_t, dst_t)
        self.index.mark_moved(dst)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "counts": _state_tensor(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        value = state["counts"]
        self.counts[:] = (
            value.numpy() if isinstance(self.counts, np.ndarray) else value.to(self.counts.device)
        )


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


class SoftSelection(GradientDescent):
    """Soft selection: each point moves a node drawn with probability proportional to
    exp(-beta d), not always its nearest node, with beta annealed over each target.

    Early on (small beta) far nodes still win points now and then, so no node stays dead;
    as beta grows the rule becomes plain nearest-node gradient descent. beta follows
    `schedule.beta_at` from beta_start to beta_end over the steps of each target; draws come
    from the method's own random stream. No split or prune.
    """

    name = "soft"
    title = "soft selection"
    uses_index = True  # the nearest node's distance anchors the compiled draw

    def __init__(
        self, positions: torch.Tensor, settings: Settings, rng: np.random.Generator | None = None
    ):
        super().__init__(positions, settings, rng)
        self.selector = SoftSelector(settings.distance)
        self.target_step = 0
        self.target_steps = 1
        self.torch_gen = None
        if not isinstance(self.pos, np.ndarray):
            self.torch_gen = torch.Generator(device=self.positions.device)
            self.torch_gen.manual_seed(int(self.rng.integers(2**62)))

    @property
    def beta(self) -> float:
        s = self.settings
        return beta_at(
            s.beta_schedule, s.beta_start, s.beta_end, self.target_step, self.target_steps
        )

    def begin_target(self, steps: int, density: densities.Density) -> None:
        """The schedule restarts from beta_start on every target."""
        self.target_step, self.target_steps = 0, steps

    def match(self, points):
        if SOFT_COMPILED and isinstance(self.index, GridIndex):
            return soft_draw(points, self.index, self.beta, self.rng)
        return self.selector.select(points, self.pos, self.beta, self.rng, self.torch_gen)

    def step(self, points) -> Step:
        step = super().step(points)
        self.target_step += 1
        return step

    def state_dict(self) -> dict:
        out = {
            **super().state_dict(),
            "target_step": self.target_step,
            "target_steps": self.target_steps,
            "rng": _rng_state(self.rng),
        }
        if self.torch_gen is not None:
            out["torch_gen"] = self.torch_gen.get_state()
        return out

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.target_step, self.target_steps = int(state["target_step"]), int(state["target_steps"])
        self.rng.bit_generator.state = state["rng"]
        if self.torch_gen is not None and "torch_gen" in state:
            self.torch_gen.set_state(state["torch_gen"])


class OnlineKMeans(GradientDescent):
    """The classical baseline: online k-means (MacQueen 1967).

    Nodes start from k-means++ on a sample of the first target drawn from the method's own
    stream (max(2K, 1000) points), not from the shared uniform nodes; each match then moves its
    node by 1/n of the offset, n its match count, the seed point counting as the first member.
    Counts restart at 1 when the target changes so the nodes can follow a new target. Empty
    clusters are never reassigned (that would be a split-and-prune of its own). --optimizer
    and --lr do not apply.
    """

    name = "kmeans"
    title = "online k-means"

    def __init__(
        self, positions: torch.Tensor, settings: Settings, rng: np.random.Generator | None = None
    ):
        super().__init__(positions, settings, rng)
        k = self.positions.shape[0]
        self.counts = (
            np.ones(k)
            if isinstance(self.pos, np.ndarray)
            else torch.ones(k, dtype=torch.float64, device=self.positions.device)
        )
        self.seeded = False

    def begin_target(self, steps: int, density: densities.Density) -> None:
        if not self.seeded:
            k = self.positions.shape[0]
            sample = density.sample(max(2 * k, 1000), self.rng)
            centres = kmeans_plus_plus(sample, k, self.rng, self.settings.distance)
            self.positions.copy_(torch.from_numpy(centres))
            self.index.rebuild()
            self.seeded = True
        self.counts[:] = 1

    def _update(self, points, matched) -> None:
        moved = running_mean_update(self.pos, self.counts, points, matched)
        self.index.mark_moved(moved)

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "counts": _state_tensor(self.counts),
            "seeded": self.seeded,
            "rng": _rng_state(self.rng),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        value = state["counts"]
        self.counts[:] = (
            value.numpy() if isinstance(self.counts, np.ndarray) else value.to(self.counts.device)
        )
        self.seeded = bool(state["seeded"])
        self.rng.bit_generator.state = state["rng"]


METHODS: dict[str, type[GradientDescent]] = {
    "gd": GradientDescent,
    "sp": SplitAndPrune,
    "soft": SoftSelection,
    "kmeans": OnlineKMeans,
    "tree": TreeMethod,  # the hierarchical DDN (issue 11): same interface, not a subclass
}


def make_method(
    name: str, positions: torch.Tensor, settings: Settings, rng: np.random.Generator
) -> GradientDescent:
    """A fresh method called `name`, starting from a copy of `positions`."""
    return METHODS[name](positions, settings, rng)
