"""Zero-shot guided sampling on a hierarchical DDN: conditions, the greedy and exact samplers.

A guide says how well candidate points satisfy a condition; no gradient is ever taken, so any
Python function works. Two samplers:

greedy  the paper's rule: at each layer keep the candidate with the best `score` (ties broken
        uniformly at random). Cheap and fine for reconstruction, but for a condition many points
        satisfy it collapses: every sample takes the same best path.
exact   the model's own conditional: at each layer choose among the K children in proportion to
        the mass of their subtree that satisfies the condition (leaf prior x `weight`), i.e. a
        tree search with subtree masses. Its samples are distributed exactly as rejection
        sampling from the model would give them, without the rejections.

A guide is either one of the classes below (separate `score` for greedy and `weight` for exact)
or any callable f(points (n, 2)) -> (n,) array, higher is better, used for both; for the exact
sampler it must be nonnegative (1 inside / 0 outside for a hard condition, or a likelihood).
`weight` is called once on all leaves together (so a guide may look at the whole set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toylab.errors import ToylabError
from toylab.fitting.tree.table import TreeTable, draw_from_weights

SAMPLERS = ("greedy", "exact")
GUIDE_KINDS = ("point", "x", "box", "mask")
GUIDE_HELP = "point:x,y | x:x0[,tol] | box:x0,y0,x1,y1 | mask:PATH"


class Guide:
    """A condition on points: `score` for the greedy rule, `weight` (>= 0) for exact sampling."""

    label = "guide"

    def score(self, points: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def weight(self, points: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass
class PointGuide(Guide):
    """Reconstruction of (x, y): greedy = the nearest candidate per layer (the paper's
    reconstruction); exact = the leaf nearest to the point over the whole tree."""

    x: float
    y: float

    @property
    def label(self) -> str:
        return f"point {self.x:g},{self.y:g}"

    def score(self, points: np.ndarray) -> np.ndarray:
        return -np.hypot(points[:, 0] - self.x, points[:, 1] - self.y)

    def weight(self, points: np.ndarray) -> np.ndarray:
        d = np.hypot(points[:, 0] - self.x, points[:, 1] - self.y)
        return (d <= d.min()).astype(np.float64)


@dataclass
class XGuide(Guide):
    """Only x observed: points with |x - x0| <= tol (default: half a cell of a 100-bin grid)."""

    x0: float
    tol: float = 0.01

    @property
    def label(self) -> str:
        return f"x = {self.x0:g}"

    def score(self, points: np.ndarray) -> np.ndarray:
        return -np.abs(points[:, 0] - self.x0)

    def weight(self, points: np.ndarray) -> np.ndarray:
        return (np.abs(points[:, 0] - self.x0) <= self.tol).astype(np.float64)


@dataclass
class BoxGuide(Guide):
    """Points inside the box [x0, x1] x [y0, y1]; greedy prefers candidates nearer the box."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def label(self) -> str:
        return f"box {self.x0:g},{self.y0:g},{self.x1:g},{self.y1:g}"

    def score(self, points: np.ndarray) -> np.ndarray:
        dx = np.maximum(np.maximum(self.x0 - points[:, 0], points[:, 0] - self.x1), 0.0)
        dy = np.maximum(np.maximum(self.y0 - points[:, 1], points[:, 1] - self.y1), 0.0)
        return -np.hypot(dx, dy)

    def weight(self, points: np.ndarray) -> np.ndarray:
        return (self.score(points) >= 0).astype(np.float64)


class MaskGuide(Guide):
    """A picture or .npy array laid over [-1, 1]^2 (row 0 at the top): its brightness in
    [0, 1] at a point is the point's weight (and its greedy score)."""

    def __init__(self, values: np.ndarray, name: str = "mask"):
        self.values = np.asarray(values, dtype=np.float64)
        self.name = name

    @property
    def label(self) -> str:
        return f"mask {self.name}"

    def weight(self, points: np.ndarray) -> np.ndarray:
        h, w = self.values.shape
        col = np.clip(np.floor((points[:, 0] + 1) / 2 * w).astype(np.int64), 0, w - 1)
        row = np.clip(np.floor((1 - points[:, 1]) / 2 * h).astype(np.int64), 0, h - 1)
        inside = (np.abs(points[:, 0]) <= 1) & (np.abs(points[:, 1]) <= 1)
        return np.where(inside, self.values[row, col], 0.0)

    def score(self, points: np.ndarray) -> np.ndarray:
        return self.weight(points)


class FunctionGuide(Guide):
    """Any callable f(points) -> scores, used both as greedy score and exact weight."""

    def __init__(self, fn: Callable[[np.ndarray], Any], label: str = "function"):
        self.fn = fn
        self.label = label

    def _call(self, points: np.ndarray) -> np.ndarray:
        out = np.asarray(self.fn(points), dtype=np.float64)
        if out.shape != (points.shape[0],):
            raise ToylabError(
                f"a guide function must return one score per point, shape ({points.shape[0]},), "
                f"got {out.shape}"
            )
        return out

    def score(self, points: np.ndarray) -> np.ndarray:
        return self._call(points)

    def weight(self, points: np.ndarray) -> np.ndarray:
        out = self._call(points)
        if not np.isfinite(out).all() or (out < 0).any():
            raise ToylabError("the exact sampler needs a guide returning finite weights >= 0")
        return out


def as_guide(guide: Guide | Callable[[np.ndarray], Any] | str) -> Guide:
    """A Guide from a Guide, a 'KIND:ARGS' string or any callable scoring points."""
    if isinstance(guide, Guide):
        return guide
    if isinstance(guide, str):
        return parse_guide(guide)
    if callable(guide):
        return FunctionGuide(guide, getattr(guide, "__name__", "function"))
    raise ToylabError(f"a guide must be a Guide, a callable or a string ({GUIDE_HELP})")


def _numbers(spec: str, text: str, count: tuple[int, ...]) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in count or not all(np.isfinite(values)):
        raise ToylabError(f"--guide {spec!r}: expected {GUIDE_HELP}")
    return values


def parse_guide(spec: str) -> Guide:
    """Parse a --guide value: point:x,y | x:x0[,tol] | box:x0,y0,x1,y1 | mask:PATH."""
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in GUIDE_KINDS or not rest.strip():
        raise ToylabError(f"--guide {spec!r}: expected {GUIDE_HELP}")
    if kind == "point":
        x, y = _numbers(spec, rest, (2,))
        return PointGuide(x, y)
    if kind == "x":
        values = _numbers(spec, rest, (1, 2))
        if len(values) == 2 and values[1] <= 0:
            raise ToylabError(f"--guide {spec!r}: the tolerance must be > 0")
        return XGuide(*values)
    if kind == "box":
        x0, y0, x1, y1 = _numbers(spec, rest, (4,))
        if not (x0 < x1 and y0 < y1):
            raise ToylabError(f"--guide {spec!r}: a box needs x0 < x1 and y0 < y1")
        return BoxGuide(x0, y0, x1, y1)
    return load_mask(rest.strip(), spec)


def load_mask(path: str, spec: str | None = None) -> MaskGuide:
    """A MaskGuide from a PNG/JPEG/.npy file (brightness is the weight)."""
    from densities import DensityError
    from densities.image import load_brightness

    try:
        values, _ = load_brightness(path)
    except DensityError as err:
        raise ToylabError(f"--guide {spec or 'mask:' + path!r}: {err}") from None
    if not (values > 0).any():
        raise ToylabError(f"--guide {spec or 'mask:' + path!r}: the mask is black everywhere")
    return MaskGuide(values, Path(path).name)


# -- samplers ------------------------------------------------------------------------------


@dataclass
class Guided:
    """Guided samples: points (n, 2), latent codes (n, L) and the node ids along each path."""

    points: np.ndarray
    codes: np.ndarray
    nodes: np.ndarray


def sample_greedy(table: TreeTable, guide: Guide, n: int, rng: np.random.Generator) -> Guided:
    """The paper's rule: at each layer the child with the best score (random among ties)."""
    k = table.k
    node = np.zeros(n, dtype=np.int64)
    nodes = np.empty((n, table.layers), dtype=np.int64)
    for level, pos in enumerate(table.positions):
        ids = node[:, None] * k + np.arange(k)
        scores = guide.score(pos[ids].reshape(-1, 2)).reshape(n, k)
        best = scores >= scores.max(axis=1, keepdims=True)
        keys = np.where(best, rng.random((n, k)), -1.0)
        node = ids[np.arange(n), np.argmax(keys, axis=1)]
        nodes[:, level] = node
    return Guided(table.leaves[node], nodes % k, nodes)


def satisfied_mass(table: TreeTable, guide: Guide) -> np.ndarray:
    """(K^L,) leaf prior times the guide's weight: the unnormalised conditional over leaves."""
    weight = guide.weight(table.leaves)
    mass = table.leaf_mass() * weight
    if not mass.sum() > 0:
        raise ToylabError(
            f"no leaf of the model satisfies the condition ({guide.label}); widen it or pick "
            "another"
        )
    return mass


def exact_branch_probs(table: TreeTable, mass: np.ndarray) -> list[np.ndarray]:
    """Per layer, (K^(l+1),) probability of each child given its parent under the conditional:
    its subtree's satisfied mass over its parent's (0 where the parent has none)."""
    k = table.k
    out = []
    for level in range(table.layers):
        sub = mass.reshape(k ** (level + 1), -1).sum(axis=1)
        parent = sub.reshape(-1, k).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(parent > 0, sub.reshape(-1, k) / parent, 0.0).ravel())
    return out


def sample_exact(table: TreeTable, guide: Guide, n: int, rng: np.random.Generator) -> Guided:
    """The exact conditional: descend choosing children in proportion to their subtree's
    satisfied mass (the same distribution as rejection sampling from the model)."""
    k = table.k
    branch = exact_branch_probs(table, satisfied_mass(table, guide))
    node = np.zeros(n, dtype=np.int64)
    nodes = np.empty((n, table.layers), dtype=np.int64)
    for level in range(table.layers):
        ids = node[:, None] * k + np.arange(k)
        cdf = np.cumsum(branch[level][ids], axis=1)
        u = rng.random(n) * cdf[:, -1]
        pick = np.minimum((cdf <= u[:, None]).sum(axis=1), k - 1)
        node = ids[np.arange(n), pick]
        nodes[:, level] = node
    return Guided(table.leaves[node], nodes % k, nodes)


def sample_rejection(
    table: TreeTable, guide: Guide, n: int, rng: np.random.Generator, max_draws: int = 10**8
) -> np.ndarray:
    """The reference for both samplers: draw from the model, accept with weight / max weight.
    Returns fewer than n points if max_draws draws did not accept n."""
    weight = guide.weight(table.leaves)
    top = weight.max()
    if not top > 0:
        raise ToylabError(f"no leaf of the model satisfies the condition ({guide.label})")
    kept: list[np.ndarray] = []
    have, drawn = 0, 0
    while have < n and drawn < max_draws:
        leaf = table.sample_leaves(1 << 20, rng)
        drawn += leaf.size
        leaf = leaf[rng.random(leaf.size) * top < weight[leaf]]
        kept.append(leaf)
        have += leaf.size
    leaf = np.concatenate(kept)[:n]
    return table.leaves[leaf]


def guided_sample(
    table: TreeTable,
    guide: Guide | Callable[[np.ndarray], Any] | str,
    n: int,
    sampler: str = "exact",
    rng: np.random.Generator | None = None,
) -> Guided:
    """n samples of the model under a condition, by the greedy or the exact sampler."""
    if sampler not in SAMPLERS:
        raise ToylabError(f"unknown sampler {sampler!r}; choose from: {', '.join(SAMPLERS)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    g = as_guide(guide)
    return (sample_greedy if sampler == "greedy" else sample_exact)(table, g, n, rng)


@dataclass
class Reconstruction:
    """A point's path through the tree: latent code, the chosen point and error per layer."""

    code: np.ndarray  # (L,)
    points: np.ndarray  # (L, 2)
    errors: np.ndarray  # (L,) Euclidean distance to the target point after each layer


def reconstruct(table: TreeTable, x: float, y: float, sampler: str = "greedy") -> Reconstruction:
    """greedy: the nearest child at each layer (the DDN's own encoding of a point); exact: the
    path to the leaf nearest the point over the whole tree."""
    guide = PointGuide(x, y)
    if sampler == "greedy":
        got = sample_greedy(table, guide, 1, np.random.default_rng(0))
        nodes = got.nodes[0]
    else:
        leaf = int(np.argmin(-guide.score(table.leaves)))
        nodes = table.node_ids(np.array([leaf]))[0]
    pts = np.stack([table.positions[level][nodes[level]] for level in range(table.layers)])
    errors = np.hypot(pts[:, 0] - x, pts[:, 1] - y)
    return Reconstruction(nodes % table.k, pts, errors)


def conditional_leaf_probs(table: TreeTable, guide: Guide) -> np.ndarray:
    """(K^L,) the model's conditional over leaves, prior x weight normalised (by enumeration)."""
    mass = satisfied_mass(table, guide)
    return mass / mass.sum()


__all__ = [
    "BoxGuide",
    "FunctionGuide",
    "Guide",
    "Guided",
    "MaskGuide",
    "PointGuide",
    "Reconstruction",
    "XGuide",
    "as_guide",
    "conditional_leaf_probs",
    "draw_from_weights",
    "exact_branch_probs",
    "guided_sample",
    "parse_guide",
    "reconstruct",
    "sample_exact",
    "sample_greedy",
    "sample_rejection",
]


def cell_centres(bins: int) -> np.ndarray:
    """(bins * bins, 2) cell centres of the grid in the density array's order (row 0 at top)."""
    c = -1.0 + (np.arange(bins) + 0.5) * (2.0 / bins)
    xs, ys = np.meshgrid(c, c[::-1])
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def grid_conditional(array: np.ndarray, guide: Guide) -> np.ndarray | None:
    """A density array (bins, bins) times the guide's weight at cell centres, normalised; None
    when no cell satisfies it. Used for the target's true conditional in pictures and checks."""
    bins = array.shape[0]
    w = guide.weight(cell_centres(bins)).reshape(bins, bins)
    out = array * w
    total = out.sum()
    return out / total if total > 0 else None


def model_conditional_grid(table: TreeTable, guide: Guide, bins: int) -> np.ndarray:
    """The model's own conditional as a (bins, bins) array (leaves enumerated, no sampling)."""
    from densities.grid import points_to_cells

    probs = conditional_leaf_probs(table, guide)
    rows, cols = points_to_cells(table.leaves, bins)
    flat = np.bincount(rows * bins + cols, weights=probs, minlength=bins * bins)
    return flat.reshape(bins, bins)
