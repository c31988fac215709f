"""The hierarchical DDN (--method tree): sampling law, exact vs rejection conditionals, per-parent
Split-and-Prune, save/resume, guides' bad input, determinism, the CLI."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import densities
import toylab
from toylab.cli import main
from toylab.cli.driver import set_threads
from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.fitting.tree.guides import (
    BoxGuide,
    FunctionGuide,
    XGuide,
    conditional_leaf_probs,
    exact_branch_probs,
    parse_guide,
    sample_exact,
    sample_greedy,
    sample_rejection,
    satisfied_mass,
)
from toylab.fitting.tree.points import PointTree, nearest_children
from toylab.fitting.tree.table import TreeTable
from toylab.run import Run
from toylab.store.rundir import read_checkpoint, write_checkpoint


def tiny_table(k=3, layers=2, prior=False, seed=0) -> TreeTable:
    """A tiny tree with distinct leaves; with prior=True, a random non-uniform prior."""
    rng = np.random.default_rng(seed)
    tree = PointTree(k, layers, 0.4, rng)
    probs = None
    if prior:
        probs = [
            (lambda w: (w / w.sum(axis=1, keepdims=True)).ravel())(
                rng.uniform(0.1, 1.0, size=(k**level, k))
            )
            for level in range(layers)
        ]
    return TreeTable(k, [p.copy() for p in tree.positions], probs)


def leaf_ids(table: TreeTable, points: np.ndarray) -> np.ndarray:
    """The leaf each sampled point is (leaves are distinct points)."""
    lookup = {tuple(p): i for i, p in enumerate(table.leaves)}
    return np.array([lookup[tuple(p)] for p in points])


@pytest.mark.parametrize("prior", [False, True])
def test_sampling_draws_from_the_trees_distribution(prior):
    table = tiny_table(prior=prior)
    n = 18_000
    got = np.bincount(leaf_ids(table, table.sample(n, np.random.default_rng(1))), minlength=9)
    expected = table.leaf_mass() * n
    assert np.isclose(table.leaf_mass().sum(), 1.0)
    # chi-square with 8 degrees of freedom: p below 1e-3 would reject the sampler
    assert stats.chisquare(got, expected).pvalue > 1e-3


def test_a_wrong_law_fails_the_same_chi_square():
    table = tiny_table(prior=True)
    n = 18_000
    got = np.bincount(leaf_ids(table, table.sample(n, np.random.default_rng(1))), minlength=9)
    uniform = np.full(9, n / 9)  # the sampler follows the prior, not the uniform law
    assert stats.chisquare(got, uniform).pvalue < 1e-3


@pytest.mark.parametrize("prior", [False, True])
def test_exact_sampler_equals_rejection_sampling_exactly(prior):
    table = tiny_table(k=3, layers=3, prior=prior, seed=2)
    leaves = table.leaves
    lo = np.quantile(leaves, 0.3, axis=0)
    hi = np.quantile(leaves, 0.9, axis=0)
    guides = [
        BoxGuide(lo[0], lo[1], hi[0], hi[1]),
        XGuide(float(leaves[5, 0]), 0.15),
        FunctionGuide(lambda p: np.exp(-4 * ((p - 0.2) ** 2).sum(axis=1))),  # a soft weight
    ]
    for guide in guides:
        # rejection sampling from the model accepts leaf i with prob. proportional to
        # prior_i * weight_i: enumerate the leaves for its law ...
        rejection = conditional_leaf_probs(table, guide)
        # ... and the exact sampler's law is the product of its branch probabilities
        branch = exact_branch_probs(table, satisfied_mass(table, guide))
        ids = table.node_ids(np.arange(table.n_leaves))
        law = np.prod([branch[level][ids[:, level]] for level in range(3)], axis=0)
        np.testing.assert_allclose(law, rejection, rtol=1e-12, atol=1e-15)
        # and the samples follow it
        n = 20_000
        pts = sample_exact(table, guide, n, np.random.default_rng(3)).points
        got = np.bincount(leaf_ids(table, pts), minlength=table.n_leaves)
        on = rejection > 0
        assert got[~on].sum() == 0
        assert stats.chisquare(got[on], rejection[on] * n).pvalue > 1e-3
        rej = sample_rejection(table, guide, n, np.random.default_rng(4))
        got = np.bincount(leaf_ids(table, rej), minlength=table.n_leaves)
        assert stats.chisquare(got[on], rejection[on] * n).pvalue > 1e-3


def test_greedy_collapses_where_exact_spreads():
    table = tiny_table(k=4, layers=3, seed=5)
    guide = XGuide(float(table.leaves[7, 0]), 0.3)
    greedy = sample_greedy(table, guide, 500, np.random.default_rng(0))
    exact = sample_exact(table, guide, 500, np.random.default_rng(0))
    assert len(np.unique(greedy.codes, axis=0)) == 1  # every sample takes the same path
    assert len(np.unique(exact.codes, axis=0)) > 1
    assert greedy.codes.shape == (500, 3) and greedy.codes.max() < 4


def test_nearest_children_is_the_nearest_child_at_every_layer():
    table = tiny_table(k=4, layers=3, seed=6)
    pts = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    chosen = nearest_children(table.positions, 4, pts)
    for b, p in enumerate(pts):
        parent = 0
        for level in range(3):
            ids = parent * 4 + np.arange(4)
            d = ((table.positions[level][ids] - p) ** 2).sum(axis=1)
            assert chosen[b, level] == ids[np.argmin(d)]
            parent = chosen[b, level]


def child_usage(tree: PointTree, density, n=40_000):
    chosen = nearest_children(tree.positions, tree.k, density.sample(n, np.random.default_rng(9)))
    return [np.bincount(chosen[:, lv], minlength=tree.k ** (lv + 1)) for lv in range(2)]


@pytest.mark.parametrize("split", [True, False])
def test_split_and_prune_per_parent_keeps_every_child_alive(split):
    density = densities.get("eight_gaussians", 64)
    rng = np.random.default_rng(0)
    kw = {} if split else {"split_ratio": 1e9, "prune_ratio": 0.0}
    tree = PointTree(6, 2, 0.45, rng, **kw)
    data = np.random.default_rng(1)
    for t in range(300):
        tree.step(density.sample(256, data), 0.3 * (1 - t / 300) + 0.01)
    dead = 0
    for level, use in enumerate(child_usage(tree, density)):
        per_parent = use.reshape(-1, 6)
        busy = per_parent.sum(axis=1) >= 600  # parents with 100 visits per child expected
        dead += int((per_parent[busy] == 0).sum())
        if split:
            assert busy.any(), level
            assert (per_parent[busy] > 0).all(), level
    if not split:
        assert dead > 0  # plain nearest-child descent leaves dead children here


def test_split_copies_the_whole_subtree():
    tree = PointTree(3, 3, 0.4, np.random.default_rng(0))
    tree.counts[0][:] = [10, 0, 5]
    tree.counts[1][:] = np.arange(9)
    assert tree._split_layer(0)
    assert np.array_equal(tree.positions[0][1], tree.positions[0][0])
    assert np.array_equal(tree.positions[1][3:6], tree.positions[1][0:3])
    assert np.array_equal(tree.positions[2][9:18], tree.positions[2][0:9])
    assert np.array_equal(tree.counts[1][3:6], tree.counts[1][0:3])
    assert tree.counts[0][0] == tree.counts[0][1] == 5


TREE_FIT = dict(steps=40, batch=128, frames=2, bins=32, seed=4, k=4, layers=3)


def test_tree_runs_beside_flat_methods_and_reports_model_kl():
    both = toylab.fit("spiral", nodes=300, methods="sp,tree", tree_eval_samples=20_000, **TREE_FIT)
    alone = toylab.fit("spiral", nodes=300, methods="sp", **TREE_FIT)
    assert np.array_equal(both.nodes["sp"], alone.nodes["sp"])  # adding tree changes nothing
    m = both.metrics["targets"][0]["methods"]["tree"]
    assert both.nodes["tree"].shape == (300, 2)
    assert {"kl", "kl_model", "tv_model", "leaves", "parameters"} <= set(m)
    assert m["leaves"] == 64 and m["parameters"] == 2 * (4 + 16 + 64)
    again = toylab.fit("spiral", nodes=300, methods="tree", tree_eval_samples=20_000, **TREE_FIT)
    assert np.array_equal(again.nodes["tree"], both.nodes["tree"])  # deterministic
    assert again.metrics["targets"][0]["methods"]["tree"]["kl_model"] == m["kl_model"]


def tables_equal(a: TreeTable, b: TreeTable) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.positions, b.positions, strict=True))


@pytest.mark.parametrize(
    ("form", "stop"), [("points", 27), ("neural", 27), ("neural", 36)], ids=str
)
def test_save_and_resume_is_bit_exact(tmp_path, form, stop):
    """Stopped inside the second target (at 36 the neural DDN is in its polish phase)."""
    set_threads(None)  # as the CLI and toylab.fit do (one thread is fastest for small steps)
    cfg = RunConfig(
        targets=["spiral", "checkerboard"],
        nodes=200,
        methods=["tree"],
        steps=20,
        batch=64,
        frames=3,
        bins=32,
        seed=1,
        tree_form=form,
        k=4,
        layers=2,
        tree_eval_samples=5000,
    )
    full = Run(cfg)
    full.advance()
    part = Run(cfg)
    calls = iter(range(10**6))
    part.advance(should_stop=lambda: next(calls) >= stop)
    if form == "neural":  # the stop lands before, then inside, the polish
        assert (part.methods["tree"].model._polish is not None) == (stop == 36)
    write_checkpoint(tmp_path / "checkpoint.pt", part.state_dict())  # the run directory's file
    state = read_checkpoint(tmp_path)
    resumed = Run(cfg)
    resumed.load_state_dict(state, part.frames)
    resumed.advance()
    assert tables_equal(full.methods["tree"].table(), resumed.methods["tree"].table())
    assert np.array_equal(full.positions()["tree"], resumed.positions()["tree"])
    assert json.dumps(full.metrics()["targets"][1]["methods"]["tree"] | {"seconds": 0}) == (
        json.dumps(resumed.metrics()["targets"][1]["methods"]["tree"] | {"seconds": 0})
    )


@pytest.mark.parametrize(
    "spec",
    [
        "box:1,0,0,1",
        "box:0,0,1",
        "point:1",
        "point:a,b",
        "x:",
        "x:0,-1",
        "circle:0,0",
        "nope",
        "mask:/does/not/exist.png",
        "x:nan",
    ],
)
def test_bad_guides_are_one_line(spec):
    with pytest.raises(ToylabError) as err:
        parse_guide(spec)
    assert "\n" not in str(err.value) and spec.split(":")[0] in str(err.value)


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tree") / "run"
    args = [
        "run",
        "--target",
        "spiral",
        "--method",
        "tree,sp",
        "--nodes",
        "300",
        "--steps",
        "60",
        "--batch",
        "256",
        "--frames",
        "2",
        "--bins",
        "32",
        "--k",
        "4",
        "--layers",
        "3",
        "--tree-eval-samples",
        "10000",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    return out


def test_cli_run_table_and_sample_with_guides(tree_run, capsys, tmp_path):
    capsys.readouterr()
    metrics = json.loads((tree_run / "metrics.json").read_text())
    assert "kl_model" in metrics["targets"][0]["methods"]["tree"]
    assert main(["sample", str(tree_run), "-n", "50", "--method", "tree", "--seed", "2"]) == 0
    a = capsys.readouterr().out
    assert main(["sample", str(tree_run), "-n", "50", "--method", "tree", "--seed", "2"]) == 0
    assert capsys.readouterr().out == a  # same seed, same points
    pts = np.loadtxt(io.StringIO(a), delimiter=",", skiprows=1)
    leaves = toylab.cli.tree_cmd.load_tree(tree_run).table().leaves
    assert pts.shape == (50, 2) and all(np.abs(leaves - p).max(axis=1).min() < 1e-6 for p in pts)
    assert main(["sample", str(tree_run), "-n", "40", "--guide", "box:-1,-1,0,0"]) == 0
    pts = np.loadtxt(io.StringIO(capsys.readouterr().out), delimiter=",", skiprows=1)
    assert (pts <= 0).all()
    assert (
        main(
            ["sample", str(tree_run), "-n", "3", "--guide", "point:0.2,0.1", "--sampler", "greedy"]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "latent code (greedy" in err and len(err.strip().splitlines()) == 2 + 3


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--guide", "box:1,0,0,1"], "box"),
        (["--guide", "x:5"], "no leaf"),
        (["--method", "sp", "--guide", "x:0"], "tree"),
    ],
)
def test_cli_guide_bad_input_is_one_line_exit_2(tree_run, capsys, extra, named):
    capsys.readouterr()
    assert main(["sample", str(tree_run), "-n", "5", *extra]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and named in err and out == "", err


def test_cli_unknown_sampler_is_a_usage_error(tree_run):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "toylab",
            "sample",
            str(tree_run),
            "-n",
            "5",
            "--guide",
            "x:0",
            "--sampler",
            "best",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "best" in r.stderr and "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--tree-form", "forest"], "forest"),
        (["--k", "1"], "--k"),
        (["--layers", "0"], "--layers"),
        (["--k", "100", "--layers", "5"], "leaves"),
        (["--tree-step", "2"], "--tree-step"),
        (["--tree-lr", "-1"], "--tree-lr"),
    ],
)
def test_cli_tree_options_bad_input(tmp_path, capsys, extra, named):
    out = tmp_path / "out"
    code = main(["run", "--method", "tree", "--steps", "2", "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and named in err, err
    assert not out.exists()


def test_tree_view_writes_pictures(tree_run, tmp_path, capsys):
    out = tmp_path / "view"
    assert (
        main(["tree", str(tree_run), "--out", str(out), "-n", "2000", "--guide", "x:0.2,0.05"]) == 0
    )
    assert {p.name for p in out.iterdir()} == {
        "tree_layers.png",
        "tree_guided.png",
        "tree_reconstruction.png",
    }
    text = capsys.readouterr().out
    assert "x = 0.2" in text and "per layer" in text
    flat = tmp_path / "flat"
    assert (
        main(
            [
                "run",
                "--target",
                "gaussian",
                "--nodes",
                "50",
                "--steps",
                "5",
                "--frames",
                "0",
                "--quiet",
                "--out",
                str(flat),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["tree", str(flat)]) == 2
    assert "no hierarchical DDN" in capsys.readouterr().err


def test_mask_guide_keeps_samples_on_the_bright_part(tmp_path):
    from PIL import Image

    picture = np.zeros((20, 20), dtype=np.uint8)
    picture[:, :10] = 255  # left half bright: x < 0 allowed
    Image.fromarray(picture).save(tmp_path / "left.png")
    guide = parse_guide(f"mask:{tmp_path / 'left.png'}")
    table = tiny_table(k=4, layers=3, seed=7)
    assert (table.leaves[:, 0] < 0).any() and (table.leaves[:, 0] > 0).any()
    pts = sample_exact(table, guide, 300, np.random.default_rng(0)).points
    assert (pts[:, 0] < 0).all()
    black = tmp_path / "black.npy"
    np.save(black, np.zeros((4, 4)))
    with pytest.raises(ToylabError, match="black"):
        parse_guide(f"mask:{black}")


def test_learned_prior_is_the_datas_use_of_each_leaf():
    density = densities.get("checkerboard", 32)
    tree = PointTree(4, 3, 0.45, np.random.default_rng(0), split_ratio=1e9, prune_ratio=0.0)
    data = np.random.default_rng(1)
    leaves = []
    for _ in range(30):
        leaves.append(tree.step(density.sample(200, data), 0.1)[:, -1])
    use = np.bincount(np.concatenate(leaves), minlength=64) / 6000
    # with no split and no decay, p(path) = product of use(child) / use(parent) = use(leaf) / N
    np.testing.assert_allclose(tree.table().leaf_mass(), use, rtol=1e-12, atol=1e-15)
    tree.prior = "uniform"
    assert np.allclose(tree.table().leaf_mass(), 1 / 64)


def test_neural_split_and_prune_keeps_every_head_alive():
    from toylab.fitting.tree.neural import NeuralTree

    set_threads(None)
    density = densities.get("eight_gaussians", 64)
    low = {}
    for split in (True, False):
        data = np.random.default_rng(1)
        kw = {} if split else {"split_ratio": 1e9, "prune_ratio": 0.0}
        net = NeuralTree(16, 2, np.random.default_rng(0), width=32, feat=8, **kw)
        for t in range(150):
            net.step(density.sample(256, data), t, 150)
        assert sum(net.splits) > 0 if split else sum(net.splits) == 0
        chosen = nearest_children(net.table().positions, 16, density.sample(20_000, data))
        share = [np.bincount(chosen[:, lv] % 16, minlength=16) / 20_000 for lv in range(2)]
        if split:  # every head of every layer is some point's nearest candidate
            assert all((s > 0).all() for s in share)
        low[split] = share[0].min() * 16  # the least used first-layer head, in units of 1/K
    assert low[True] >= 0.4  # Split-and-Prune keeps first-layer heads near 1/K ...
    assert low[False] < 0.4  # ... which without it they are not (a head starves)


def test_neural_grid_features_are_read_at_the_parent_point():
    """The grids give each layer local capacity: a grid vertex moves only the candidates of
    parents within one grid cell of it (bilinear reads, x along columns, y along rows)."""
    import torch

    from toylab.fitting.tree.neural import NeuralTree

    set_threads(None)
    net = NeuralTree(8, 2, np.random.default_rng(3), width=16, feat=4, grid=(16,), grid_feat=2)
    data, density = np.random.default_rng(4), densities.get("eight_gaussians", 32)
    for t in range(40):  # spread the first layer's points over the square
        net.step(density.sample(256, data), t, 40)
    parents = net.table().positions[0]  # the 8 first-layer points: layer 1 reads its grid there
    before = net.table().positions[1].reshape(8, 8, 2)
    res = 16
    step = 2.0 / (res - 1)  # grid spacing with align_corners
    col, row = np.rint((parents[0] + 1.0) / step).astype(int)  # the vertex nearest parent 0
    with torch.no_grad():
        net.nets[1].grids[0][0, :, row, col] += 5.0
    net._table = None
    after = net.table().positions[1].reshape(8, 8, 2)
    vertex = np.array([col, row]) * step - 1.0
    moved = np.abs(after - before).max(axis=(1, 2)) > 0
    near = (np.abs(parents - vertex) < step).all(axis=1)  # inside the vertex's four cells
    assert moved[0] and near[0]
    assert (~near).any()  # the check below is not empty
    assert not moved[~near].any()
    assert np.array_equal(net.table().positions[0], parents)  # layer 0 has no grid


def test_neural_polish_fits_the_leaves_with_the_layers_above_frozen():
    """The polish (the last steps) trains the last layer alone: the layers above do not move,
    the leaves end nearer their points' centroids than the same training without it, and the
    prior is the recount of the ring's points under the final leaves."""
    from toylab.fitting.tree.neural import NeuralTree

    set_threads(None)
    density = densities.get("spiral", 64)
    steps, k, offset = 120, 8, {}
    fresh = density.sample(100_000, np.random.default_rng(9))
    for polish in (0.0, 0.5):
        data = np.random.default_rng(1)
        net = NeuralTree(
            k, 2, np.random.default_rng(0), width=32, feat=8, polish=polish, polish_points=4096
        )
        for t in range(steps):
            if t == steps // 2:
                upper = net.table().positions[0].copy()
            net.step(density.sample(512, data), t, steps)
        table = net.table()
        if polish:
            assert np.array_equal(table.positions[0], upper)
            ring = net._polish["ring"][: net._polish["filled"]]
            assert len(ring) == 4096  # the newest points, the oldest dropped
            leaf = nearest_children(table.positions, k, ring)[:, -1]
            recount = np.bincount(leaf, minlength=k * k) / len(ring)
            np.testing.assert_allclose(table.leaf_mass(), recount, rtol=1e-12, atol=1e-15)
        leaf = nearest_children(table.positions, k, fresh)[:, -1]
        n = np.bincount(leaf, minlength=k * k).astype(float)
        cen = np.stack([np.bincount(leaf, fresh[:, i], k * k) for i in (0, 1)], 1)
        cen = cen / np.maximum(n, 1)[:, None]
        offset[polish] = np.sqrt((n * ((table.leaves - cen) ** 2).sum(1)).sum() / n.sum())
        # a centroid taken from the ring's m_i = 4096 n_i / N points of leaf i misses the true
        # one by its points' variance / m_i (both axes): mass-weighted, sum_i var_i / 4096
        spread = ((fresh - cen[leaf]) ** 2).sum(1)
        floor = np.sqrt((np.bincount(leaf, spread, k * k)[n > 0] / n[n > 0]).sum() / 4096)
    assert offset[0.5] < 2 * floor < offset[0.0], (offset, floor)
