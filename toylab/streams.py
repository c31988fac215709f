"""Independent random streams from one seed.

Each purpose gets its own numpy Generator from SeedSequence(seed, spawn_key=(purpose, ...)):
node init, the data stream, one per method (keyed by the method's name, so adding a method
never shifts another's draws), and evaluation (real samples, one per target position).
"""

from __future__ import annotations

import zlib

import numpy as np

_PURPOSE = {"init": 0, "data": 1, "eval": 2, "method": 3}


def generator(seed: int, purpose: str, *key: int | str) -> np.random.Generator:
    """A PCG64 generator for `purpose` (and sub-key), independent of every other stream."""
    parts = [_PURPOSE[purpose]]
    for k in key:
        parts.append(zlib.crc32(k.encode()) if isinstance(k, str) else int(k))
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=tuple(parts)))
    )


def initial_nodes(seed: int, k: int) -> np.ndarray:
    """K node positions uniform in [-1, 1]^2 from the init stream."""
    return generator(seed, "init").uniform(-1.0, 1.0, size=(k, 2))
