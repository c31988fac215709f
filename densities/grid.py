"""A piecewise-constant density on the square [-1, 1]^2 and the point <-> cell rules.

Orientation (fixed by the project conventions): row 0 of the array is the top edge (+y),
column 0 the left edge (-x). A point (x, y) falls in column floor((x + 1) / 2 * bins) and row
floor((1 - y) / 2 * bins), clipped to the grid, so points outside the square count in the
edge cells.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DOMAIN = (-1.0, 1.0)
FLOOR = 1e-20  # total mass spread over the grid before renormalising (the reference's floor)
MIN_BINS, MAX_BINS = 8, 4096
SUPPORT_FRACTION = 1e-6  # a cell below this share of the uniform mass counts as empty


class DensityError(ValueError):
    """A bad target name or parameter; its message is one line meant for the user."""


def check_bins(bins: Any) -> int:
    """Return `bins` as an int, or raise DensityError naming the bad value and the range."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)):
        raise DensityError(f"bins must be an integer from {MIN_BINS} to {MAX_BINS}, got {bins!r}")
    if not MIN_BINS <= int(bins) <= MAX_BINS:
        raise DensityError(f"bins must be from {MIN_BINS} to {MAX_BINS}, got {bins}")
    return int(bins)


def normalise(mass: np.ndarray) -> np.ndarray:
    """Turn a non-negative mass array into a strictly positive density that sums to 1.

    The mass is normalised, a floor of 1e-20 / cells is added to every cell (so that the KL of
    a node sitting in an empty cell is finite, as in the reference), and it is normalised again.
    """
    mass = np.asarray(mass, dtype=np.float64)
    total = mass.sum()
    if not np.isfinite(total) or total <= 0 or (mass < 0).any():
        raise DensityError("a target needs finite, non-negative mass with a positive total")
    density = mass / total + FLOOR / mass.size
    return density / density.sum()


def cell_width(bins: int) -> float:
    """Side length of one cell in domain units."""
    return (DOMAIN[1] - DOMAIN[0]) / bins


def points_to_cells(points: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Map (n, 2) points to (rows, cols) integer arrays by the project's point-to-cell rule."""
    points = np.asarray(points, dtype=np.float64)
    cols = np.floor((points[:, 0] + 1.0) * (bins / 2.0))
    rows = np.floor((1.0 - points[:, 1]) * (bins / 2.0))
    # Non-finite points (never produced by training) go to cell (0, 0) rather than crash.
    cols = np.nan_to_num(cols, nan=0.0, posinf=bins - 1, neginf=0.0)
    rows = np.nan_to_num(rows, nan=0.0, posinf=bins - 1, neginf=0.0)
    return (
        np.clip(rows, 0, bins - 1).astype(np.int64),
        np.clip(cols, 0, bins - 1).astype(np.int64),
    )


def cell_centre_grid(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) coordinates of every cell centre, each (bins, bins), row 0 at the top."""
    centres = -1.0 + (np.arange(bins) + 0.5) * (2.0 / bins)
    x = np.broadcast_to(centres[None, :], (bins, bins))
    y = np.broadcast_to(centres[::-1, None], (bins, bins))
    return x, y


def histogram(points: np.ndarray, bins: int) -> np.ndarray:
    """Count points per cell: an int64 (bins, bins) array in the density's orientation."""
    rows, cols = points_to_cells(points, bins)
    flat = np.bincount(rows * bins + cols, minlength=bins * bins)
    return flat.reshape(bins, bins)


class Density:
    """A normalised, strictly positive density on a bins x bins grid over [-1, 1]^2.

    `array[r, c]` is the probability of cell (r, c); inside a cell the density is uniform, so
    `sample` draws exactly from it: the cell by inverse CDF, then a uniform point in the cell.
    """

    def __init__(self, name: str, array: np.ndarray, params: dict[str, Any] | None = None):
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != 2 or array.shape[0] != array.shape[1]:
            raise DensityError(f"a density array must be square, got shape {array.shape}")
        if not (np.isfinite(array).all() and (array > 0).all()):
            raise DensityError("a density array must be finite and strictly positive")
        self.name = name
        self.array = array / array.sum()
        self.array.setflags(write=False)
        self.params = dict(params or {})
        self._cdf: np.ndarray | None = None

    @property
    def bins(self) -> int:
        return self.array.shape[0]

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Density({self.name!r}, bins={self.bins}{extra})"

    def _flat_cdf(self) -> np.ndarray:
        if self._cdf is None:
            self._cdf = np.cumsum(self.array.ravel())
        return self._cdf

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw n exact i.i.d. samples as an (n, 2) float64 array of (x, y) points.

        Cells are drawn in O(n + cells) without a random-access binary search per sample: for
        n >= 2 cells the cell counts are one multinomial draw; otherwise n sorted uniforms (from
        exponential spacings) are located with one sorted-key search. Either way the cells are
        then put in uniformly random order, which makes them i.i.d. draws from the array.
        """
        n = int(n)
        if n < 0:
            raise DensityError(f"sample size must be >= 0, got {n}")
        flat = self._sample_cells(n, rng)
        rows, cols = np.divmod(flat, self.bins)
        points = rng.random((n, 2))  # jitter inside the cell, then scaled in place
        points[:, 0] += cols
        points[:, 1] += rows
        points *= cell_width(self.bins)
        points[:, 0] += DOMAIN[0]
        np.subtract(DOMAIN[1], points[:, 1], out=points[:, 1])
        return points

    def _sample_cells(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n i.i.d. flat cell indices drawn from the array."""
        cells = self.array.size
        if n >= 2 * cells:
            counts = rng.multinomial(n, self.array.ravel())
            flat = np.repeat(np.arange(cells, dtype=np.int64), counts)
        else:
            cdf = self._flat_cdf()
            spacings = rng.standard_exponential(n + 1)
            u = np.cumsum(spacings[:-1])
            u *= cdf[-1] / (u[-1] + spacings[-1]) if n else 1.0  # sorted U(0, total)
            flat = np.minimum(np.searchsorted(cdf, u, side="right"), cells - 1)
        rng.shuffle(flat)
        return flat

    def histogram(self, points: np.ndarray) -> np.ndarray:
        """Integer count of points per cell of this density's grid."""
        return histogram(points, self.bins)

    def support_mask(self) -> np.ndarray:
        """Cells holding at least 1e-6 of a uniform cell's mass: nodes outside are 'stray'."""
        return self.array * self.array.size >= SUPPORT_FRACTION
