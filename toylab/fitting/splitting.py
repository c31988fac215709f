"""The Split-and-Prune rule on match counts, exactly as the conventions state it.

    repeat up to max_splits times:
        total = sum(counts); i = argmax(counts); j = argmin(counts)   (ties: lowest index)
        if counts[i] > split_ratio / K * total  or  counts[j] < prune_ratio / K * total:
            position[j] = position[i]; optimizer_state[j] = optimizer_state[i]
            counts[i] = counts[j] = counts[i] / 2
        else: stop

`plan_splits` returns the (i, j) pairs and updates the counts; the caller copies positions and
optimizer state in the same order. One split costs two O(K) reductions. Many splits a step
(large K) would cost O(max_splits K), so the many-split path first picks the max_splits
largest and smallest counts (exact ties by index) and replays the rule on those candidates
with two heaps: the same pairs in the same order, in O(K + max_splits log max_splits).
"""

from __future__ import annotations

import heapq

import numpy as np
import torch

_HEAP_THRESHOLD = 4  # from this many splits a step on, use the candidate-heap path


def _should_split(
    c_max: float, c_min: float, total: float, k: int, split_ratio: float, prune_ratio: float
) -> bool:
    return c_max > split_ratio / k * total or c_min < prune_ratio / k * total


def plan_splits(
    counts, max_splits: int, split_ratio: float = 2.0, prune_ratio: float = 0.5
) -> list[tuple[int, int]]:
    """Apply the rule to `counts` in place (float64 numpy array or torch tensor); return the
    (i, j) pairs in the order they were made."""
    k = counts.shape[0]
    if k < 2 or max_splits <= 0:
        return []
    if max_splits < _HEAP_THRESHOLD:
        return _plan_direct(counts, max_splits, split_ratio, prune_ratio)
    return _plan_heap(counts, max_splits, split_ratio, prune_ratio)


def _plan_direct(
    counts, max_splits: int, split_ratio: float, prune_ratio: float
) -> list[tuple[int, int]]:
    """The rule verbatim: argmax and argmin over all counts for every split."""
    k = counts.shape[0]
    pairs: list[tuple[int, int]] = []
    total = float(counts.sum())
    for _ in range(max_splits):
        i = int(counts.argmax())  # numpy and torch both return the first extreme index
        j = int(counts.argmin())
        c_i, c_j = float(counts[i]), float(counts[j])
        if i == j or not _should_split(c_i, c_j, total, k, split_ratio, prune_ratio):
            break
        half = c_i / 2
        counts[i] = half
        counts[j] = half
        total = total - c_i - c_j + 2 * half
        pairs.append((i, j))
    return pairs


def _extreme_indices(values: np.ndarray, m: int, largest: bool) -> np.ndarray:
    """The m indices that argmax (or argmin) would visit first: by value, then lowest index."""
    n = values.size
    if m >= n:
        return np.arange(n)
    # The m-th extreme value by torch.topk: numpy's partition crawls on counts, which are
    # mostly ties (hundreds of ms at K = 10^6 against a few ms).
    top = torch.topk(torch.from_numpy(values), m, largest=largest, sorted=False).values
    kth = float(top.min()) if largest else float(top.max())
    strict = np.flatnonzero(values > kth) if largest else np.flatnonzero(values < kth)
    ties = np.flatnonzero(values == kth)[: m - strict.size]
    return np.concatenate([strict, ties])


def _plan_heap(
    counts, max_splits: int, split_ratio: float, prune_ratio: float
) -> list[tuple[int, int]]:
    """Same pairs as `_plan_direct`, replayed on the top and bottom max_splits candidates.

    Only the candidates and the nodes a split touches can become the argmax or argmin within
    max_splits splits, so two lazy heaps over them reproduce the rule exactly.
    """
    k = counts.shape[0]
    on_torch = isinstance(counts, torch.Tensor)
    values = counts.detach().cpu().numpy() if on_torch else counts
    total = float(values.sum())
    m = min(max_splits, k)
    current: dict[int, float] = {}

    def value(i: int) -> float:
        return current.get(i, float(values[i]))

    top = [(-float(values[i]), int(i)) for i in _extreme_indices(values, m, largest=True)]
    low = [(float(values[i]), int(i)) for i in _extreme_indices(values, m, largest=False)]
    heapq.heapify(top)
    heapq.heapify(low)

    def peek(heap: list[tuple[float, int]], sign: float) -> tuple[float, int]:
        while True:
            v, i = heap[0]
            if sign * v == value(i):
                return sign * v, i
            heapq.heappop(heap)  # stale: that node's count changed since it was pushed

    pairs: list[tuple[int, int]] = []
    for _ in range(max_splits):
        c_i, i = peek(top, -1.0)
        c_j, j = peek(low, 1.0)
        if i == j or not _should_split(c_i, c_j, total, k, split_ratio, prune_ratio):
            break
        half = c_i / 2
        current[i] = current[j] = half
        total = total - c_i - c_j + 2 * half
        for node in (i, j):
            heapq.heappush(top, (-half, node))
            heapq.heappush(low, (half, node))
        pairs.append((i, j))
    if current and on_torch:
        idx = torch.tensor(list(current), dtype=torch.int64, device=counts.device)
        counts[idx] = torch.tensor(list(current.values()), dtype=counts.dtype, device=counts.device)
    elif current:
        counts[np.fromiter(current, np.int64)] = np.fromiter(current.values(), np.float64)
    return pairs
