"""`toylab explain`: the teaching GIF, its region labels, its events and its input checks."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from toylab.cli import main as cli_main
from toylab.errors import ToylabError
from toylab.fitting.nearest import brute_force_nearest
from toylab.run import Run
from toylab.viz import explain as ex

TINY = {"target": "gaussian", "nodes": 16, "steps": 20, "batch": 10, "bins": 32}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("explain") / "out"
    return ex.explain(**TINY, out=out, fps=10)


def test_gif_has_one_frame_per_step_and_sp_draws_splits(tiny):
    assert tiny.frame_steps == list(range(TINY["steps"] + 1))
    # Frames after the first store unchanged pixels as transparent: read them composited.
    frames = iio.imread(tiny.gif, index=None, mode="RGBA")
    assert frames.shape[0] == TINY["steps"] + 1
    assert (frames[..., 3] == 255).all()  # every frame fully painted once composited
    assert sum(tiny.splits_per_frame["sp"]) > 0
    assert sum(tiny.splits_per_frame["gd"]) == 0
    assert tiny.splits_per_frame["sp"][0] == 0  # nothing happens before the first step
    assert len(tiny.dead_per_frame["gd"]) == len(tiny.frame_steps)


def test_stills_and_summary_are_written(tiny):
    names = sorted(p.name for p in tiny.out.iterdir())
    assert names == sorted(
        [ex.GIF_FILE, ex.SUMMARY_FILE, ex.STILL_START, ex.STILL_SPLIT, ex.STILL_END]
    )
    summary = json.loads((tiny.out / ex.SUMMARY_FILE).read_text())
    assert summary["window"] == tiny.window == ex.dead_window(TINY["nodes"], TINY["batch"])
    assert len(summary["frames"]) == TINY["steps"] + 1
    drawn = [len(f["methods"]["sp"]["splits"]) for f in summary["frames"]]
    assert drawn == tiny.splits_per_frame["sp"]
    first = next(f for f in summary["frames"] if f["methods"]["sp"]["splits"])["methods"]["sp"][
        "splits"
    ][0]
    assert "/K" in first["reason"]  # says which threshold fired
    still = iio.imread(tiny.out / ex.STILL_SPLIT)
    assert still.shape[2] == 3 and still.shape[:2] == iio.imread(tiny.gif, index=0).shape[:2]


def test_owner_labels_cover_the_domain_and_match_brute_force():
    rng = np.random.default_rng(3)
    nodes = rng.uniform(-1, 1, size=(37, 2))
    grid = 64
    labels = ex.owner_labels(nodes, grid, "l1")
    assert labels.shape == (grid, grid)
    assert labels.min() >= 0 and labels.max() < len(nodes)
    centres = ex.pixel_centres(grid)
    np.testing.assert_array_equal(labels.ravel(), brute_force_nearest(centres, nodes, "l1"))
    # and by a direct L1 argmin, independent of the nearest-node module
    direct = np.abs(centres[:, None, :] - nodes[None, :, :]).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(labels.ravel(), direct)
    # orientation: row 0 is the top (+y), column 0 the left (-x)
    assert centres[0, 0] < 0 < centres[0, 1]
    assert centres[-1, 0] > 0 > centres[-1, 1]


def test_region_boundaries_mark_label_changes_only():
    labels = np.zeros((6, 6), dtype=np.int64)
    labels[:, 3:] = 1
    edge = ex.region_boundaries(labels)
    assert edge[:, 2].all() and edge.sum() == 6


def test_simulation_follows_toylab_run_exactly():
    """The explain view fits with the same Run, so its nodes are those of `toylab run`."""
    cfg = ex.make_config("blur_circles", 24, ["gd", "sp"], 12, 8, seed=5, bins=32)
    frames, _ = ex.simulate(cfg, window=10, every=1)
    run = Run(ex.make_config("blur_circles", 24, ["gd", "sp"], 12, 8, seed=5, bins=32))
    run.advance()
    for name, pos in run.positions().items():
        np.testing.assert_array_equal(frames[-1].methods[name].positions, pos)
    assert frames[0].methods["gd"].shared_start


def test_every_groups_steps_and_keeps_every_split():
    cfg = ex.make_config("gaussian", 16, ["sp"], 20, 10, seed=0, bins=32)
    one, _ = ex.simulate(cfg, window=10, every=1)
    grouped, _ = ex.simulate(cfg, window=10, every=6)
    assert [f.step for f in grouped] == [0, 6, 12, 18, 20]
    assert [f.first_step for f in grouped][1:] == [1, 7, 13, 19]
    flat = [(e.step, e.split, e.pruned) for f in one for e in f.methods["sp"].splits]
    assert flat == [(e.step, e.split, e.pruned) for f in grouped for e in f.methods["sp"].splits]
    np.testing.assert_array_equal(one[-1].methods["sp"].share, grouped[-1].methods["sp"].share)


def test_dead_window_scales_with_k_over_batch():
    assert ex.dead_window(32, 10) == 20
    assert ex.dead_window(4, 10) == ex.MIN_WINDOW
    assert ex.dead_window(512, 10) == 308


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "513"], "toylab run"),
        (["--nodes", "1"], "--nodes"),
        (["--steps", "0"], "--steps"),
        (["--method", "gd,nope"], "unknown method"),
        (["--target", "nope"], "unknown target"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli_main(["explain", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_out_rules(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ToylabError, match="is a file"):
        ex.check_out(file, force=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ToylabError, match="not empty"):
        ex.check_out(other, force=False)
    with pytest.raises(ToylabError, match="not a toylab explain output"):
        ex.check_out(other, force=True)
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / ex.SUMMARY_FILE).write_text("{}")
    ex.check_out(previous, force=True)  # an earlier explain output may be replaced
    ex.claim_out(previous, force=True)
    assert previous.is_dir() and not any(previous.iterdir())


def test_help_names_the_dead_window(capsys):
    with pytest.raises(SystemExit):
        cli_main(["explain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Dead-node window" in text and "ceil(6 K / batch)" in text
