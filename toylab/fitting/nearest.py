"""Nearest-node search: brute force, and a KD-tree index that follows moving nodes.

Both answer, for each query point, the index of the nearest node under the L1 or L2 distance,
ties going to the lowest node index (a split leaves two nodes at one position, so exact ties
are real here). The index returns exactly what brute force returns.

Why an index: brute force costs O(B K) a step (about 250 ms at K = 10^6). A step moves only
the few matched nodes, so the index keeps a KD-tree of a past snapshot of the positions plus
a "dirty" set of nodes that moved since. A query asks the tree for the nearest node; when that
node is clean it is the nearest clean node, otherwise the tree is asked again for more
neighbours. The answer is then compared with every dirty node by brute force. The tree is
rebuilt once the brute-force work on dirty nodes adds up to about the cost of a rebuild, a
rule on counts only, so runs stay reproducible. Nodes that share a position with a
lower-indexed node are left out of the tree (kept dirty) so the tree never has to break ties.

On CPU everything works on numpy arrays (views of the torch positions, no copies); on a GPU,
brute force in torch is fast enough and is used instead.
"""

from __future__ import annotations

import numpy as np

from toylab.lazy import is_torch, lazy, torch
from toylab.params import DISTANCES, INDEXES  # noqa: F401 (re-exported)

spatial = lazy("scipy.spatial")  # cKDTree, the index without numba (0.5 s to import)

CHUNK_ELEMENTS = 1 << 21  # bound on the size of (points x nodes) temporaries
# Cost model of the index (units ~ns on this machine, measured; only ratios matter): a
# brute-force (point, node) distance, a tree node per log2 level at build, a tree query.
_PAIR_COST = 10.0
_TREE_COST = 40.0
_QUERY_COST = 1500.0
_FIRST_NEIGHBOURS = 4  # neighbours asked of the tree: the first clean one is the answer
_RETRY_NEIGHBOURS = 32  # neighbours asked when the first few were all dirty
_TIE_NEIGHBOURS = 4  # neighbours asked of the dirty tree, to see ties (split copies)


class Scratch:
    """Reusable work buffers for (points x nodes) distance tables.

    Allocating a fresh table every step is slow for tables over ~128 KB: the allocator maps
    and unmaps memory each time and every page faults again (10x the arithmetic on some
    machines), so the hot paths reuse these buffers instead.
    """

    def __init__(self) -> None:
        self._a = np.empty(0)
        self._b = np.empty(0)

    def tables(self, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """Two float64 (rows, cols) views of the buffers, grown when needed."""
        size = rows * cols
        if self._a.size < size:
            self._a = np.empty(size)
            self._b = np.empty(size)
        return self._a[:size].reshape(rows, cols), self._b[:size].reshape(rows, cols)


_SCRATCH = Scratch()


def distances_np(
    points: np.ndarray, nodes: np.ndarray, distance: str, scratch: Scratch = _SCRATCH
) -> np.ndarray:
    """(B, N) distances between points (B, 2) and nodes (N, 2); L2 is squared (same order).

    The result lives in `scratch` and is overwritten by the next call with the same scratch.
    """
    dx, dy = scratch.tables(points.shape[0], nodes.shape[0])
    np.subtract(points[:, 0:1], nodes[None, :, 0], out=dx)
    np.subtract(points[:, 1:2], nodes[None, :, 1], out=dy)
    if distance == "l1":
        np.abs(dx, out=dx)
        np.abs(dy, out=dy)
    else:
        np.multiply(dx, dx, out=dx)
        np.multiply(dy, dy, out=dy)
    dx += dy
    return dx


def distances_torch(points: torch.Tensor, nodes: torch.Tensor, distance: str) -> torch.Tensor:
    """Torch version of `distances_np` (used on GPUs and by the brute-force index)."""
    dx = (points[:, 0:1] - nodes[None, :, 0]).abs_()
    dy = (points[:, 1:2] - nodes[None, :, 1]).abs_()
    if distance == "l1":
        return dx.add_(dy)
    return dx.mul_(dx).add_(dy.mul_(dy))


def brute_force_nearest(points, nodes, distance: str = "l1"):
    """Nearest node of each point (lowest index on ties), numpy or torch, in chunks."""
    n = nodes.shape[0]
    chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    if is_torch(nodes):
        points = points.to(nodes)
        parts = [
            distances_torch(points[s : s + chunk], nodes, distance).argmin(dim=1)
            for s in range(0, points.shape[0], chunk)
        ]
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64, device=nodes.device)
    parts = [
        distances_np(points[s : s + chunk], nodes, distance).argmin(axis=1)
        for s in range(0, points.shape[0], chunk)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)


def _first_of_each_position(idx: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split node indices into the lowest index of each distinct position and the rest."""
    if idx.size == 0:
        return idx, idx
    p = pos[idx]
    order = np.lexsort((idx, p[:, 1], p[:, 0]))
    sp = p[order]
    repeat = np.zeros(idx.size, dtype=bool)
    repeat[1:] = (sp[1:, 0] == sp[:-1, 0]) & (sp[1:, 1] == sp[:-1, 1])
    return idx[order[~repeat]], idx[order[repeat]]


class KDTreeIndex:
    """Exact nearest-node queries over moving nodes (CPU): a KD-tree snapshot plus a dirty set.

    `positions` is a (K, 2) float64 numpy array owned by the caller and changed in place; the
    caller reports every node it moves with `mark_moved` before the next query.

    The main tree holds one node per distinct position (the lowest index), so it never has to
    break a tie. Dirty nodes (moved since the snapshot) are searched by brute force while they
    are few, and through a small KD-tree of their own, built per query, once they are many
    (large batches move thousands of nodes a step). The main tree is rebuilt when the work
    spent on dirty nodes since the last rebuild reaches the cost of a rebuild.
    """

    def __init__(self, positions: np.ndarray, distance: str = "l1"):
        self.positions = positions
        self.distance = distance
        self._p = 1 if distance == "l1" else 2
        self.rebuilds = 0
        n = positions.shape[0]
        self._dirty_mask = np.zeros(n, dtype=bool)
        self._dirty_buf = np.empty(n, dtype=np.int64)
        self._n_dirty = 0
        self._tree: spatial.cKDTree | None = None
        self.rebuild()

    # -- maintenance ----------------------------------------------------------------------
    def rebuild(self) -> None:
        """Snapshot the positions into a fresh main tree; only repeated positions stay dirty.

        Only nodes touched since the last snapshot can share a position (a split's copy), so
        duplicates are looked for among them and the clean nodes they landed on, not among all
        K nodes.
        """
        pos = self.positions
        n = pos.shape[0]
        if self._tree is None:
            keep, repeats = _first_of_each_position(np.arange(n), pos)
            in_tree = np.sort(keep)
        else:
            dirty = self._dirty_buf[: self._n_dirty]
            suspects = dirty
            if dirty.size:
                dist, leaf = self._tree.query(pos[dirty], k=1, p=self._p)
                twin = self._tree_nodes[leaf[dist == 0]]
                twin = twin[~self._dirty_mask[twin]]
                suspects = np.union1d(dirty, twin)
            _, repeats = _first_of_each_position(suspects, pos)
            in_tree_mask = np.ones(n, dtype=bool)
            in_tree_mask[repeats] = False
            in_tree = np.flatnonzero(in_tree_mask)
        self._tree_nodes = in_tree
        self._snapshot = pos[in_tree]
        self._tree = spatial.cKDTree(self._snapshot, balanced_tree=False, compact_nodes=False)
        self._dirty_mask[:] = False
        self._dirty_mask[repeats] = True
        self._n_dirty = repeats.size
        self._dirty_buf[: repeats.size] = np.sort(repeats)
        self._work = 0.0
        self._budget = _TREE_COST * n * max(np.log2(max(n, 2)), 1.0)
        self.rebuilds += 1

    def mark_moved(self, indices: np.ndarray) -> None:
        """Record that these nodes moved (or were overwritten) since the last query."""
        new = indices[~self._dirty_mask[indices]]
        if new.size:
            new = np.unique(new) if new.size > 1 else new
            self._dirty_mask[new] = True
            self._dirty_buf[self._n_dirty : self._n_dirty + new.size] = new
            self._n_dirty += new.size

    def _dirty_cost(self, b: int, d: int) -> float:
        """Cost units (~ns) of searching d dirty nodes for b points, and the cheaper way."""
        if d == 0:
            return 0.0
        brute = _PAIR_COST * b * d
        tree = _TREE_COST * d * max(np.log2(d), 1.0) + _QUERY_COST * b
        return min(brute, tree)

    # -- queries --------------------------------------------------------------------------
    def query(self, points: np.ndarray) -> np.ndarray:
        """Nearest node of each point, exactly as `brute_force_nearest` answers."""
        b = points.shape[0]
        cost = self._dirty_cost(b, self._n_dirty)
        if self._work + cost > self._budget:
            self.rebuild()
            cost = self._dirty_cost(b, self._n_dirty)
        self._work += cost
        dirty = self._dirty_buf[: self._n_dirty]
        best, best_d, lower = self._nearest_clean(points)
        if dirty.size == 0:
            d_dirty, j_dirty = np.full(b, np.inf), np.zeros(b, np.int64)
        elif _PAIR_COST * b * dirty.size <= cost:
            d_dirty, j_dirty = self._nearest_dirty_brute(points, dirty)
        else:
            d_dirty, j_dirty = self._nearest_dirty_tree(points, dirty)
        unsure = best < 0
        if unsure.any():
            # The first neighbours the tree gave are all dirty. Their snapshot distance is a
            # lower bound on every clean node's distance, so a strictly nearer dirty node
            # settles it; otherwise search further for the nearest clean node.
            retry = np.flatnonzero(unsure & ~(d_dirty < lower))
            if retry.size:
                best[retry], best_d[retry] = self._nearest_clean_far(points[retry])
        take = (d_dirty < best_d) | ((d_dirty == best_d) & (j_dirty < best))
        return np.where(take, j_dirty, best)

    def _row_distance(self, points: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        d = np.abs(points[..., 0] - nodes[..., 0])
        e = np.abs(points[..., 1] - nodes[..., 1])
        return d + e if self.distance == "l1" else d * d + e * e

    def _nearest_dirty_brute(
        self, points: np.ndarray, dirty: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distance to, and index of, the nearest dirty node (lowest index on ties)."""
        pos_dirty = self.positions[dirty]
        out_d = np.empty(points.shape[0])
        out_j = np.empty(points.shape[0], dtype=np.int64)
        chunk = max(1, CHUNK_ELEMENTS // dirty.size)
        for s in range(0, points.shape[0], chunk):
            d = distances_np(points[s : s + chunk], pos_dirty, self.distance)
            first = d.argmin(axis=1)
            rows = np.arange(d.shape[0])
            d_min = d[rows, first]
            j = dirty[first]
            # Ties among dirty nodes (a split's two copies): the lowest index wins. Rare, so
            # the full comparison runs only for rows that have one.
            n_min = np.count_nonzero(d == d_min[:, None], axis=1)
            for r in np.flatnonzero(n_min > 1):
                j[r] = dirty[d[r] == d_min[r]].min()
            out_d[s : s + chunk], out_j[s : s + chunk] = d_min, j
        return out_d, out_j

    def _nearest_dirty_tree(
        self, points: np.ndarray, dirty: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The same answer through a KD-tree of the dirty nodes (many dirty nodes)."""
        pos_dirty = self.positions[dirty]
        k = min(_TIE_NEIGHBOURS, dirty.size)
        _, leaf = spatial.cKDTree(pos_dirty, balanced_tree=False, compact_nodes=False).query(
            points, k=k, p=self._p
        )
        leaf = leaf.reshape(points.shape[0], k)
        d = self._row_distance(points[:, None, :], pos_dirty[leaf])
        d_min = d.min(axis=1)
        tied = d == d_min[:, None]
        cand = np.where(tied, dirty[leaf], np.iinfo(np.int64).max).min(axis=1)
        unsure = tied[:, -1] & (k < dirty.size)  # more nodes may share that distance
        if unsure.any():
            rows = np.flatnonzero(unsure)
            d_min[rows], cand[rows] = self._nearest_dirty_brute(points[rows], dirty)
        return d_min, cand

    def _nearest_clean(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest clean node among the tree's first few neighbours of each point.

        Returns (node, distance, lower): node -1 and distance inf where all of them are dirty,
        with `lower` the snapshot distance of the first neighbour, a lower bound on the
        distance of every clean node.
        """
        k = min(_FIRST_NEIGHBOURS, self._tree_nodes.size)
        _, leaf = self._tree.query(points, k=k, p=self._p)
        leaf = leaf.reshape(points.shape[0], k)
        cand = self._tree_nodes[leaf]
        clean = ~self._dirty_mask[cand]
        first = np.argmax(clean, axis=1)  # neighbours come sorted by distance
        rows = np.arange(points.shape[0])
        found = clean[rows, first]
        best = np.where(found, cand[rows, first], -1)
        best_d = np.where(
            found, self._row_distance(points, self._snapshot[leaf[rows, first]]), np.inf
        )
        lower = self._row_distance(points, self._snapshot[leaf[:, 0]])
        return best, best_d, lower

    def _nearest_clean_far(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest clean node when the first neighbours were all dirty: more neighbours, then
        brute force over the clean nodes."""
        k = min(_RETRY_NEIGHBOURS, self._tree_nodes.size)
        _, leaf = self._tree.query(points, k=k, p=self._p)
        leaf = leaf.reshape(points.shape[0], k)
        cand = self._tree_nodes[leaf]
        clean = ~self._dirty_mask[cand]
        first = np.argmax(clean, axis=1)
        rows = np.arange(points.shape[0])
        out = cand[rows, first]
        out_d = self._row_distance(points, self.positions[out])
        missing = ~clean[rows, first]
        if missing.any():
            clean_nodes = np.flatnonzero(~self._dirty_mask)
            if clean_nodes.size:
                j = brute_force_nearest(points[missing], self.positions[clean_nodes], self.distance)
                out[missing] = clean_nodes[j]
                out_d[missing] = self._row_distance(points[missing], self.positions[out[missing]])
            else:
                out[missing] = -1
                out_d[missing] = np.inf
        return out, out_d


class BruteForceIndex:
    """The same interface, answering every query by brute force (numpy on CPU, torch on GPU)."""

    def __init__(self, positions, distance: str = "l1"):
        self.positions = positions
        self.distance = distance
        self.rebuilds = 0

    def mark_moved(self, indices) -> None:
        """Nothing to track: every query reads the current positions."""

    def rebuild(self) -> None:
        """Nothing to rebuild."""

    def query(self, points):
        return brute_force_nearest(points, self.positions, self.distance)


# Measured on CPU without numba: brute force costs ~2.5 ns per (point, node) pair, the
# KD-tree index ~250 us a step at batch 10 whatever K; they cross near K x batch = 2 x 10^5.
BRUTE_FORCE_PAIRS = 200_000


def make_index(positions, distance: str, kind: str = "auto", batch: int = 10):
    """The nearest-node index for these positions.

    auto: the numba grid index on CPU (exact, O(1) a query, no rebuilds); without numba,
    brute force for small K x batch and the KD-tree index above; on a GPU, brute force.
    """
    from .grid_index import AVAILABLE as HAVE_GRID
    from .grid_index import GridIndex

    if kind == "brute" or is_torch(positions):
        return BruteForceIndex(positions, distance)
    if kind == "grid" or (kind == "auto" and HAVE_GRID):
        return GridIndex(positions, distance)
    if kind == "auto" and positions.shape[0] * batch < BRUTE_FORCE_PAIRS:
        return BruteForceIndex(positions, distance)
    return KDTreeIndex(positions, distance)
