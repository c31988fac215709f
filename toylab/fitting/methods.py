"""The fitting methods. Each owns its node positions and state and shares one step interface:

    method.begin_target(steps, density)   a new target starts (e.g. Split-and-Prune resets counts)
    method.step(points, detail=False) -> Step   match a batch of points to nodes and move nodes
    method.state_dict() / load_state_dict(state)   everything a bit-exact resume needs

`positions` is a (K, 2) float64 array: numpy on CPU (torch is never imported there), a torch
tensor on a GPU; the per-step work runs on `self.pos`, the backend's work array over it (the
same object), so no method asks which array kind it has. State is declared in `state_fields` and saved by
`StateMixin`. Methods receive validated `Settings` (toylab.config) and never check them again;
they never touch files or rendering. Names and titles live in `catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

import densities
from toylab.catalog import CATALOG
from toylab.fitting.backend import Positions, StateMixin, assign, backend_for, copy_positions
from toylab.fitting.grid_index import GridIndex
from toylab.fitting.kmeans import kmeans_plus_plus, running_mean_update
from toylab.fitting.nearest import make_index
from toylab.fitting.optim import make_optimizer
from toylab.fitting.schedule import beta_at
from toylab.fitting.soft import SoftSelector
from toylab.fitting.soft_kernel import AVAILABLE as SOFT_COMPILED
from toylab.fitting.soft_kernel import soft_draw
from toylab.fitting.splitting import SelectionHint, plan_splits
from toylab.lazy import torch
from toylab.params import Settings

__all__ = [
    "GradientDescent",
    "Method",
    "OnlineKMeans",
    "Settings",
    "SoftSelection",
    "SplitAndPrune",
    "Step",
    "make_method",
    "method_class",
]


@dataclass
class Step:
    """What one step did: the node each point matched and the (split, pruned) pairs.

    With `detail=True` the step also keeps what a teaching view needs and a normal run does
    not pay for: the batch, and the positions and split counts just before the step.
    """

    matched: Any
    splits: list[tuple[int, int]] = field(default_factory=list)
    points: np.ndarray | None = None
    positions_before: np.ndarray | None = None
    counts_before: np.ndarray | None = None


class Method(StateMixin):
    """The shared machinery: positions, backend, nearest-node index, optimizer, declared state."""

    name: ClassVar[str] = ""
    uses_optimizer: ClassVar[bool] = True
    state_fields: ClassVar[tuple[str, ...]] = ("positions", "optimizer")

    def __init__(
        self, positions: Positions, settings: Settings, rng: np.random.Generator | None = None
    ):
        self.settings = settings
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.positions = copy_positions(positions)
        self.backend = backend_for(self.positions)
        self.pos = self.backend.work(self.positions)
        self.optimizer = (
            make_optimizer(settings.optimizer, self.pos, settings.lr, self.backend)
            if self.uses_optimizer
            else None
        )
        self.index = make_index(self.pos, settings.distance, settings.index, settings.batch)

    @property
    def title(self) -> str:
        return CATALOG[self.name].title

    def begin_target(self, steps: int, density: densities.Density) -> None:
        """A new target starts (nothing to do by default)."""

    def match(self, points: Any) -> Any:
        """The nearest node of each point."""
        return self.index.query(points)

    def step(self, points: Any, detail: bool = False) -> Step:
        """One training step on a batch; with detail, also what the step started from."""
        points = self.backend.points(points)
        if not detail:
            return self._step(points)
        before = self.backend.numpy(self.pos).copy()
        counts = getattr(self, "counts", None)
        counts_before = None if counts is None else self.backend.numpy(counts).astype(float)
        result = self._step(points)
        result.points = self.backend.numpy(points).copy()
        result.positions_before, result.counts_before = before, counts_before
        return result

    def _step(self, points: Any) -> Step:
        matched = self.match(points)
        self._update(points, matched)
        return Step(matched)

    def _update(self, points: Any, matched: Any) -> None:
        moved = self.optimizer.step(points, matched)
        self.index.mark_moved(moved)

    def after_load(self) -> None:
        self.index.rebuild()


class GradientDescent(Method):
    """Plain DDN training: each point's nearest node moves toward it; nothing else happens."""

    name = "gd"


class SplitAndPrune(Method):
    """Gradient descent plus the paper's Split-and-Prune on per-node match counts.

    After matching, counts are added and `splitting.plan_splits` copies the most matched node
    (with its optimizer state) into the least matched node's slot; then the matched nodes move
    (the reference's order: count, split, update).
    """

    name = "sp"
    state_fields = (*Method.state_fields, "counts")

    def __init__(
        self, positions: Positions, settings: Settings, rng: np.random.Generator | None = None
    ):
        super().__init__(positions, settings, rng)
        self.counts = self.backend.zeros(self.positions.shape[0])
        self._hint = SelectionHint()  # the planner's last thresholds: speed only, not state

    def begin_target(self, steps: int, density: densities.Density) -> None:
        """Counts describe the current target only: reset them when it changes."""
        self.counts[:] = 0

    def _step(self, points: Any) -> Step:
        matched = self.match(points)
        self.backend.add_at(self.counts, matched, 1.0)
        s = self.settings
        pairs = plan_splits(self.counts, s.max_splits, s.split_ratio, s.prune_ratio, self._hint)
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
        src_t, dst_t = self.backend.indices(src), self.backend.indices(dst)
        self.pos[dst_t] = self.pos[src_t]  # the right side is gathered before any write
        self.optimizer.copy_state(src_t, dst_t)
        self.index.mark_moved(dst)


class SoftSelection(Method):
    """Soft selection: each point moves a node drawn with probability proportional to
    exp(-beta d), not always its nearest node, with beta annealed over each target.

    Early on (small beta) far nodes still win points now and then, so no node stays dead;
    as beta grows the rule becomes plain nearest-node gradient descent. beta follows
    `schedule.beta_at` from beta_start to beta_end over the steps of each target; draws come
    from the method's own random stream. No split or prune.
    """

    name = "soft"
    state_fields = (*Method.state_fields, "target_step", "target_steps", "rng", "torch_gen")

    def __init__(
        self, positions: Positions, settings: Settings, rng: np.random.Generator | None = None
    ):
        super().__init__(positions, settings, rng)
        self.selector = SoftSelector(settings.distance)
        self.target_step = 0
        self.target_steps = 1
        self.torch_gen = None
        if self.backend.name == "torch":
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

    def match(self, points: Any) -> Any:
        if SOFT_COMPILED and isinstance(self.index, GridIndex):
            return soft_draw(points, self.index, self.beta, self.rng)
        return self.selector.select(points, self.pos, self.beta, self.rng, self.torch_gen)

    def _step(self, points: Any) -> Step:
        step = super()._step(points)
        self.target_step += 1
        return step


class OnlineKMeans(Method):
    """The classical baseline: online k-means (MacQueen 1967).

    Nodes start from k-means++ on a sample of the first target drawn from the method's own
    stream (max(2K, 1000) points), not from the shared uniform nodes; each match then moves its
    node by 1/n of the offset, n its match count, the seed point counting as the first member.
    Counts restart at 1 when the target changes so the nodes can follow a new target. Empty
    clusters are never reassigned (that would be a split-and-prune of its own). --optimizer
    and --lr do not apply.
    """

    name = "kmeans"
    uses_optimizer = False
    state_fields = ("positions", "counts", "seeded", "rng")

    def __init__(
        self, positions: Positions, settings: Settings, rng: np.random.Generator | None = None
    ):
        super().__init__(positions, settings, rng)
        self.counts = self.backend.ones(self.positions.shape[0])
        self.seeded = False

    def begin_target(self, steps: int, density: densities.Density) -> None:
        if not self.seeded:
            k = self.positions.shape[0]
            sample = density.sample(max(2 * k, 1000), self.rng)
            centres = kmeans_plus_plus(sample, k, self.rng, self.settings.distance)
            assign(self.positions, centres)
            self.index.rebuild()
            self.seeded = True
        self.counts[:] = 1

    def _update(self, points: Any, matched: Any) -> None:
        moved = running_mean_update(self.pos, self.counts, points, matched, self.backend)
        self.index.mark_moved(moved)


def method_class(name: str) -> type[Method]:
    """The class of the method called `name` (imported on demand through the catalog)."""
    return CATALOG[name].load()


def make_method(
    name: str, positions: Positions, settings: Settings, rng: np.random.Generator
) -> Method:
    """A fresh method called `name`, starting from a copy of `positions`."""
    return method_class(name)(positions, settings, rng)
