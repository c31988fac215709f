"""toylab: fit flat Discrete Distribution Networks to 2D targets and watch them learn.

Library API: `fit` (train in memory), `evaluate` (score nodes against a density),
`load_run` (read a run directory written by `toylab run`).
"""

__version__ = "0.1.0"

from toylab.api import FitResult, evaluate, fit  # noqa: E402
from toylab.config import RunConfig  # noqa: E402
from toylab.floors import floors  # noqa: E402
from toylab.store.rundir import load_run  # noqa: E402

__all__ = ["FitResult", "RunConfig", "evaluate", "fit", "floors", "load_run"]
