"""toylab: fit flat Discrete Distribution Networks to 2D targets and watch them learn.

Library API: `fit` (train in memory), `evaluate` (score nodes against a density),
`load_run` (read a run directory written by `toylab run`).

The names are loaded on first use (PEP 562), so `import toylab` and the `toylab` command's
--help and argument errors do not pay for numba, torch or matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"


if TYPE_CHECKING:
    from toylab.api import FitResult, evaluate, fit, load_run
    from toylab.config import RunConfig
    from toylab.kl_floors import floors

# Loaded on first use (PEP 562), so `import toylab.cli` starts light and the CLI can turn a
# Ctrl-C during the heavy imports (torch, numba) into one line instead of a traceback.
_LAZY = {
    "FitResult": "toylab.api",
    "evaluate": "toylab.api",
    "fit": "toylab.api",
    "RunConfig": "toylab.config",
    "load_run": "toylab.api",
    "floors": "toylab.kl_floors",
}

__all__ = ["FitResult", "RunConfig", "evaluate", "fit", "floors", "load_run"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toylab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
