"""The KD-tree index must answer exactly as brute force, ties (split copies) included."""

import numpy as np
import pytest
import torch

from toylab.fitting.nearest import BruteForceIndex, KDTreeIndex, brute_force_nearest, make_index


@pytest.mark.parametrize("distance", ["l1", "l2"])
@pytest.mark.parametrize("k", [3, 50, 2000])
def test_index_matches_brute_force_while_nodes_move_and_split(distance, k):
    rng = np.random.default_rng(k)
    pos = rng.uniform(-1, 1, (k, 2))
    pos[1] = pos[0]  # duplicates present at build time
    index = KDTreeIndex(pos, distance)
    mismatches = 0
    for step in range(400):
        pts = rng.uniform(-1.2, 1.2, (int(rng.integers(1, 30)), 2))
        if step % 5 == 0:
            pts[0] = pos[rng.integers(0, k)]  # a point exactly on a node
        got = index.query(pts)
        want = brute_force_nearest(pts, pos, distance)
        mismatches += int((got != want).sum())
        moved = np.unique(got)
        pos[moved] += 0.4 * (pts[: moved.size] - pos[moved])
        index.mark_moved(moved)
        i, j = rng.integers(0, k, 2)
        pos[j] = pos[i]  # a split: exact duplicate position
        index.mark_moved(np.array([j]))
    assert mismatches == 0
    assert index.rebuilds > 1  # the rebuild path was exercised too


def test_ties_go_to_the_lowest_index():
    pos = np.array([[0.5, 0.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    pts = np.array([[0.1, 0.1], [0.0, 0.0]])
    index = KDTreeIndex(pos.copy(), "l1")
    assert index.query(pts).tolist() == [1, 1]
    index.positions[1] = [0.9, 0.9]
    index.mark_moved(np.array([1]))
    assert index.query(pts).tolist() == [2, 2]


def test_torch_brute_force_agrees_with_numpy():
    rng = np.random.default_rng(0)
    nodes, pts = rng.uniform(-1, 1, (500, 2)), rng.uniform(-1, 1, (64, 2))
    for distance in ("l1", "l2"):
        a = brute_force_nearest(pts, nodes, distance)
        b = brute_force_nearest(torch.from_numpy(pts), torch.from_numpy(nodes), distance)
        assert np.array_equal(a, b.numpy())


def test_index_choice():
    from toylab.fitting.grid_index import GridIndex

    spread = np.random.default_rng(0).uniform(-1, 1, (100_000, 2))
    assert isinstance(make_index(spread, "l1", "auto", batch=10), GridIndex)
    assert isinstance(make_index(spread, "l1", "kdtree"), KDTreeIndex)
    assert isinstance(make_index(spread, "l1", "brute"), BruteForceIndex)
    assert isinstance(
        make_index(torch.zeros(10, 2), "l1", "auto"), BruteForceIndex
    )  # tensors: GPU path


@pytest.mark.parametrize("distance", ["l1", "l2"])
@pytest.mark.parametrize("k", [1, 7, 3000])
def test_grid_index_matches_brute_force_while_nodes_move_and_split(distance, k):
    from toylab.fitting.grid_index import GridIndex

    rng = np.random.default_rng(k + 1)
    pos = rng.uniform(-1, 1, (k, 2))
    pos[: k // 3] *= 0.1  # crowded cells next to empty ones
    pos[-1] = [1.7, -2.5]  # a node outside the square sits in an edge cell
    index = GridIndex(pos, distance)
    for step in range(300):
        pts = rng.uniform(-1, 1, (int(rng.integers(1, 40)), 2))
        if step % 5 == 0:
            pts[0] = np.clip(pos[rng.integers(0, k)], -1, 1)
        got = index.query(pts)
        assert np.array_equal(got, brute_force_nearest(pts, pos, distance))
        moved = np.unique(got)
        pos[moved] += 0.4 * (pts[: moved.size] - pos[moved])
        i, j = rng.integers(0, k, 2)
        pos[j] = pos[i]
        index.mark_moved(np.append(moved, j))


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_grid_index_answers_exactly_on_cell_edges(distance):
    """Nodes and points on the cells' very edges (and one float step either side), on a
    lattice full of exact ties, and outside the square, get brute force's answer (ties: lowest
    index): the ring bound holds whatever the rounding at the edges."""
    from toylab.fitting.grid_index import GridIndex, grid_size

    rng = np.random.default_rng(11)
    k = 400
    h = 2.0 / grid_size(k)
    edges = np.arange(-2, grid_size(k) + 3) * h - 1.0  # every cell edge, and a little beyond
    near = np.concatenate([edges, np.nextafter(edges, 2.0), np.nextafter(edges, -2.0)])
    pos = rng.choice(near, (k, 2))
    pos[rng.integers(0, k, 40)] = pos[rng.integers(0, k, 40)]  # exact ties between nodes
    index = GridIndex(pos, distance)
    lattice = np.stack(np.meshgrid(edges, edges), -1).reshape(-1, 2)
    points = np.concatenate([lattice, rng.choice(near, (3000, 2)), lattice + h / 2])
    assert np.array_equal(index.query(points), brute_force_nearest(points, pos, distance))
