"""Balanced Split-and-Prune (`bsp`): Split-and-Prune that spends its data like an estimator.

Split-and-Prune (sp) with the paper's SGD (step 0.4 toward each point) keeps every node near
its last few points, so at the paper's budget (about 10 points a node) positions are as noisy
as the points themselves, and one split a step relocates the ~half of the uniform start that
lies off the target only by the end of the run. bsp changes three things (benchmarks/README.md,
"Beyond the paper", has the study behind each):

- position: the running mean of the node's own points, step 1 / n, n the node's match count,
  capped at `N_CAP` so a node still follows a moving target (count decay);
- splits: on mass (match counts, halved at a split as in sp), up to `MAX_SPLITS` pairs a step
  (the sp rule replayed by `splitting.plan_splits`); the two copies are placed at
  +-OFFSET standard deviations of the node's points along their principal axis, not on top of
  each other, and keep the parent's confidence n (not halved: each copy is already the mean of
  its half of the points);
- a running covariance per node (3 numbers) gives that axis.

Relies on, from the base classes: GradientDescent's `positions`/`pos` (numpy, CPU only),
`index` (`query`, `mark_moved`, `rebuild`), `_points`, `settings.split_ratio/prune_ratio`;
SplitAndPrune's `counts` (the mass; reset in `begin_target`) and its state_dict/load_state_dict.
The SGD optimizer of the base class is kept but unused (--optimizer and --lr do not apply).
"""

from __future__ import annotations

import numpy as np
import torch

import densities
from toylab.fitting.methods import Settings, SplitAndPrune, Step, _state_tensor
from toylab.fitting.splitting import plan_splits

N_CAP = 64.0  # the running mean's step never falls below 1 / N_CAP
MAX_SPLITS = 1  # split/prune pairs a step at most (the paper's pace; 4 measured no better)
OFFSET = 0.5  # copies at +-OFFSET sd of the node's points along their principal axis
N_RESET = 1.0  # confidence a node keeps when the target changes

try:
    from numba import njit

    @njit(cache=True, nogil=True)
    def _mean_update(pos, n, cov, points, idx, n_cap):
        """Running mean and exponentially weighted covariance, point by point in batch order."""
        for k in range(idx.shape[0]):
            i = idx[k]
            n[i] += 1.0
            a = 1.0 / min(n[i], n_cap)
            dx = points[k, 0] - pos[i, 0]
            dy = points[k, 1] - pos[i, 1]
            pos[i, 0] += a * dx
            pos[i, 1] += a * dy
            b = 1.0 - a
            cov[i, 0] = b * (cov[i, 0] + a * dx * dx)
            cov[i, 1] = b * (cov[i, 1] + a * dx * dy)
            cov[i, 2] = b * (cov[i, 2] + a * dy * dy)

except ImportError:  # pragma: no cover - numba is a dependency
    _mean_update = None


def _mean_update_numpy(pos, n, cov, points, idx, n_cap):
    for k in range(idx.shape[0]):
        i = idx[k]
        n[i] += 1.0
        a = 1.0 / min(n[i], n_cap)
        d = points[k] - pos[i]
        pos[i] += a * d
        cov[i] = (1.0 - a) * (cov[i] + a * np.array([d[0] * d[0], d[0] * d[1], d[1] * d[1]]))


def principal_axis(c: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit principal direction and variance along it of the 2x2 covariance (xx, xy, yy)."""
    sxx, sxy, syy = float(c[0]), float(c[1]), float(c[2])
    lam = 0.5 * (sxx + syy) + np.hypot(0.5 * (sxx - syy), sxy)
    if abs(sxy) > 1e-300:
        v = np.array([sxy, lam - sxx])
        return v / np.hypot(v[0], v[1]), max(lam, 0.0)
    return (np.array([1.0, 0.0]) if sxx >= syy else np.array([0.0, 1.0])), max(lam, 0.0)


class BalancedSplitAndPrune(SplitAndPrune):
    """Split-and-Prune with running-mean nodes, spread-aware splits and a faster split pace."""

    name = "bsp"
    title = "balanced Split-and-Prune"

    # Study knobs (benchmarks/floor_study.py varies them); the defaults are the chosen method.
    n_cap = N_CAP
    max_splits = MAX_SPLITS
    offset = OFFSET
    halve_n = False
    n_reset = N_RESET
    split_ratio: float | None = None  # None: --split-ratio / --prune-ratio, as sp
    prune_ratio: float | None = None

    def __init__(
        self, positions: torch.Tensor, settings: Settings, rng: np.random.Generator | None = None
    ):
        if positions.device.type != "cpu":
            raise ValueError("method bsp runs on the CPU only (--device cpu)")
        super().__init__(positions, settings, rng)
        k = self.positions.shape[0]
        self.n = np.zeros(k)  # match count: the running mean's 1 / n step
        self.cov = np.zeros((k, 3))  # running covariance of the node's points: xx, xy, yy

    def begin_target(self, steps: int, density: densities.Density) -> None:
        """Masses restart per target (as sp's counts); confidence drops to N_RESET so the
        nodes can move to the new target; the spread is kept as a first guess."""
        super().begin_target(steps, density)
        np.minimum(self.n, self.n_reset, out=self.n)

    def step(self, points) -> Step:
        points = self._points(points)
        matched = self.match(points)
        np.add.at(self.counts, matched, 1.0)
        s = self.settings
        split = s.split_ratio if self.split_ratio is None else self.split_ratio
        prune = s.prune_ratio if self.prune_ratio is None else self.prune_ratio
        pairs = plan_splits(self.counts, self.max_splits, split, prune)
        for i, j in pairs:
            self._split(i, j)
        if pairs:
            self.index.mark_moved(np.array([p for pair in pairs for p in pair], dtype=np.int64))
        upd = _mean_update if _mean_update is not None else _mean_update_numpy
        upd(
            self.pos,
            self.n,
            self.cov,
            np.ascontiguousarray(points, dtype=np.float64),
            np.ascontiguousarray(matched, dtype=np.int64),
            float(self.n_cap),
        )
        self.index.mark_moved(matched)
        return Step(matched, pairs)

    def _split(self, i: int, j: int) -> None:
        """Node j (pruned) becomes a copy of node i, the two placed apart along i's spread."""
        axis, var = principal_axis(self.cov[i])
        d = self.offset * np.sqrt(var) * axis
        centre = self.pos[i].copy()
        self.pos[i] = centre - d
        self.pos[j] = centre + d
        along = 0.75 * var  # a uniform spread cut in two: each half has 1/4 of the variance
        c = self.cov[i].copy()
        c[0] -= along * axis[0] * axis[0]
        c[1] -= along * axis[0] * axis[1]
        c[2] -= along * axis[1] * axis[1]
        self.cov[i] = self.cov[j] = c
        if self.halve_n:
            self.n[i] *= 0.5
        self.n[j] = self.n[i]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "n": _state_tensor(self.n), "cov": _state_tensor(self.cov)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.n[:] = state["n"].numpy()
        self.cov[:] = state["cov"].numpy()
