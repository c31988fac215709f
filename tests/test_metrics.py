"""The evaluator against hand-computed cases."""

import math

import numpy as np
import pytest

import densities
from toylab import evaluate
from toylab.metrics import divergences


def test_identical_distributions_score_zero():
    q = np.array([0.1, 0.2, 0.3, 0.4])
    d = divergences(q, q)
    assert d["kl"] == pytest.approx(0, abs=1e-15)
    assert d["js"] == pytest.approx(0, abs=1e-15)
    assert d["tv"] == 0
    assert d["hellinger"] == pytest.approx(0, abs=1e-15)


def test_two_cell_case_by_hand():
    p, q = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    d = divergences(p, q)
    assert d["kl"] == pytest.approx(math.log(2))  # 1 * log(1 / 0.5)
    m = np.array([0.75, 0.25])
    js_nats = 0.5 * (math.log(1 / 0.75)) + 0.5 * (
        0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    )
    assert d["js"] == pytest.approx(js_nats / math.log(2))
    assert m.sum() == 1
    assert d["tv"] == pytest.approx(0.5)
    assert d["hellinger"] == pytest.approx(math.sqrt(0.5 * ((1 - math.sqrt(0.5)) ** 2 + 0.5)))


def test_nodes_are_binned_by_the_point_to_cell_rule():
    d = densities.get("uniform", bins=8)
    # one node per cell centre: P = Q exactly
    c = -1 + (np.arange(8) + 0.5) / 4
    xs, ys = np.meshgrid(c, c)
    nodes = np.stack([xs.ravel(), ys.ravel()], 1)
    assert evaluate(nodes, d)["kl"] == pytest.approx(0, abs=1e-12)
    # every node in one cell: KL = log(1 / q) = log 64; outside points clip to the edge cell
    far = np.full((10, 2), 5.0)
    assert evaluate(far, d)["kl"] == pytest.approx(math.log(64))


def test_stray_nodes_and_the_floor_cost():
    # an image target with mass only in the left half: nodes in the right half are stray
    k, bins = 10_000, 100
    mass = np.zeros((bins, bins))
    mass[:, :50] = 1
    d = densities.Density("half", densities.grid.normalise(mass))
    rng = np.random.default_rng(0)
    nodes = d.sample(k, rng)
    nodes[0] = [0.5, 0.0]  # one node alone in an empty cell
    s = evaluate(nodes, d)
    assert s["stray"] == 1
    # that node adds about (1/K) ln((1/K) / (1e-20 / bins^2)) to the KL
    expected = (1 / k) * math.log((1 / k) / (1e-20 / bins**2))
    without = evaluate(np.delete(nodes, 0, axis=0), d)["kl"]
    assert s["kl"] - without == pytest.approx(expected, rel=0.05)
