"""Compile (or load from numba's cache) every compiled kernel once, on tiny inputs.

The first call of a numba function compiles it (seconds on a new machine, a fraction of a
second from the cache afterwards); doing that here keeps it out of the per-method timings.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def warm_up_kernels() -> None:
    """Run each compiled kernel once on a 2-node problem."""
    from .grid_index import AVAILABLE, GridIndex
    from .optim import SGD
    from .soft_kernel import soft_draw

    if not AVAILABLE:
        return
    rng = np.random.default_rng(0)
    pos = np.array([[0.0, 0.0], [0.5, 0.5]])
    points = np.array([[0.1, 0.1]])
    for distance in ("l1", "l2"):
        index = GridIndex(pos.copy(), distance)
        index.query(points)
        index.mark_moved(np.array([0]))
        soft_draw(points, index, 1.0, rng)
    SGD(pos.copy(), 0.2).step(points, np.array([0]))
