"""Closed-form targets: gaussian and uniform (the others live in their own modules)."""

from __future__ import annotations

import numpy as np

from .registry import register


def cell_centre_grid(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) coordinates of every cell centre, each (bins, bins), row 0 at the top."""
    centres = -1.0 + (np.arange(bins) + 0.5) * (2.0 / bins)
    x = np.broadcast_to(centres[None, :], (bins, bins))
    y = np.broadcast_to(centres[::-1, None], (bins, bins))
    return x, y


@register("uniform", "constant density over the whole square")
def uniform(bins: int) -> np.ndarray:
    return np.ones((bins, bins))


@register("gaussian", "isotropic gaussian exp(-(x^2 + y^2) / scale) at the centre", scale="2 sigma^2 in domain units")
def gaussian(bins: int, scale: float = 0.3) -> np.ndarray:
    x, y = cell_centre_grid(bins)
    return np.exp(-(x**2 + y**2) / scale)
