"""The library API: fit, evaluate and read runs without the command line.

>>> import toylab
>>> result = toylab.fit("gaussian", nodes=500, steps=300, frames=0)
>>> sorted(result.nodes)
['gd', 'sp']
>>> result.metrics["targets"][0]["methods"]["sp"]["kl"] < result.metrics["targets"][0]["methods"]["gd"]["kl"]
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import densities
from toylab import budget
from toylab.cli.driver import set_threads
from toylab.config import RunConfig
from toylab.metrics import evaluate as _evaluate
from toylab.run import Run
from toylab.store.frames import Frames


@dataclass
class FitResult:
    """What `fit` returns: final nodes per method, metrics.json's content, the KL log, frames."""

    config: RunConfig
    nodes: dict[str, np.ndarray]
    metrics: dict[str, Any]
    kl: list[dict[str, Any]]
    frames: Frames
    complete: bool
    run: Run


def fit(
    target: str | Sequence[str] = "spiral",
    *,
    nodes: int = 10_000,
    methods: str | Sequence[str] = ("gd", "sp"),
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> FitResult:
    """Fit every method to `target` (a name, comma sequence or list) in memory; no files.

    Other keyword arguments are RunConfig fields (steps, batch, seed, lr, ...) or target
    parameters (e.g. text="hi" for words, turns=2 for spiral, path=... for image).
    """
    fields = set(RunConfig.__dataclass_fields__)
    config_args = {k: v for k, v in options.items() if k in fields}
    target_opts = {k: v for k, v in options.items() if k not in fields}
    names = densities.parse_names(target) if isinstance(target, str) else list(target)
    config = RunConfig(
        targets=names,
        nodes=nodes,
        methods=methods if isinstance(methods, str) else list(methods),
        target_options=target_opts,
        **config_args,
    ).validate()
    unknown = [
        k for k in target_opts if not any(k in densities.target(n).defaults() for n in names)
    ]
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}")
    budget.check_threads(config.threads)
    budget.check_run(config)  # issue 12: refuse what would not fit in memory, before work
    config.threads = set_threads(config.threads)
    run = Run(config)
    complete = run.advance(should_stop or (lambda: False))
    return FitResult(
        config, run.positions(), run.metrics(), list(run.kl_rows), run.frames, complete, run
    )


def evaluate(nodes: Any, density: densities.Density) -> dict[str, float]:
    """Score (K, 2) node positions against a density: kl, js, tv, hellinger, stray."""
    return _evaluate(nodes, density)
