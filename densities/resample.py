"""Exact area-average resampling of a raster onto the bins x bins grid (shared by the ink targets).

Every target pixel gets the mean of the source over its own footprint, weighting each source
pixel by the overlap area, so mass is neither shifted nor aliased whatever the ratio of sizes
(up or down, integer or not). It is separable: out = R @ image @ C.T with two sparse matrices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scipy.sparse is imported where used: importing densities stays light
    from scipy import sparse


def area_matrix(src: int, dst: int) -> sparse.csr_matrix:
    """(dst, src) sparse matrix averaging src equal cells of [0, 1] onto dst equal cells.

    Entry (i, j) is the length of the overlap of target cell i and source cell j divided by the
    length of target cell i, so each row sums to 1.
    """
    if src < 1 or dst < 1:
        raise ValueError(f"sizes must be positive, got src={src}, dst={dst}")
    i = np.arange(dst)
    # Work in units of 1 / (src * dst) so every cell boundary is an exact integer.
    lo, hi = i * src, (i + 1) * src  # target cell i spans [lo, hi) in these units
    first = lo // dst  # first source cell that overlaps target cell i
    width = -(-src // dst) + 1  # most source cells one target cell can touch
    j = first[:, None] + np.arange(width)[None, :]
    overlap = np.minimum(hi[:, None], (j + 1) * dst) - np.maximum(lo[:, None], j * dst)
    keep = (overlap > 0) & (j < src)
    rows = np.broadcast_to(i[:, None], j.shape)[keep]
    weights = overlap[keep] / src  # overlap / target cell length (= src units)
    from scipy import sparse

    return sparse.csr_matrix((weights, (rows, j[keep])), shape=(dst, src))


def area_resample(image: np.ndarray, bins: int) -> np.ndarray:
    """Area-average a 2D array (rows, cols) onto a bins x bins grid covering the same square."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a 2D array, got shape {image.shape}")
    h, w = image.shape
    if h == w == bins:
        return image.copy()
    if h % bins == 0 and w % bins == 0:  # integer ratio: a plain block mean, cheaper
        return image.reshape(bins, h // bins, bins, w // bins).mean(axis=(1, 3))
    rows = area_matrix(h, bins) @ image  # (bins, w)
    return np.asarray((area_matrix(w, bins) @ rows.T).T)


def letterbox(image: np.ndarray) -> np.ndarray:
    """Centre a (h, w) array on a zero square of side max(h, w), keeping its aspect ratio."""
    h, w = image.shape
    side = max(h, w)
    out = np.zeros((side, side), dtype=np.asarray(image).dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = image
    return out


def linear_matrix(src: int, dst: int) -> sparse.csr_matrix:
    """(dst, src) sparse matrix of linear interpolation between cell centres of [0, 1].

    Target cell centre i sits at source index position (i + 0.5) * src / dst - 0.5; beyond the
    outermost source centres the edge value is held. For smooth pictures only (it blurs edges).
    """
    pos = np.clip((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0.0, src - 1.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), max(src - 2, 0))
    frac = pos - lo
    rows = np.repeat(np.arange(dst), 2)
    cols = np.stack([lo, np.minimum(lo + 1, src - 1)], axis=1).ravel()
    weights = np.stack([1.0 - frac, frac], axis=1).ravel()
    from scipy import sparse

    return sparse.csr_matrix((weights, (rows, cols)), shape=(dst, src))
