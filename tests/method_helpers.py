"""Shared by the tests of the methods that go beyond the paper (bsp, replay)."""

import numpy as np

import toylab
from toylab.config import RunConfig

SMALL = dict(nodes=600, steps=1500, batch=10, bins=64, frames=0)  # seconds, not minutes


def two_target_config(methods: list[str], nodes: int, **extra) -> RunConfig:
    """A short run over two targets (spiral, then blur circles) for resume and floor tests."""
    base = {
        "targets": ["spiral", "blur_circles"],
        "nodes": nodes,
        "steps": 70,
        "batch": 9,
        "frames": 2,
        "bins": 24,
        "methods": methods,
        "seed": 4,
    }
    return RunConfig(**(base | extra))


def assert_beats_sp_beyond_the_seeds_spread(method: str, target: str = "qr") -> None:
    """Paired by seed (same initial nodes, same data), the mean KL gain of `method` over sp
    must exceed three standard errors of the paired differences, so seed-to-seed noise cannot
    pass it."""
    diffs = []
    for seed in range(5):
        r = toylab.fit(target, methods=f"sp,{method}", seed=seed, **SMALL)
        m = r.metrics["targets"][0]["methods"]
        diffs.append(m["sp"]["kl"] - m[method]["kl"])
    diffs = np.array(diffs)
    stderr = diffs.std(ddof=1) / np.sqrt(diffs.size)
    assert diffs.mean() > 3 * stderr and diffs.mean() > 0, diffs
