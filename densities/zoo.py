"""The 2D zoo of normalizing-flow papers (FFJORD's toy data), each as exact mass per cell.

Shapes and noise levels follow FFJORD's `toy_data.py`, rescaled into [-1, 1]^2 (mass that falls
outside the square is dropped). Mixtures of gaussians integrate exactly over each cell, since
an isotropic gaussian's cell mass is a product of two 1D cdf differences; rings and moons are
gaussian noise around curves, integrated with a quadrature along the curve fine enough that
its error is far below 1e-6; the checkerboard is exact; the pinwheel, the one non-separable
shape, inverts its sampling map at Gauss-Legendre points inside each cell.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import register
from .shapes import smooth_upsample


def _cell_masses(centres: np.ndarray, sigma: float, bins: int) -> np.ndarray:
    """(len(centres), bins): mass of N(centre, sigma^2) in each of bins cells of [-1, 1]."""
    edges = np.linspace(-1.0, 1.0, bins + 1)
    from scipy.special import ndtr  # imported here: importing densities stays light

    return np.diff(ndtr((edges[None, :] - centres[:, None]) / sigma), axis=1)


def gaussian_mixture(
    cx: np.ndarray, cy: np.ndarray, weights: np.ndarray, sigma: float, bins: int
) -> np.ndarray:
    """Exact cell masses of a mixture of isotropic gaussians (row 0 = top)."""
    cols = _cell_masses(np.asarray(cx, float), sigma, bins)
    # Row r spans y in [1 - (r + 1) c, 1 - r c], that is -y in the r-th cell of [-1, 1].
    rows = _cell_masses(-np.asarray(cy, float), sigma, bins)
    return (rows * np.asarray(weights, float)[:, None]).T @ cols


@register("eight_gaussians", "eight gaussians on a circle (FFJORD's 8gaussians)")
def eight_gaussians(bins: int) -> np.ndarray:
    """FFJORD: centres at radius 4 / sqrt(2), sigma 0.5 / sqrt(2), shown on [-4, 4]."""
    angles = np.arange(8) * (np.pi / 4)
    radius, sigma = 1.0 / math.sqrt(2.0), 0.125 / math.sqrt(2.0)  # FFJORD / 4
    return gaussian_mixture(
        radius * np.cos(angles), radius * np.sin(angles), np.full(8, 1 / 8), sigma, bins
    )


def _square_wave_integral(x: np.ndarray) -> np.ndarray:
    """Integral from -1 to x of the square wave that is +1 on [-1, -0.5), -1 on [-0.5, 0), ..."""
    return 0.5 - np.abs(np.mod(x + 1.0, 1.0) - 0.5)


@register("checkerboard", "a 4 x 4 checkerboard filling the square (FFJORD's checkerboard)")
def checkerboard(bins: int) -> np.ndarray:
    """Mass 1 on the squares whose row and column indices have the same parity (exact per cell).

    The indicator is (1 + s(x) s(y)) / 2 with s the +-1 square wave of period 1, so its integral
    over a cell is (area + S_x S_y) / 2 with S the exact integrals of s over the cell's sides.
    The top-left square is empty, as in FFJORD's plot.
    """
    edges = np.linspace(-1.0, 1.0, bins + 1)
    s_cols = np.diff(_square_wave_integral(edges))
    s_rows = -np.diff(_square_wave_integral(edges[::-1]))  # rows run from y = 1 down to -1
    cell = 2.0 / bins
    return np.clip(0.5 * (cell * cell + np.outer(s_rows, s_cols)), 0.0, None)  # rounding


# Pinwheel (FFJORD): class k of 5 draws u ~ N(1, 0.3^2), v ~ N(0, 0.1^2) and returns
# 2 * R(-a) (u, v) with a = 2 pi k / 5 + 0.25 exp(u); shown on [-4, 4], so x = R(-a) (u, v) / 2.
PIN_CLASSES, PIN_RATE = 5, 0.25
PIN_RADIAL, PIN_TANGENTIAL = 0.3, 0.1
PIN_NEWTON_STEPS = 6
PIN_POINTS = 200  # integration points per side of the square, at least


def _pinwheel_density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pinwheel density at points (x, y) of the square, up to a constant factor.

    For class k the sampling map (u, v) -> R(-a(u)) (u, v) is inverted pointwise: with the point
    at raw polar (rho, beta), u solves u = rho cos(beta + a(u)) (Newton from u = rho, which
    converges wherever the density is not negligible) and v = rho sin(beta + a(u)); the density
    is N(u) N(v) / |1 + a'(u) v|, the Jacobian of the map. Each arm sweeps under pi radians, so
    a point has one preimage per class where the mass is.
    """
    rho = 2.0 * np.hypot(x, y)
    beta = np.arctan2(y, x)
    total = np.zeros_like(rho)
    for k in range(PIN_CLASSES):
        phase = beta + 2.0 * np.pi * k / PIN_CLASSES
        u = rho.copy()
        for _ in range(PIN_NEWTON_STEPS):
            turn = PIN_RATE * np.exp(np.minimum(u, 5.0))
            angle = phase + turn
            g = u - rho * np.cos(angle)
            slope = 1.0 + rho * np.sin(angle) * turn
            u = u - g / np.where(np.abs(slope) > 1e-6, slope, 1e-6)
            u = np.clip(u, -rho, rho)
        turn = PIN_RATE * np.exp(np.minimum(u, 5.0))
        angle = phase + turn
        v = rho * np.sin(angle)
        converged = np.abs(u - rho * np.cos(angle)) < 1e-9
        jacobian = np.abs(1.0 + turn * v)
        pdf = np.exp(
            -0.5 * ((u - 1.0) / PIN_RADIAL) ** 2 - 0.5 * (v / PIN_TANGENTIAL) ** 2
        ) / np.maximum(jacobian, 1e-6)
        total += np.where(converged, pdf, 0.0)
    return total


@register("pinwheel", "five curved arms (FFJORD's pinwheel)")
def pinwheel(bins: int) -> np.ndarray:
    """Cell integrals of the exact pinwheel density by Gauss-Legendre points in each cell.

    Each cell gets sub x sub Gauss-Legendre points (sub >= 2, at least 200 points per side of
    the square), which integrate the smooth density to about 1e-4 of the total or better. At most
    512 bins are computed so; finer grids interpolate that smooth result (arms 0.05 wide) with a
    cubic spline, within 2e-4 in total variation (measured at 1024 bins).
    """
    work = min(bins, 512)
    sub = max(2, math.ceil(PIN_POINTS / work))
    nodes, weights = np.polynomial.legendre.leggauss(sub)
    cell = 2.0 / work
    left = -1.0 + np.arange(work) * cell
    xs = (left[:, None] + 0.5 * cell * (nodes[None, :] + 1.0)).ravel()  # cell by cell
    x, y = np.meshgrid(xs, xs[::-1])
    dens = _pinwheel_density(x, y).reshape(work, sub, work, sub)
    w = weights[::-1]  # rows run downward: the node order within a row cell is reversed
    mass = np.einsum("isjt,s,t->ij", dens, w, weights) / 4.0
    return smooth_upsample(mass, bins)


@register("two_moons", "two interleaving half circles (FFJORD's / scikit-learn's moons)")
def two_moons(bins: int) -> np.ndarray:
    """scikit-learn's make_moons with noise 0.1, centred and scaled by 0.55 into the square.

    Each half circle is a uniform arc; Gauss-Legendre quadrature (160 nodes per arc) along it
    integrates the gaussian noise essentially exactly.
    """
    nodes, weights = np.polynomial.legendre.leggauss(160)
    t = 0.5 * np.pi * (nodes + 1.0)
    w = np.concatenate([weights, weights]) / (2.0 * weights.sum())
    mx = np.concatenate([np.cos(t), 1.0 - np.cos(t)])
    my = np.concatenate([np.sin(t), 0.5 - np.sin(t)])
    scale = 0.55
    return gaussian_mixture(scale * (mx - 0.5), scale * (my - 0.25), w, 0.1 * scale, bins)


@register("rings", "four concentric rings of equal mass (FFJORD's rings)")
def rings(bins: int) -> np.ndarray:
    """Radii 0.225, 0.45, 0.675 and 0.9 (FFJORD's 0.75 to 3 scaled by 0.3), noise sigma 0.024.

    Each ring holds a quarter of the mass; equally spaced angles (spacing sigma / 2, spectrally
    accurate for a periodic integrand) integrate the noise around it.
    """
    scale, sigma = 0.3, 0.08 * 0.3
    xs, ys, ws = [], [], []
    for radius in scale * 3.0 * np.array([0.25, 0.5, 0.75, 1.0]):
        count = max(64, math.ceil(2.0 * np.pi * radius / (0.5 * sigma)))
        theta = np.arange(count) * (2.0 * np.pi / count)
        xs.append(radius * np.cos(theta))
        ys.append(radius * np.sin(theta))
        ws.append(np.full(count, 0.25 / count))
    return gaussian_mixture(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws), sigma, bins)
