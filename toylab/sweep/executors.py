"""Where cells run: a local process pool, or a Ray cluster.

Both take cell payloads (plain dicts) and hand back, as cells finish, either the worker's
result (metrics plus the run directory as zip bytes) or the exception it raised. Results
travel as data, so Ray workers on other machines need no disk shared with the driver.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from toylab.errors import ToylabError
from toylab.sweep.cell import init_worker, run_cell, single_thread_env

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs cell payloads; `wait` yields (token, result or exception) as cells finish."""

    workers: int

    def submit(self, payload: dict[str, Any]) -> Any: ...

    def wait(self, pending: list[Any]) -> list[tuple[Any, Any]]: ...

    def close(self, cancel: bool = False) -> None: ...


@contextmanager
def _env(extra: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the processes started inside (restored afterwards)."""
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalExecutor:
    """A process pool over this machine's cores. Workers start with the spawn method (no
    forked torch / numba thread pools) and 1 thread each; the pool is reused across cells, so
    start-up (imports, numba cache) is paid once per worker, not per cell."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        ctx = multiprocessing.get_context("spawn")
        # Spawn-method pools start workers on demand, as cells are submitted: keep the
        # single-thread environment set while the pool lives, so every worker imports numpy,
        # torch and numba under it (the driver's own pools are already sized and unaffected).
        self._env = _env(single_thread_env())
        self._env.__enter__()
        self._ctx = ctx
        self.pool = self._new_pool()
        self._pool_of: dict[cf.Future, cf.ProcessPoolExecutor] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=self._ctx, initializer=init_worker
        )

    def submit(self, payload: dict[str, Any]) -> cf.Future:
        future = self.pool.submit(run_cell, payload)
        self._pool_of[future] = self.pool
        return future

    def wait(self, pending: list[cf.Future]) -> list[tuple[cf.Future, Any]]:
        done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        out = []
        for f in done:
            pool = self._pool_of.pop(f, None)
            try:
                out.append((f, f.result()))
            except cf.process.BrokenProcessPool:
                # A worker was killed (out of memory?): every cell in flight on that pool is
                # lost. Report them as failed attempts (the runner retries once) on a new pool.
                if pool is self.pool:
                    self.pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = self._new_pool()
                out.append((f, RuntimeError("a worker process died (killed, or out of memory)")))
            except Exception as err:  # the cell's own error, reported per cell
                out.append((f, err))
        return out

    def close(self, cancel: bool = False) -> None:
        if cancel:
            # Stop running cells now (Ctrl-C): their work is lost, finished cells are saved.
            processes = list(getattr(self.pool, "_processes", {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                p.terminate()
            for p in processes:
                p.join(timeout=5)
        else:
            self.pool.shutdown(wait=True)
        self._env.__exit__(None, None, None)


class RayExecutor:
    """Cells as Ray tasks (1 CPU each) on the cluster at `address`, or on a local Ray started
    here when no address is given. Every node needs toylab and its dependencies installed."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ToylabError(
                "--executor ray needs Ray: pip install 'toylab[ray]' (or pip install ray)"
            ) from None
        self.ray = ray
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": "WARNING",
            "runtime_env": {"env_vars": single_thread_env()},
        }
        if address:
            _check_reachable(address)
            kwargs["address"] = address
        else:  # "local": a private Ray, never a cluster some `ray start` left on this machine
            kwargs["address"] = "local"
            kwargs["num_cpus"] = workers or os.cpu_count() or 1
            kwargs["include_dashboard"] = False
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"at --address {address}" if address else "locally"
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ToylabError(f"cannot start or reach a Ray cluster {where}: {first}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, cpus) if workers else cpus
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)

    def submit(self, payload: dict[str, Any]) -> Any:
        return self._remote.remote(payload)

    def wait(self, pending: list[Any]) -> list[tuple[Any, Any]]:
        ray = self.ray
        done, _ = ray.wait(pending, num_returns=1)
        out = []
        for ref in done:
            try:
                out.append((ref, ray.get(ref)))
            except ray.exceptions.RayTaskError as err:
                cause = getattr(err, "cause", None)
                out.append((ref, cause if isinstance(cause, BaseException) else err))
            except ray.exceptions.RayError as err:  # a worker or node died
                out.append((ref, err))
        return out

    def close(self, cancel: bool = False) -> None:
        self.ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init would wait for minutes)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", ray://...: leave it to Ray
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ToylabError(
            f"--address {address}: no Ray head answers there ({err.strerror or err}); start one "
            f"with `ray start --head --port={port}`"
        ) from None


def make_executor(kind: str, workers: int | None, address: str | None) -> Executor:
    """The executor named by --executor."""
    if kind == "local":
        if address:
            raise ToylabError("--address is for --executor ray")
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(address, workers)
    raise ToylabError(f"unknown --executor {kind!r}; choose from: {', '.join(EXECUTORS)}")
