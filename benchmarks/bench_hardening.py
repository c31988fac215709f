"""Issue 12: what the safety costs. Prints the time of one periodic state save (frames,
checksummed checkpoint, metrics, KL log, nodes) at several K, and the cost of the divergence
check against the time of a step, measured in one process.

    PYTHONPATH=. python benchmarks/bench_hardening.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from toylab import run as run_mod
from toylab.config import RunConfig
from toylab.run import Run
from toylab.store import rundir


def save_seconds(k: int, repeats: int = 5) -> float:
    """Best time of one periodic save (96 frames at 100 bins, 2 methods, K nodes)."""
    config = RunConfig(targets=["spiral"], nodes=k, steps=200, methods=["gd", "sp"]).validate()
    run = Run(config)
    run.advance()
    with tempfile.TemporaryDirectory() as tmp:
        saver = rundir.Saver(Path(tmp), "bench")
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            saver.save_state(run)
            best = min(best, time.perf_counter() - t0)
    return best


def check_cost(k: int = 10_000, steps: int = 2000) -> tuple[float, float]:
    """(seconds of one divergence check of every method, seconds of one step) at K nodes."""
    config = RunConfig(targets=["spiral"], nodes=k, steps=steps, methods=["gd", "sp"], frames=2)
    r = Run(config.validate())
    t0 = time.perf_counter()
    r.advance()
    step = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    for _ in range(1000):
        r._check_diverged()
    return (time.perf_counter() - t0) / 1000, step


def main() -> None:
    for k in (1_000, 10_000, 100_000):
        print(f"state save at K = {k:>7,}: {1000 * save_seconds(k):8.1f} ms")
    check, step = check_cost()
    share = check / run_mod.CHECK_EVERY / step
    print(
        f"divergence check at K = 10,000 (gd, sp): {1e6 * check:.1f} us per check, "
        f"{1e6 * step:.0f} us per step; every {run_mod.CHECK_EVERY} steps = {100 * share:.2f}% "
        "of the fit"
    )


if __name__ == "__main__":
    main()
