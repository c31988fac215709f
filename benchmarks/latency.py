"""Latency as a user meets it: start-up, argument errors, the default run warm and cold.

    python benchmarks/latency.py                # everything (~2 min on the shared 2-core box)
    python benchmarks/latency.py --runs 3 --skip-cold

Part 1 times whole commands (a fresh `python -m toylab ...` process each run): every --help,
a few rejected arguments, the default `toylab run` (spiral, K = 10,000, gd and sp, GIF and
report) with numba's cache warm, and the same run with an empty cache (NUMBA_CACHE_DIR set to
a new folder: the first run after install). Each figure is the median over --runs runs of the
wall time and of the CPU time (user + sys, from the OS's accounting of the finished child):
on a shared machine the wall time grows with the load, the CPU time much less.

Part 2 is the breakdown of the default run: the same steps `toylab run` takes, timed one by
one in a single fresh process (imports split out, so each library's import shows on its own
line), so it says where each 100 ms goes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HELP = [
    ["--help"],
    ["run", "--help"],
    ["gif", "--help"],
    ["figure", "--help"],
    ["densities", "--help"],
    ["sample", "--help"],
    ["explain", "--help"],
]
ERRORS = [
    ["run", "--target", "moons"],
    ["run", "--nodes", "1"],
    ["run", "--method", "gd,nope"],
    ["run", "--fps", "0"],
    ["explain", "--target", "moons"],
    ["gif", "/no/such/run"],
    ["nope"],
]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update(extra or {})
    return env


def time_command(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, int]:
    """Median wall and CPU seconds of `python -m toylab ARGV`, and its exit code."""
    walls, cpus, rc = [], [], 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "toylab", *argv],
            capture_output=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        )  # this child only: the counters are cumulative
        rc = proc.returncode
    return statistics.median(walls), statistics.median(cpus), rc


def part1(runs: int, skip_cold: bool) -> None:
    print(f"Part 1: whole commands, median of {runs} runs (load average {os.getloadavg()[0]:.1f})")
    print(f"{'command':<48} {'wall s':>8} {'cpu s':>8} {'exit':>5}")
    env = _env()
    rows = [(a, runs) for a in HELP + ERRORS]
    for argv, n in rows:
        wall, cpu, rc = time_command(argv, n, env)
        print(f"{'toylab ' + ' '.join(argv):<48} {wall:>8.2f} {cpu:>8.2f} {rc:>5}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = ["run", "--quiet", "--force", "--out", str(out)]
        time_command(argv, 1, env)  # make sure the cache is warm
        wall, cpu, rc = time_command(argv, runs, env)
        print(f"{'toylab run (default; numba cache warm)':<48} {wall:>8.2f} {cpu:>8.2f} {rc:>5}")
        if not skip_cold:
            walls, cpus = [], []
            for _ in range(max(1, min(runs, 3))):
                with tempfile.TemporaryDirectory() as cache:
                    w, c, rc = time_command(argv, 1, _env({"NUMBA_CACHE_DIR": cache}))
                walls.append(w)
                cpus.append(c)
            label = "toylab run (default; numba cache empty)"
            print(
                f"{label:<48} {statistics.median(walls):>8.2f} "
                f"{statistics.median(cpus):>8.2f} {rc:>5}"
            )


# Part 2 runs in a fresh child: the steps of `toylab run` (cli/run_cmd.py main, execute and
# cli/driver.py finish), each timed, heavy imports first so they show on their own lines.
BREAKDOWN = r"""
import resource, sys, time
T0 = time.perf_counter()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
rows = []
last = [time.perf_counter(), cpu()]
def mark(label):
    now, c = time.perf_counter(), cpu()
    rows.append((label, now - last[0], c - last[1]))
    last[0], last[1] = now, c
import numpy; mark("import numpy")
import toylab.cli; mark("import toylab.cli (parser modules, densities)")
from toylab.cli import run_cmd, driver
args = toylab.cli.build_parser().parse_args(["run", "--quiet", "--force", "--out", sys.argv[1]])
config = run_cmd.config_from_args(args); options = run_cmd.gif_options(args)
config.threads = driver.set_threads(config.threads); mark("parse and validate arguments")
import numba; mark("import numba")
from toylab import transport
transport.start(); mark("start the helpers (POT and W2; the GIF)")
WAIT = [0.0]
_result = transport.Pending.result
def _timed(self):
    t = time.perf_counter(); value = _result(self); WAIT[0] += time.perf_counter() - t
    return value
transport.Pending.result = _timed
from toylab.run import Run, build_targets
from toylab.store import rundir
from toylab.compiled import warm_up_kernels
targets = build_targets(config); mark("build the target density")
warm_up_kernels(tuple(config.methods), config.distance, config.max_splits); mark("load the compiled kernels")
run = Run(config, targets); mark("set up the run (initial nodes, indexes)")
rundir.check_new_out(args.out, True); rundir.claim_out(args.out, True)
rundir.write_config(args.out, config, {"gif": options}); mark("claim the directory, config.json")
from toylab.viz.gif_stream import GifStream
stream = GifStream(run, options)
run.advance(lambda: False, lambda r, s: stream.feed(r)); mark("fit: 10,000 steps x 2 methods, frames, KL")
import PIL.Image; from toylab.viz import gif, render; mark("import PIL and the drawing modules")
from toylab import outputs
GIF_WAIT = [0.0]
_start_writing = GifStream.start_writing
def _timed_writing(self, run, path):
    pending = _start_writing(self, run, path)
    if pending is not None:
        _res = pending.result
        def result():
            t = time.perf_counter(); value = _res(); GIF_WAIT[0] += time.perf_counter() - t
            return value
        pending.result = result
    return pending
GifStream.start_writing = _timed_writing
outputs.finish(args.out, run, options, True, rundir.Saver(args.out, run_id="latency"), stream=stream)
mark("save (thread) + final.png + GIF (helper) + report")
print(driver.results_table(run.metrics()), file=sys.stderr); mark("results table")
for label, wall, c in rows:
    print(f"{label:<48} {wall:>8.3f} {c:>8.3f}")
    if label.startswith("save"):
        print(f"{'  of which waiting for W2 (helper)':<48} {WAIT[0]:>8.3f}")
        print(f"{'  of which waiting for the GIF (helper)':<48} {GIF_WAIT[0]:>8.3f}")
        print(f"{'  GIF drawn by the helper':<48} {stream.usable!s:>8}")
print(f"{'torch / POT imported by the run itself':<48} {'torch' in sys.modules!s:>8} {'ot' in sys.modules!s:>8}")
print(f"{'total (after interpreter start)':<48} {time.perf_counter() - T0:>8.3f} {cpu():>8.3f}")
import gc; gc.freeze()  # as the console script ends (see toylab.cli.console)
"""


def part2() -> None:
    print("\nPart 2: the default run step by step, one fresh process (seconds)")
    print(f"{'step':<48} {'wall':>8} {'cpu':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(Path(tmp) / "run")],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=ROOT,
            check=False,
        )
        wall = time.perf_counter() - start
    print(proc.stdout, end="")
    if proc.returncode:
        print(proc.stderr[-3000:])
    print(f"{'whole process (interpreter start included)':<48} {wall:>8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    ap.add_argument("--skip-cold", action="store_true", help="skip the empty-cache runs")
    ap.add_argument("--breakdown-only", action="store_true", help="only part 2")
    args = ap.parse_args()
    if not args.breakdown_only:
        part1(args.runs, args.skip_cold)
    part2()


if __name__ == "__main__":
    main()
