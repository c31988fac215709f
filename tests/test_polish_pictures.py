"""Pictures for an audience: the light theme, one rule for numbers, plot() and save_gif()."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import toylab
from toylab.cli import main as cli_main
from toylab.errors import ToylabError
from toylab.viz import gif, plot, render
from toylab.viz.numbers import mean_sd, sig


def luminance(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    return 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB")))
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pictures") / "run"
    args = ["run", "--target", "spiral,rings", "--nodes", "300", "--steps", "150", "--frames", "3"]
    assert cli_main([*args, "--bins", "32", "--out", str(out), "--quiet"]) == 0
    return out


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("x", "text"),
    [(35.04, "35.0"), (0.07261, "0.0726"), (19.37, "19.4"), (0.1, "0.100"), (1234.5, "1,234")],
)
def test_three_significant_digits(x, text):
    assert sig(x) == text


@pytest.mark.parametrize(
    ("mean", "sd", "text"),
    [
        (19.37, 0.3412, "19.37 ± 0.34"),
        (0.0688, 0.0112, "0.069 ± 0.011"),
        (35.2, 12.3, "35 ± 12"),
        (0.5, 0.0996, "0.50 ± 0.10"),  # the sd rounds up to a new digit: one place fewer
        (0.25, 0.0, "0.250"),
    ],
)
def test_mean_sd_rounds_the_mean_to_the_sds_last_place(mean, sd, text):
    assert mean_sd(mean, sd) == text


# --------------------------------------------------------------------------- themes


def test_light_gif_is_mostly_light_and_dark_mostly_dark(run_dir, tmp_path):
    light, dark = tmp_path / "light.gif", tmp_path / "dark.gif"
    for path, theme in ((light, "light"), (dark, "dark")):
        args = ["gif", str(run_dir), "--quiet", "--theme", theme, "--out", str(path)]
        assert cli_main(args) == 0
    lum_light = luminance(gif_frames(light)[-1])
    lum_dark = luminance(gif_frames(dark)[-1])
    assert lum_light.shape == lum_dark.shape
    assert (lum_light > 200).mean() > 0.7  # white page, white where there is no mass
    assert (lum_dark < 80).mean() > 0.7  # today's look: dark page, viridis panels


def test_theme_changes_colours_never_the_layout(run_dir):
    frames = toylab.load_run(run_dir).frames()
    idx = render.frame_indices(frames, 1)
    light = render.render_frame(frames, 1, theme="light")
    np.testing.assert_array_equal(light, render.palette("light")[idx])
    np.testing.assert_array_equal(render.render_frame(frames, 1), render.PALETTE[idx])
    # text never shares a colour with the light colour map either
    pal = render.palette("light")
    greys = {tuple(c) for c in pal[render.GREY_BASE : render.FREE_INDEX]}
    assert not greys & {tuple(c) for c in pal[: render.N_VIRIDIS]}


def test_run_theme_light_makes_light_stills_and_is_kept_on_resume(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--target", "gaussian", "--nodes", "100", "--steps", "40", "--frames", "2"]
    assert cli_main([*args, "--bins", "16", "--out", str(out), "--quiet", "--theme", "light"]) == 0
    with Image.open(out / "final.png") as im:
        assert (luminance(np.asarray(im.convert("RGB"))) > 200).mean() > 0.6
    assert (luminance(gif_frames(out / "comparison.gif")[0]) > 200).mean() > 0.6
    assert json.loads((out / "config.json").read_text())["gif"]["theme"] == "light"


def test_default_run_records_no_theme(run_dir):
    assert "theme" not in json.loads((run_dir / "config.json").read_text())["gif"]


def test_bad_theme_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["gif", str(tmp_path), "--theme", "sepia"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sepia" in err and "light" in err
    with pytest.raises(ToylabError, match="unknown --theme 'sepia'; choose from: dark, light"):
        render.palette("sepia")


# --------------------------------------------------------------------------- frame content


def test_frames_carry_the_real_samples_kl_of_their_target(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    real = [t["real_samples"]["kl"] for t in metrics["targets"]]
    record = toylab.load_run(run_dir)
    frames, real_from_run = record.gif_frames()
    assert real_from_run == real
    for i in range(len(frames)):
        title = render.frame_title(frames, i, real)
        t = frames.target_index[i]
        assert title.right == f"real samples KL {sig(real[t])}"
        assert title.name.startswith(frames.target_names[t])
    # a frame drawn with the real-samples KL differs from one without it only in the title
    with_real = render.frame_indices(frames, 0, real_kl=real)
    without = render.frame_indices(frames, 0)
    lay = render.Layout(frames.bins, render.default_scale(frames.bins), len(frames.methods) + 1)
    assert not np.array_equal(with_real[: lay.header_y], without[: lay.header_y])
    np.testing.assert_array_equal(with_real[lay.header_y :], without[lay.header_y :])


def test_fonts_stay_legible_at_scale_2():
    lay = render.Layout(100, 2, 5)  # four methods and the target at --scale 2
    assert lay.font_size >= 14
    # shrunk to a 1000 px page, the labels are still at least 9 px high
    lay3 = render.Layout(100, 3, 5)
    assert lay3.font_size * 1000 / lay3.width >= 9


# --------------------------------------------------------------------------- plot / save_gif


def test_fit_result_plot_and_save_gif(tmp_path):
    result = toylab.fit("Two-Moons", nodes=200, steps=60, frames=3, bins=24)
    assert result.config.targets == ["two_moons"]
    fig = result.plot()
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    kl_sp = result.metrics["targets"][0]["methods"]["sp"]["kl"]
    assert f"Split-and-Prune\nKL {sig(kl_sp)}" in titles and "target" in titles
    assert any(ax.get_ylabel() == "nodes per cell" for ax in fig.axes)  # the colour bar
    real = result.metrics["targets"][0]["real_samples"]["kl"]
    assert f"real samples KL {sig(real)}" in fig.get_suptitle()
    fig.savefig(tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 1000

    path = result.save_gif(tmp_path / "fit.gif", panels=["sp", "target"], theme="light")
    assert path == tmp_path / "fit.gif"
    frames = gif_frames(path)
    assert len(frames) == 3
    assert frames[0].shape[1] == render.Layout(24, render.default_scale(24), 2).width
    assert (luminance(frames[-1]) > 200).mean() > 0.6

    with pytest.raises(ToylabError, match="no frames were recorded"):
        toylab.fit("gaussian", nodes=50, steps=5, frames=0, bins=16).save_gif(tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_loaded_run_plot_and_save_gif(run_dir, tmp_path):
    record = toylab.load_run(run_dir)
    fig = record.plot(theme="light")
    assert isinstance(fig, Figure)
    assert fig.get_suptitle().startswith("rings,")  # a sequence: the last target's fit
    path = record.save_gif(tmp_path / "again.gif", fps=10)
    own = gif_frames(run_dir / "comparison.gif")
    again = gif_frames(path)
    assert len(again) == len(own)
    for a, b in zip(again, own, strict=True):  # the same frames as the run's own GIF
        np.testing.assert_array_equal(a, b)


def test_plot_default_fps_matches_the_gif_module():
    assert plot.DEFAULT_FPS == gif.DEFAULT_FPS and plot.DEFAULT_THEME == render.DEFAULT_THEME


# --------------------------------------------------------------------------- the figure


def test_figure_cells_and_table_follow_the_numbers_rule():
    from toylab.viz.figure import Cell

    assert Cell(kls=[35.04]).summary() == "KL 35.0"
    kls = [0.0688, 0.0571, 0.0794]
    expected = mean_sd(float(np.mean(kls)), float(np.std(kls, ddof=1)))
    assert Cell(kls=kls).summary() == f"KL {expected}" == "KL 0.068 ± 0.011"


def test_light_figure_is_mostly_light(tmp_path):
    out = tmp_path / "fig"
    args = ["figure", "--nodes", "60", "--steps", "5", "--bins", "64", "--out", str(out)]
    assert cli_main([*args, "--quiet", "--theme", "light"]) == 0
    with Image.open(out / "figure.png") as im:
        lum = luminance(np.asarray(im.convert("RGB")))
    assert (lum > 200).mean() > 0.7
    md = (out / "figure.md").read_text()
    assert "in nats" in md and "three significant digits" in md
