"""Replay Split-and-Prune (`replay`): bsp plus a bounded buffer of the target's points, replayed.

bsp (toylab/fitting/balanced.py) estimates each node from the points that reached it, about
ten a node at the paper's budget, most of them seen before the node's last split. `replay`
keeps the points (a memory-based method) and re-estimates every node from all of them now
and then:

- buffer: the last `--replay-window` x K points of the current target (a ring; 32 points a
  node by default, 3.2 x the paper's budget, so at that budget it holds the whole target).
  It is emptied when the target changes, through the same `begin_target` notice Split-and-
  Prune uses to reset its counts (no new hook; a buffer that must forget by itself, without
  it, keeps the old target's points for a window's worth of steps: benchmarks/README.md).
- refit (one Lloyd pass over the buffer): every buffered point goes to its nearest node (the
  run's grid index and distance); a node that got points moves to their mean, takes their
  covariance (for bsp's split geometry) and n = their number, and its mass (the Split-and-
  Prune count) becomes their number, scaled so the masses still sum to the target's matches;
  a node that got none keeps its place and gets mass 0, so Split-and-Prune recycles it.
- schedule: geometric, so the total refit work is a fixed multiple of the buffer: the first
  refit when the target has given REFIT_START x K points, then each time the target has given
  REFIT_GROWTH more points than at the last refit (a fraction of what the buffer holds). It
  never reads the number of steps.
- between refits, every step is bsp's step (match, count, split, running-mean update).

Memory: the buffer, window x K x 2 float64 (5 MB at K = 10^4 and 32 a node), capped at
MAX_BUFFER points; saved in the checkpoint (only the filled part). Time per refit: one
nearest-node query per buffered point, O(buffer + K).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

import densities
from toylab.compiled import njit
from toylab.fitting.backend import Positions
from toylab.fitting.balanced import BalancedSplitAndPrune
from toylab.fitting.methods import Settings
from toylab.fitting.ring import push_points
from toylab.lazy import as_numpy

MAX_BUFFER = 1 << 22  # at most 4M points (64 MB) whatever K and the window
REFIT_START = 1.0  # first refit once the target has given this many points a node
REFIT_GROWTH = 0.25  # then a refit each time the target's points grew by this fraction


@njit()
def _refit(pos, n, cov, counts, pts, lab, scale):
    """One Lloyd pass: nodes to the mean of their buffered points; n, covariance and mass from
    them. Nodes without points keep position, n and covariance; their mass becomes 0."""
    k = pos.shape[0]
    c = np.zeros(k)
    sx = np.zeros(k)
    sy = np.zeros(k)
    sxx = np.zeros(k)
    sxy = np.zeros(k)
    syy = np.zeros(k)
    for t in range(lab.shape[0]):
        i = lab[t]
        x = pts[t, 0] - pos[i, 0]  # moments about the old position: no cancellation
        y = pts[t, 1] - pos[i, 1]
        c[i] += 1.0
        sx[i] += x
        sy[i] += y
        sxx[i] += x * x
        sxy[i] += x * y
        syy[i] += y * y
    for i in range(k):
        if c[i] > 0.0:
            mx = sx[i] / c[i]
            my = sy[i] / c[i]
            pos[i, 0] += mx
            pos[i, 1] += my
            cov[i, 0] = max(sxx[i] / c[i] - mx * mx, 0.0)
            cov[i, 1] = sxy[i] / c[i] - mx * my
            cov[i, 2] = max(syy[i] / c[i] - my * my, 0.0)
            n[i] = c[i]
        counts[i] = c[i] * scale


@cache
def _warm_up() -> None:
    pos, cov, n, counts = np.zeros((2, 2)), np.zeros((2, 3)), np.zeros(2), np.zeros(2)
    _refit(pos, n, cov, counts, np.ones((1, 2)), np.zeros(1, dtype=np.int64), 1.0)


class ReplaySplitAndPrune(BalancedSplitAndPrune):
    """bsp whose nodes are re-estimated from a buffer of the target's points (Lloyd passes)."""

    name = "replay"
    state_fields = (
        *BalancedSplitAndPrune.state_fields,
        "filled",
        "head",
        "seen",
        "next_refit",
        "refits",
    )

    # Study knobs (benchmarks/floor_study.py varies them); the defaults are the chosen method.
    refit_start = REFIT_START
    refit_growth = REFIT_GROWTH
    passes = 1  # Lloyd passes a refit
    reset_buffer = True  # empty the buffer at a target change (False: a pure sliding window)
    trim = 0.0  # after a refit, mass 0 for nodes whose points' density < trim x the median

    def __init__(
        self, positions: Positions, settings: Settings, rng: np.random.Generator | None = None
    ):
        super().__init__(positions, settings, rng)
        _warm_up()
        k = self.positions.shape[0]
        self.capacity = int(min(MAX_BUFFER, settings.replay_window * k))
        self.buffer = np.zeros((self.capacity, 2))
        self.filled = 0  # points in the buffer
        self.head = 0  # where the next point goes (ring)
        self.seen = 0  # points of the current target so far
        self.next_refit = self._first_refit()
        self.refits = 0

    def _first_refit(self) -> int:
        return max(1, int(self.refit_start * self.positions.shape[0]))

    def begin_target(self, steps: int, density: densities.Density) -> None:
        super().begin_target(steps, density)
        self.seen = 0
        self.next_refit = self._first_refit()
        if self.reset_buffer:
            self.filled = self.head = 0

    def _step(self, points: np.ndarray):
        result = super()._step(points)
        self._remember(np.asarray(points, dtype=np.float64))
        if self.seen >= self.next_refit:
            self.refit()
            self.next_refit = self.seen + max(1, int(self.refit_growth * self.filled))
        return result

    def _remember(self, points: np.ndarray) -> None:
        self.head, self.filled = push_points(self.buffer, self.head, self.filled, points)
        self.seen += min(points.shape[0], self.capacity)

    def refit(self) -> None:
        """Lloyd passes over the buffer (see the module docstring)."""
        pts = self.buffer[: self.filled]
        total = float(self.counts.sum())
        scale = total / self.filled if total > 0 else 1.0
        for _ in range(self.passes):
            lab = self.index.query(pts)
            _refit(self.pos, self.n, self.cov, self.counts, pts, lab, scale)
            self.index.rebuild()
        if self.trim > 0:
            area = self.cov[:, 0] + self.cov[:, 2]
            live = (self.counts > 0) & (area > 0)
            dens = np.zeros_like(area)
            dens[live] = self.counts[live] / area[live]
            if live.any():
                low = live & (dens < self.trim * np.median(dens[live]))
                self.counts[low] = 0.0
        self.refits += 1

    # The buffer is state too: only its filled part goes into the checkpoint.
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["buffer"] = self.buffer[: self.filled].copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        saved = state.pop("buffer", None)
        super().load_state_dict(state)
        if saved is not None:
            arr = np.asarray(as_numpy(saved))
            self.buffer[: arr.shape[0]] = arr
