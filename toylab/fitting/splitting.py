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

On CPU (numpy counts) that candidate replay is compiled (`_plan_compiled`): one pass over the
counts keeps the max_splits largest and smallest (bounded heaps), then the replay runs on
array heaps, a few milliseconds at K = 10^6 with 2,000 splits where the Python heaps took
~30 ms. The Python heap replay stays for torch counts (GPU) and as the reference in tests.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from toylab import compiled
from toylab.compiled import AVAILABLE as COMPILED
from toylab.compiled import njit, prange, warms_up
from toylab.lazy import is_torch, torch

_HEAP_THRESHOLD = 4  # from this many splits a step on, use the candidate-heap path


def _should_split(
    c_max: float, c_min: float, total: float, k: int, split_ratio: float, prune_ratio: float
) -> bool:
    return c_max > split_ratio / k * total or c_min < prune_ratio / k * total


def plan_splits(
    counts,
    max_splits: int,
    split_ratio: float = 2.0,
    prune_ratio: float = 0.5,
    hint: SelectionHint | None = None,
) -> list[tuple[int, int]]:
    """Apply the rule to `counts` in place (float64 numpy array or torch tensor); return the
    (i, j) pairs in the order they were made. `hint`: see SelectionHint (speed only)."""
    k = counts.shape[0]
    if k < 2 or max_splits <= 0:
        return []
    if max_splits < _HEAP_THRESHOLD:
        return _plan_direct(counts, max_splits, split_ratio, prune_ratio)
    if COMPILED and isinstance(counts, np.ndarray):
        return _plan_compiled(counts, max_splits, split_ratio, prune_ratio, hint)
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
    on_torch = is_torch(counts)
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


# --- compiled replay: binary heaps on arrays, ordered by (key, index) ------------------------
# The top heap holds (-count, node) and the low heap (count, node): both pop the smallest key,
# lowest node first on ties, which is the order argmax / argmin visit.


@njit()
def _less(ka: float, ia: int, kb: float, ib: int) -> bool:
    return ka < kb or (ka == kb and ia < ib)


@njit()
def _sift_down(keys: np.ndarray, ids: np.ndarray, size: int, pos: int) -> None:
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _less(keys[child + 1], ids[child + 1], keys[child], ids[child]):
            child += 1
        if not _less(keys[child], ids[child], keys[pos], ids[pos]):
            return
        keys[pos], keys[child] = keys[child], keys[pos]
        ids[pos], ids[child] = ids[child], ids[pos]
        pos = child


@njit()
def _push(keys: np.ndarray, ids: np.ndarray, size: int, key: float, node: int) -> int:
    pos = size
    keys[pos] = key
    ids[pos] = node
    while pos > 0:
        parent = (pos - 1) // 2
        if not _less(keys[pos], ids[pos], keys[parent], ids[parent]):
            break
        keys[pos], keys[parent] = keys[parent], keys[pos]
        ids[pos], ids[parent] = ids[parent], ids[pos]
        pos = parent
    return size + 1


@njit()
def _pop(keys: np.ndarray, ids: np.ndarray, size: int) -> int:
    size -= 1
    keys[0] = keys[size]
    ids[0] = ids[size]
    _sift_down(keys, ids, size, 0)
    return size


@njit()
def _heapify(keys: np.ndarray, ids: np.ndarray, size: int) -> None:
    for t in range(size // 2 - 1, -1, -1):
        _sift_down(keys, ids, size, t)


@njit()
def _select_both(
    values: np.ndarray,
    m: int,
    top_k: np.ndarray,
    top_i: np.ndarray,
    low_k: np.ndarray,
    low_i: np.ndarray,
) -> tuple[int, int]:
    """`_select_range` over all of `values`."""
    return _select_range(values, 0, values.shape[0], m, top_k, top_i, low_k, low_i)


@njit()
def _select_range(
    values: np.ndarray,
    lo: int,
    hi: int,
    m: int,
    top_k: np.ndarray,
    top_i: np.ndarray,
    low_k: np.ndarray,
    low_i: np.ndarray,
) -> tuple[int, int]:
    """In one pass, the m nodes first by (-value, index) and the m first by (value, index),
    each as a heap ready for the replay. While filling, each is a bounded heap whose root is
    its worst kept candidate (pairs stored negated so that the root is the largest pair); the
    roots are kept in locals, so most values cost two comparisons."""
    n_top = 0
    n_low = 0
    top_root = math.inf  # worst kept (-value, index) pair, as (key, index); inf: not full
    top_root_i = 0
    low_root = math.inf
    low_root_i = 0
    for n in range(lo, hi):
        v = values[n]
        key = -v
        if n_top < m:
            n_top = _push(top_k, top_i, n_top, v, -n)  # stored negated: (-key, -n)
            if n_top == m:
                top_root, top_root_i = -top_k[0], -top_i[0]
        elif key < top_root or (key == top_root and n < top_root_i):
            top_k[0] = v
            top_i[0] = -n
            _sift_down(top_k, top_i, n_top, 0)
            top_root, top_root_i = -top_k[0], -top_i[0]
        if n_low < m:
            n_low = _push(low_k, low_i, n_low, key, -n)
            if n_low == m:
                low_root, low_root_i = -low_k[0], -low_i[0]
        elif v < low_root or (v == low_root and n < low_root_i):
            low_k[0] = key
            low_i[0] = -n
            _sift_down(low_k, low_i, n_low, 0)
            low_root, low_root_i = -low_k[0], -low_i[0]
    for keys, ids, size in ((top_k, top_i, n_top), (low_k, low_i, n_low)):
        for t in range(size):  # back to (key, index) order, then heapify
            keys[t] = -keys[t]
            ids[t] = -ids[t]
        _heapify(keys, ids, size)
    return n_top, n_low


@njit()
def _replay_heaps(
    counts: np.ndarray,
    max_splits: int,
    total: float,
    split_ratio: float,
    prune_ratio: float,
    out: np.ndarray,
    top_k: np.ndarray,
    top_i: np.ndarray,
    n_top: int,
    low_k: np.ndarray,
    low_i: np.ndarray,
    n_low: int,
) -> int:
    """The replay on candidate heaps already selected (room for 2 max_splits pushes)."""
    k = counts.shape[0]
    made = 0
    for _ in range(max_splits):
        while -top_k[0] != counts[top_i[0]]:  # stale: that node's count changed since
            n_top = _pop(top_k, top_i, n_top)
        while low_k[0] != counts[low_i[0]]:
            n_low = _pop(low_k, low_i, n_low)
        c_i, i = -top_k[0], top_i[0]
        c_j, j = low_k[0], low_i[0]
        if i == j or not (c_i > split_ratio / k * total or c_j < prune_ratio / k * total):
            break
        half = c_i / 2
        counts[i] = half
        counts[j] = half
        total = total - c_i - c_j + 2 * half
        n_top = _push(top_k, top_i, n_top, -half, i)
        n_top = _push(top_k, top_i, n_top, -half, j)
        n_low = _push(low_k, low_i, n_low, half, i)
        n_low = _push(low_k, low_i, n_low, half, j)
        out[made, 0] = i
        out[made, 1] = j
        made += 1
    return made


# -- parallel selection: at K = 10^6 the one pass over the counts that picks the candidates is
# most of the planner's time (5 ms of 6); with --threads >= 2 each thread selects in its own
# slice and the slices' candidates are merged. The candidates are the same set (the m first by
# (key, index) is one set however it is found), so the pairs are the same for every thread
# count.
PARALLEL_SELECT_MIN = 1 << 17  # counts from which the selection is split (a module knob: tests)


@njit(parallel=True)
def _select_slices(
    values: np.ndarray,
    m: int,
    top_k: np.ndarray,
    top_i: np.ndarray,
    low_k: np.ndarray,
    low_i: np.ndarray,
    sizes: np.ndarray,
) -> None:
    """Each of the top_k.shape[0] slices of `values` selects its own candidates."""
    parts = top_k.shape[0]
    n = values.shape[0]
    for p in prange(parts):
        lo = n * p // parts
        hi = n * (p + 1) // parts
        sizes[p, 0], sizes[p, 1] = _select_range(
            values, lo, hi, m, top_k[p], top_i[p], low_k[p], low_i[p]
        )


def _merged_heap(
    keys: np.ndarray, ids: np.ndarray, sizes: np.ndarray, m: int, cap: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The m first (key, index) pairs of the slices' candidates, as a heap with room `cap`."""
    k, i = _joined(keys, sizes), _joined(ids, sizes)
    return _heap_of(*_first(k, i, min(m, k.size)), cap)


def _joined(parts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The filled start of each slice's row, in slice order."""
    return np.concatenate([parts[p, : sizes[p]] for p in range(sizes.size)])


def _first(keys: np.ndarray, index: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The m first (key, index) pairs (in no particular order): every key below the m-th
    smallest, then the lowest indices among the keys equal to it."""
    if m == 0:
        return keys[:0], index[:0]
    kth = np.partition(keys, m - 1)[m - 1]
    below = np.flatnonzero(keys < kth)
    ties = np.flatnonzero(keys == kth)
    ties = ties[np.argsort(index[ties], kind="stable")[: m - below.size]]
    chosen = np.concatenate([below, ties])
    return keys[chosen], index[chosen]


def _heap_of(keys: np.ndarray, index: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, int]:
    """These candidates as a heap with room `cap` for the replay's pushes."""
    n = keys.size
    out_k, out_i = np.empty(cap), np.empty(cap, dtype=np.int64)
    out_k[:n], out_i[:n] = keys, index
    _heapify(out_k, out_i, n)
    return out_k, out_i, n


# -- selection at last step's thresholds: from one step to the next the m-th largest and m-th
# smallest counts rarely change (at K = 10^6, 68 % and 93 % of steps; when the m-th largest
# changes it mostly grows, with fewer than 2 m counts above the old one). One pass (on every
# thread, in slices) counts the values beyond each remembered threshold and at it, keeping
# those beyond (while there is room) and the first m at it. If the threshold is still the m-th
# value, the candidates are the kept values beyond it and the first ties; if it has been passed
# by m or more kept values, they are found among those; else (it fell, or no room) the full
# selection runs as before. The candidates are the same set either way, so are the pairs.
THRESHOLD_SELECT_MIN = 1 << 15  # counts from which the hint is used (a module knob: tests)
BEYOND_ROOM = 4  # values kept beyond a threshold per slice, in multiples of m (knob: tests)


class SelectionHint:
    """The m-th largest and smallest counts of the last selection (a caller keeps one per
    counts array; it changes speed only, never results, so it is not saved)."""

    def __init__(self) -> None:
        self.top = math.nan
        self.low = math.nan


@njit(parallel=True)
def _gather_at(
    values: np.ndarray,
    thresholds: np.ndarray,
    beyond_v: np.ndarray,
    beyond_i: np.ndarray,
    ties_i: np.ndarray,
    sizes: np.ndarray,
) -> None:
    """Each of the beyond_v.shape[1] slices of `values`, for side 0 (above thresholds[0]) and
    side 1 (below thresholds[1]): the values beyond the threshold kept in index order while
    there is room, the indices of the first ties (as many as ties_i has room for), and in
    sizes[side, slice] the number beyond and the number at the threshold."""
    parts, tie_room = beyond_v.shape[1], ties_i.shape[2]
    n = values.shape[0]
    t_top, t_low = thresholds[0], thresholds[1]
    for p in prange(parts):
        above = at_top = below = at_low = 0
        lo, hi = n * p // parts, n * (p + 1) // parts
        for start in range(lo, hi, 64):  # blocks: counted without branches, most end there
            end = min(start + 64, hi)
            was = (above, at_top, below, at_low)
            for k in range(start, end):
                v = values[k]
                above += v > t_top
                at_top += v == t_top
                below += v < t_low
                at_low += v == t_low
            keep_ties = (was[1] < tie_room and at_top > was[1]) or (
                was[3] < tie_room and at_low > was[3]
            )
            if above == was[0] and below == was[2] and not keep_ties:
                continue
            _keep_block(values, start, end, t_top, t_low, p, was, beyond_v, beyond_i, ties_i)
        sizes[0, p, 0], sizes[0, p, 1] = above, at_top
        sizes[1, p, 0], sizes[1, p, 1] = below, at_low


@njit()
def _keep_block(values, start, end, t_top, t_low, p, was, beyond_v, beyond_i, ties_i) -> None:  # noqa: ANN001
    """`_gather_at`'s stores for one block that holds values to keep (`was`: the counts
    before it)."""
    _keep_side(values, start, end, t_top, -1.0, 0, p, was[0], was[1], beyond_v, beyond_i, ties_i)
    _keep_side(values, start, end, t_low, 1.0, 1, p, was[2], was[3], beyond_v, beyond_i, ties_i)


@njit()
def _keep_side(values, start, end, t, sign, side, p, beyond, at, beyond_v, beyond_i, ties_i):  # noqa: ANN001
    """One side of `_keep_block`: values beyond t (sign * value < sign * t) while there is
    room, and the indices of ties while there is room for them."""
    room, tie_room = beyond_v.shape[2], ties_i.shape[2]
    for k in range(start, end):
        v = values[k]
        if sign * v < sign * t:
            if beyond < room:
                beyond_v[side, p, beyond] = v
                beyond_i[side, p, beyond] = k
            beyond += 1
        elif v == t:
            if at < tie_room:
                ties_i[side, p, at] = k
            at += 1


def _first_at(
    beyond_v: np.ndarray,
    beyond_i: np.ndarray,
    ties_i: np.ndarray,
    sizes: np.ndarray,
    t: float,
    m: int,
    sign: float,
    cap: int,
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """One side's m first by (sign * value, index), as a heap with room `cap`, from what
    `_gather_at` kept; None if they are not all there."""
    n_beyond, n_at = sizes[:, 0], sizes[:, 1]
    total = int(n_beyond.sum())
    if (n_beyond > beyond_v.shape[1]).any() or total + int(n_at.sum()) < m:
        return None
    keys, index = sign * _joined(beyond_v, n_beyond), _joined(beyond_i, n_beyond)
    if total < m:  # the threshold is still the m-th value: add its first ties
        ties = _joined(ties_i, np.minimum(n_at, ties_i.shape[1]))[: m - total]
        return _heap_of(
            np.concatenate([keys, np.full(m - total, sign * t)]), np.concatenate([index, ties]), cap
        )
    return _heap_of(*_first(keys, index, m), cap)  # passed by m or more: the first of those


def _plan_compiled(
    counts: np.ndarray,
    max_splits: int,
    split_ratio: float,
    prune_ratio: float,
    hint: SelectionHint | None = None,
) -> list[tuple[int, int]]:
    """Same pairs as `_plan_heap` (and `_plan_direct`), compiled; counts updated in place.
    `hint` (kept by the caller between steps) lets large counts be selected near last step's
    thresholds."""
    out = np.empty((max_splits, 2), dtype=np.int64)
    total = float(counts.sum())
    m = min(max_splits, counts.shape[0])
    cap = m + 2 * max_splits + 1  # room for the replay's pushes
    guessed = hint is not None and counts.shape[0] >= THRESHOLD_SELECT_MIN and m < counts.shape[0]
    selected = _select_guessed(counts, m, cap, hint) if guessed else None
    top, low = selected or _select_all(counts, m, cap, compiled.threads())
    if guessed:  # this step's thresholds, before the replay changes the counts
        hint.top = -float(top[0][: top[2]].max())
        hint.low = float(low[0][: low[2]].max())
    made = _replay_heaps(counts, max_splits, total, split_ratio, prune_ratio, out, *top, *low)
    return list(zip(out[:made, 0].tolist(), out[:made, 1].tolist(), strict=True))


def _empty_heaps(cap: int) -> list[np.ndarray]:
    """Keys and node ids of the top and the low heap."""
    return [
        np.empty(cap),
        np.empty(cap, dtype=np.int64),
        np.empty(cap),
        np.empty(cap, dtype=np.int64),
    ]


def _select_guessed(
    counts: np.ndarray, m: int, cap: int, hint: SelectionHint
) -> tuple[tuple, tuple] | None:
    """The candidate heaps from one pass at the hint's thresholds; None when that pass does
    not hold them."""
    if not (hint.top == hint.top and hint.low == hint.low):  # no hint yet (nan)
        return None
    parts = compiled.threads() if counts.shape[0] >= PARALLEL_SELECT_MIN else 1
    room = BEYOND_ROOM * m
    beyond_v = np.empty((2, parts, room))
    beyond_i = np.empty((2, parts, room), dtype=np.int64)
    ties_i = np.empty((2, parts, m), dtype=np.int64)
    sizes = np.empty((2, parts, 2), dtype=np.int64)
    thresholds = np.array([hint.top, hint.low])
    _gather_at(counts, thresholds, beyond_v, beyond_i, ties_i, sizes)
    top = _first_at(beyond_v[0], beyond_i[0], ties_i[0], sizes[0], hint.top, m, -1.0, cap)
    if top is None:
        return None
    low = _first_at(beyond_v[1], beyond_i[1], ties_i[1], sizes[1], hint.low, m, 1.0, cap)
    return None if low is None else (top, low)


def _select_all(counts: np.ndarray, m: int, cap: int, parts: int) -> tuple[tuple, tuple]:
    """The candidate heaps by one full pass (on `parts` slices in parallel when it pays)."""
    if parts < 2 or counts.shape[0] < PARALLEL_SELECT_MIN:
        heaps = _empty_heaps(cap)
        n_top, n_low = _select_both(counts, m, *heaps)
        return (heaps[0], heaps[1], n_top), (heaps[2], heaps[3], n_low)
    slices = [np.empty((parts, m)), np.empty((parts, m), dtype=np.int64)]
    slices += [np.empty((parts, m)), np.empty((parts, m), dtype=np.int64)]
    sizes = np.empty((parts, 2), dtype=np.int64)
    _select_slices(counts, m, *slices, sizes)
    top = _merged_heap(slices[0], slices[1], sizes[:, 0], m, cap)
    low = _merged_heap(slices[2], slices[3], sizes[:, 1], m, cap)
    return top, low


@warms_up
def _warm_up(methods: tuple[str, ...], distance: str, max_splits: int) -> None:
    """Load the planner's kernels if Split-and-Prune runs with enough splits to use them."""
    if "sp" in methods and max_splits >= _HEAP_THRESHOLD:
        _plan_compiled(np.array([0.0, 3.0, 1.0, 0.0, 2.0]), 8, 2.0, 0.5)
        hint = SelectionHint()  # large K: the one pass at last step's thresholds, called
        hint.top, hint.low = 2.0, 0.5  # as the fit calls it (the same argument types)
        _select_guessed(np.array([0.0, 3.0, 1.0, 0.0, 2.0]), 2, 8, hint)
        if compiled.threads() >= 2:  # the parallel selection of large K
            values, sizes = np.array([0.0, 3.0, 1.0, 0.0]), np.empty((2, 2), dtype=np.int64)
            heaps = [np.empty((2, 2)), np.empty((2, 2), dtype=np.int64)] * 2
            _select_slices(values, 2, *heaps, sizes)
