"""The fitting methods by name: their titles and where their classes live, imported on demand.

This is the one list of methods. It imports nothing heavy, so the CLI can list and check method
names (and pictures can title their panels) without loading numpy, torch or numba. Adding a
method is one entry here plus its class.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MethodEntry:
    """A method's name (as in --method), its title (as in pictures) and its class's location."""

    name: str
    title: str
    where: str  # "module:Class"
    cls: type[Any] | None = None  # set by `register` for a class defined at run time

    def load(self) -> type[Any]:
        if self.cls is not None:
            return self.cls
        module, _, cls = self.where.partition(":")
        return getattr(importlib.import_module(module), cls)


CATALOG: dict[str, MethodEntry] = {
    e.name: e
    for e in (
        MethodEntry("gd", "gradient descent", "toylab.fitting.methods:GradientDescent"),
        MethodEntry("sp", "Split-and-Prune", "toylab.fitting.methods:SplitAndPrune"),
        MethodEntry("soft", "soft selection", "toylab.fitting.methods:SoftSelection"),
        MethodEntry("kmeans", "online k-means", "toylab.fitting.methods:OnlineKMeans"),
        MethodEntry(
            "bsp", "balanced Split-and-Prune", "toylab.fitting.balanced:BalancedSplitAndPrune"
        ),  # noqa: E501
        MethodEntry(
            "replay", "replay Split-and-Prune", "toylab.fitting.replay:ReplaySplitAndPrune"
        ),
        MethodEntry("tree", "hierarchical DDN", "toylab.fitting.tree.method:TreeMethod"),
    )
}

DEFAULT_METHODS = ("gd", "sp")


def method_names() -> list[str]:
    """Every method name, in catalog order."""
    return list(CATALOG)


def title(name: str) -> str:
    """The method's title for pictures and tables (its name when it is not in the catalog)."""
    entry = CATALOG.get(name)
    return entry.title if entry is not None else name


def register(name: str, title: str, cls: type[Any]) -> None:
    """Add a method class under `name` (for studies that build variants at run time)."""
    CATALOG[name] = MethodEntry(name, title, f"{cls.__module__}:{cls.__qualname__}", cls)
