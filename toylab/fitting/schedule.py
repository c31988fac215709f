"""The inverse-temperature schedule of soft selection: beta from start to end over a target.

    linear     beta(t) = b0 + (b1 - b0) t / T
    geometric  beta(t) = b0 (b1 / b0) ^ (t / T)          (b0 > 0; equal steps in log beta)
    cosine     beta(t) = b1 + (b0 - b1) (1 + cos(pi t / T)) / 2

t counts the steps done on the current target, T its --steps. Each is an annealing schedule
(beta never decreases), so end >= start >= 0 is required.
"""

from __future__ import annotations

import math

from toylab.errors import ToylabError
from toylab.params import DEFAULT_BETA_END, DEFAULT_BETA_START, DEFAULT_SCHEDULE, SCHEDULES

__all__ = [
    "DEFAULT_BETA_END",
    "DEFAULT_BETA_START",
    "DEFAULT_SCHEDULE",
    "SCHEDULES",
    "beta_at",
    "check_schedule",
]


def check_schedule(shape: str, start: float, end: float) -> None:
    """One-line ToylabError for an unknown shape or beta values it cannot anneal between."""
    if shape not in SCHEDULES:
        raise ToylabError(f"unknown --beta-schedule {shape!r}; choose from: {', '.join(SCHEDULES)}")
    for flag, value in (("--beta-start", start), ("--beta-end", end)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ToylabError(f"{flag} must be a finite number >= 0, got {value!r}")
    if end < start:
        raise ToylabError(
            f"--beta-end {end} is below --beta-start {start}; an annealing schedule needs end >= start"
        )
    if shape == "geometric" and start <= 0:
        raise ToylabError(f"--beta-schedule geometric needs --beta-start > 0, got {start}")


def beta_at(shape: str, start: float, end: float, step: int, steps: int) -> float:
    """beta after `step` of `steps` steps on the current target."""
    f = min(max(step / steps, 0.0), 1.0) if steps > 0 else 1.0
    if shape == "linear":
        return start + (end - start) * f
    if shape == "geometric":
        return start * (end / start) ** f
    return end + (start - end) * (1.0 + math.cos(math.pi * f)) / 2.0
