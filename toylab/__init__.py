"""toylab: fit flat Discrete Distribution Networks to 2D targets and watch them learn.

Library API: `fit` (train in memory), `evaluate` (score nodes against a density),
`load_run` (read a run directory written by `toylab run`).

The names are loaded on first use (PEP 562), so `import toylab` and the `toylab` command's
--help and argument errors do not pay for numba, torch or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "FitResult": "toylab.api",
    "evaluate": "toylab.api",
    "fit": "toylab.api",
    "RunConfig": "toylab.config",
    "load_run": "toylab.store.rundir",
}

__all__ = ["FitResult", "RunConfig", "evaluate", "fit", "load_run"]

if TYPE_CHECKING:
    from toylab.api import FitResult, evaluate, fit
    from toylab.config import RunConfig
    from toylab.store.rundir import load_run


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later reads skip this function
        return value
    raise AttributeError(f"module 'toylab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
