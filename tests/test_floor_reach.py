"""benchmarks/floor_reach.py's equal-mass quantiser: the reference the issue-16 study leans on."""

import importlib.util
from pathlib import Path

import numpy as np

import densities

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "floor_reach.py"


def load_script():
    spec = importlib.util.spec_from_file_location("floor_reach", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_power_weights_equalise_the_nodes_point_counts_where_lloyd_does_not():
    reach = load_script()
    d = densities.get("gaussian", 40)
    points = d.sample(20_000, np.random.default_rng(0))
    nodes, spread = reach.equal_mass_quantiser(points, 200, 60, np.random.default_rng(0))
    _, lloyd_spread = reach.equal_mass_quantiser(
        points, 200, 60, np.random.default_rng(0), rate=0.0
    )
    # Plain Lloyd puts nodes at density ~ q^(1/2) (k-means in 2D), so the Gaussian's tail
    # nodes hold fewer points than its centre's (measured: sd / mean 0.23); the power weights
    # move the cells' borders until every node holds about 100 points (measured: 0.06).
    assert lloyd_spread > 0.15
    assert spread < 0.1 and spread < lloyd_spread / 2
    assert nodes.shape == (200, 2) and np.isfinite(nodes).all()
