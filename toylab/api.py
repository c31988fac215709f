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
from pathlib import Path
from typing import Any

import numpy as np

import densities
from toylab import budget, params
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.metrics import evaluate as _evaluate
from toylab.metrics import node_histogram
from toylab.run import Run, set_threads
from toylab.store.frames import Frames
from toylab.store.rundir import RunRecord
from toylab.store.rundir import load_run as _load_record
from toylab.viz.plot import FinalFit, Pictures


@dataclass
class FitResult(Pictures):
    """What `fit` returns: final nodes per method, metrics.json's content, the KL log, frames.

    `plot()` draws the final fit as a matplotlib Figure; `save_gif(path)` writes the GIF.
    """

    config: RunConfig
    nodes: dict[str, np.ndarray]
    metrics: dict[str, Any]
    kl: list[dict[str, Any]]
    frames: Frames
    complete: bool
    run: Run

    def final_fit(self) -> FinalFit:
        """The last target's fit as it stands (for plot())."""
        density = self.run.density
        methods = list(self.nodes)
        result = self.metrics["targets"][-1] if self.metrics["targets"] else {}
        kls = [result.get("methods", {}).get(m, {}).get("kl", float("nan")) for m in methods]
        return FinalFit(
            density.name,
            density.array,
            self.config.nodes,
            methods,
            np.stack([node_histogram(self.nodes[m], density.bins) for m in methods]),
            kls,
            result.get("real_samples", {}).get("kl"),
        )

    def gif_frames(self) -> tuple[Frames, list[float] | None]:
        run = self.run
        return self.frames, [
            run.real.get(t, {}).get("kl", float("nan")) for t in range(len(run.targets))
        ]


class LoadedRun(RunRecord, Pictures):
    """A run directory read back (`toylab.load_run`): config, metrics, nodes, frames(), and
    `plot()` / `save_gif(path)` as on a FitResult."""

    def final_fit(self) -> FinalFit:
        """The fit of the run's last scored target (an interrupted run: where it stopped)."""
        targets = self.metrics.get("targets") or []
        if not targets or not self.nodes:
            raise ToylabError(f"{self.path} has no scored fit to plot yet")
        t = len(targets) - 1
        result = targets[t]
        frames = self.frames()
        array = frames.target_arrays[min(t, len(frames.target_arrays) - 1)]
        bins = array.shape[0]
        methods = [m for m in result.get("methods", {}) if m in self.nodes] or list(self.nodes)
        return FinalFit(
            result.get("target", self.config.targets[-1]),
            array,
            self.config.nodes,
            methods,
            np.stack([node_histogram(self.nodes[m], bins) for m in methods]),
            [result.get("methods", {}).get(m, {}).get("kl", float("nan")) for m in methods],
            result.get("real_samples", {}).get("kl"),
        )

    def gif_frames(self) -> tuple[Frames, list[float] | None]:
        real = [
            float(t.get("real_samples", {}).get("kl", float("nan")))
            for t in self.metrics.get("targets", [])
        ]
        return self.frames(), real


def load_run(path: str | Path) -> LoadedRun:
    """Read a run directory written by `toylab run`: config, metrics, final nodes, frames(),
    plot() and save_gif(path)."""
    record = _load_record(path)
    return LoadedRun(record.path, record.config, record.metrics, record.nodes)


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
    names = (
        densities.parse_names(target)
        if isinstance(target, str)
        else [densities.target(n).name for n in target]
    )
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
