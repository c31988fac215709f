"""Procedural 2D target densities on [-1, 1]^2, each exactly sampleable and scored on a grid.

>>> import densities, numpy as np
>>> d = densities.get("spiral", bins=100)
>>> d.sample(5, np.random.default_rng(0)).shape
(5, 2)
"""

# Importing a target module registers its targets; this order is the order of names().
# isort: off
from . import shapes  # noqa: F401  (uniform, gaussian, blur_circles)
from . import spiral  # noqa: F401
from . import qr  # noqa: F401
from . import text  # noqa: F401  (words)
from . import image  # noqa: F401
from . import zoo  # noqa: F401  (eight_gaussians, checkerboard, pinwheel, two_moons, rings)

# isort: on
from .grid import Density, DensityError, histogram, points_to_cells
from .image import from_mass
from .registry import Target, get, names, params_for, parse_names, target

__all__ = [
    "Density",
    "DensityError",
    "Target",
    "from_mass",
    "get",
    "histogram",
    "names",
    "params_for",
    "parse_names",
    "points_to_cells",
    "target",
]
