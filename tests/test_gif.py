"""Comparison GIF / MP4 writing and the `toylab gif` command."""

from __future__ import annotations

import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from toylab.cli import main as cli_main
from toylab.errors import ToylabError
from toylab.store.frames import FRAMES_FILE, Frames
from toylab.viz import gif, render
from toylab.viz.render import Layout

BINS = 16
N_FRAMES = 5


def tiny_frames(methods=("gd", "sp"), n=N_FRAMES, nodes=100, targets=("gaussian",)) -> Frames:
    """Synthetic frames: nodes drift from one corner cell towards a uniform spread."""
    rng = np.random.default_rng(0)
    q = np.full((BINS, BINS), 1.0 / BINS**2)
    fr = Frames(list(methods), list(targets), [q] * len(targets), nodes, 100)
    for f in range(n):
        hists = np.zeros((len(methods), BINS, BINS), dtype=np.int64)
        for m in range(len(methods)):
            spread = 1 + (f * (BINS - 1)) // max(1, n - 1)
            np.add.at(hists[m], (rng.integers(0, spread, nodes), rng.integers(0, spread, nodes)), 1)
        fr.add(hists, f * len(targets) // n, 20 * (f + 1), 20 * (f + 1), rng.random(len(methods)))
    return fr


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    tiny_frames().save(d / FRAMES_FILE)
    return d


def read_gif(path) -> np.ndarray:
    frames = iio.imread(path, index=None)
    return frames[..., :3]


def test_render_run_writes_animated_gif_with_exact_colours(tmp_path):
    fr = tiny_frames()
    fr.save(tmp_path / FRAMES_FILE)
    fr = Frames.load(tmp_path)
    out = gif.render_run(fr, tmp_path / "comparison.gif", fps=20, scale=3)
    assert out == [tmp_path / "comparison.gif"]
    back = read_gif(out[0])
    lay = Layout(BINS, 3, 3)
    assert back.shape == (N_FRAMES, lay.height, lay.width, 3)
    for i in range(N_FRAMES):  # one fixed palette: every pixel exactly as rendered
        np.testing.assert_array_equal(back[i], render.render_frame(fr, i, scale=3))
    # no dithering: the flat uniform target is one colour, the colour the scale gives it
    p = BINS * 3
    target = back[-1, lay.panel_y : lay.panel_y + p, lay.panel_x(2) : lay.panel_x(2) + p]
    vmax = render.colour_vmax(fr.target_arrays[0], fr.nodes)
    expected = render.PALETTE[render.to_indices(np.array(1.0 / BINS**2), vmax)]
    assert {tuple(c) for c in target.reshape(-1, 3)} == {tuple(expected)}
    with Image.open(out[0]) as im:
        assert im.info["loop"] == 0 and im.n_frames == N_FRAMES
        assert im.info["duration"] == 50
        im.seek(N_FRAMES - 1)
        assert im.info["duration"] == 50 + gif.HOLD_LAST_MS  # the final fit is held
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.gif", FRAMES_FILE]


def test_one_gif_runs_through_a_target_sequence(tmp_path):
    fr = tiny_frames(n=6, targets=("gaussian", "uniform", "gaussian"))
    path = gif.render_run(fr, tmp_path / "seq.gif", scale=2)[0]
    assert read_gif(path).shape[0] == 6


def test_write_gif_maps_rgb_to_the_palette_without_dithering(tmp_path):
    h, w = 12, 20
    exact = np.broadcast_to(render.PALETTE[100], (h, w, 3)).copy()
    off = np.zeros((h, w, 3), dtype=np.uint8)
    off[:, : w // 2] = render.PALETTE[30].astype(int) + 1  # near palette colours, not in it
    off[:, w // 2 :] = (250, 250, 250)
    path = gif.write_gif([exact, off], tmp_path / "x.gif", fps=10)
    back = read_gif(path)
    np.testing.assert_array_equal(back[0], exact)
    assert {tuple(c) for c in back[1, :, : w // 2].reshape(-1, 3)} == {tuple(render.PALETTE[30])}
    assert len({tuple(c) for c in back[1, :, w // 2 :].reshape(-1, 3)}) == 1


def test_interrupted_render_leaves_nothing(tmp_path):
    def frames():
        yield np.zeros((8, 8), dtype=np.uint8)
        yield np.zeros((8, 8), dtype=np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gif.write_gif(frames(), tmp_path / "comparison.gif")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fps", "scale"), [(0, 3), (51, 3), (20, 0)])
def test_render_run_checks_arguments_first(tmp_path, fps, scale):
    with pytest.raises(ToylabError, match="fps|scale"):
        gif.render_run(tiny_frames(), tmp_path / "x.gif", fps=fps, scale=scale)
    assert list(tmp_path.iterdir()) == []


def test_mp4_without_imageio_ffmpeg_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    with pytest.raises(ToylabError, match=r"pip install imageio-ffmpeg"):
        gif.render_run(tiny_frames(), tmp_path / "x.gif", mp4=True)
    assert list(tmp_path.iterdir()) == []


def test_mp4(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    paths = gif.render_run(tiny_frames(), tmp_path / "comparison.gif", scale=3, mp4=True)
    assert [p.name for p in paths] == ["comparison.gif", "comparison.mp4"]
    import imageio.v2 as iio2

    reader = iio2.get_reader(paths[1], format="FFMPEG")
    try:
        w, h = reader.get_meta_data()["size"]
        assert w % 2 == 0 and h % 2 == 0
        assert reader.count_frames() == N_FRAMES
    finally:
        reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.gif", "comparison.mp4"]


# --------------------------------------------------------------------------- CLI


def test_cli_writes_gif_and_panels_narrow_it(run_dir, capsys):
    assert cli_main(["gif", str(run_dir), "--quiet", "--scale", "2"]) == 0
    out = run_dir / "comparison.gif"
    assert capsys.readouterr().out.strip() == str(out)
    full = read_gif(out)
    assert full.shape[0] == N_FRAMES
    narrow_path = run_dir / "narrow.gif"
    assert (
        cli_main(
            [
                "gif",
                str(run_dir),
                "--quiet",
                "--scale",
                "2",
                "--panels",
                "sp,target",
                "--out",
                str(narrow_path),
                "--fps",
                "10",
            ]
        )
        == 0
    )
    narrow = read_gif(narrow_path)
    assert narrow.shape[1] == full.shape[1] and narrow.shape[2] < full.shape[2]
    assert narrow.shape[2] == Layout(BINS, 2, 2).width


def test_cli_progress_bar_on_stderr(run_dir, capsys):
    assert cli_main(["gif", str(run_dir), "--scale", "1"]) == 0
    assert "rendering" in capsys.readouterr().err


def _bad_dirs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    garbage, empty_npz, truncated = (tmp_path / n for n in ("garbage", "emptynpz", "truncated"))
    for d in (garbage, empty_npz, truncated):
        d.mkdir()
    (garbage / FRAMES_FILE).write_bytes(b"not an npz at all" * 10)
    (empty_npz / FRAMES_FILE).write_bytes(b"")
    tiny_frames().save(truncated / FRAMES_FILE)
    data = (truncated / FRAMES_FILE).read_bytes()
    (truncated / FRAMES_FILE).write_bytes(data[: len(data) // 2])
    return {
        "missing": (tmp_path / "nope", "does not exist"),
        "file": (a_file, "not a directory"),
        "no frames": (empty, "not a toylab run directory"),
        "garbage": (garbage, "cannot read"),
        "empty npz": (empty_npz, "cannot read"),
        "truncated": (truncated, "cannot read"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "file", "no frames", "garbage", "empty npz", "truncated"]
)
def test_cli_not_a_run_directory(tmp_path, capsys, case):
    path, message = _bad_dirs(tmp_path)[case]
    before = sorted(tmp_path.rglob("*"))
    assert cli_main(["gif", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("toylab gif: error: ") and message in err
    assert "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--panels", "sp,nope"], "unknown panel nope; available: gd,sp,target"),
        (["--fps", "0"], "fps must be"),
        (["--fps", "60"], "fps must be"),
        (["--scale", "0"], "scale must be"),
    ],
)
def test_cli_bad_options(run_dir, capsys, extra, message):
    assert cli_main(["gif", str(run_dir), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert sorted(p.name for p in run_dir.iterdir()) == [FRAMES_FILE]


def test_cli_mp4_without_ffmpeg(run_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    assert cli_main(["gif", str(run_dir), "--mp4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install imageio-ffmpeg" in err
    assert sorted(p.name for p in run_dir.iterdir()) == [FRAMES_FILE]


def test_cli_subprocess_error_is_one_line(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "toylab", "gif", str(tmp_path / "missing"), "--fps", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("toylab gif: error: fps must be")
    assert list(tmp_path.iterdir()) == []
