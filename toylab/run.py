"""A run in memory: the targets, the methods side by side, the shared data stream, the log.

`Run.advance` steps every method on the same batches until the sequence of targets is done or
`should_stop()` says stop; it stops only between steps, so its state is always consistent and
`state_dict` / `load_state_dict` give a bit-exact resume. Nothing here touches disk.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import densities
from toylab import compiled, streams, transport
from toylab.compiled import warm_up_kernels
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.fitting.methods import Method, Step, make_method
from toylab.kl_floors import run_floors
from toylab.lazy import as_numpy, is_torch, torch, when_imported
from toylab.metrics import (
    METRIC_NAMES,
    evaluate_histogram,
    node_histogram,
    real_samples,
)
from toylab.store.frames import Frames

CHECKPOINT_FORMAT = 1
DEFAULT_THREADS = 1  # measured: the per-step work is tiny, extra threads only add overhead
CHUNK_POINTS = 1 << 16  # data points drawn per sampling call (batches for many steps)

# -- divergence guard (issue 12): a fit whose nodes leave any sensible range stops with one line
DIVERGED_AT = 1e6  # |coordinate| beyond which a node has diverged (targets live in [-1, 1]^2)
CHECK_EVERY = 128  # steps between checks; the first CHECK_FIRST steps are all checked
CHECK_FIRST = 32


def check_diverged(name: str, positions: Any, where: str, lr: float) -> None:
    """Raise a one-line ToylabError when a method's nodes are non-finite or absurdly far.
    Two reductions, no temporaries (NaN propagates through max and min)."""
    if is_torch(positions):
        peak = float(torch.maximum(positions.max(), -positions.min()))
    else:
        peak = float(max(positions.max(), -positions.min()))
    if math.isfinite(peak) and peak <= DIVERGED_AT:
        return
    why = (
        "node coordinates became NaN or infinite"
        if not math.isfinite(peak)
        else f"a node coordinate reached {peak:.3g} (targets lie in [-1, 1])"
    )
    raise ToylabError(f"method {name} diverged {where}: {why}; lower --lr (it is {lr:g})")


def build_targets(config: RunConfig) -> list[densities.Density]:
    """The Density of every target in the sequence, with the options each one takes."""
    return [
        densities.get(name, config.bins, **densities.params_for(name, config.target_options))
        for name in config.targets
    ]


def set_threads(threads: int | None) -> int:
    """Apply the thread count to torch and the compiled kernels (None = the measured
    default); return it. torch is not imported for it: the count applies when it loads."""
    n = DEFAULT_THREADS if threads is None else threads
    when_imported(torch, lambda module: module.set_num_threads(n))
    compiled.set_threads(n)
    return n


class Run:
    """Fits every method of `config` to its target sequence; see the module docstring."""

    def __init__(self, config: RunConfig, targets: list[densities.Density] | None = None):
        self.config = config if getattr(config, "checked", False) else config.validate()
        self.targets = targets if targets is not None else build_targets(config)
        self.on_cpu = config.device == "cpu"  # numpy nodes; torch is never imported for them
        self.device = None if self.on_cpu else torch.device(config.device)
        init = streams.initial_nodes(config.seed, config.nodes)
        if not self.on_cpu:
            init = torch.from_numpy(init).to(self.device)
        settings = config.settings()
        if self.on_cpu:
            # compile (or load) the numba kernels this run uses now, not inside the timed steps
            warm_up_kernels(tuple(config.methods), config.distance, config.max_splits)
        self.methods: dict[str, Method] = {
            name: make_method(name, init, settings, streams.generator(config.seed, "method", name))
            for name in config.methods
        }
        self.data_rng = streams.generator(config.seed, "data")
        self._chunk: np.ndarray | None = None  # batches drawn ahead, (n, batch, 2)
        self._chunk_start = 0  # step (within the target) of the chunk's first batch
        self._chunk_rng_state = self.data_rng.bit_generator.state
        self._target_rng_state: dict | None = None  # data stream at the target's start (floors)
        self.frame_steps = set(config.frame_steps())
        self.eval_every = config.eval_every
        self.target_pos = 0  # index of the current target in the sequence
        self.step = 0  # steps done on the current target
        self.global_step = 0
        self.target_begun = False
        self.seconds = dict.fromkeys(config.methods, 0.0)
        self.real: dict[int, dict[str, float]] = {}
        self._results: list[dict[str, Any]] = []
        self._kl_rows: list[dict[str, Any]] = []
        self._pending: list[tuple] = []  # finished targets whose W2 / floors are on their way
        self._floors: transport.Pending | None = None  # the current target's, if submitted
        self._settle_lock = threading.Lock()
        self.frames = Frames(
            methods=list(config.methods),
            target_names=list(config.targets),
            target_arrays=[t.array for t in self.targets],
            nodes=config.nodes,
            steps_per_target=config.steps,
        )
        self.latest: dict[str, dict[str, float]] = {}
        self._fit_key: tuple[int, int] | None = None  # see current_fit
        self._fit: tuple[dict[str, np.ndarray], dict[str, dict[str, float]]] = ({}, {})

    # -- progress -------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.config.steps * len(self.targets)

    @property
    def done(self) -> bool:
        return self.target_pos >= len(self.targets)

    @property
    def density(self) -> densities.Density:
        return self.targets[min(self.target_pos, len(self.targets) - 1)]

    def positions(self) -> dict[str, np.ndarray]:
        """Current node positions of every method as float64 numpy arrays."""
        return {name: np.array(as_numpy(m.positions)) for name, m in self.methods.items()}

    # -- the loop -------------------------------------------------------------------------
    def advance(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        on_step: Callable[[Run, dict[str, Step]], None] | None = None,
        *,
        detail: bool = False,
        on_target_begin: Callable[[Run], None] | None = None,
    ) -> bool:
        """Step until every target is done (True) or should_stop() is true between steps (False).

        on_step(run, steps) is called after every step with each method's `Step` (its matches
        and splits; with detail=True also the batch and the positions and counts before the
        step, which costs a copy a step). on_target_begin(run) is called when a target starts,
        after the methods have begun it and before its first step.
        """
        cfg = self.config
        while not self.done:
            if not self.target_begun:
                self._begin_target()
                if on_target_begin is not None:
                    on_target_begin(self)
            density = self.density
            while self.step < cfg.steps:
                if should_stop():
                    return False
                points = self._next_batch(density)
                steps = {}
                for name, method in self.methods.items():
                    t0 = time.perf_counter()
                    steps[name] = method.step(points, detail)
                    self.seconds[name] += time.perf_counter() - t0
                self.step += 1
                self.global_step += 1
                self._log_step()
                if self.global_step <= CHECK_FIRST or self.global_step % CHECK_EVERY == 0:
                    self._check_diverged()
                if on_step is not None:
                    on_step(self, steps)
            self._finish_target()
        return True

    def _check_diverged(self) -> None:
        where = f"at step {self.step} of target {self.density.name}"
        for name, method in self.methods.items():
            work = getattr(method, "pos", method.positions)  # the numpy view on CPU
            check_diverged(name, work, where, self.config.learning_rate)

    def _next_batch(self, density: densities.Density):
        """The batch of the current step. Batches are drawn CHUNK_POINTS points at a time (one
        sampling call instead of one per step); a chunk never spans two targets, and its start
        is part of the checkpoint, so a resume draws the very same batches."""
        offset = self.step - self._chunk_start
        if self._chunk is None or not 0 <= offset < self._chunk.shape[0]:
            self._draw_chunk(density, self.step)
            offset = 0
        batch = self._chunk[offset]
        return batch if self.on_cpu else torch.from_numpy(batch).to(self.device)

    def _draw_chunk(self, density: densities.Density, start: int) -> None:
        cfg = self.config
        # A fixed chunk length (not cut at the target's last step) keeps a short run's batches a
        # prefix of a longer run's: --steps 10000 and --steps 20000 agree on the first 10,000.
        n = max(1, CHUNK_POINTS // cfg.batch)
        self._chunk_rng_state = self.data_rng.bit_generator.state
        self._chunk_start = start
        self._chunk = density.sample(n * cfg.batch, self.data_rng).reshape(n, cfg.batch, 2)

    def _begin_target(self) -> None:
        cfg = self.config
        for method in self.methods.values():
            method.begin_target(cfg.steps, self.density)
        rng = streams.generator(cfg.seed, "eval", self.target_pos)
        self.real[self.target_pos] = real_samples(self.density, cfg.nodes, rng)
        self.seconds = dict.fromkeys(cfg.methods, 0.0)
        self.target_begun = True
        self._chunk = None
        self._target_rng_state = self.data_rng.bit_generator.state
        self._floors = self._submit_floors()  # all it needs is known now: off the target's end
        self._log_step()

    def _log_step(self) -> None:
        """Record a frame and/or a KL row when this step is scheduled for one."""
        is_frame = self.step in self.frame_steps
        is_eval = self.eval_every is not None and self.step % self.eval_every == 0
        if not (is_frame or is_eval):
            return
        hists, scores = self.current_fit()
        self.latest = scores
        for name, s in scores.items():
            self._kl_rows.append(
                {"step": self.global_step, "target": self.density.name, "method": name}
                | {k: s[k] for k in METRIC_NAMES}
            )
        if is_frame:
            self.frames.add(
                np.stack([hists[n] for n in self.config.methods]),
                self.target_pos,
                self.step,
                self.global_step,
                np.array([scores[n]["kl"] for n in self.config.methods]),
            )

    def _finish_target(self) -> None:
        """Score the target as it ends. W2 is handed to the helper process (transport), like
        the floors when the target began, and both are filled in by `settle` when the results
        are read: the run goes on (the next target, the save, the pictures) meanwhile."""
        w2 = {name: transport.submit(m.positions, self.density) for name, m in self.methods.items()}
        floors = self._floors if self._floors is not None else self._submit_floors()
        self._floors = None
        result = self.target_result(final=True)
        last_rows = []  # the target's last KL rows, if one was logged: they get W2 too
        for row in reversed(self._kl_rows):
            if row["step"] != self.global_step or row["target"] != self.density.name:
                break
            last_rows.append(row)
        self._results.append(result)
        self._pending.append((result, last_rows, floors, w2))
        self.target_pos += 1
        self.step = 0
        self.target_begun = False

    def settle(self) -> None:
        """Wait for the target-end metrics still being computed (floors, W2) and put them in
        their places (in the order the keys always had). Reading `results`, `kl_rows`,
        `metrics()` or `state_dict()` settles first, so nobody sees a result without them."""
        with self._settle_lock:
            while self._pending:
                result, last_rows, floors, w2 = self._pending[0]
                result["floors"] = floors.result()
                kind = None
                for name, job in w2.items():
                    w, kind = job.result()
                    result["methods"][name]["wasserstein"] = w
                    for row in last_rows:
                        if row["method"] == name:
                            row["wasserstein"] = w
                result["wasserstein_estimate"] = kind
                self._pending.pop(0)

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every finished target's metrics (settled)."""
        self.settle()
        return self._results

    @property
    def kl_rows(self) -> list[dict[str, Any]]:
        """The KL log: one row per method per logged step (settled)."""
        self.settle()
        return self._kl_rows

    def current_fit(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
        """Every method's node histogram and scores on the current target, as the nodes stand
        now. Computed once per step and target: the log, metrics and pictures share them."""
        key = (self.global_step, min(self.target_pos, len(self.targets) - 1))
        if self._fit_key != key:
            density = self.density
            hists = {
                name: node_histogram(m.positions, density.bins) for name, m in self.methods.items()
            }
            scores = {name: evaluate_histogram(h, density) for name, h in hists.items()}
            self._fit, self._fit_key = (hists, scores), key
        return self._fit

    def _submit_floors(self) -> transport.Pending:
        """The target's KL floors for K nodes (toylab.floors): allocation, and data budget from
        the very points this run drew (redrawn, in the helper process when there is one)."""
        cfg = self.config
        return transport.submit_call(
            run_floors,
            self.density,
            cfg.nodes,
            self._target_rng_state,
            cfg.steps,
            cfg.batch,
            CHUNK_POINTS,
        )

    def target_result(self, final: bool) -> dict[str, Any]:
        """Metrics of the current target: real samples and every method as it stands now."""
        density = self.density
        methods = {}
        for name, scores in self.current_fit()[1].items():
            methods[name] = scores | {"seconds": round(self.seconds[name], 4), "steps": self.step}
            extra = getattr(self.methods[name], "extra_metrics", None)  # tree: KL on 10^6 samples
            if extra is not None:
                methods[name] |= extra(density)
        return {
            "target": density.name,
            "complete": final,
            "real_samples": self.real.get(self.target_pos) or {},
            "methods": methods,
        }

    def metrics(self) -> dict[str, Any]:
        """metrics.json: every finished target, plus the current one if it was interrupted."""
        targets = list(self.results)
        if not self.done and self.target_begun:
            targets.append(self.target_result(final=False))
        return {"targets": targets}

    # -- checkpoint -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a bit-exact resume needs (frames are saved beside it in frames.npz)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "target_pos": self.target_pos,
            "step": self.step,
            "global_step": self.global_step,
            "target_begun": self.target_begun,
            "data_rng": self._chunk_rng_state
            if self._chunk is not None
            else self.data_rng.bit_generator.state,
            "chunk_start": self._chunk_start if self._chunk is not None else -1,
            "target_data_rng": self._target_rng_state,
            "methods": {name: m.state_dict() for name, m in self.methods.items()},
            "seconds": dict(self.seconds),
            "real": {int(k): v for k, v in self.real.items()},
            "results": self.results,
            "kl_rows": self.kl_rows,
        }

    def load_state_dict(self, state: dict[str, Any], frames: Frames | None = None) -> None:
        """Restore a state saved by `state_dict` (and the frames recorded up to it)."""
        self.target_pos = int(state["target_pos"])
        self.step = int(state["step"])
        self.global_step = int(state["global_step"])
        self.target_begun = bool(state["target_begun"])
        self.data_rng.bit_generator.state = state["data_rng"]
        self._target_rng_state = state.get("target_data_rng")
        self._chunk = None
        if int(state["chunk_start"]) >= 0 and not self.done:  # redraw the chunk in progress
            self._draw_chunk(self.density, int(state["chunk_start"]))
        for name, m in self.methods.items():
            m.load_state_dict(state["methods"][name])
        self.seconds = dict(state["seconds"])
        self.real = {int(k): v for k, v in state["real"].items()}
        self._pending = []
        self._floors = None
        self._results = list(state["results"])
        self._kl_rows = list(state["kl_rows"])
        if frames is not None:
            self.frames = frames
