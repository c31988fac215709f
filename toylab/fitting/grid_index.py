"""A uniform-grid index of the nodes, compiled with numba: exact nearest nodes in O(1) a query.

The square [-1, 1]^2 is cut into g x g cells (g ~ 2 sqrt(K), see `grid_size`);
each cell keeps a doubly linked list of its nodes, so a node that moves changes lists in O(1)
and the index never needs a rebuild. A query scans the rings of cells around the point's cell:
a node in ring k lies at least (k - 1) cell widths away in x or in y, so once the best distance
found is below r cell widths after ring r, no further ring can hold a nearer (or equally near)
node. Nodes outside the square are kept in the edge cells, which only makes them farther than
the bound assumes, so the answer is exact: the same node brute force picks, ties going to the
lowest index. Distances are computed with brute force's formula (|dx| + |dy|, or dx^2 + dy^2)
in float64, so even rounding agrees.

numba compiles these kernels once per machine (cached beside the module, a few seconds).
Whatever the coordinates (nodes far outside the square, inf, nan), every cell index stays inside
the grid: `_cell` clamps in floating point before converting, and a query whose distances are
all nan or inf (nodes that diverged) answers node 0 rather than an invalid index.

Large batches (PARALLEL_POINTS and more) are answered on all of numba's threads (`prange`).
Each point's answer depends only on the index, so the result is the same whatever the thread
count. (Visiting the points sorted by cell, as once done, no longer pays: the sort cost 0.5 ms
a step of 10^4 points at K = 10^6 and saved less.)
"""

from __future__ import annotations

import math

import numpy as np

from toylab.compiled import AVAILABLE, njit, prange, warms_up

_jit = njit()
PARALLEL_POINTS = 2048  # from this many points a query, use every thread (measured to pay)


@_jit
def _cell(x: float, y: float, g: int) -> int:
    """Cell of a point: column from x, row from y, clipped into the grid (nan -> 0, inf -> edge).

    The clamp happens before `int()`: converting inf, nan or a huge float is undefined in
    compiled code (it gave negative indices, hence out-of-bounds writes)."""
    cx = (x + 1.0) * (g / 2.0)
    cy = (y + 1.0) * (g / 2.0)
    i = 0
    j = 0
    if cx >= g - 1.0:
        i = g - 1
    elif cx > 0.0:  # false for nan
        i = int(cx)
    if cy >= g - 1.0:
        j = g - 1
    elif cy > 0.0:
        j = int(cy)
    return j * g + i


@_jit
def _link(
    n: int, c: int, head: np.ndarray, nxt: np.ndarray, prv: np.ndarray, cell: np.ndarray
) -> None:
    first = head[c]
    nxt[n] = first
    prv[n] = -1
    if first >= 0:
        prv[first] = n
    head[c] = n
    cell[n] = c


@_jit
def _unlink(n: int, head: np.ndarray, nxt: np.ndarray, prv: np.ndarray, cell: np.ndarray) -> None:
    p, q = prv[n], nxt[n]
    if p >= 0:
        nxt[p] = q
    else:
        head[cell[n]] = q
    if q >= 0:
        prv[q] = p


@_jit
def _build(
    pos: np.ndarray, g: int, head: np.ndarray, nxt: np.ndarray, prv: np.ndarray, cell: np.ndarray
) -> None:
    head[:] = -1
    for n in range(pos.shape[0] - 1, -1, -1):
        _link(n, _cell(pos[n, 0], pos[n, 1], g), head, nxt, prv, cell)


@_jit
def _move(
    nodes: np.ndarray,
    pos: np.ndarray,
    g: int,
    head: np.ndarray,
    nxt: np.ndarray,
    prv: np.ndarray,
    cell: np.ndarray,
) -> None:
    for k in range(nodes.shape[0]):
        n = nodes[k]
        c = _cell(pos[n, 0], pos[n, 1], g)
        if c != cell[n]:
            _unlink(n, head, nxt, prv, cell)
            _link(n, c, head, nxt, prv, cell)


@_jit
def _scan(
    c: int,
    px: float,
    py: float,
    pos: np.ndarray,
    head: np.ndarray,
    nxt: np.ndarray,
    l1: bool,
    best_d: float,
    best: int,
):
    n = head[c]
    while n >= 0:
        dx = abs(px - pos[n, 0])
        dy = abs(py - pos[n, 1])
        d = dx + dy if l1 else dx * dx + dy * dy
        if d < best_d or (d == best_d and n < best):
            best_d = d
            best = n
        n = nxt[n]
    return best_d, best


@_jit
def _nearest(
    px: float, py: float, pos: np.ndarray, g: int, head: np.ndarray, nxt: np.ndarray, l1: bool
) -> int:
    """Nearest node of one point: rings of cells around its cell until none can do better."""
    h = 2.0 / g
    c0 = _cell(px, py, g)
    ci, cj = c0 % g, c0 // g
    best_d = math.inf
    best = -1
    r = 0
    while True:
        i_lo, i_hi, j_lo, j_hi = ci - r, ci + r, cj - r, cj + r
        for j in range(max(j_lo, 0), min(j_hi, g - 1) + 1):
            edge_row = j == j_lo or j == j_hi  # noqa: SIM109 (plain compares for numba)
            if edge_row:
                for i in range(max(i_lo, 0), min(i_hi, g - 1) + 1):
                    best_d, best = _scan(j * g + i, px, py, pos, head, nxt, l1, best_d, best)
            else:
                if i_lo >= 0:
                    best_d, best = _scan(j * g + i_lo, px, py, pos, head, nxt, l1, best_d, best)
                if i_hi <= g - 1 and i_hi != i_lo:
                    best_d, best = _scan(j * g + i_hi, px, py, pos, head, nxt, l1, best_d, best)
        if i_lo <= 0 and i_hi >= g - 1 and j_lo <= 0 and j_hi >= g - 1:
            break  # the whole grid has been scanned
        bound = r * h  # every node in ring r + 1 or beyond is at least this far in x or y
        if best >= 0 and best_d < (bound if l1 else bound * bound):
            break
        r += 1
    return best if best >= 0 else 0  # every distance nan or inf: diverged nodes, answer node 0


@_jit
def _query(
    points: np.ndarray,
    pos: np.ndarray,
    g: int,
    head: np.ndarray,
    nxt: np.ndarray,
    l1: bool,
    out: np.ndarray,
) -> None:
    for k in range(points.shape[0]):
        out[k] = _nearest(points[k, 0], points[k, 1], pos, g, head, nxt, l1)


@njit(parallel=True)
def _query_parallel(
    points: np.ndarray,
    pos: np.ndarray,
    g: int,
    head: np.ndarray,
    nxt: np.ndarray,
    l1: bool,
    out: np.ndarray,
) -> None:
    """`_query` on every thread (each point's answer depends only on the index)."""
    for k in prange(points.shape[0]):
        out[k] = _nearest(points[k, 0], points[k, 1], pos, g, head, nxt, l1)


def grid_size(k: int) -> int:
    """Cells per side: 4 K cells over the square (a quarter of a node a cell), at most 4096.

    Nodes gather where the target has mass, so the cells the queries visit hold many more
    nodes than the average: with K / 2 cells (two nodes a cell) a K = 10^6 spiral fit reached
    ~60 nodes scanned a query (57 ms a step of 10^4 points); with 4 K cells, 8 ms. Answers do
    not depend on the grid (exact search, ties to the lowest index); memory stays O(K)."""
    return int(min(4096, max(1, round(math.sqrt(4.0 * k)))))


class GridIndex:
    """Exact nearest-node queries over moving nodes (CPU, numba), the KD-tree index's interface.

    `positions` is a (K, 2) float64 numpy array owned by the caller and changed in place; the
    caller reports every node it moves with `mark_moved` before the next query.
    """

    def __init__(self, positions: np.ndarray, distance: str = "l1"):
        if not AVAILABLE:
            raise RuntimeError("the grid index needs numba (pip install numba)")
        self.positions = positions
        self.distance = distance
        self._l1 = distance == "l1"
        k = positions.shape[0]
        self.g = grid_size(k)
        # 32-bit links (K and g^2 stay far below 2^31): at K = 10^6 the index is 28 instead of
        # 56 MB, more of it stays in the 32 MB cache, and a query is 18 % faster (measured)
        self._head = np.empty(self.g * self.g, dtype=np.int32)
        self._next = np.empty(k, dtype=np.int32)
        self._prev = np.empty(k, dtype=np.int32)
        self._cell = np.empty(k, dtype=np.int32)
        self.rebuilds = 0
        self.rebuild()

    def rebuild(self) -> None:
        """Rebuild every cell list from the positions (after a bulk change such as a resume)."""
        _build(self.positions, self.g, self._head, self._next, self._prev, self._cell)
        self.rebuilds += 1

    def mark_moved(self, indices: np.ndarray) -> None:
        """Move these nodes to the lists of their current cells."""
        _move(
            np.ascontiguousarray(indices, dtype=np.int64),
            self.positions,
            self.g,
            self._head,
            self._next,
            self._prev,
            self._cell,
        )

    def query(self, points: np.ndarray) -> np.ndarray:
        """Nearest node of each point, exactly as `brute_force_nearest` answers."""
        points = np.ascontiguousarray(points, dtype=np.float64)
        out = np.empty(points.shape[0], dtype=np.int64)
        args = (self.positions, self.g, self._head, self._next, self._l1, out)
        (_query if points.shape[0] < PARALLEL_POINTS else _query_parallel)(points, *args)
        return out


@warms_up
def _warm_up(methods: tuple[str, ...], distance: str, max_splits: int) -> None:
    """Load the query and move kernels (every method keeps an index on CPU)."""
    index = GridIndex(np.array([[0.0, 0.0], [0.5, 0.5]]), distance)
    index.query(np.array([[0.1, 0.1]]))
    index.mark_moved(np.array([0]))
