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
from toylab import params
from toylab.config import RunConfig
from toylab.metrics import evaluate as _evaluate
from toylab.run import Run, set_threads
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

    Other keyword arguments are the run parameters of `toylab.params.PARAMS` (steps, batch,
    seed, lr, ..., each checked by the table's rules) or target parameters, by their option
    name (qr_data, spiral_turns, ...) or by the keyword of `densities.get` (text="hi",
    turns=2, path=... for image).
    """
    config_args = {
        k: v for k, v in options.items() if k in params.BY_NAME and not params.BY_NAME[k].keyword
    }
    target_opts = {
        (params.BY_NAME[k].keyword if k in params.BY_NAME else k): v
        for k, v in options.items()
        if k not in config_args
    }
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
    config.threads = set_threads(config.threads)
    run = Run(config)
    complete = run.advance(should_stop or (lambda: False))
    return FitResult(
        config, run.positions(), run.metrics(), list(run.kl_rows), run.frames, complete, run
    )


def evaluate(nodes: Any, density: densities.Density) -> dict[str, float]:
    """Score (K, 2) node positions against a density: kl, js, tv, hellinger, stray."""
    return _evaluate(nodes, density)
