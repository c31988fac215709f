"""The registry of targets: each is a builder that returns non-negative mass on a grid.

A builder is a plain function `build(bins, **params) -> np.ndarray` of shape (bins, bins) in
the density orientation (row 0 = top). `get` validates the name and parameters, calls the
builder and turns its mass into a `Density` (normalised, with the probability floor).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .grid import Density, DensityError, check_bins, normalise

Builder = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Target:
    """A registered target: its builder, one-line summary and per-parameter help."""

    name: str
    build: Builder
    summary: str
    params: dict[str, str] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        """Parameter defaults, read from the builder's signature."""
        sig = inspect.signature(self.build)
        return {
            k: p.default
            for k, p in sig.parameters.items()
            if k != "bins" and p.default is not inspect.Parameter.empty
        }


_REGISTRY: dict[str, Target] = {}


def register(name: str, summary: str, **params: str) -> Callable[[Builder], Builder]:
    """Decorator: register `build` under `name`; keyword arguments document its parameters."""

    def wrap(build: Builder) -> Builder:
        if name in _REGISTRY:
            raise RuntimeError(f"target {name!r} registered twice")
        _REGISTRY[name] = Target(name, build, summary, dict(params))
        return build

    return wrap


def names() -> list[str]:
    """Names of every registered target, in registration order."""
    return list(_REGISTRY)


def canonical_name(name: str) -> str | None:
    """The registered name that `name` means, or None.

    Exact names win; otherwise case, hyphens and spaces are forgiven when that leaves exactly
    one candidate (`Spiral`, `two-moons`, `Two Moons` -> spiral, two_moons). Registered names
    are distinct lowercase identifiers, so the folded form is unambiguous today; the check
    keeps it so if someone registers `Foo` next to `foo`.
    """
    if name in _REGISTRY:
        return name
    folded = _fold(name)
    matches = [n for n in _REGISTRY if _fold(n) == folded]
    return matches[0] if len(matches) == 1 else None


def _fold(name: str) -> str:
    return "_".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())


def suggestion(name: str) -> str | None:
    """The closest registered name to a misspelt one (difflib), or one containing it."""
    folded = _fold(name)
    close = difflib.get_close_matches(folded, names(), n=1, cutoff=0.6)
    if close:
        return close[0]
    containing = [n for n in names() if folded and (folded in n or n in folded)]
    return containing[0] if len(containing) == 1 else None


def target(name: str) -> Target:
    """The registered Target called `name` (case and hyphens forgiven), or a DensityError
    listing the valid names and suggesting the closest one."""
    found = canonical_name(name)
    if found is not None:
        return _REGISTRY[found]
    hint = suggestion(name)
    hint_text = f" (did you mean {hint}?)" if hint else ""
    raise DensityError(f"unknown target {name!r}{hint_text}; choose from: {', '.join(names())}")


def parse_names(text: str) -> list[str]:
    """Split a comma sequence of target names, check each one, and return their registered
    spellings (`Spiral,two-moons` -> ['spiral', 'two_moons'])."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise DensityError(f"empty target name in {text!r}; choose from: {', '.join(names())}")
    return [target(p).name for p in parts]


def get(name: str, bins: int = 100, **params: Any) -> Density:
    """Build the target `name` on a bins x bins grid as a normalised, strictly positive Density."""
    spec = target(name)
    name = spec.name
    bins = check_bins(bins)
    allowed = spec.defaults()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        allowed_text = ", ".join(allowed) if allowed else "none"
        raise DensityError(
            f"target {name!r} takes no parameter {unknown[0]!r}; its parameters: {allowed_text}"
        )
    full = {**allowed, **params}
    mass = spec.build(bins, **full)
    if mass.shape != (bins, bins):
        raise RuntimeError(f"target {name!r} built shape {mass.shape}, expected {(bins, bins)}")
    return Density(name, normalise(mass), params=full)


def params_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of `options` (None = not given) that target `name` takes as keywords."""
    accepted = target(name).defaults()
    return {k: v for k, v in options.items() if k in accepted and v is not None}
