"""The spiral target: two interleaved, point-symmetric Archimedean arms that taper at their tips.

Each arm is r = a * phi at angle phi + ROTATION for phi in [0, 2 pi turns]; the second arm is
the first turned by 180 degrees, so together they form one S-shaped stroke through the centre.
Along an arm, at t = phi / (2 pi turns) from the centre (0) to the tip (1), the stroke is
width * (1 - 0.65 t) wide and its mass per area is 1 - 0.75 t: thick and bright at the centre,
thin and faint at the tips, like the reference picture.

Antialiasing comes from the exact distance of each cell centre to the arm curve (a distance
field): per arm, Newton's method refines two starting points (the centre, and the winding whose
radius is nearest the cell's at the cell's polar angle) to the nearest point of the curve, and
the coverage ramps over one cell width at the stroke's edge. From 256 bins on, blocks of
cells whose distance (measured at the block centre, which is 1-Lipschitz) rules out any ink are
skipped, so only the band around the stroke is computed.
"""

from __future__ import annotations

import numpy as np

from .grid import cell_centre_grid
from .registry import register
from .shapes import check_number, edge_coverage

WIDTH_TAPER = 0.65  # the tip is 35% as wide as the centre
INTENSITY_TAPER = 0.75  # the tip carries 25% of the centre's mass per area
EXTENT = 0.94  # outermost ink radius, domain units
ROTATION = 0.5 * np.pi  # angle at which the first arm leaves the centre
NEWTON_STEPS = 4
CHUNK_CELLS = 1 << 20  # cells per vectorized block (bounds memory at 4096 bins)


def _nearest_on_arm(
    qx: np.ndarray, qy: np.ndarray, phi: np.ndarray, a: float, span: float
) -> tuple[np.ndarray, np.ndarray]:
    """Refine phi to the nearest point of the arm r = a * phi to (qx, qy); return (phi, dist).

    Newton's method on f(phi) = |q - c(phi)|^2 / 2, with c(phi) = a phi (cos, sin)(phi + ROTATION);
    a step with f'' <= 0 is skipped, steps are capped at 0.5 rad and phi is kept in [0, span],
    so the tips are round ends. A poor start can only overestimate the distance.
    """
    for _ in range(NEWTON_STEPS):
        cos, sin = np.cos(phi + ROTATION), np.sin(phi + ROTATION)
        q_u = qx * cos + qy * sin  # q along the radius direction u
        q_n = qy * cos - qx * sin  # q along the normal direction n
        grad = -a * (q_u + phi * q_n - a * phi)
        curv = a * a - 2.0 * a * q_n + a * phi * q_u
        step = np.where(curv > 1e-12, grad / np.where(curv > 1e-12, curv, 1.0), 0.0)
        phi = np.clip(phi - np.clip(step, -0.5, 0.5), 0.0, span)
    r = a * phi
    dist = np.hypot(qx - r * np.cos(phi + ROTATION), qy - r * np.sin(phi + ROTATION))
    return phi, dist


def _distance(
    x: np.ndarray, y: np.ndarray, a: float, span: float, neighbours: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(distance, phi of the nearest point) from points (x, y) to either arm.

    Besides the centre and the nearest-radius winding, `neighbours` windings on either side of
    it are tried too, which matters only when strokes are so wide that an arm's windings overlap.
    """
    rho, alpha = np.hypot(x, y), np.arctan2(y, x)
    best = np.full_like(x, np.inf)
    best_phi = np.zeros_like(x)
    last = int(span // (2.0 * np.pi)) + 1  # windings a ray crosses, the tip's included
    for sign in (1.0, -1.0):  # the arm, then its point reflection (q = -p on the first arm)
        qx, qy = sign * x, sign * y
        start = np.mod(alpha + (0.0 if sign > 0 else np.pi) - ROTATION, 2.0 * np.pi)
        nearest = np.round((rho / a - start) / (2.0 * np.pi))
        starts = [np.zeros_like(x)] + [
            start + 2.0 * np.pi * np.clip(nearest + k, 0, last)
            for k in range(-neighbours, neighbours + 1)
        ]
        for first in starts:
            phi, dist = _nearest_on_arm(qx, qy, np.clip(first, 0.0, span), a, span)
            closer = dist < best
            best = np.where(closer, dist, best)
            best_phi = np.where(closer, phi, best_phi)
    return best, best_phi


def _band(bins: int, reach: float, a: float, span: float, neighbours: int) -> np.ndarray:
    """Boolean (bins, bins) mask of the cells that may be within `reach` of the curve."""
    block = bins // 128
    if block < 2:
        return np.ones((bins, bins), dtype=bool)
    blocks = -(-bins // block)
    cell = 2.0 / bins
    lo = np.arange(blocks) * block
    hi = np.minimum(lo + block, bins)
    centres = -1.0 + 0.5 * (lo + hi) * cell
    bx, by = np.meshgrid(centres, centres[::-1])
    dist, _ = _distance(bx, by, a, span, neighbours)
    near = dist <= reach + block * cell * np.sqrt(0.5) + cell  # half a block's diagonal, + slack
    return np.repeat(np.repeat(near, block, axis=0), block, axis=1)[:bins, :bins]


@register(
    "spiral",
    "two interleaved arms through the centre, tapering in width and mass toward their tips",
    turns="turns of each arm, > 0 and <= 10",
    width="stroke width at the centre in domain units (the square is 2 wide), > 0 and <= 1",
)
def spiral(bins: int, turns: float = 1.5, width: float = 0.12) -> np.ndarray:
    turns = check_number("spiral", "turns", turns, 0.0, 10.0)
    width = check_number("spiral", "width", width, 0.0, 1.0)
    span = 2.0 * np.pi * turns
    a = (EXTENT - 0.5 * width * (1.0 - WIDTH_TAPER)) / span
    # Windings of one arm lie 2 pi a apart; wider strokes overlap and need more starting points.
    neighbours = min(3, int(np.ceil(width / (2.0 * np.pi * a)))) if width > np.pi * a else 0
    x, y = cell_centre_grid(bins)
    rows, cols = np.nonzero(_band(bins, 0.5 * width + 1.0 / bins, a, span, neighbours))
    mass = np.zeros((bins, bins))
    for i in range(0, rows.size, CHUNK_CELLS):
        r, c = rows[i : i + CHUNK_CELLS], cols[i : i + CHUNK_CELLS]
        dist, phi = _distance(x[r, c], y[r, c], a, span, neighbours)
        t = phi / span
        half = 0.5 * width * (1.0 - WIDTH_TAPER * t)
        mass[r, c] = (1.0 - INTENSITY_TAPER * t) * edge_coverage(half - dist, bins)
    return mass
