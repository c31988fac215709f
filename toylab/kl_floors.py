"""How low the KL of K nodes can go: the allocation floor and the data-budget floor.

The evaluator scores P = node histogram / K against Q on the grid, so only how many nodes sit
in each cell matters. Two floors follow (issue 16):

- allocation floor: the K nodes put in the cells in the best integer proportion to the true Q,
  by largest remainder (floor(K q_c) nodes in cell c, the leftover nodes to the largest
  fractional parts). No method can know Q better than Q itself.
- data-budget floor: the same allocation made from the empirical histogram of the N samples a
  run draws instead of Q, scored against Q: the best a method can do knowing only its data.

Largest remainder is the issue's definition; it is not the KL-optimal integer allocation.
KL(n/K || Q) = sum_c f_c(n_c) with f_c(n) = (n/K) log(n / (K q_c)) convex in n, so the exact
minimiser over integer allocations adds nodes one at a time to the cell whose next node costs
least. `kl_optimal_allocation` finds it with a threshold search; it is reported beside the
largest-remainder figures (`*_kl_optimal`), and it bounds both from below:
data floor (either rule) >= optimal allocation floor, for every sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import densities
from toylab.metrics import divergences


def _as_q(density: Any) -> np.ndarray:
    q = density.array if isinstance(density, densities.Density) else density
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or not np.all(q >= 0) or not q.sum() > 0:
        raise ValueError("density must be a Density or a non-negative 2D array with mass")
    return q / q.sum()


def _check_nodes(nodes: int) -> int:
    if int(nodes) != nodes or nodes < 1:
        raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
    return int(nodes)


def largest_remainder(weights: np.ndarray, nodes: int) -> np.ndarray:
    """Integer counts summing to `nodes` in proportion to `weights` (Hamilton's method):
    floor(nodes w_c) each, the leftover to the largest remainders (ties: lowest index)."""
    w = np.asarray(weights, dtype=np.float64)
    nodes = _check_nodes(nodes)
    exact = w.ravel() / w.sum() * nodes
    counts = np.floor(exact).astype(np.int64)
    left = nodes - int(counts.sum())
    if left > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:left]] += 1
    return counts.reshape(w.shape)


def kl_optimal_allocation(weights: np.ndarray, nodes: int, q: np.ndarray | None = None):
    """The integer counts (summing to `nodes`) that minimise KL(counts / nodes || q), allowed
    only in cells where `weights` > 0; q defaults to the normalised weights.

    f_c(n) = n log(n / (K q_c)) is convex, so marginal costs g(n) - log(K q_c), with
    g(n) = (n + 1) log(n + 1) - n log n increasing, are increasing in n and the greedy choice is
    exact. The threshold on marginal costs is found by bisection, then the last nodes go to the
    cheapest next marginals: O(cells log K) instead of a K-step greedy.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    nodes = _check_nodes(nodes)
    qq = w / w.sum() if q is None else np.asarray(q, dtype=np.float64).ravel() / np.sum(q)
    allowed = (w > 0) & (qq > 0)
    n = np.arange(nodes + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        nlogn = np.where(n > 0, n * np.log(np.maximum(n, 1.0)), 0.0)
    g = nlogn[1:] - nlogn[:-1]  # g[n]: cost of the (n + 1)-th node before the shift, increasing
    shift = np.full(w.shape, np.inf)
    shift[allowed] = np.log(nodes * qq[allowed])  # marginal of cell c: g[n] - shift[c]

    def count_below(lam: float) -> np.ndarray:
        out = np.zeros(w.shape, dtype=np.int64)
        out[allowed] = np.searchsorted(g, lam + shift[allowed], side="left")
        return out

    lo, hi = float(-shift[allowed].max() - 1.0), float(g[-1] - shift[allowed].min() + 1.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if count_below(mid).sum() <= nodes:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    counts = count_below(lo)
    left = nodes - int(counts.sum())
    if left > 0:  # the cheapest next nodes, exactly as the greedy would add them
        cand = np.flatnonzero(allowed & (counts < nodes))
        nxt = g[np.minimum(counts[cand], nodes - 1)] - shift[cand]
        counts[cand[np.argsort(nxt, kind="stable")[:left]]] += 1
    return counts.reshape(np.shape(weights))


def allocation_kl(counts: np.ndarray, q: np.ndarray) -> float:
    """KL(counts / sum || q) in nats, the evaluator's formula."""
    counts = np.asarray(counts, dtype=np.float64)
    return divergences(counts / counts.sum(), q)["kl"]


def sample_histogram(density: Any, samples: Any, rng: np.random.Generator | None = None):
    """The empirical histogram of `samples`: an (N, 2) array of points or an int N (N points
    drawn from the density with `rng`, default seed 0)."""
    q = _as_q(density)
    bins = q.shape[0]
    if isinstance(samples, (int, np.integer)):
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if not isinstance(density, densities.Density):
            density = densities.Density("floor", q)
        rng = rng if rng is not None else np.random.default_rng(0)
        return densities.histogram(density.sample(int(samples), rng), bins)
    arr = np.asarray(samples)
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] > 0:
        return densities.histogram(arr.astype(np.float64), bins)
    raise ValueError(f"samples must be an int or an (N, 2) point array, got shape {arr.shape}")


def floors(
    density: Any,
    nodes: int,
    samples: Any = None,
    rng: np.random.Generator | None = None,
    histogram: np.ndarray | None = None,
) -> dict[str, float]:
    """The KL floors of `nodes` nodes on `density` (a Density or a (bins, bins) array).

    Returns allocation_floor (largest remainder of K Q) and allocation_floor_kl_optimal; with
    `samples` (an int N: N points drawn with `rng`, default seed 0; or an (N, 2) point array),
    or `histogram` (their (bins, bins) cell counts), also data_floor, data_floor_kl_optimal
    (the KL-optimal allocation for the empirical histogram, scored against Q) and samples (N).
    All KL(P || Q) in nats.
    """
    q = _as_q(density)
    nodes = _check_nodes(nodes)
    out: dict[str, float] = {
        "allocation_floor": allocation_kl(largest_remainder(q, nodes), q),
        "allocation_floor_kl_optimal": allocation_kl(kl_optimal_allocation(q, nodes), q),
    }
    hist = histogram
    if hist is None and samples is not None:
        hist = sample_histogram(density, samples, rng)
    if hist is not None:
        hist = np.asarray(hist)
        if hist.shape != q.shape or hist.min() < 0 or hist.sum() <= 0:
            raise ValueError(f"histogram must be {q.shape} non-negative counts with some mass")
        out["data_floor"] = allocation_kl(largest_remainder(hist, nodes), q)
        out["data_floor_kl_optimal"] = allocation_kl(kl_optimal_allocation(hist, nodes), q)
        out["samples"] = int(hist.sum())
    return out


def stream_histogram(
    density: densities.Density, rng_state: dict, steps: int, batch: int, chunk_points: int
) -> np.ndarray:
    """Cell counts of the steps * batch points a run drew for a target, redrawn from the data
    stream's state at the target's start in the run's own chunks (chunk_points // batch steps
    a draw, the last one cut), so the data floor costs the fit nothing per step."""
    rng = np.random.Generator(getattr(np.random, rng_state["bit_generator"])())
    rng.bit_generator.state = rng_state
    n = max(1, chunk_points // batch)
    hist = np.zeros((density.bins, density.bins), dtype=np.int64)
    for start in range(0, steps, n):
        chunk = density.sample(n * batch, rng)
        used = min(n, steps - start) * batch
        hist += densities.histogram(chunk[:used], density.bins)
    return hist


def run_floors(
    density: densities.Density,
    nodes: int,
    rng_state: dict | None,
    steps: int,
    batch: int,
    chunk_points: int,
) -> dict[str, float]:
    """The floors a run reports at a target's end (`floors`, with the data floor from the
    target's own points when the stream's state at its start is known). A module-level
    function of plain arguments, so the run's helper process can compute it."""
    hist = None
    if rng_state is not None:
        hist = stream_histogram(density, rng_state, steps, batch, chunk_points)
    return floors(density, nodes, histogram=hist)
