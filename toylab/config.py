"""The settings of a run: `RunConfig`, whose fields come from the parameter table.

`RunConfig` has one field per entry of `toylab.params.PARAMS` (target options are gathered in
`target_options`, keyed by the keyword of `densities.get`). `validate()` checks every value once
through the table; `settings()` hands the methods the part they use.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, field, fields, make_dataclass
from typing import Any

from toylab import params
from toylab.catalog import DEFAULT_METHODS
from toylab.errors import ToylabError
from toylab.params import Settings

__all__ = ["DEFAULT_METHODS", "RunConfig", "Settings", "check_device"]


def _field(p: params.Param) -> tuple[str, Any, Any]:
    default = p.default
    if isinstance(default, list):
        return (p.name, Any, field(default_factory=lambda d=default: list(d)))
    return (p.name, Any, field(default=default))


class _RunConfigMethods:
    """Behaviour of RunConfig; the fields themselves are made from the parameter table."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a dict (e.g. config.json's "args"), ignoring unknown keys."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: copy.deepcopy(v) for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @property
    def learning_rate(self) -> float:
        lr = self.lr  # type: ignore[attr-defined]
        return params.DEFAULT_LR[self.optimizer] if lr is None else float(lr)  # type: ignore[attr-defined]

    def settings(self) -> Settings:
        """The method hyperparameters of this run (a frozen Settings)."""
        values = {p.name: getattr(self, p.name) for p in params.METHOD_PARAMS}
        values["lr"] = self.learning_rate
        return Settings(**values)

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
        frames, steps = self.frames, self.steps  # type: ignore[attr-defined]
        if frames <= 0:
            return []
        if frames == 1:
            return [steps]
        return sorted({round(f * steps / (frames - 1)) for f in range(frames)})

    def validate(self) -> RunConfig:
        """Check every value through the parameter table (one-line ToylabError naming the bad
        one) and store them in canonical form. Validating twice is a no-op."""
        values = {p.name: getattr(self, p.name) for p in params.CONFIG_PARAMS}
        for name, value in params.check_all(values).items():
            setattr(self, name, value)
        self.target_options = dict(self.target_options or {})  # type: ignore[attr-defined]
        self.device = check_device(self.device)  # type: ignore[attr-defined]
        self.checked = True  # not a field: Run trusts a config validated once
        return self  # type: ignore[return-value]


RunConfig = make_dataclass(
    "RunConfig",
    [
        _field(params.BY_NAME["targets"]),
        ("target_options", dict[str, Any], field(default_factory=dict)),
        *(_field(p) for p in params.CONFIG_PARAMS if p.name != "targets"),
    ],
    bases=(_RunConfigMethods,),
)
RunConfig.__module__ = __name__
RunConfig.__doc__ = (
    "Every argument of a run, one field per entry of toylab.params.PARAMS; `steps` and "
    "`frames` count per target. Build, then `validate()`."
)


def check_device(device: str) -> str:
    """A usable torch device name, or a ToylabError saying what is available."""
    if device == "cpu":
        return "cpu"  # the common case needs no torch import
    import torch

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
