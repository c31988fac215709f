"""Helper processes for what a run needs only at a target's end or for a picture.

`import ot` costs about a second (POT loads every solver, scipy.stats and, if installed, torch
for its backends); W2 and the data floor (which redraws the target's N points) cost seconds at
K = 10^6; the GIF's frames cost as much as the default fit. A run needs none of them to go on.
`start()` launches two helpers, one per lane, on the core(s) the fit does not use: METRICS
imports POT's three modules the metric needs while the fit runs and computes W2 and the floors
when a target ends; PICTURES draws the GIF's frames as they are recorded
(toylab.viz.gif_stream). `submit(nodes, density)` (W2; split between the lanes from SPLIT_MIN
nodes) and `submit_call(fn, *args, lane=...)` hand a job over and return a `Pending` whose
`result()` waits for the answer, so the caller goes on meanwhile (the run settles them when its
results are read). A helper runs the very function a direct call runs, so the numbers are
identical either way (tested). Without helpers (one core, TOYLAB_HELPERS=0) or with a dead one,
`result()` computes in this process; a job that only a helper can do raises HelperFailed and
its caller does the work itself.

Each helper is a fresh interpreter in its own session (Ctrl-C in the terminal reaches only the
run, whose handler decides), ends when the run closes its end of the socket, never imports
torch, and writes nothing to the terminal.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from densities import Density
from toylab.lazy import as_numpy

ENV_SWITCH = "TOYLAB_HELPERS"  # "0": no helper processes, the run does all the work itself
HELPER_NICENESS = 10  # added to the helpers' niceness: the fit (the run's path) goes first

METRICS, PICTURES = "metrics", "pictures"  # the lanes: W2 and the floors; the GIF's frames
LANES = (METRICS, PICTURES)
_helpers: dict[str, _Helper] = {}
_IN_HELPER = False  # true in a helper process (it may import POT's parts alone)
_stopping = threading.Lock()


class _Helper:
    """One helper process answering jobs in the order they were sent.

    It is a fresh `python -c` (not multiprocessing's spawn, which re-runs the caller's main
    script: a script calling toylab.cli.main without a __main__ guard would break), in its own
    session (Ctrl-C in the terminal reaches the run, whose handler decides), talking over a
    socket pair with multiprocessing's Connection. It ends when the run closes its end.
    A job is pickled by the caller (a pickling error shows there) and written by a sender
    thread, so the run never blocks while the helper is busy: at K = 10^6 a GIF frame is
    360 KB and the socket holds far less, so writing it directly stalled the fit for seconds."""

    def __init__(self, lane: str) -> None:
        import json
        import socket
        import subprocess
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        code = (
            f"import sys; sys.path[:0] = {json.dumps([p for p in sys.path if p])}; "
            f"from toylab.transport import _serve_fd; _serve_fd({theirs.fileno()}, {lane!r})"
        )
        env = {**os.environ, "POT_BACKEND_DISABLE_PYTORCH": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # it never prints; a failure shows as the run's fallback
            stderr=subprocess.DEVNULL,  # (and would only confuse a terminal or a log)
            start_new_session=True,
            env=env,
        )
        theirs.close()
        self.lane = lane
        self.conn = Connection(ours.detach())
        self.sent = 0  # jobs sent so far (a job's number is its order)
        self.answers: dict[int, tuple[bool, Any]] = {}  # read, not yet collected
        # Two threads use the helper at a run's end (the save settles W2 while the pictures
        # wait for the GIF): one reads the pipe at a time, one numbers and queues at a time.
        self.reading = threading.Lock()
        self.writing = threading.Lock()
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.sender = threading.Thread(target=self._send_loop, name="toylab-helper-send")
        self.sender.daemon = True
        self.sender.start()

    def _send_loop(self) -> None:
        while (data := self.outbox.get()) is not None:
            try:
                self.conn.send_bytes(data)
            except (OSError, ValueError):  # the helper is gone: its reader gets EOF
                return

    def send(self, fn: Callable[..., Any], args: tuple, reply: bool = True) -> int:
        """Queue a job; its number (-1 for a job whose answer nobody reads: none is sent)."""
        from multiprocessing.reduction import ForkingPickler

        with self.writing:
            number = self.sent if reply else -1
            self.outbox.put(bytes(ForkingPickler.dumps((number, fn, args))))
            if reply:
                self.sent += 1
            return number

    def receive(self, job: int) -> Any:
        """Job `job`'s answer; answers to other jobs read on the way are kept for them."""
        with self.reading:
            while job not in self.answers:
                number, ok, value = self.conn.recv()
                self.answers[number] = (ok, value)
            ok, value = self.answers.pop(job)
        if not ok:
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        """End the process, then close the pipe once no thread reads or writes it (a reader
        of a dead helper's pipe gets EOF at once; closing under it could let its file
        descriptor be reused by another file while it still reads)."""
        if self.process.poll() is None:
            self.process.terminate()
        with contextlib.suppress(Exception):  # a helper that will not die is left to the OS
            self.process.wait(timeout=5)
        self.outbox.put(None)
        self.sender.join(timeout=5)  # a write to the dead helper fails at once
        with self.reading, self.writing:
            self.conn.close()


def _serve_fd(fd: int, lane: str = METRICS) -> None:
    """The helper process's entry point: serve the run on its end of the socket pair."""
    from multiprocessing.connection import Connection

    _serve(Connection(fd), lane)


def _import_pot_parts() -> None:
    """Import the three parts of POT the W2 metric uses (ot.lp, ot.sliced, ot.utils) without
    running the package's __init__, which imports every solver and scipy.stats (0.9-1.1 s
    against 0.4-0.5 s here, on the helper's core during the fit). The functions are POT's own,
    so the numbers do not change (tested against the run's own process). If this POT does not
    allow it, the whole package is imported instead."""
    import importlib
    import importlib.util

    if "ot" in sys.modules:
        return
    import types

    try:
        spec = importlib.util.find_spec("ot")
        if spec is None or spec.submodule_search_locations is None:
            return
        package = types.ModuleType("ot")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["ot"] = package
        for part in ("ot.utils", "ot.lp", "ot.sliced"):
            importlib.import_module(part)
    except Exception:  # any trouble: forget the partial import, load POT as usual
        for name in [m for m in sys.modules if m == "ot" or m.startswith("ot.")]:
            del sys.modules[name]
        importlib.import_module("ot")


def _serve(conn: Any, lane: str = METRICS) -> None:
    """The helper's loop: answer (fn, args) jobs until the run's end closes; the metrics
    helper first imports POT (the point of it: paying that import off the run's path)."""
    global _IN_HELPER
    _IN_HELPER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):  # the run's own work first; the helpers take the idle time
        with contextlib.suppress(OSError):
            os.nice(HELPER_NICENESS)
    if lane == METRICS:
        _import_pot_parts()

    while True:
        try:
            job, fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = (job, True, fn(*args))
        except Exception as err:  # the run recomputes in its own process and reports it there
            answer = (job, False, f"{type(err).__name__}: {err}")
        if job >= 0:  # a failed job without a reply shows in the job that depends on it
            try:
                conn.send(answer)
            except OSError:  # the run is gone
                return


def start(nodes: int = 0) -> bool:
    """Start the helpers once per process (on a machine with at least two cores, unless
    TOYLAB_HELPERS=0): one per lane, so the target-end metrics and the GIF are computed side
    by side when the run waits for both. True if they run. For a run of `nodes` nodes whose
    W2 will be split between them (SPLIT_MIN and more) the pictures helper imports POT's parts
    now too, not when the target ends (0.4-1 s off the run's last wait at K = 10^6)."""
    if not _helpers and os.environ.get(ENV_SWITCH, "1") != "0" and (os.cpu_count() or 1) > 1:
        try:
            for lane in LANES:
                _helpers[lane] = _Helper(lane)
        except OSError:  # no processes to spare: the run does the work itself
            stop()
    if nodes >= SPLIT_MIN and PICTURES in _helpers:
        submit_call(_import_pot_parts, lane=PICTURES, reply=False)
    return bool(_helpers)


def running(lane: str = METRICS) -> bool:
    """Whether the lane's helper process is running (its jobs go there)."""
    return lane in _helpers


def stop(lane: str | None = None) -> None:
    """End one lane's helper, or all (a later `start` launches new ones); safe from any
    thread."""
    with _stopping:
        gone = [_helpers.pop(name) for name in list(_helpers) if lane in (None, name)]
    for helper in gone:
        helper.close()


class HelperFailed(RuntimeError):
    """A job that only the helper can do (fallback=False) did not come back."""


class Pending:
    """A job: `result()` gives fn(*args), from the helper or, failing that (and if the job
    allows it), computed here."""

    _UNSET = object()

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple,
        helper: _Helper | None,
        job: int,
        fallback: bool = True,
    ):
        self.fn, self.args, self.helper, self.job = fn, args, helper, job
        self.fallback = fallback
        self.value: Any = self._UNSET

    def result(self) -> Any:
        helper = self.helper
        if self.value is self._UNSET and helper is not None and helper in _helpers.values():
            try:
                self.value = helper.receive(self.job)
            except RuntimeError as err:  # the job failed there
                if not self.fallback:
                    raise HelperFailed(str(err)) from None
            except (EOFError, OSError):
                stop(helper.lane)  # a dead helper: this and its lane's later jobs run here
        if self.value is self._UNSET:
            if not self.fallback:
                raise HelperFailed("the helper process is gone")
            self.value = self.fn(*self.args)
        self.args = ()  # the inputs can be large (K = 10^6 nodes): let them go
        return self.value


def submit_call(
    fn: Callable[..., Any],
    *args: Any,
    lane: str = METRICS,
    reply: bool = True,
    fallback: bool = True,
) -> Pending | None:
    """Start fn(*args) in the lane's helper if it runs (fn a module-level function, args
    picklable). reply=False: nobody waits for it (returns None; nothing is done without a
    helper). fallback=False: result() raises HelperFailed instead of computing here."""
    helper, job = _helpers.get(lane), -1
    if helper is not None:
        try:
            job = helper.send(fn, args, reply)
        except Exception:  # not picklable: done here (a failing helper never fails the run)
            helper = None
    if not reply:
        return None
    return Pending(fn, args, helper, job, fallback)


SPLIT_MIN = 100_000  # nodes from which a sliced W2 is split between the two helpers


class _Joined:
    """A sliced W2 computed in parts (one per helper): result() joins their costs."""

    def __init__(self, parts: list[Pending], projections: int):
        self.parts, self.projections = parts, projections

    def result(self) -> tuple[float, str]:
        from toylab.metrics import sliced_from_costs

        costs = np.concatenate([part.result() for part in self.parts])
        return sliced_from_costs(costs, self.projections), "sliced"


def _sliced_part(
    x: np.ndarray, q_grid: np.ndarray, first: int, stop: int, projections: int, seed: int
) -> np.ndarray:
    """metrics.sliced_costs, importing POT's parts first when it runs in a helper."""
    from toylab.metrics import sliced_costs

    if _IN_HELPER:
        _import_pot_parts()
    return sliced_costs(x, q_grid, first, stop, projections, seed)


def submit(nodes: Any, density: Density) -> Pending | _Joined:
    """Start computing W2 between the nodes and the density: result() is (w, estimate) as
    `metrics.wasserstein` gives. From SPLIT_MIN nodes a sliced estimate's directions are
    split between the two helpers (seconds at K = 10^6), with the same number."""
    from toylab.metrics import SLICED_SEED, is_exact, sliced_projections, wasserstein_arrays

    x = np.array(as_numpy(nodes), dtype=np.float64)  # a copy: the nodes move on meanwhile
    q = density.array
    if len(_helpers) < len(LANES) or x.shape[0] < SPLIT_MIN or is_exact(x.shape[0], q):
        return submit_call(wasserstein_arrays, x, q)
    p = sliced_projections(x.shape[0])
    half = p // 2
    parts = [
        submit_call(_sliced_part, x, q, 0, half, p, SLICED_SEED, lane=METRICS),
        submit_call(_sliced_part, x, q, half, p, p, SLICED_SEED, lane=PICTURES),
    ]
    return _Joined(parts, p)
