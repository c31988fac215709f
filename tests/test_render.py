"""Frame renderer: layout, shared colour scale, labels, final.png."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from toylab.errors import ToylabError
from toylab.store.frames import Frames
from toylab.viz import render
from toylab.viz.render import TARGET, Layout

BINS = 16


def viridis_rgb(x: float) -> np.ndarray:
    """Independent oracle: matplotlib's viridis with the renderer's number of levels."""
    rgba = colormaps["viridis"].resampled(render.N_VIRIDIS)(float(np.clip(x, 0, 1)))
    return np.round(np.array(rgba[:3]) * 255).astype(np.uint8)


def make_frames(methods, nodes=50, n=3, targets=("gaussian",), q=None, seed=0) -> Frames:
    rng = np.random.default_rng(seed)
    if q is None:
        yy, xx = np.mgrid[0:BINS, 0:BINS]
        q = np.exp(-((xx - 7.5) ** 2 + (yy - 7.5) ** 2) / 20.0)
        q /= q.sum()
    fr = Frames(list(methods), list(targets), [q] * len(targets), nodes, 1000)
    for f in range(n):
        hists = np.zeros((len(methods), BINS, BINS), dtype=np.int64)
        for m in range(len(methods)):
            cells = rng.integers(0, BINS * BINS, nodes)
            np.add.at(hists[m].reshape(-1), cells, 1)
        fr.add(hists, f % len(targets), 250 * (f + 1), 250 * (f + 1), rng.random(len(methods)))
    return fr


def rgb_set(a: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(c) for c in a.reshape(-1, 3)}


@pytest.mark.parametrize("n_methods", [1, 2, 4])
@pytest.mark.parametrize("scale", [1, 3])
def test_frame_size_and_layout(n_methods, scale):
    methods = ["gd", "sp", "soft", "kmeans"][:n_methods]
    fr = make_frames(methods)
    img = render.render_frame(fr, 1, scale=scale)
    n = n_methods + 1
    lay = Layout(BINS, scale, n)
    p = BINS * scale
    assert img.dtype == np.uint8
    assert img.shape == (
        2 * lay.margin + lay.title + lay.header + p + lay.legend,
        2 * lay.margin + n * p + (n - 1) * lay.gap,
        3,
    )
    assert lay.title > 0 and lay.legend > 0
    bg = tuple(render.PALETTE[render.BG_INDEX])
    viridis = {tuple(c) for c in render.PALETTE[: render.N_VIRIDIS]}
    y0 = lay.margin + lay.title + lay.header
    title = rgb_set(img[lay.margin : lay.margin + lay.title])
    assert not title & viridis and len(title) > 2  # the title line: text only
    for k in range(n):
        x0 = lay.margin + k * (p + lay.gap)
        panel = img[y0 : y0 + p, x0 : x0 + p]
        assert rgb_set(panel) <= viridis  # a panel is pure colour map
        strip = img[lay.margin + lay.title : y0, x0 : x0 + p]
        strip_colours = rgb_set(strip)
        assert not strip_colours & viridis  # the header is greys only ...
        assert len(strip_colours) > 2  # ... with anti-aliased text on it
        if k < n - 1:  # the gap to the next panel is background
            gap = img[lay.margin + lay.title : lay.legend_y, x0 + p : x0 + p + lay.gap]
            assert rgb_set(gap) == {bg}
    # the legend under the panels shows the colour map from its bottom to its top colour
    legend = img[lay.legend_y : lay.legend_y + lay.legend, lay.margin : lay.margin + p]
    assert {tuple(render.PALETTE[0]), tuple(render.PALETTE[render.N_VIRIDIS - 1])} <= rgb_set(
        legend
    )
    # margins are background
    assert rgb_set(img[: lay.margin]) == {bg}
    assert rgb_set(img[-lay.margin :]) == {bg}


def test_default_scale_aims_at_300px_panels():
    assert render.default_scale(100) == render.DEFAULT_SCALE == 3
    assert render.default_scale(50) == 6
    assert render.default_scale(1000) == 1
    fr = make_frames(["sp"])
    assert render.render_frame(fr, 0).shape[0] == Layout(BINS, render.default_scale(BINS), 2).height


@pytest.mark.parametrize("nodes", [10, 10_000])  # vmax from the floor 1.5/K, or from Q.max()
def test_colours_follow_shared_scale(nodes):
    q = np.full((BINS, BINS), 1.0)
    q[3, 5] = 40.0  # one peak cell
    q /= q.sum()
    fr = Frames(["sp"], ["peak"], [q], nodes, 10)
    hist = np.zeros((1, BINS, BINS), dtype=np.int64)
    hist[0, 10, 2] = 1  # a single node
    hist[0, 12, 12] = nodes - 1  # everything else, far above vmax
    fr.add(hist, 0, 10, 10, np.array([0.5]))
    scale = 2
    img = render.render_frame(fr, 0, scale=scale)
    lay = Layout(BINS, scale, 2)
    y0, x_sp, x_q = lay.panel_y, lay.panel_x(0), lay.panel_x(1)

    def cell(x0: int, row: int, col: int) -> np.ndarray:
        block = img[
            y0 + row * scale : y0 + (row + 1) * scale, x0 + col * scale : x0 + (col + 1) * scale
        ]
        assert len(rgb_set(block)) == 1  # nearest-neighbour: one flat colour per cell
        return block[0, 0]

    vmax = max(q.max(), 1.5 / nodes)
    top, bottom = viridis_rgb(1.0), viridis_rgb(0.0)
    np.testing.assert_array_equal(cell(x_q, 3, 5), viridis_rgb(q.max() / vmax))
    if q.max() >= 1.5 / nodes:
        np.testing.assert_array_equal(cell(x_q, 3, 5), top)  # Q.max() is the top colour
    np.testing.assert_array_equal(cell(x_sp, 0, 0), bottom)  # empty cell
    np.testing.assert_array_equal(cell(x_sp, 10, 2), viridis_rgb(1 / nodes / vmax))  # one node
    np.testing.assert_array_equal(cell(x_sp, 12, 12), top)  # clipped at the top
    np.testing.assert_array_equal(cell(x_q, 0, 0), viridis_rgb(q[0, 0] / vmax))
    if vmax == 1.5 / nodes:  # the floor is what keeps a single node off the bottom colour
        assert not np.array_equal(cell(x_sp, 10, 2), bottom)


def test_to_indices_matches_matplotlib_and_palette():
    x = np.linspace(-0.5, 1.5, 1001)
    idx = render.to_indices(x, 1.0)
    expected = colormaps["viridis"].resampled(render.N_VIRIDIS)(np.clip(x, 0, 1))[:, :3]
    np.testing.assert_array_equal(render.PALETTE[idx], np.round(expected * 255).astype(np.uint8))
    assert render.PALETTE.shape == (256, 3)
    greys = rgb_set(render.PALETTE[render.GREY_BASE : render.FREE_INDEX])
    assert len(greys) == render.N_GREYS
    assert not greys & rgb_set(render.PALETTE[: render.N_VIRIDIS])  # text never looks like data


def test_density_rgb_and_upscale_are_crisp():
    a = np.arange(6.0).reshape(2, 3)
    rgb = render.density_rgb(a, 5.0, scale=3)
    assert rgb.shape == (6, 9, 3)
    np.testing.assert_array_equal(rgb[3:6, 6:9], np.broadcast_to(viridis_rgb(1.0), (3, 3, 3)))
    np.testing.assert_array_equal(render.upscale(np.eye(2), 2), np.kron(np.eye(2), np.ones((2, 2))))


def test_labels():
    # panels use the methods' titles (the classes' `title`, as the figure does)
    assert render.method_label("sp", 0.1123) == render.Label("Split-and-Prune", "", "KL 0.112")
    assert render.method_label("gd", 20.187).name == "gradient descent"
    assert render.method_label("gd", 20.187).right == "KL 20.2"
    assert render.method_label("gd", 35.0).right == "KL 35.0"  # three significant digits
    assert render.method_label("gd", float("nan")).right == "KL -"
    assert render.method_label("new", 1.0).name == "new"  # an unknown name is shown as is
    assert render.target_label() == render.Label("target")
    title = render.title_label("spiral", 10_000, 4000, 10_000, 2, 5, real_kl=0.10291)
    assert title == render.Label(
        "spiral (3/5)", "K = 10,000   step 4,000 / 10,000", "real samples KL 0.103"
    )
    assert render.title_label("spiral", 50).right == ""


def test_sequence_names_target_in_every_frame():
    fr = make_frames(["gd", "sp"], n=4, targets=("gaussian", "uniform"))
    assert render.frame_title(fr, 1).name == "uniform (2/2)"
    assert render.frame_title(fr, 0, real_kl=[0.25, 0.5]).right == "real samples KL 0.250"
    assert render.frame_title(fr, 1, real_kl=[0.25, 0.5]).right == "real samples KL 0.500"
    labels = render.panel_labels(fr, 1, ["gd", "sp", TARGET])
    assert [lab.name for lab in labels] == ["gradient descent", "Split-and-Prune", "target"]
    single = make_frames(["gd"], n=2)
    assert render.frame_title(single, 0).detail == "K = 50   step 250 / 1,000"


def test_panels_select_and_order():
    fr = make_frames(["gd", "sp"])
    full = render.render_frame(fr, 0, scale=2)
    two = render.render_frame(fr, 0, scale=2, panels=["sp", TARGET])
    assert two.shape[0] == full.shape[0] and two.shape[1] < full.shape[1]
    lay3, lay2 = Layout(BINS, 2, 3), Layout(BINS, 2, 2)
    p = BINS * 2
    # the sp panel moved to the first slot, the target stays last
    np.testing.assert_array_equal(
        two[lay2.header_y : lay2.legend_y, lay2.panel_x(0) : lay2.panel_x(0) + p],
        full[lay3.header_y : lay3.legend_y, lay3.panel_x(1) : lay3.panel_x(1) + p],
    )
    np.testing.assert_array_equal(
        two[lay2.header_y : lay2.legend_y, -p - lay2.margin :],
        full[lay3.header_y : lay3.legend_y, -p - lay3.margin :],
    )


@pytest.mark.parametrize(
    ("panels", "message"),
    [
        (["sp", "bogus"], "unknown panel bogus; available: gd,sp,target"),
        (["sp", "sp"], "more than once"),
        ([" "], "no panels given"),
    ],
)
def test_bad_panels(panels, message):
    with pytest.raises(ToylabError, match=message):
        render.resolve_panels(make_frames(["gd", "sp"]), panels)


def test_narrow_panels_never_overlap_text():
    long = Frames(["a-very-long-method-name"], ["gaussian"], [np.full((8, 8), 1 / 64)], 10, 5)
    long.add(np.zeros((1, 8, 8)), 0, 123456, 123456, np.array([12.5]))
    img = render.render_frame(long, 0, scale=1)  # 8 px panels: the label degrades, no error
    assert img.shape == (Layout(8, 1, 2).height, Layout(8, 1, 2).width, 3)


def test_render_final_png(tmp_path):
    fr = make_frames(["gd", "sp"], nodes=200)
    path = tmp_path / "final.png"
    out = render.render_final_png(
        path, fr.hist[-1], fr.methods, fr.target_arrays[0], fr.nodes, fr.kl[-1], "gaussian", scale=4
    )
    assert out == path and sorted(p.name for p in tmp_path.iterdir()) == ["final.png"]
    with Image.open(path) as im:
        lay = Layout(BINS, 4, 3)
        assert im.format == "PNG" and im.size == (lay.width, lay.height)
        rgb = np.asarray(im.convert("RGB"))
    # the method panels are drawn on the same scale as the frames of the GIF
    fr_last = Frames(fr.methods, fr.target_names, fr.target_arrays, fr.nodes, 1)
    fr_last.add(fr.hist[-1], 0, 1, 1, fr.kl[-1])
    frame = render.render_frame(fr_last, 0, scale=4)
    np.testing.assert_array_equal(rgb[lay.panel_y :], frame[lay.panel_y :])
    with pytest.raises(ToylabError):
        render.render_final_png(path, fr.hist[-1], ["gd"], fr.target_arrays[0], 200, [0.1], "x")
