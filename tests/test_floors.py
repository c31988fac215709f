"""The KL floors (toylab.floors), the run's floors per target, and the Wasserstein metric."""

import itertools

import numpy as np
import pytest
from method_helpers import two_target_config

import densities
import toylab
from toylab.kl_floors import allocation_kl, kl_optimal_allocation, largest_remainder
from toylab.metrics import wasserstein
from toylab.run import Run
from toylab.store import statefile


def test_a_density_the_node_count_divides_has_a_zero_allocation_floor():
    q = np.array([[1.0, 3.0], [2.0, 2.0]]) / 8
    out = toylab.floors(q, 16)  # 16 q = 2, 6, 4, 4 nodes exactly
    assert out["allocation_floor"] == 0.0
    assert out["allocation_floor_kl_optimal"] == 0.0
    assert toylab.floors(q, 3)["allocation_floor"] > 0.0  # 3 q is not integer


def test_largest_remainder_by_hand():
    # 4 x (0.5, 0.3, 0.2) = 2, 1.2, 0.8: floors 2, 1, 0; the one node left goes to 0.8.
    assert largest_remainder(np.array([0.5, 0.3, 0.2]), 4).tolist() == [2, 1, 1]
    # ties go to the lowest index
    assert largest_remainder(np.array([1.0, 1.0, 1.0]), 2).tolist() == [1, 1, 0]


def test_kl_optimal_allocation_matches_a_brute_force_search_and_bounds_largest_remainder():
    rng = np.random.default_rng(3)
    strictly_better = 0
    for _ in range(30):
        q = rng.random(4) ** 3 + 1e-3
        q /= q.sum()
        k = int(rng.integers(1, 9))
        best = min(
            allocation_kl(np.array(c), q)
            for c in itertools.product(range(k + 1), repeat=4)
            if sum(c) == k
        )
        opt = kl_optimal_allocation(q, k)
        assert opt.sum() == k
        assert allocation_kl(opt, q) == pytest.approx(best, abs=1e-12)
        lr = allocation_kl(largest_remainder(q, k), q)
        assert lr >= best - 1e-12
        strictly_better += lr > best + 1e-9
    assert strictly_better > 0  # largest remainder is not KL-optimal in general


def test_data_floor_equals_allocation_floor_for_a_histogram_proportional_to_q():
    mass = np.array([[1.0, 5.0, 2.0], [7.0, 3.0, 1.0], [2.0, 2.0, 9.0]])
    out = toylab.floors(mass / mass.sum(), 7, histogram=(mass * 1000).astype(np.int64))
    assert out["data_floor"] == out["allocation_floor"]
    assert out["samples"] == int(mass.sum() * 1000)


def test_data_floor_is_above_the_optimum_always_and_above_the_allocation_floor_on_average():
    d = densities.get("spiral", bins=24)
    data = []
    for seed in range(12):
        out = toylab.floors(d, 300, 3000, rng=np.random.default_rng(seed))
        assert out["samples"] == 3000
        # no allocation beats the KL-optimal one, whatever data chose it
        assert out["data_floor"] >= out["allocation_floor_kl_optimal"]
        assert out["data_floor_kl_optimal"] >= out["allocation_floor_kl_optimal"]
        data.append(out["data_floor"])
    assert np.mean(data) > out["allocation_floor"]
    # more data, closer to the allocation floor (10 points a node against 1000); largest
    # remainder is not KL-optimal, so only the optimum bounds it from below
    rich = toylab.floors(d, 300, 300_000, rng=np.random.default_rng(0))["data_floor"]
    assert out["allocation_floor_kl_optimal"] <= rich < np.mean(data)


def test_floors_reject_bad_input():
    q = np.ones((4, 4))
    with pytest.raises(ValueError, match="nodes"):
        toylab.floors(q, 0)
    with pytest.raises(ValueError, match="samples"):
        toylab.floors(q, 5, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="histogram"):
        toylab.floors(q, 5, histogram=np.ones((3, 3)))


class _Recording(Run):
    """A Run that keeps every batch it hands to the methods."""

    def _next_batch(self, density):
        batch = super()._next_batch(density)
        self.seen.setdefault(self.target_pos, []).append(np.array(batch))
        return batch


def _config(**extra):
    return two_target_config(["sp", "bsp"], 200, **extra)


def test_a_runs_data_floor_is_computed_from_the_very_points_it_drew():
    run = _Recording(_config())
    run.seen = {}
    run.advance()
    for pos, target in enumerate(run.results):
        points = np.concatenate(run.seen[pos])
        assert points.shape == (70 * 9, 2)
        expected = toylab.floors(run.targets[pos], 200, points)
        assert target["floors"] == expected
        for m in ("sp", "bsp"):
            assert target["methods"][m]["wasserstein"] > 0
        assert target["wasserstein_estimate"] in ("exact", "sliced")


def test_floors_and_wasserstein_survive_an_interruption():
    full = Run(_config())
    full.advance()
    part = Run(_config())
    part.advance(should_stop=lambda: part.global_step >= 100)  # inside the second target
    resumed = Run(_config())
    resumed.load_state_dict(statefile.loads(statefile.dumps(part.state_dict())), part.frames)
    assert resumed.advance()
    for a, b in zip(resumed.results, full.results, strict=True):
        assert a["floors"] == b["floors"]
        for m in ("sp", "bsp"):
            assert a["methods"][m]["wasserstein"] == b["methods"][m]["wasserstein"]
    assert resumed.kl_rows == full.kl_rows
    for m in ("sp", "bsp"):  # bsp's running means, covariances and masses resume bit-exactly
        assert np.array_equal(resumed.positions()[m], full.positions()[m])


def test_wasserstein_exact_against_hand_computed_cases():
    # Two cells with mass (the top row of a 2 x 2 grid; centres (-0.5, 0.5) and (0.5, 0.5)),
    # the bottom row's mass is under 1e-12 of it and ignored.
    d = densities.Density("two", np.array([[1.0, 1.0], [1e-20, 1e-20]]))
    # two nodes half a unit below each centre: each travels 0.5, so W2 = 0.5
    w, kind = wasserstein(np.array([[-0.5, 0.0], [0.5, 0.0]]), d)
    assert kind == "exact" and w == pytest.approx(0.5)
    # one node between the centres: half its mass goes 0.5 left, half 0.5 right
    assert wasserstein(np.array([[0.0, 0.5]]), d)[0] == pytest.approx(0.5)
    # nodes on the centres: zero
    assert wasserstein(np.array([[-0.5, 0.5], [0.5, 0.5]]), d)[0] == pytest.approx(0.0, abs=1e-9)


def test_sliced_wasserstein_of_a_translation():
    # 16 nodes on the centres of a uniform 4 x 4 grid, shifted by v: W2 = |v| exactly, and the
    # sliced W2 = sqrt(E cos^2) |v| = |v| / sqrt(2) over uniform directions. With P projections
    # the mean of cos^2 has sd sqrt(1/8 / P) (relative 0.5 / sqrt(P)); allow 5 sd on it.
    d = densities.Density("flat", np.ones((4, 4)))
    c = (np.arange(4) + 0.5) / 4 * 2 - 1
    x, y = np.meshgrid(c, c[::-1])
    v = np.array([0.12, 0.05])
    nodes = np.stack([x.ravel(), y.ravel()], 1) + v
    w, kind = wasserstein(nodes, d)
    assert kind == "exact" and w == pytest.approx(np.hypot(*v), rel=1e-9)
    p = 2000
    ws, kind = wasserstein(nodes, d, exact_max_pairs=0, projections=p, seed=1)
    assert kind == "sliced"
    rel = 5 * 0.5 / np.sqrt(p) / 2 + 1e-3  # sqrt halves the relative error of the mean
    assert ws == pytest.approx(np.hypot(*v) / np.sqrt(2), rel=rel)
    # the fixed seed makes it reproducible
    assert wasserstein(nodes, d, exact_max_pairs=0, projections=p, seed=1)[0] == ws


def test_a_run_directory_shows_the_floors_and_w2(tmp_path):
    import json

    from toylab.cli import main

    out = tmp_path / "run"
    args = ["run", "--target", "spiral", "--nodes", "150", "--steps", "60", "--bins", "24"]
    assert main([*args, "--method", "sp,bsp", "--frames", "2", "--out", str(out), "--quiet"]) == 0
    target = json.loads((out / "metrics.json").read_text())["targets"][0]
    html = (out / "report.html").read_text()
    assert f"data-budget floor {target['floors']['data_floor']:.4f}" in html
    for m in ("sp", "bsp"):
        w = target["methods"][m]["wasserstein"]
        assert f'data-method="{m}" data-metric="wasserstein" data-value="{w!r}"' in html
