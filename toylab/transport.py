"""Target-end metrics (W2, the KL floors) from a helper process, off the run's path.

`import ot` costs about a second (POT loads scipy.stats, networkx and, if installed, torch for
its backends); W2 and the data floor (which redraws the target's N points) cost seconds at
K = 10^6; a run needs them only at each target's end. `start()` launches one spawned helper
process that imports POT while the fit runs on another core; `submit(nodes, density)` (W2) and
`submit_call(fn, *args)` (any module-level function) hand it a job and return a `Pending` whose
`result()` waits for the answer, so the caller can go on meanwhile (the run settles them when
its results are read). The helper runs the very function a direct call runs, so the numbers
are identical either way. Without a started helper (one core, TOYLAB_W2_HELPER=0, or the helper
died) `result()` computes in this process.

The helper ignores Ctrl-C (the run's own handler decides what an interrupt means), is a daemon
(it ends with the run) and never imports torch (POT's torch backend is disabled in it).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
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

    def send(self, fn: Callable[..., Any], args: tuple) -> int:
        self.conn.send((self.sent, fn, args))
        self.sent += 1
        return self.sent - 1

    def receive(self, job: int) -> Any:
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
    """The helper's loop: import POT, then answer (fn, args) jobs until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["POT_BACKEND_DISABLE_PYTORCH"] = "1"
    import ot  # noqa: F401  (the point of the helper: pay this import off the run's path)

    while True:
        try:
            job, fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((job, True, fn(*args)))
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
    """A job: `result()` gives fn(*args), from the helper or, failing that, computed here."""

    _UNSET = object()

    def __init__(self, fn: Callable[..., Any], args: tuple, helper: _Helper | None, job: int):
        self.fn, self.args, self.helper, self.job = fn, args, helper, job
        self.value: Any = self._UNSET

    def result(self) -> Any:
        if self.value is self._UNSET and self.helper is not None and self.helper is _helper:
            try:
                self.value = self.helper.receive(self.job)
            except (EOFError, OSError, RuntimeError):
                stop()  # a dead or failing helper: this and later jobs run here
        if self.value is self._UNSET:
            self.value = self.fn(*self.args)
        self.args = ()  # the inputs can be large (K = 10^6 nodes): let them go
        return self.value


def submit_call(fn: Callable[..., Any], *args: Any) -> Pending:
    """Start fn(*args) in the helper if one runs (fn a module-level function, args picklable)."""
    helper, job = _helper, -1
    if helper is not None:
        try:
            job = helper.send(fn, args)
        except (OSError, ValueError):
            stop()
            helper = None
    return Pending(fn, args, helper, job)


def submit(nodes: Any, density: Density) -> Pending:
    """Start computing W2 between the nodes and the density: result() is (w, estimate) as
    `metrics.wasserstein` gives."""
    from toylab.metrics import wasserstein_arrays

    x = np.array(as_numpy(nodes), dtype=np.float64)  # a copy: the nodes move on meanwhile
    return submit_call(wasserstein_arrays, x, density.array)
