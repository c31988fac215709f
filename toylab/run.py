"""A run in memory: the targets, the methods side by side, the shared data stream, the log.

`Run.advance` steps every method on the same batches until the sequence of targets is done or
`should_stop()` says stop; it stops only between steps, so its state is always consistent and
`state_dict` / `load_state_dict` give a bit-exact resume. Nothing here touches disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import densities
from toylab import streams
from toylab.config import RunConfig
from toylab.fitting.compiled import warm_up_kernels
from toylab.fitting.methods import GradientDescent, make_method
from toylab.metrics import METRIC_NAMES, evaluate_histogram, node_histogram, real_samples
from toylab.store.frames import Frames

CHECKPOINT_FORMAT = 1
CHUNK_POINTS = 1 << 16  # data points drawn per sampling call (batches for many steps)


def build_targets(config: RunConfig) -> list[densities.Density]:
    """The Density of every target in the sequence, with the options each one takes."""
    return [
        densities.get(name, config.bins, **densities.params_for(name, config.target_options))
        for name in config.targets
    ]


class Run:
    """Fits every method of `config` to its target sequence; see the module docstring."""

    def __init__(self, config: RunConfig, targets: list[densities.Density] | None = None):
        self.config = config.validate()
        self.targets = targets if targets is not None else build_targets(config)
        self.device = torch.device(config.device)
        init = torch.from_numpy(streams.initial_nodes(config.seed, config.nodes)).to(self.device)
        settings = config.settings()
        if self.device.type == "cpu":
            warm_up_kernels()  # compile (or load) numba kernels now, not inside the timed steps
        self.methods: dict[str, GradientDescent] = {
            name: make_method(name, init, settings, streams.generator(config.seed, "method", name))
            for name in config.methods
        }
        self.data_rng = streams.generator(config.seed, "data")
        self._chunk: np.ndarray | None = None  # batches drawn ahead, (n, batch, 2)
        self._chunk_start = 0  # step (within the target) of the chunk's first batch
        self._chunk_rng_state = self.data_rng.bit_generator.state
        self.frame_steps = set(config.frame_steps())
        self.eval_every = config.eval_every
        self.target_pos = 0  # index of the current target in the sequence
        self.step = 0  # steps done on the current target
        self.global_step = 0
        self.target_begun = False
        self.seconds = dict.fromkeys(config.methods, 0.0)
        self.real: dict[int, dict[str, float]] = {}
        self.results: list[dict[str, Any]] = []
        self.kl_rows: list[dict[str, Any]] = []
        self.frames = Frames(
            methods=list(config.methods),
            target_names=list(config.targets),
            target_arrays=[t.array for t in self.targets],
            nodes=config.nodes,
            steps_per_target=config.steps,
        )
        self.latest: dict[str, dict[str, float]] = {}

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
        return {name: m.positions.detach().cpu().numpy().copy() for name, m in self.methods.items()}

    # -- the loop -------------------------------------------------------------------------
    def advance(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        on_step: Callable[[Run], None] | None = None,
    ) -> bool:
        """Step until every target is done (True) or should_stop() is true between steps (False)."""
        cfg = self.config
        while not self.done:
            if not self.target_begun:
                self._begin_target()
            density = self.density
            while self.step < cfg.steps:
                if should_stop():
                    return False
                points = self._next_batch(density)
                for name, method in self.methods.items():
                    t0 = time.perf_counter()
                    method.step(points)
                    self.seconds[name] += time.perf_counter() - t0
                self.step += 1
                self.global_step += 1
                self._log_step()
                if on_step is not None:
                    on_step(self)
            self._finish_target()
        return True

    def _next_batch(self, density: densities.Density):
        """The batch of the current step. Batches are drawn CHUNK_POINTS points at a time (one
        sampling call instead of one per step); a chunk never spans two targets, and its start
        is part of the checkpoint, so a resume draws the very same batches."""
        offset = self.step - self._chunk_start
        if self._chunk is None or not 0 <= offset < self._chunk.shape[0]:
            self._draw_chunk(density, self.step)
            offset = 0
        batch = self._chunk[offset]
        return batch if self.device.type == "cpu" else torch.from_numpy(batch).to(self.device)

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
        self._log_step()

    def _log_step(self) -> None:
        """Record a frame and/or a KL row when this step is scheduled for one."""
        is_frame = self.step in self.frame_steps
        is_eval = self.eval_every is not None and self.step % self.eval_every == 0
        if not (is_frame or is_eval):
            return
        hists = {
            name: node_histogram(m.positions, self.density.bins) for name, m in self.methods.items()
        }
        scores = {name: evaluate_histogram(h, self.density) for name, h in hists.items()}
        self.latest = scores
        for name, s in scores.items():
            self.kl_rows.append(
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
        self.results.append(self.target_result(final=True))
        self.target_pos += 1
        self.step = 0
        self.target_begun = False

    def target_result(self, final: bool) -> dict[str, Any]:
        """Metrics of the current target: real samples and every method as it stands now."""
        density = self.density
        methods = {}
        for name, method in self.methods.items():
            scores = evaluate_histogram(node_histogram(method.positions, density.bins), density)
            methods[name] = scores | {"seconds": round(self.seconds[name], 4), "steps": self.step}
            extra = getattr(method, "extra_metrics", None)  # e.g. tree: KL on 10^6 samples
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
        self._chunk = None
        if int(state["chunk_start"]) >= 0 and not self.done:  # redraw the chunk in progress
            self._draw_chunk(self.density, int(state["chunk_start"]))
        for name, m in self.methods.items():
            m.load_state_dict(state["methods"][name])
        self.seconds = dict(state["seconds"])
        self.real = {int(k): v for k, v in state["real"].items()}
        self.results = list(state["results"])
        self.kl_rows = list(state["kl_rows"])
        if frames is not None:
            self.frames = frames
