"""How good a fit is: divergences between the node histogram and the target, on its grid.

P = node histogram / K on the target's grid (points outside the square count in the edge
cells). KL(P || Q) = sum over P > 0 of P log(P / Q) in nats (scipy.stats.entropy(P, Q)); JS in
bits; TV = 0.5 sum |P - Q|; Hellinger = sqrt(0.5 sum (sqrt P - sqrt Q)^2). Q is strictly
positive, so every value is finite. The "real samples" baseline scores K i.i.d. draws from Q.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from densities import Density, histogram
from toylab.compiled import AVAILABLE as COMPILED
from toylab.compiled import njit
from toylab.lazy import as_numpy

METRIC_NAMES = ("kl", "js", "tv", "hellinger")


def _as_numpy(nodes: Any) -> np.ndarray:
    nodes = np.asarray(as_numpy(nodes), dtype=np.float64)
    if nodes.ndim != 2 or nodes.shape[1] != 2:
        raise ValueError(f"nodes must have shape (K, 2), got {nodes.shape}")
    return nodes


def divergences(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """KL (nats), JS (bits), TV and Hellinger between two distributions on the same cells."""
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    on = p > 0
    kl = float(np.sum(p[on] * np.log(p[on] / q[on])))
    m = 0.5 * (p + q)
    js_p = np.sum(p[on] * np.log(p[on] / m[on]))
    js_q = np.sum(q * np.log(q / m))  # q > 0 everywhere, so m > 0 too
    js = float(0.5 * (js_p + js_q) / np.log(2.0))
    tv = float(0.5 * np.abs(p - q).sum())
    hellinger = float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))
    return {"kl": kl, "js": js, "tv": tv, "hellinger": hellinger}


# From this many nodes the histogram is counted by a compiled kernel (one pass, no temporaries:
# 12 ms -> about 2 ms at K = 10^6, where every recorded frame and logged step needs one).
COMPILED_HISTOGRAM_MIN = 1 << 16


@njit()
def _cell(v: float, bins: int) -> int:
    """densities.points_to_cells' rule for one floored coordinate: NaN and -inf to 0, +inf
    to bins - 1, the rest clipped to [0, bins - 1]."""
    if v != v or v < 0.0:
        return 0
    if v > bins - 1:
        return bins - 1
    return int(v)


@njit()
def _count_cells(points: np.ndarray, bins: int, out: np.ndarray) -> None:
    half = bins / 2.0
    for t in range(points.shape[0]):
        col = _cell(np.floor((points[t, 0] + 1.0) * half), bins)
        row = _cell(np.floor((1.0 - points[t, 1]) * half), bins)
        out[row * bins + col] += 1


def node_histogram(nodes: Any, bins: int) -> np.ndarray:
    """Integer node counts per cell of a bins x bins grid (the project's point-to-cell rule;
    compiled from COMPILED_HISTOGRAM_MIN nodes on, with the very same counts)."""
    x = _as_numpy(nodes)
    if COMPILED and x.shape[0] >= COMPILED_HISTOGRAM_MIN:
        out = np.zeros(bins * bins, dtype=np.int64)
        _count_cells(x, bins, out)
        return out.reshape(bins, bins)
    return histogram(x, bins)


def evaluate_histogram(counts: np.ndarray, density: Density) -> dict[str, float]:
    """Scores of a node histogram against the density, plus the count of stray nodes."""
    counts = np.asarray(counts)
    total = counts.sum()
    out = divergences(counts / total, density.array)
    out["stray"] = int(counts[~density.support_mask()].sum())
    return out


def evaluate(nodes: Any, density: Density) -> dict[str, float]:
    """Score K nodes against a target: kl, js, tv, hellinger and `stray`, the number of nodes
    in cells outside the target's support (each costs about (1/K) ln(1e20 bins^2 / K) of KL)."""
    return evaluate_histogram(node_histogram(nodes, density.bins), density)


def real_samples(density: Density, k: int, rng: np.random.Generator) -> dict[str, float]:
    """The baseline: K i.i.d. samples from the target, scored like nodes."""
    return evaluate(density.sample(k, rng), density)


# -- transport -------------------------------------------------------------------------------
# KL explodes on one stray node (ln(1e20 bins^2 / K) / K of it); a transport distance charges a
# stray node only for how far it sits from the mass. W2 between the K nodes (uniform weights)
# and the grid density (cell centres weighted by Q; cells under 1e-12 of the largest hold
# together under 1e-8 of the mass and are dropped): exact by POT's network simplex while
# K x cells is at most EXACT_MAX_PAIRS, else POT's sliced estimate with a fixed seed. Sliced
# costs O(projections K log K) (measured: 0.19 s a direction at K = 10^6 by POT's exact 1D
# solver, 0.61 s by its quantile functions), so the projections drop from SLICED_PROJECTIONS
# as K grows past SLICED_BUDGET / 64 nodes, to 8.
EXACT_MAX_PAIRS = 250_000  # exact cost measured: 0.1-0.3 s at 2e5 pairs, 0.7 s at 1e6
SLICED_PROJECTIONS = 64
SLICED_BUDGET = 1_280_000  # projections x nodes
SLICED_SEED = 0


def sliced_projections(nodes: int, projections: int = SLICED_PROJECTIONS) -> int:
    """Directions the sliced estimate uses for `nodes` nodes (64 up to 20,000 nodes, >= 8)."""
    return max(8, min(projections, SLICED_BUDGET // max(nodes, 1)))


def cell_centres(bins: int) -> np.ndarray:
    """(bins^2, 2) centres of the grid's cells in the density's row-major order (row 0 on top)."""
    c = (np.arange(bins) + 0.5) / bins * 2.0 - 1.0
    x, y = np.meshgrid(c, c[::-1])
    return np.stack([x.ravel(), y.ravel()], axis=1)


def wasserstein(
    nodes: Any,
    density: Density,
    exact_max_pairs: int = EXACT_MAX_PAIRS,
    projections: int | None = None,
    seed: int = SLICED_SEED,
) -> tuple[float, str]:
    """W2 distance (in domain units) between the nodes and the density, and which estimate:
    "exact" (ot.emd2 on squared Euclidean costs) or "sliced" (sliced W2 as
    ot.sliced_wasserstein_distance defines it, p = 2, along `projections` directions (default
    `sliced_projections(K)`) drawn with `seed`; sliced W2 is smaller than W2, 1/sqrt(2) of it
    for a translation in 2D, so compare like with like)."""
    return wasserstein_arrays(_as_numpy(nodes), density.array, exact_max_pairs, projections, seed)


def _held(q_grid: np.ndarray) -> np.ndarray:
    """Which cells (row-major) hold mass: at least 1e-12 of the largest."""
    q = q_grid.ravel()
    return q >= q.max() * 1e-12


def _support(q_grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centres of the cells that hold mass and their weights."""
    keep, q = _held(q_grid), q_grid.ravel()
    return cell_centres(q_grid.shape[0])[keep], q[keep] / q[keep].sum()


def is_exact(nodes: int, q_grid: np.ndarray, exact_max_pairs: int = EXACT_MAX_PAIRS) -> bool:
    """Whether W2 of `nodes` nodes on this grid is computed exactly (else sliced)."""
    return nodes * int(_held(q_grid).sum()) <= exact_max_pairs


def wasserstein_arrays(
    x: np.ndarray,
    q_grid: np.ndarray,
    exact_max_pairs: int = EXACT_MAX_PAIRS,
    projections: int | None = None,
    seed: int = SLICED_SEED,
) -> tuple[float, str]:
    """`wasserstein` on plain arrays: (K, 2) nodes and the (bins, bins) density grid (what
    toylab.transport sends to its helper processes)."""
    from ot.lp import emd2  # POT's submodules by name: the helpers import only these three
    from ot.utils import dist

    if not is_exact(x.shape[0], q_grid, exact_max_pairs):
        p = projections if projections is not None else sliced_projections(x.shape[0])
        return sliced_from_costs(sliced_costs(x, q_grid, 0, p, p, seed), p), "sliced"
    centres, b = _support(q_grid)
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    cost = dist(x, centres, metric="sqeuclidean")
    return float(np.sqrt(max(emd2(a, b, cost, numItermax=10_000_000), 0.0))), "exact"


def sliced_costs(
    x: np.ndarray, q_grid: np.ndarray, first: int, stop: int, projections: int, seed: int
) -> np.ndarray:
    """The 1D transport costs (W2^2) along directions first..stop-1 of the `projections`
    directions POT draws with `seed`: what ot.sliced_wasserstein_distance averages. Parts of
    the directions can be computed apart (the helpers split them at large K) and joined by
    `sliced_from_costs`, with the very number of one whole call.

    Each cost is POT's exact 1D solver (ot.emd2_1d: a sort and one merge), the same quantity
    sliced_wasserstein_distance gets from its quantile functions (equal to rounding, 1e-9
    relative at most) at a third of the time: 0.19 s instead of 0.61 s a direction at K = 10^6."""
    from ot.lp import emd2_1d
    from ot.sliced import get_random_projections

    centres, b = _support(q_grid)
    chosen = get_random_projections(x.shape[1], projections, seed)[:, first:stop]
    x_proj, c_proj = x @ chosen, centres @ chosen
    return np.array([emd2_1d(x_proj[:, j], c_proj[:, j], None, b) for j in range(chosen.shape[1])])


def sliced_from_costs(costs: np.ndarray, projections: int) -> float:
    """Sliced W2 from every direction's cost, as ot.sliced_wasserstein_distance combines
    them: (sum / number of directions) ** (1 / 2)."""
    return float((np.sum(costs) / projections) ** (1.0 / 2))
