"""`toylab explain`: the small-K teaching view of why Split-and-Prune works.

A few dozen nodes are fitted with every method side by side, exactly as `toylab run` fits them
(one `Run`: shared initial nodes, shared data stream, same seed streams), and every step is
recorded: the batch, the node each point matched, the nodes' positions, the splits. Frames are
then drawn by `explain_draw` (matplotlib): the target in grey, the region each node wins
(nearest-node labels on a fine grid, so L1 regions are drawn as they are, not as Euclidean
Voronoi cells), each node coloured and sized by its recent match share against 1/K, dead
nodes as grey crosses, and split/prune events as arrows with a caption that says what the step
did. The result is explain.gif, a few PNG stills and explain.json (what was drawn, per frame).

Two pictures the paper explains in words become visible here: gradient descent leaves "dead"
nodes where they started and lets match shares drift far from 1/K ("density shift");
Split-and-Prune recycles the least-matched slot into a copy of the most-matched node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import densities
from densities.grid import cell_centre_grid
from toylab import streams
from toylab.config import RunConfig
from toylab.fitting.methods import Step
from toylab.fitting.nearest import brute_force_nearest
from toylab.lazy import as_numpy
from toylab.metrics import evaluate
from toylab.progress import bar as progress_bar
from toylab.run import Run
from toylab.store import rundir

MAX_NODES = 512
"""Largest K the teaching view accepts: every frame labels GRID^2 pixels against all K nodes."""

GRID = 256
"""Pixels per side of the nearest-node label grid the regions are drawn from."""

DEFAULT_TARGET = "blur_circles"
DEFAULT_NODES = 32
DEFAULT_STEPS = 100
DEFAULT_FPS = 5
MAX_FRAMES = 120
"""Default cap on GIF frames: longer runs draw a frame every ceil(steps / 120) steps."""

HOLD_LAST_MS = 2000
"""Extra time on the last GIF frame so the end state can be read before it loops."""

GIF_FILE = "explain.gif"
SUMMARY_FILE = "explain.json"
STILL_START = "explain-start.png"
STILL_SPLIT = "explain-first-split.png"
STILL_END = "explain-end.png"

WINDOW_MATCHES = 6
"""The dead-node window holds this many expected matches of a fair (1/K) node."""

MIN_WINDOW = 10


def dead_window(nodes: int, batch: int) -> int:
    """Steps a node may go unmatched before it is drawn dead: max(10, ceil(6 K / batch)).

    A node with a fair share 1/K expects batch / K matches a step, so over this window it
    expects at least 6; the chance that such a node looks dead by bad luck is e^-6 (0.25%).
    """
    return max(MIN_WINDOW, math.ceil(WINDOW_MATCHES * nodes / batch))


def default_every(steps: int) -> int:
    """Steps between frames: 1 up to MAX_FRAMES steps, then enough to keep ~MAX_FRAMES frames."""
    return max(1, math.ceil(steps / MAX_FRAMES))


def default_out(target: str) -> Path:
    """runs/explain-<target>-<YYYYmmdd-HHMMSS>."""
    return rundir.default_out(f"explain-{target}")


# --------------------------------------------------------------------------- regions


def pixel_centres(grid: int = GRID) -> np.ndarray:
    """(grid^2, 2) centres of a grid x grid raster over [-1, 1]^2, row-major, row 0 at the top
    (+y), column 0 at the left (-x): the densities' orientation."""
    x, y = cell_centre_grid(grid)
    return np.stack([x.ravel(), y.ravel()], axis=1)


def owner_labels(nodes: np.ndarray, grid: int = GRID, distance: str = "l1") -> np.ndarray:
    """(grid, grid) int64: the node that wins each pixel centre (nearest, lowest index on ties).

    Under L1 the regions are not Euclidean Voronoi cells (their borders bend at 45 and 90
    degrees), so they are computed, not constructed: brute force over the pixel centres.
    """
    nodes = np.asarray(nodes, dtype=np.float64)
    return brute_force_nearest(pixel_centres(grid), nodes, distance).reshape(grid, grid)


def region_boundaries(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of pixels whose right or lower neighbour belongs to another node."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


# --------------------------------------------------------------------------- recording


@dataclass
class SplitEvent:
    """One split: node `split` copied into slot `pruned`, and why the rule fired."""

    step: int
    split: int
    pruned: int
    split_from: tuple[float, float]  # the split node's position when it was copied
    pruned_old: tuple[float, float]  # where the pruned slot's node was before it was reused
    split_share: float  # share x K of the split node (cumulative counts, before halving)
    pruned_share: float  # share x K of the pruned slot
    reason: str


@dataclass
class MethodView:
    """One method in one frame: its nodes and what its steps since the last frame did."""

    positions: np.ndarray  # (K, 2) after the frame's step
    share: np.ndarray  # (K,) match share over the window, in units of 1/K
    dead: np.ndarray  # (K,) bool: no match in the last `window` steps (only once step >= window)
    matched: np.ndarray  # (B,) node matched by each point of the frame's last step
    moved: int  # distinct nodes matched since the previous frame
    points_seen: int  # points matched since the previous frame
    splits: list[SplitEvent]
    kl: float
    shared_start: bool = True  # frame 0: the shared uniform nodes (k-means seeds its own)


@dataclass
class FrameView:
    """Everything one frame draws."""

    step: int  # steps done when the frame is drawn
    first_step: int  # first step whose events this frame shows (step itself when every = 1)
    points: np.ndarray  # (B, 2) batch of the frame's last step (empty at step 0)
    methods: dict[str, MethodView]


@dataclass
class ExplainResult:
    """What `explain` wrote and drew: paths, frame steps, per-frame event counts per method."""

    out: Path
    gif: Path
    stills: list[Path]
    window: int
    every: int
    frame_steps: list[int]
    splits_per_frame: dict[str, list[int]]  # split arrows drawn in each frame
    dead_per_frame: dict[str, list[int]]  # dead crosses drawn in each frame
    kl: dict[str, list[float]]
    real_kl: float
    seconds: float = 0.0


def _share_text(value: float, limit: float) -> str:
    """A share with one decimal, or more when one decimal would print the threshold itself
    (0.49 < 0.5 must not read "0.5 < 0.5")."""
    for digits in (1, 2, 3):
        text = f"{value:.{digits}f}"
        if float(text) != limit:
            return text
    return f"{value:.4g}"


def _matched(rec: Step) -> np.ndarray:
    m = rec.matched
    return np.asarray(as_numpy(m), dtype=np.int64)


def split_events(
    step: int, rec: Step, k: int, split_ratio: float, prune_ratio: float
) -> list[SplitEvent]:
    """The step's splits with their reasons, replaying the rule on the counts of that moment."""
    if not rec.splits:
        return []
    matched, before = _matched(rec), rec.positions_before
    base = rec.counts_before if rec.counts_before is not None else np.zeros(k)
    counts = base + np.bincount(matched, minlength=k)
    pos = before.copy()
    events = []
    for i, j in rec.splits:
        total = counts.sum()
        si = counts[i] / total * k if total > 0 else 0.0
        sj = counts[j] / total * k if total > 0 else 0.0
        why = []
        if si > split_ratio:
            why.append(f"node {i}'s share {_share_text(si, split_ratio)}/K > {split_ratio:g}/K")
        if sj < prune_ratio:
            why.append(f"slot {j}'s share {_share_text(sj, prune_ratio)}/K < {prune_ratio:g}/K")
        events.append(
            SplitEvent(
                step, i, j, tuple(pos[i]), tuple(pos[j]), float(si), float(sj), "; ".join(why)
            )
        )
        pos[j] = pos[i]
        counts[i] = counts[j] = counts[i] / 2
    return events


class ShareWindow:
    """Per-node match counts over the last `window` steps (a ring of per-step counts).

    A split halves the split node's history and gives the copy the other half, as the
    Split-and-Prune counts do, so a fresh copy is neither dead nor over-used.
    """

    def __init__(self, k: int, window: int):
        self.k = k
        self.window = window
        self.ring = np.zeros((window, k))

    def add(self, step: int, matched: np.ndarray, splits: Sequence[tuple[int, int]]) -> None:
        self.ring[step % self.window] = np.bincount(matched, minlength=self.k)
        for i, j in splits:
            self.ring[:, i] /= 2
            self.ring[:, j] = self.ring[:, i]

    def share(self) -> np.ndarray:
        """Match share of each node x K (1.0 = the fair share 1/K)."""
        per_node = self.ring.sum(axis=0)
        total = per_node.sum()
        return per_node / total * self.k if total > 0 else np.zeros(self.k)

    def dead(self, step: int) -> np.ndarray:
        """No match in the last `window` steps; nothing is called dead before one window."""
        if step < self.window:
            return np.zeros(self.k, dtype=bool)
        return self.ring.sum(axis=0) == 0


def simulate(
    config: RunConfig,
    window: int,
    every: int,
    targets: list[densities.Density] | None = None,
    progress: bool = False,
) -> tuple[list[FrameView], float]:
    """Fit config's methods step by step (as `toylab run` does) and collect every frame's
    view: a frame at step 0 and after every `every` steps (and after the last step).
    Returns the frames and the real-samples KL of the target."""
    run = Run(config, targets)
    density = run.density
    k = config.nodes
    init = streams.initial_nodes(config.seed, k)
    windows = {name: ShareWindow(k, window) for name in run.methods}
    pending: dict[str, dict[str, Any]] = {
        name: {"splits": [], "nodes": set(), "points": 0} for name in run.methods
    }
    frame_steps = set(range(0, config.steps + 1, every)) | {config.steps}
    frames: list[FrameView] = []
    last_frame = {"step": 0}

    last: dict[str, Step] = {}

    def view(step: int, points: np.ndarray) -> None:
        methods = {}
        for name, method in run.methods.items():
            pos = np.array(as_numpy(method.positions))
            rec = last.get(name)
            acc = pending[name]
            methods[name] = MethodView(
                positions=pos,
                share=windows[name].share(),
                dead=windows[name].dead(step),
                matched=_matched(rec) if rec is not None and step > 0 else np.empty(0, np.int64),
                moved=len(acc["nodes"]),
                points_seen=acc["points"],
                splits=list(acc["splits"]),
                kl=float(evaluate(pos, density)["kl"]),
                shared_start=bool(np.array_equal(pos, init)),
            )
            pending[name] = {"splits": [], "nodes": set(), "points": 0}
        frames.append(FrameView(step, min(last_frame["step"] + 1, step), points, methods))
        last_frame["step"] = step

    bar = progress_bar(config.steps, "fitting", not progress, leave=False)

    def on_step(r: Run, steps: dict[str, Step]) -> None:
        step = r.step
        points = np.empty((0, 2))
        for name, rec in steps.items():
            last[name] = rec
            points = rec.points
            matched = _matched(rec)
            windows[name].add(step, matched, rec.splits)
            acc = pending[name]
            acc["splits"] += split_events(step, rec, k, config.split_ratio, config.prune_ratio)
            acc["nodes"].update(np.unique(matched).tolist())
            acc["points"] += matched.size
        if step in frame_steps:
            view(step, points)
        bar.update(1)

    # Frame 0 is taken just before the first step: after begin_target (k-means seeds there).
    with bar:
        run.advance(
            on_step=on_step, detail=True, on_target_begin=lambda r: view(0, np.empty((0, 2)))
        )
    real_kl = float(run.real.get(0, {}).get("kl", float("nan")))
    return frames, real_kl
