"""One lab session (one browser tab): a setup, the Run it builds, stepping, frames, saving.

The session is plain, synchronous Python; the server drives it from a worker thread. A setup
is what the page's URL holds: a target (a registry name with parameters, or a drawing) and the
run settings. It is checked by `RunConfig.validate`, the same rules as `toylab run`, plus the
lab's caps, and becomes a `toylab.run.Run`: every method side by side from the same initial
nodes on the same data stream, exactly as `toylab run` fits them. Any change of setup builds a
new Run from step 0, so what the page shows is the run `toylab run` would do with those flags.

Frames are binary: a 4-byte little-endian header length, the header as JSON, zero padding to
a multiple of 8, then the arrays the header lists (name, kind, dtype, shape, byte offset).
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

import densities
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.fitting.methods import Step
from toylab.lab import targets as lab_targets
from toylab.lazy import as_numpy
from toylab.metrics import evaluate_histogram, node_histogram
from toylab.run import Run
from toylab.viz.explain.record import ShareWindow, dead_window, owner_labels, split_events

MIN_NODES, MAX_NODES = 16, 100_000
MAX_BINS = 400
MAX_STEPS = 1_000_000
MAX_BATCH = 10_000
OVERLAY_MAX_NODES = 400
"""Up to this K a frame carries the teaching overlays: regions, shares, dead nodes, splits."""
REGION_GRID = 128
"""Pixels per side of the nearest-node label raster sent for the regions overlay."""
MAX_EVENTS = 24  # split events carried by one frame (the most recent ones)

SETTINGS = {
    "nodes": int,
    "methods": list,
    "steps": int,
    "batch": int,
    "lr": float,
    "optimizer": str,
    "distance": str,
    "split_ratio": float,
    "prune_ratio": float,
    "max_splits": int,
    "beta_start": float,
    "beta_end": float,
    "beta_schedule": str,
    "seed": int,
    "bins": int,
}
"""What the page may set: RunConfig fields, under the same names."""

DEFAULT_SETUP: dict[str, Any] = {
    "target": "spiral",
    "params": {},
    "settings": {"nodes": 2000, "methods": ["gd", "sp"], "steps": 10_000, "batch": 10},
}


def _setting(key: str, value: Any) -> Any:
    """A page value checked for its JSON type (the values themselves: RunConfig.validate)."""
    kind = SETTINGS.get(key)
    if kind is None:
        raise ToylabError(f"unknown setting {key!r}; the lab takes: {', '.join(SETTINGS)}")
    if key == "lr" and value is None:
        return None
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToylabError(f"{key} must be an integer, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ToylabError(f"{key} must be a number, got {value!r}")
        value = float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise ToylabError(f"{key} must be a text, got {value!r}")
    elif kind is list and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value
    ):
        raise ToylabError(f"{key} must be a non-empty list of method names, got {value!r}")
    return value


def build_setup(setup: Any) -> tuple[RunConfig, densities.Density, dict[str, Any]]:
    """(validated config, target density, the setup as accepted) from a page setup."""
    if not isinstance(setup, dict):
        raise ToylabError("a setup must be an object with target, params and settings")
    unknown = set(setup) - {"target", "params", "settings", "drawing"}
    if unknown:
        raise ToylabError(f"unknown setup key {sorted(unknown)[0]!r}")
    settings = setup.get("settings") or {}
    if not isinstance(settings, dict):
        raise ToylabError("settings must be an object")
    # The lab's defaults (a smaller K than `toylab run`'s) under what the page set.
    args = DEFAULT_SETUP["settings"] | {k: _setting(k, v) for k, v in settings.items()}
    nodes = args.get("nodes", RunConfig.nodes)
    if not MIN_NODES <= nodes <= MAX_NODES:
        raise ToylabError(
            f"nodes must be from {MIN_NODES} to {MAX_NODES:,} in the lab, got {nodes}"
        )
    if not 1 <= args.get("steps", RunConfig.steps) <= MAX_STEPS:
        raise ToylabError(f"steps must be from 1 to {MAX_STEPS:,} in the lab")
    if args.get("batch", RunConfig.batch) > MAX_BATCH:
        raise ToylabError(f"batch must be at most {MAX_BATCH:,} in the lab")
    if args.get("bins", RunConfig.bins) > MAX_BINS:
        raise ToylabError(f"bins must be at most {MAX_BINS} in the lab")
    name = setup.get("target", "spiral")
    params = setup.get("params") or {}
    config = RunConfig(targets=["image" if name == lab_targets.DRAWING else name], **args)
    config.frames = 96
    config.validate()
    if name == lab_targets.DRAWING:
        density = lab_targets.drawing_density(setup.get("drawing"), config.bins)
        accepted = {"target": name, "drawing": setup.get("drawing")}
    else:
        density = lab_targets.registry_density(name, params, config.bins)
        config.target_options = dict(density.params)
        accepted = {"target": name, "params": params}
    accepted["settings"] = args
    return config, density, accepted


def _frame_bytes(header: dict[str, Any], arrays: list[tuple[dict[str, Any], np.ndarray]]) -> bytes:
    """Pack a header and arrays into one binary message (see the module docstring)."""
    offset = 0
    specs = []
    for spec, a in arrays:
        a = np.ascontiguousarray(a)
        specs.append(spec | {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset})
        offset += a.nbytes
        offset += -offset % 8
    head = json.dumps(header | {"arrays": specs}, allow_nan=False, default=float).encode()
    pad = -(4 + len(head)) % 8
    parts = [len(head).to_bytes(4, "little"), head, b" " * pad]
    for _, a in arrays:
        b = np.ascontiguousarray(a).tobytes()
        parts += [b, b"\0" * (-len(b) % 8)]
    return b"".join(parts)


def unpack(message: bytes) -> tuple[dict[str, Any], dict[tuple[str, str], np.ndarray]]:
    """Read a binary frame back: (header, {(name, kind): array}); the inverse of the packing."""
    n = int.from_bytes(message[:4], "little")
    header = json.loads(message[4 : 4 + n])
    base = 4 + n + (-(4 + n) % 8)
    arrays = {}
    for spec in header["arrays"]:
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"]))
        a = np.frombuffer(message, dtype=dtype, count=count, offset=base + spec["offset"])
        arrays[(spec["name"], spec.get("kind", "data"))] = a.reshape(spec["shape"])
    return header, arrays


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


class Session:
    """A tab's experiment: the Run of its current setup and what the page draws of it."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self.setup: dict[str, Any] | None = None
        self.density: densities.Density | None = None
        self.setup_id = 0
        self.frame_seq = 0
        self.tag: int | None = None

    # -- setup --------------------------------------------------------------------------
    def configure(self, setup: Any, tag: Any = None) -> dict[str, Any]:
        """Validate a setup and build its Run at step 0; returns the accepted setup. `tag`
        (the page's id for this setup, a number) comes back in the target message."""
        config, density, accepted = build_setup(setup)
        self._start(config, density)
        self.tag = tag if isinstance(tag, int) and not isinstance(tag, bool) else None
        self.setup = accepted
        self.setup_id += 1
        return accepted

    def reset(self) -> None:
        """The same setup from step 0 (same seed: the same run again)."""
        if self.run is None:
            raise ToylabError("nothing to reset: no setup yet")
        config = RunConfig.from_dict(self.run.config.to_dict())
        self._start(config, self.density)

    def _start(self, config: RunConfig, density: densities.Density) -> None:
        run = Run(config, targets=[density])
        run.advance(lambda: True)  # begins the target (real samples, k-means seeding), no step
        self.run, self.density = run, density
        k = config.nodes
        self.overlays = k <= OVERLAY_MAX_NODES
        self.window = dead_window(k, config.batch)
        self.last_match = {m: np.zeros(k, dtype=np.int64) for m in run.methods}
        self.split_total = dict.fromkeys(run.methods, 0)
        self.share = {m: ShareWindow(k, self.window) for m in run.methods} if self.overlays else {}
        self.events: dict[str, deque] = {m: deque(maxlen=MAX_EVENTS) for m in run.methods}

    def _on_step(self, run: Run, steps: dict[str, Step]) -> None:
        """Keep what each method's step did (matches, splits) for the counters and overlays."""
        step = run.step
        cfg = run.config
        for name, rec in steps.items():
            matched = np.asarray(as_numpy(rec.matched), dtype=np.int64)
            self.last_match[name][matched] = step
            for _i, j in rec.splits:
                self.last_match[name][j] = step
            self.split_total[name] += len(rec.splits)
            if self.overlays:
                self.share[name].add(step, matched, rec.splits)
                events = split_events(step, rec, cfg.nodes, cfg.split_ratio, cfg.prune_ratio)
                self.events[name].extend(events)

    # -- stepping -----------------------------------------------------------------------
    def advance(self, n: int) -> int:
        """Step every method n times (fewer when the run ends); returns the steps done."""
        run = self._need_run()
        start = run.global_step
        goal = start + max(0, int(n))
        run.advance(lambda: run.global_step >= goal, self._on_step, detail=self.overlays)
        return run.global_step - start

    def advance_for(self, seconds: float, chunk: int = 1) -> int:
        """Step for about `seconds` of wall time (checked every `chunk` steps)."""
        run = self._need_run()
        start = run.global_step
        deadline = time.perf_counter() + seconds
        run.advance(
            lambda: (
                run.global_step > start
                and (run.global_step - start) % chunk == 0
                and time.perf_counter() >= deadline
            ),
            self._on_step,
            detail=self.overlays,
        )
        return run.global_step - start

    @property
    def done(self) -> bool:
        return self.run is not None and self.run.done

    def _need_run(self) -> Run:
        if self.run is None:
            raise ToylabError("no setup yet: choose a target first")
        return self.run

    # -- frames -------------------------------------------------------------------------
    def target_message(self) -> bytes:
        """The target panel's picture: the density array as float32, and the setup."""
        run = self._need_run()
        header = {
            "type": "target",
            "setup_id": self.setup_id,
            "tag": self.tag,
            "setup": self.setup,
            "nodes": run.config.nodes,
            "bins": self.density.bins,
            "methods": list(run.methods),
            "steps": run.config.steps,
            "overlays": self.overlays,
            "window": self.window,
            "real_kl": _finite(run.real[0]["kl"]),
        }
        return _frame_bytes(header, [({"name": "target"}, self.density.array.astype(np.float32))])

    def frame(self, mode: str = "hist") -> bytes:
        """The current state: per method its histogram (or positions), KL, dead and splits."""
        run = self._need_run()
        self.frame_seq += 1
        density = self.density
        step = run.step if not run.done else run.config.steps
        arrays: list[tuple[dict[str, Any], np.ndarray]] = []
        kl, dead, splits, events = {}, {}, {}, {}
        for name, method in run.methods.items():
            pos = as_numpy(method.positions)
            hist = node_histogram(pos, density.bins)
            kl[name] = _finite(evaluate_histogram(hist, density)["kl"])
            if step >= self.window:
                dead[name] = int(np.count_nonzero(step - self.last_match[name] >= self.window))
            else:
                dead[name] = None
            splits[name] = self.split_total[name]
            if mode == "points" or self.overlays:
                arrays.append(({"name": name, "kind": "pos"}, pos.astype(np.float32)))
            if mode != "points":
                arrays.append(
                    ({"name": name, "kind": "hist"}, np.minimum(hist, 65535).astype(np.uint16))
                )
            if self.overlays:
                labels = owner_labels(pos, REGION_GRID, run.config.distance)
                arrays.append(({"name": name, "kind": "labels"}, labels.astype(np.uint16)))
                arrays.append(
                    ({"name": name, "kind": "share"}, self.share[name].share().astype(np.float32))
                )
                arrays.append(
                    ({"name": name, "kind": "dead"}, self.share[name].dead(step).astype(np.uint8))
                )
                events[name] = [
                    {
                        "step": e.step,
                        "split": e.split,
                        "pruned": e.pruned,
                        "from": [float(e.pruned_old[0]), float(e.pruned_old[1])],
                        "to": [float(e.split_from[0]), float(e.split_from[1])],
                        "reason": e.reason,
                    }
                    for e in self.events[name]
                ]
                self.events[name].clear()
        header = {
            "type": "frame",
            "seq": self.frame_seq,
            "setup_id": self.setup_id,
            "step": step,
            "global_step": run.global_step,
            "done": run.done,
            "kl": kl,
            "real_kl": _finite(run.real[0]["kl"]),
            "dead": dead,
            "splits": splits,
            "events": events,
            "time": time.time(),
        }
        return _frame_bytes(header, arrays)

    # -- saving -------------------------------------------------------------------------
    def save(self, root: Path) -> Path:
        """Write a normal run directory under `root` (a folder the server chose)."""
        from toylab.outputs import finish
        from toylab.store import rundir

        run = self._need_run()
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):  # two tabs saving in the same second get -2, -3, ...
            out = root / (f"lab-{stamp}" if n == 1 else f"lab-{stamp}-{n}")
            try:
                out.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise ToylabError(f"cannot find a free run directory name under {root}")
        if self.setup and self.setup["target"] == lab_targets.DRAWING:
            from densities.resample import area_resample, letterbox

            pixels = lab_targets.drawing_pixels(self.setup["drawing"]).astype(np.float64)
            mass = area_resample(letterbox(pixels), self.density.bins)
            np.save(out / "target.npy", mass)
            run.config.target_options = {"path": str((out / "target.npy").resolve())}
        rundir.write_config(out, run.config, extra={"lab": {"setup": self.setup}})
        finish(out, run, {}, quiet=True)
        return out
