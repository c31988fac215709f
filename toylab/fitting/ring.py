"""A ring buffer of points: the newest `len(ring)` points a method has seen, kept for re-reading.

Shared by `replay` (its buffer of the target's points) and the neural DDN's polish (its ring of
the newest points), which keep their head and fill in their own (checkpointed) state.
"""

from __future__ import annotations

import numpy as np


def push_points(ring: np.ndarray, head: int, filled: int, points: np.ndarray) -> tuple[int, int]:
    """Write `points` into `ring` from `head` on, over the oldest once full (a batch larger than
    the ring keeps its newest len(ring) points); returns the new (head, filled)."""
    cap = ring.shape[0]
    if points.shape[0] >= cap:
        points = points[-cap:]
    b = points.shape[0]
    end = head + b
    if end <= cap:
        ring[head:end] = points
    else:
        first = cap - head
        ring[head:] = points[:first]
        ring[: b - first] = points[first:]
    return end % cap, min(cap, filled + b)
