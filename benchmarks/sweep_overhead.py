"""What `toylab sweep` costs on top of the fits: parallel speed-up and per-cell overhead.

    python benchmarks/sweep_overhead.py                  # 100 small cells, 4 cells at K = 10^4
    python benchmarks/sweep_overhead.py --cells 20 --big-cells 2

Part 1, speed-up: a sweep of --cells cells (K = --nodes, --steps steps, methods gd,sp, one
seed per cell) on the local executor with --workers 1 and with 2 workers; also the same cells
run one after another in this process without a sweep (Run + advance + run directory), the
"plain serial" time. Pool start-up (spawning workers, importing torch, numba cache) is timed
separately and included in the sweep walls.

Part 2, overhead per cell at K = --big-nodes (--big-steps steps): the worker's breakdown
(start: Run + config.json; advance: the fit plus its KL logging and frames; write: the run
directory; zip: packing it to send back) and the driver's (unpack, results.csv/parquet), and
the sweep's wall per cell minus the plain in-process time of the same cell: what the sweep
adds. Overhead is stated against the cell's fit time (the methods' step time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import early_threads, machine_line  # noqa: E402

early_threads(1)


def spec_text(nodes: int, steps: int, cells: int) -> str:
    return (
        f'[fixed]\ntarget = "spiral"\nnodes = {nodes}\nsteps = {steps}\nmethod = "gd,sp"\n'
        f"[axes]\nseed = {list(range(cells))}\n"
    )


def plain_serial(spec, root: Path) -> tuple[float, float]:
    """The cells one after another in this process, as `toylab run` would: wall, fit seconds."""
    from toylab.run import Run
    from toylab.store import rundir

    fit = 0.0
    t0 = time.perf_counter()
    for cell in spec.cells:
        out = root / cell.name
        out.mkdir(parents=True)
        run = Run(cell.config)
        rundir.write_config(out, cell.config)
        run.advance()
        rundir.Saver(out, run_id="benchmark").save_state(run)
        fit += sum(m["seconds"] for m in run.metrics()["targets"][0]["methods"].values())
    return time.perf_counter() - t0, fit


def pool_start(workers: int) -> float:
    """Seconds to start a pool of `workers` and have each one ready (imports, numba warm)."""
    from toylab.sweep.executors import LocalExecutor

    t0 = time.perf_counter()
    ex = LocalExecutor(workers)
    futures = [ex.pool.submit(time.sleep, 0.5) for _ in range(workers)]
    for f in futures:
        f.result()
    wall = time.perf_counter() - t0 - 0.5
    ex.close()
    return wall


def sweep(spec, root: Path, workers: int) -> tuple[dict, dict]:
    """Run the sweep; its phases' seconds (cells: the pool working through every cell, worker
    start-up included; summary: the figure and tables) and sweep.json's per-cell record."""
    from toylab.sweep import run_sweep

    out = root / f"sweep-{workers}"
    t0 = time.perf_counter()
    outcome = run_sweep(spec, out, workers=workers, quiet=True)
    seconds = dict(outcome.seconds, total=time.perf_counter() - t0)
    assert not outcome.failed, outcome.failed
    state = json.loads((out / "sweep.json").read_text())["cells"]
    return seconds, state


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, default=100)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--big-cells", type=int, default=4)
    p.add_argument("--big-nodes", type=int, default=10_000)
    p.add_argument("--big-steps", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1, help="threads of this process (default 1)")
    args = p.parse_args()

    from toylab.cli.driver import set_threads
    from toylab.sweep import parse_spec

    set_threads(1)
    print(machine_line(1))
    print(
        "NOTE: measured on a shared 2-core machine loaded by other engineers' jobs; "
        "walls are noisy, compare the ratios."
    )
    root = Path(tempfile.mkdtemp(prefix="toylab-sweep-bench-"))

    # -- part 1 ------------------------------------------------------------------------------
    spec = parse_spec(spec_text(args.nodes, args.steps, args.cells), max_cells=10**6)
    print(
        f"\nPart 1: {args.cells} cells, K = {args.nodes:,}, {args.steps:,} steps, gd,sp, "
        f"spiral, 96 frames each"
    )
    start1 = pool_start(1)
    start2 = pool_start(2)
    plain, fit = plain_serial(spec, root / "plain")
    s1, st1 = sweep(spec, root, 1)
    s2, st2 = sweep(spec, root, 2)
    load = os.getloadavg()[0]
    print(f"  pool start-up alone: 1 worker {start1:.1f} s, 2 workers {start2:.1f} s")
    print(f"  plain serial (this process, no sweep): {plain:7.1f} s   (fit {fit:.1f} s)")
    for w, s in ((1, s1), (2, s2)):
        print(
            f"  sweep --workers {w}: cells {s['cells']:7.1f} s (start-up included), "
            f"summary {s['summary']:.1f} s, total {s['total']:.1f} s"
        )
    for w, st in ((1, st1), (2, st2)):
        cells = list(st.values())
        span = max(c["span"][1] for c in cells) - min(c["span"][0] for c in cells)
        wall = sum(c["wall"] for c in cells)
        cpu = sum(c["cpu"] for c in cells)
        print(
            f"  --workers {w}: cells running at once {wall / span:.2f} on average; a cell's "
            f"wall {wall / len(cells):.3f} s, CPU {cpu / len(cells):.3f} s "
            f"({100 * cpu / wall:.0f}%: the share of a core each worker got)"
        )
    net1, net2 = s1["cells"] - start1, s2["cells"] - start2
    print(
        f"  2 workers / 1 worker: cells {s2['cells'] / s1['cells']:.2f}, "
        f"start-up excluded {net2 / net1:.2f}   (ideal 0.50; "
        f"load average now {load:.1f} on {os.cpu_count()} cores)"
    )

    # -- part 2 ------------------------------------------------------------------------------
    big = parse_spec(spec_text(args.big_nodes, args.big_steps, args.big_cells))
    print(
        f"\nPart 2: {args.big_cells} cells, K = {args.big_nodes:,}, {args.big_steps:,} steps, "
        "gd,sp, spiral, one worker"
    )
    plain, fit = plain_serial(big, root / "plain-big")
    start = pool_start(1)
    seconds, state = sweep(big, root / "big", 1)
    n = len(big.cells)
    cells = sorted(state.values(), key=lambda info: info["span"][0])
    parts = {k: sum(c["parts"][k] for c in cells) / n for k in cells[0]["parts"]}
    fit_cell = sum(c["fit"] for c in cells) / n
    # In the worker, beyond what `toylab run` does (Run, advance, run directory): zip etc.
    extra = (
        sum(
            c["wall"] - c["parts"]["start"] - c["parts"]["advance"] - c["parts"]["write"]
            for c in cells
        )
        / n
    )
    # Idle time of the one worker between a cell's end and the next one's start: dispatch,
    # pickling, the result's trip back (the driver's own work overlaps the next cell).
    gaps = [b["span"][0] - a["span"][1] for a, b in zip(cells, cells[1:], strict=False)]
    gap = sum(gaps) / len(gaps) if gaps else float("nan")
    added = extra + gap
    print("  per cell, in the worker: " + ", ".join(f"{k} {v:.3f} s" for k, v in parts.items()))
    print(
        f"  fit time per cell (the methods' steps): {fit_cell:.3f} s;  plain in-process cell "
        f"(Run + advance + run directory, as `toylab run`): {plain / n:.3f} s"
    )
    print(
        f"  sweep overhead per cell: in the worker {extra:.3f} s (zip, temp folder) + idle gap "
        f"between cells {gap:.3f} s = {added:.3f} s = {100 * added / fit_cell:.1f}% of the fit"
    )
    print(
        f"  driver per cell (unpack, results.csv, sweep.json; overlaps the next cell): "
        f"{parts.get('driver', float('nan')):.3f} s;  pool start-up {start:.1f} s once "
        f"(= {start / 100:.3f} s a cell over a 100-cell sweep)"
    )
    print(f"\n(files under {root})")


if __name__ == "__main__":
    main()
