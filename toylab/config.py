"""The settings of a run, with defaults and validation shared by the CLI and `toylab.fit`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

import densities
from toylab.errors import ToylabError
from toylab.fitting.methods import METHODS, Settings
from toylab.fitting.nearest import DISTANCES, INDEXES
from toylab.fitting.optim import DEFAULT_LR, OPTIMIZERS
from toylab.fitting.schedule import (
    DEFAULT_BETA_END,
    DEFAULT_BETA_START,
    DEFAULT_SCHEDULE,
    check_schedule,
)

DEFAULT_METHODS = ("gd", "sp")


@dataclass
class RunConfig:
    """Every argument of a run. `steps` counts per target; `frames` per target too."""

    targets: list[str] = field(default_factory=lambda: ["spiral"])
    target_options: dict[str, Any] = field(default_factory=dict)
    bins: int = 100
    nodes: int = 10_000
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    steps: int = 10_000
    batch: int = 10
    distance: str = "l1"
    optimizer: str = "sgd"
    lr: float | None = None
    max_splits: int = 1
    split_ratio: float = 2.0
    prune_ratio: float = 0.5
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    frames: int = 96
    eval_every: int | None = None
    index: str = "auto"
    beta_start: float = DEFAULT_BETA_START
    beta_end: float = DEFAULT_BETA_END
    beta_schedule: str = DEFAULT_SCHEDULE
    # -- hierarchical DDN (--method tree) ----------------------------------------------------
    tree_form: str = "points"
    k: int | None = None  # candidates per layer (None: the form's default)
    layers: int | None = None  # layers L (None: the form's default)
    tree_step: float = 0.3
    tree_step_end: float = 0.006
    tree_ratio: float = 0.45
    tree_lr: float = 2e-3
    tree_eval_samples: int = 1_000_000
    tree_prior: str = "learned"  # learned | uniform
    # -- end of the tree block ---------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a dict (e.g. config.json's "args"), ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)

    def settings(self) -> Settings:
        """The method hyperparameters of this run."""
        return Settings(
            distance=self.distance,
            optimizer=self.optimizer,
            lr=self.learning_rate,
            max_splits=self.max_splits,
            split_ratio=self.split_ratio,
            prune_ratio=self.prune_ratio,
            index=self.index,
            batch=self.batch,
            beta_start=float(self.beta_start),
            beta_end=float(self.beta_end),
            beta_schedule=self.beta_schedule,
            **self.tree_settings(),
        )

    def tree_settings(self) -> dict[str, Any]:
        """The --method tree hyperparameters as Settings keywords."""
        return {
            "tree_form": self.tree_form,
            "tree_k": self.k,
            "tree_layers": self.layers,
            "tree_step": float(self.tree_step),
            "tree_step_end": float(self.tree_step_end),
            "tree_ratio": float(self.tree_ratio),
            "tree_lr": float(self.tree_lr),
            "tree_eval_samples": self.tree_eval_samples,
            "tree_prior": self.tree_prior,
        }

    def frame_steps(self) -> list[int]:
        """Steps (within a target) at which a frame is recorded: evenly from 0 to `steps`."""
        if self.frames <= 0:
            return []
        if self.frames == 1:
            return [self.steps]
        return sorted({round(f * self.steps / (self.frames - 1)) for f in range(self.frames)})

    def validate(self) -> RunConfig:
        """Check every value; raise a one-line ToylabError naming the bad one."""
        if isinstance(self.targets, str):
            self.targets = densities.parse_names(self.targets)
        if not self.targets:
            raise ToylabError("at least one target is needed")
        for name in self.targets:
            densities.target(name)
        if isinstance(self.methods, str):
            self.methods = [m.strip() for m in self.methods.split(",")]
        _check_int("nodes", self.nodes, 2)
        _check_int("steps", self.steps, 1)
        _check_int("batch", self.batch, 1)
        _check_int("max-splits", self.max_splits, 0)
        _check_int("frames", self.frames, 0)
        _check_int("seed", self.seed, 0)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        if self.eval_every is not None:
            _check_int("eval-every", self.eval_every, 1)
        valid = list(METHODS)
        if not self.methods or any(m not in METHODS for m in self.methods):
            bad = next((m for m in self.methods if m not in METHODS), "")
            raise ToylabError(f"unknown method {bad!r}; choose from: {', '.join(valid)}")
        if len(set(self.methods)) != len(self.methods):
            raise ToylabError(f"a method is listed twice in {','.join(self.methods)}")
        _check_choice("distance", self.distance, DISTANCES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("index", self.index, INDEXES)
        if self.lr is not None:
            _check_positive("lr", self.lr)
            if self.optimizer == "sgd" and self.lr > 1:
                raise ToylabError(
                    f"--lr {self.lr} is unstable for sgd (a step of 2 lr overshoots); use 0 < lr <= 1"
                )
        _check_positive("split-ratio", self.split_ratio)
        _check_positive("prune-ratio", self.prune_ratio)
        check_schedule(self.beta_schedule, self.beta_start, self.beta_end)
        check_tree(self)
        densities.grid.check_bins(self.bins)
        self.device = check_device(self.device)
        return self


def check_tree(cfg: RunConfig) -> None:
    """Validate the --method tree options (checked whether or not tree is fitted)."""
    from toylab.fitting.tree.method import FORM_DEFAULTS, FORMS, PRIORS
    from toylab.fitting.tree.table import MAX_LEAVES

    _check_choice("tree-form", cfg.tree_form, FORMS)
    _check_choice("tree-prior", cfg.tree_prior, PRIORS)
    if cfg.k is not None:
        _check_int("k", cfg.k, 2)
    if cfg.layers is not None:
        _check_int("layers", cfg.layers, 1)
    k = cfg.k if cfg.k is not None else FORM_DEFAULTS[cfg.tree_form]["k"]
    layers = cfg.layers if cfg.layers is not None else FORM_DEFAULTS[cfg.tree_form]["layers"]
    if k**layers > MAX_LEAVES:
        raise ToylabError(
            f"--k {k} --layers {layers} gives {k**layers} leaves; at most {MAX_LEAVES} are allowed"
        )
    for flag, value in (
        ("tree-step", cfg.tree_step),
        ("tree-step-end", cfg.tree_step_end),
        ("tree-ratio", cfg.tree_ratio),
        ("tree-lr", cfg.tree_lr),
    ):
        _check_positive(flag, value)
    if cfg.tree_step > 1 or cfg.tree_step_end > 1:
        raise ToylabError(
            f"--tree-step {cfg.tree_step} / --tree-step-end {cfg.tree_step_end}: a step moves a "
            "node that fraction of the way to its points; use 0 < step <= 1"
        )
    _check_int("tree-eval-samples", cfg.tree_eval_samples, 1)


def _check_int(flag: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ToylabError(f"--{flag} must be an integer >= {minimum}, got {value!r}")


def _check_positive(flag: str, value: Any) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ToylabError(f"--{flag} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ToylabError(f"--{flag} must be a positive finite number, got {value!r}")


def _check_choice(flag: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ToylabError(f"unknown --{flag} {value!r}; choose from: {', '.join(choices)}")


def check_device(device: str) -> str:
    """A usable torch device name, or a ToylabError saying what is available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ToylabError(f"unknown --device {device!r}; use cpu or cuda (cuda:N)") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ToylabError(
                f"--device {device}: no CUDA device is available here; use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ToylabError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
        return str(dev)
    raise ToylabError(f"unsupported --device {device!r}; use cpu or cuda (cuda:N)")
