"""`toylab explain`: the small-K teaching view.

`record` fits a run and records, frame by frame, what every node did (no drawing); `draw`
turns those records into frames with matplotlib; this module checks the arguments, wires the
two together and writes explain.gif, the stills and explain.json.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.run import build_targets
from toylab.store import rundir
from toylab.store.atomic import write_json
from toylab.viz.explain.record import (
    DEFAULT_FPS,
    DEFAULT_NODES,
    DEFAULT_STEPS,
    DEFAULT_TARGET,
    GIF_FILE,
    HOLD_LAST_MS,
    MAX_FRAMES,
    MAX_NODES,
    MIN_WINDOW,
    STILL_END,
    STILL_SPLIT,
    STILL_START,
    SUMMARY_FILE,
    WINDOW_MATCHES,
    ExplainResult,
    FrameView,
    dead_window,
    default_every,
    default_out,
    owner_labels,
    pixel_centres,
    region_boundaries,
    simulate,
)

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_NODES",
    "DEFAULT_STEPS",
    "DEFAULT_TARGET",
    "GIF_FILE",
    "HOLD_LAST_MS",
    "MAX_FRAMES",
    "MAX_NODES",
    "MIN_WINDOW",
    "STILL_END",
    "STILL_SPLIT",
    "STILL_START",
    "SUMMARY_FILE",
    "WINDOW_MATCHES",
    "ExplainResult",
    "FrameView",
    "check_out",
    "claim_out",
    "dead_window",
    "default_every",
    "default_out",
    "explain",
    "make_config",
    "owner_labels",
    "pixel_centres",
    "region_boundaries",
    "simulate",
]

# --------------------------------------------------------------------------- output dir


def _is_explain_dir(path: Path) -> bool:
    return (path / SUMMARY_FILE).is_file() or (path / GIF_FILE).is_file()


def check_out(out: Path, force: bool) -> None:
    """The run directory's rules, for an earlier `toylab explain` output."""
    rundir.check_new_out(out, force, _is_explain_dir, "toylab explain output")


def claim_out(out: Path, force: bool) -> None:
    """Create --out, emptying an earlier explain output under --force."""
    rundir.claim_out(out, force, _is_explain_dir)


# --------------------------------------------------------------------------- the command


def make_config(
    target: str,
    nodes: int,
    methods: Sequence[str],
    steps: int,
    batch: int,
    seed: int,
    distance: str = "l1",
    bins: int | None = None,
    target_options: dict[str, Any] | None = None,
) -> RunConfig:
    """The RunConfig of an explain run (validated; K limited to MAX_NODES)."""
    if "," in str(target):
        raise ToylabError(f"explain shows one target at a time, got {target!r}")
    if isinstance(nodes, int) and not isinstance(nodes, bool) and nodes > MAX_NODES:
        raise ToylabError(
            f"--nodes {nodes} is too many for the teaching view (at most {MAX_NODES}); "
            f"use `toylab run --nodes {nodes}` for large K"
        )
    cfg = RunConfig(
        targets=[target],
        target_options=dict(target_options or {}),
        bins=RunConfig().bins if bins is None else bins,
        nodes=nodes,
        methods=list(methods),
        steps=steps,
        batch=batch,
        distance=distance,
        seed=seed,
        frames=0,  # the explain view records its own frames
    )
    return cfg.validate()


def explain(
    target: str = DEFAULT_TARGET,
    nodes: int = DEFAULT_NODES,
    methods: Sequence[str] = ("gd", "sp"),
    steps: int = DEFAULT_STEPS,
    batch: int = 10,
    seed: int = 0,
    out: Path | None = None,
    *,
    force: bool = False,
    fps: int = DEFAULT_FPS,
    window: int | None = None,
    every: int | None = None,
    distance: str = "l1",
    bins: int | None = None,
    target_options: dict[str, Any] | None = None,
    progress: bool = False,
) -> ExplainResult:
    """Fit, draw and write explain.gif, the stills and explain.json into `out`.

    Every argument is checked (ToylabError / DensityError) before anything is written.
    """
    from toylab.viz import gif

    t0 = time.perf_counter()
    config = make_config(target, nodes, methods, steps, batch, seed, distance, bins, target_options)
    fps = gif.check_fps(fps)
    window = dead_window(nodes, batch) if window is None else window
    every = default_every(steps) if every is None else every
    for flag, value in (("window", window), ("every", every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ToylabError(f"--{flag} must be an integer >= 1, got {value!r}")
    targets = build_targets(config)
    out = Path(out) if out is not None else default_out(target)
    check_out(out, force)

    from toylab.viz.explain import draw as explain_draw  # matplotlib: once the arguments are good

    frames, real_kl = simulate(config, window, every, targets, progress)
    drawer = explain_draw.Drawer(config, targets[0], window, real_kl)
    claim_out(out, force)
    gif_path, stills, drawn = explain_draw.write_outputs(
        drawer, frames, out, fps, HOLD_LAST_MS, progress
    )
    names = list(config.methods)
    result = ExplainResult(
        out=out,
        gif=gif_path,
        stills=stills,
        window=window,
        every=every,
        frame_steps=[f.step for f in frames],
        splits_per_frame={n: [d[n]["splits"] for d in drawn] for n in names},
        dead_per_frame={n: [d[n]["dead"] for d in drawn] for n in names},
        kl={n: [f.methods[n].kl for f in frames] for n in names},
        real_kl=real_kl,
        seconds=round(time.perf_counter() - t0, 3),
    )
    write_json(out / SUMMARY_FILE, summary_payload(result, config, fps, frames))
    return result


def summary_payload(
    result: ExplainResult, config: RunConfig, fps: int, frames: list[FrameView]
) -> dict[str, Any]:
    """explain.json: the settings and, per frame, the KL, dead count and split events."""
    return {
        "config": config.to_dict(),
        "window": result.window,
        "every": result.every,
        "fps": fps,
        "real_samples_kl": result.real_kl,
        "files": [p.name for p in [result.gif, *result.stills]],
        "frames": [
            {
                "step": f.step,
                "methods": {
                    name: {
                        "kl": v.kl,
                        "dead": int(v.dead.sum()),
                        "moved": v.moved,
                        "splits": [
                            {
                                k: val
                                for k, val in asdict(e).items()
                                if k in ("step", "split", "pruned", "reason")
                            }
                            for e in v.splits
                        ],
                    }
                    for name, v in f.methods.items()
                },
            }
            for f in frames
        ],
        "seconds": result.seconds,
    }
