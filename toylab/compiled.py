"""The one numba setup of toylab: lazy compiled kernels, the thread count and the warm-up.

Kernels are declared with `@njit(...)` from here (always `cache=True`: compiled once per
machine, then loaded from numba's cache beside the module). Declaring one costs nothing:
numba (0.4 s to import) is imported, and the kernel compiled or loaded from the cache, on its
first call, so `toylab --help` or a rejected argument never pay for it. On that first call
the kernel's module global is replaced by numba's dispatcher, so later calls from the module
go straight to compiled code, and kernels that call other kernels see real dispatchers.

Without numba (it is a dependency, but a broken install should still give a clear message)
`AVAILABLE` is false and kernels run as plain Python; the callers pick other paths then.
`prange` in a kernel body is numba's parallel range once compiled (plain `range` otherwise).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

AVAILABLE = importlib.util.find_spec("numba") is not None
prange = range  # replaced by numba.prange in a kernel's globals when it is compiled

_threads: int | None = None  # threads for parallel kernels; None = numba's default (all cores)


class Kernel:
    """A numba kernel compiled (or loaded from numba's cache) on its first call."""

    def __init__(self, fn: Callable, options: dict[str, Any]):
        self.py_func = fn
        self.options = options
        self.dispatcher: Any = None
        functools.update_wrapper(self, fn)

    def compile(self) -> Any:
        """The numba dispatcher of this kernel (imports numba on the first call)."""
        if self.dispatcher is None:
            if not AVAILABLE:
                self.dispatcher = self.py_func
                return self.dispatcher
            numba = load_numba()
            scope = self.py_func.__globals__
            for name in self.py_func.__code__.co_names:
                callee = scope.get(name)
                if isinstance(callee, Kernel):  # kernels it calls must be numba's own first
                    scope[name] = callee.compile()  # also where imported from another module
            if "prange" in self.py_func.__code__.co_names:
                scope["prange"] = numba.prange
            if _threads is not None:
                numba.set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))
            self.dispatcher = numba.njit(**self.options)(self.py_func)
            if scope.get(self.py_func.__name__) is self:
                scope[self.py_func.__name__] = self.dispatcher
        return self.dispatcher

    def __call__(self, *args: Any) -> Any:
        return (self.dispatcher or self.compile())(*args)


@functools.cache
def load_numba() -> Any:
    """Import numba and load its compiler's registries, without importing scipy.linalg.

    numba loads its NumPy implementations on its first compile or cache load, and one of
    them (numba.np.arraymath) imports scipy.linalg only to find out whether BLAS is there for
    np.dot / np.vdot: 0.25-0.3 s, a tenth of the default run. toylab's kernels use no BLAS,
    so scipy.linalg is made unimportable for that moment (numba then compiles np.vdot as a
    plain loop, the rest asks for BLAS again when compiled) and importable again after."""
    import numba

    try:
        from numba.core.registry import cpu_target
    except ImportError:  # another numba's layout: it loads its registries itself, as usual
        return numba
    blocked = "scipy.linalg" not in sys.modules
    if blocked:
        sys.modules["scipy.linalg"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        cpu_target.target_context.refresh()
    except Exception:  # a numba that needs scipy.linalg here: load it with it, as usual
        if blocked:
            del sys.modules["scipy.linalg"]
            blocked = False
        cpu_target.target_context.refresh()
    finally:
        if blocked:
            del sys.modules["scipy.linalg"]
    return numba


def njit(parallel: bool = False) -> Callable[[Callable], Kernel]:
    """Declare a lazily compiled kernel: numba.njit(cache=True, nogil=True[, parallel])."""
    options: dict[str, Any] = {"cache": True, "nogil": True}
    if parallel:
        options["parallel"] = True
    return lambda fn: Kernel(fn, options)


def threads() -> int:
    """Threads the parallel kernels use (`--threads`; 1 until set)."""
    return _threads or 1


def set_threads(threads: int) -> None:
    """Threads for parallel kernels (`--threads`); applied now if numba is loaded, else later."""
    global _threads
    _threads = int(threads)
    numba = sys.modules.get("numba")
    if numba is not None and AVAILABLE:
        numba.set_num_threads(min(_threads, numba.config.NUMBA_NUM_THREADS))


# Warm-up functions of the kernel modules: each takes (methods, distance, max_splits) and calls
# its kernels on a tiny problem if the run uses them. Registered by the modules at import time (this
# module imports none of them: they import it).
_WARM_UPS: list[Callable[[tuple[str, ...], str, int], None]] = []


def warms_up(
    fn: Callable[[tuple[str, ...], str, int], None],
) -> Callable[[tuple[str, ...], str, int], None]:
    """Register a kernel module's warm-up (a decorator)."""
    _WARM_UPS.append(fn)
    return fn


@functools.cache
def warm_up_kernels(
    methods: tuple[str, ...] = (), distance: str | None = None, max_splits: int = 4
) -> None:
    """Compile (or load from the cache) the kernels a run will call, on tiny problems.

    Doing it before the timed steps keeps it out of the per-method timings. Each kernel costs
    5-10 ms to load from the cache once numba is set up (~0.5 s for the first; compiling
    takes seconds), so a run passes its methods, distance and --max-splits and loads only what
    it uses (the compiled planner serves 4 or more splits a step); with none given, every
    kernel of every method.
    """
    if not AVAILABLE:
        return
    methods = methods or ("gd", "sp", "soft", "kmeans")
    for dist in (distance,) if distance else ("l1", "l2"):
        for warm_up in _WARM_UPS:
            warm_up(methods, dist, max_splits)
