"""The W2 metric from a helper process, so that a run never waits for POT's import.

`import ot` costs about a second (POT loads scipy.stats, networkx and, if installed, torch for
its backends) and a run needs W2 only at each target's end. `start()` launches one spawned
helper process that imports POT while the fit runs on another core; `submit(nodes, density)`
then hands it the job and returns a `Pending` whose `result()` waits for the answer. The
helper runs `metrics.wasserstein_arrays`, the very function a direct call runs, so the numbers
are identical either way. Without a started helper (one core, TOYLAB_W2_HELPER=0, or the helper
died) `result()` computes in this process.

The helper ignores Ctrl-C (the run's own handler decides what an interrupt means), is a daemon
(it ends with the run) and never imports torch (POT's torch backend is disabled in it).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np

from densities import Density
from toylab.lazy import as_numpy

ENV_SWITCH = "TOYLAB_W2_HELPER"  # "0" keeps W2 in the run's own process

_helper: _Helper | None = None


class _Helper:
    """One spawned process answering W2 jobs in the order they were sent."""

    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True, name="toylab-w2")
        self.process.start()
        child.close()
        self.sent = 0  # jobs sent so far (a job's number is its order)
        self.answers: dict[int, tuple[bool, Any]] = {}  # read, not yet collected

    def send(self, x: np.ndarray, q_grid: np.ndarray) -> int:
        self.conn.send((self.sent, x, q_grid))
        self.sent += 1
        return self.sent - 1

    def receive(self, job: int) -> tuple[float, str]:
        """Job `job`'s answer; answers to other jobs read on the way are kept for them."""
        while job not in self.answers:
            number, ok, value = self.conn.recv()
            self.answers[number] = (ok, value)
        ok, value = self.answers.pop(job)
        if not ok:
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)


def _serve(conn: Any) -> None:
    """The helper's loop: import POT, then answer (nodes, grid) jobs until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["POT_BACKEND_DISABLE_PYTORCH"] = "1"
    import ot  # noqa: F401  (the point of the helper: pay this import off the run's path)

    from toylab.metrics import wasserstein_arrays

    while True:
        try:
            job, x, q_grid = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((job, True, wasserstein_arrays(x, q_grid)))
        except Exception as err:  # the run recomputes in its own process and reports it there
            conn.send((job, False, f"{type(err).__name__}: {err}"))


def start() -> bool:
    """Start the helper once per process (on a machine with at least two cores, unless
    TOYLAB_W2_HELPER=0); True if one is running."""
    global _helper
    if _helper is None and os.environ.get(ENV_SWITCH, "1") != "0" and (os.cpu_count() or 1) > 1:
        try:
            _helper = _Helper()
        except OSError:  # no processes to spare: W2 is computed in this process
            _helper = None
    return _helper is not None


def stop() -> None:
    """End the helper (a later `start` launches a new one)."""
    global _helper
    if _helper is not None:
        _helper.close()
        _helper = None


class Pending:
    """A W2 job: `result()` gives (w, estimate) as `metrics.wasserstein` would."""

    def __init__(self, x: np.ndarray, q_grid: np.ndarray, helper: _Helper | None, job: int):
        self.x, self.q_grid, self.helper, self.job = x, q_grid, helper, job
        self.value: tuple[float, str] | None = None

    def result(self) -> tuple[float, str]:
        if self.value is None:
            if self.helper is not None and self.helper is _helper:
                try:
                    self.value = self.helper.receive(self.job)
                except (EOFError, OSError, RuntimeError):
                    stop()  # a dead or failing helper: this and later jobs run here
            if self.value is None:
                from toylab.metrics import wasserstein_arrays

                self.value = wasserstein_arrays(self.x, self.q_grid)
        return self.value


def submit(nodes: Any, density: Density) -> Pending:
    """Start computing W2 between the nodes and the density (in the helper if one runs)."""
    x = np.asarray(as_numpy(nodes), dtype=np.float64)
    helper, job = _helper, -1
    if helper is not None:
        try:
            job = helper.send(x, density.array)
        except (OSError, ValueError):
            stop()
            helper = None
    return Pending(x, density.array, helper, job)
