"""Soft selection and online k-means: the sampling law, the update rules, the schedules."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import densities
import toylab
from toylab.cli import main
from toylab.fitting.kmeans import kmeans_plus_plus, running_mean_update
from toylab.fitting.nearest import brute_force_nearest
from toylab.fitting.schedule import beta_at, check_schedule
from toylab.fitting.soft import SoftSelector


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_large_beta_picks_the_nearest_node(distance):
    rng = np.random.default_rng(0)
    nodes, pts = rng.uniform(-1, 1, (3000, 2)), rng.uniform(-1, 1, (500, 2))
    got = SoftSelector(distance).select(pts, nodes, 1e9, rng)
    assert np.array_equal(got, brute_force_nearest(pts, nodes, distance))


def test_beta_zero_picks_uniformly():
    """Chi-square goodness of fit to the uniform law over K = 50 nodes, n = 50,000 draws:
    with a fixed seed the statistic has 49 degrees of freedom; p > 0.001 is required."""
    rng = np.random.default_rng(1)
    nodes = rng.uniform(-1, 1, (50, 2))
    pts = rng.uniform(-1, 1, (50_000, 2))
    counts = np.bincount(SoftSelector("l1").select(pts, nodes, 0.0, rng), minlength=50)
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("beta", [1.0, 8.0, 40.0, 400.0])
def test_intermediate_beta_follows_the_softmax_law(beta):
    """Every sampling path (rejection, dense, candidate list) must draw from exp(-beta d)."""
    rng = np.random.default_rng(2)
    nodes = rng.uniform(-1, 1, (12, 2))
    x = np.array([0.1, -0.2])
    d = np.abs(nodes - x).sum(axis=1)
    p = np.exp(-beta * (d - d.min()))
    p /= p.sum()
    keep = p * 40_000 >= 5  # chi-square needs expected counts >= 5: pool the rest
    counts = np.bincount(
        SoftSelector("l1").select(np.tile(x, (40_000, 1)), nodes, beta, rng), minlength=12
    )
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(p[keep], p[~keep].sum()) * 40_000
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_torch_path_follows_the_same_law():
    rng = np.random.default_rng(3)
    nodes = rng.uniform(-1, 1, (6, 2))
    d = np.abs(nodes).sum(axis=1)
    p = np.exp(-5.0 * (d - d.min()))
    p /= p.sum()
    gen = torch.Generator().manual_seed(0)
    idx = SoftSelector("l1").select(
        torch.zeros(30_000, 2, dtype=torch.float64), torch.from_numpy(nodes), 5.0, rng, gen
    )
    counts = np.bincount(idx.numpy(), minlength=6)
    assert stats.chisquare(counts, p * 30_000).pvalue > 1e-3


def test_schedules_run_from_start_to_end_and_never_decrease():
    for shape in ("linear", "geometric", "cosine"):
        values = [beta_at(shape, 0.5, 500.0, t, 100) for t in range(101)]
        assert values[0] == pytest.approx(0.5) and values[-1] == pytest.approx(500.0)
        assert all(b >= a - 1e-12 for a, b in zip(values, values[1:], strict=False))
    assert beta_at("geometric", 1.0, 100.0, 50, 100) == pytest.approx(10.0)
    assert beta_at("cosine", 0.0, 10.0, 50, 100) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("shape", "start", "end", "named"),
    [
        ("linear", -1.0, 10.0, "--beta-start"),
        ("linear", 5.0, 1.0, "--beta-end"),
        ("wavy", 1.0, 10.0, "wavy"),
        ("geometric", 0.0, 10.0, "geometric"),
        ("linear", 1.0, math.inf, "--beta-end"),
    ],
)
def test_bad_schedules_are_rejected(shape, start, end, named):
    with pytest.raises(toylab.errors.ToylabError, match=named):
        check_schedule(shape, start, end)


def test_bad_schedule_from_the_cli(tmp_path, capsys):
    code = main(
        [
            "run",
            "--method",
            "soft",
            "--beta-start",
            "10",
            "--beta-end",
            "1",
            "--nodes",
            "20",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "--beta-end" in err
    assert not (tmp_path / "o").exists()


def test_running_mean_update_equals_macqueen_point_by_point():
    rng = np.random.default_rng(4)
    pos = rng.uniform(-1, 1, (5, 2))
    counts = rng.integers(1, 5, 5).astype(float)
    ref_pos, ref_counts = pos.copy(), counts.copy()
    pts, idx = rng.uniform(-1, 1, (30, 2)), rng.integers(0, 5, 30)
    running_mean_update(pos, counts, pts, idx)
    for i, x in zip(idx, pts, strict=True):
        ref_counts[i] += 1
        ref_pos[i] += (x - ref_pos[i]) / ref_counts[i]
    np.testing.assert_allclose(pos, ref_pos, atol=1e-12)
    np.testing.assert_array_equal(counts, ref_counts)


def test_kmeans_plus_plus_picks_distinct_sample_points():
    rng = np.random.default_rng(5)
    sample = densities.get("eight_gaussians", 64).sample(2000, rng)
    centres = kmeans_plus_plus(sample, 8, rng)
    assert all(any(np.array_equal(c, s) for s in sample) for c in centres)
    # D^2 seeding spreads the first 8 centres over the 8 modes far more often than chance
    modes = np.round(np.arctan2(centres[:, 1], centres[:, 0]) / (np.pi / 4)) % 8
    assert len(set(modes.tolist())) >= 6


@pytest.mark.parametrize("method", ["soft", "kmeans"])
def test_new_methods_are_deterministic_and_independent(method):
    kw = dict(nodes=300, steps=150, batch=10, frames=2, bins=32, seed=3)
    a = toylab.fit("blur_circles", methods=method, **kw)
    b = toylab.fit("blur_circles", methods=method, **kw)
    assert np.array_equal(a.nodes[method], b.nodes[method])
    every = toylab.fit("blur_circles", methods="gd,sp,soft,kmeans", **kw)
    assert np.array_equal(every.nodes[method], a.nodes[method])
    assert np.array_equal(
        every.nodes["sp"], toylab.fit("blur_circles", methods="sp", **kw).nodes["sp"]
    )


def test_kmeans_starts_on_the_target_and_soft_revives_dead_nodes():
    kw = dict(nodes=400, steps=2500, batch=10, frames=0, seed=0)
    r = toylab.fit("spiral", methods="gd,soft,kmeans", **kw)
    m = r.metrics["targets"][0]["methods"]
    assert m["kmeans"]["stray"] < m["gd"]["stray"] / 10
    assert m["soft"]["stray"] < m["gd"]["stray"] / 2
    assert m["soft"]["kl"] < m["gd"]["kl"] / 2


@pytest.mark.parametrize("beta", [0.0, 1.0, 8.0, 40.0, 400.0])
def test_compiled_draw_follows_the_softmax_law(beta):
    """The compiled CPU path (rejection, full scan or local grid scan) draws from exp(-beta d)."""
    from toylab.fitting.grid_index import GridIndex
    from toylab.fitting.soft_kernel import soft_draw

    rng = np.random.default_rng(11)
    nodes = rng.uniform(-1, 1, (400, 2))
    x = np.array([0.3, 0.1])
    d = np.abs(nodes - x).sum(axis=1)
    p = np.exp(-beta * (d - d.min()))
    p /= p.sum()
    n = 40_000
    counts = np.bincount(
        soft_draw(np.tile(x, (n, 1)), GridIndex(nodes, "l1"), beta, rng), minlength=400
    )
    keep = p * n >= 5
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(p[keep], p[~keep].sum()) * n
    if expected[-1] < 1e-9:
        observed, expected = observed[:-1], expected[:-1]
    if observed.size > 1:
        assert stats.chisquare(observed, expected).pvalue > 1e-3
    else:
        assert counts[np.argmax(p)] == n


def test_compiled_draw_with_large_beta_is_the_nearest_node():
    from toylab.fitting.grid_index import GridIndex
    from toylab.fitting.soft_kernel import soft_draw

    rng = np.random.default_rng(12)
    nodes, pts = rng.uniform(-1, 1, (5000, 2)), rng.uniform(-1, 1, (300, 2))
    got = soft_draw(pts, GridIndex(nodes, "l2"), 1e9, rng)
    assert np.array_equal(got, brute_force_nearest(pts, nodes, "l2"))
