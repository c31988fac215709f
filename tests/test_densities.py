"""The procedural targets: invariants, exact sampling, a decodable QR code, text and image
orientation, the flow-paper zoo against its own samplers, and every bad input."""

import math

import numpy as np
import pytest
from PIL import Image

import densities
from densities import DensityError
from densities.grid import MAX_BINS, MIN_BINS
from densities.qr import BINS_PER_MODULE, MAX_BYTES, modules

ALL = densities.names()


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    """A small non-square RGB PNG with a bright blob left of centre."""
    path = tmp_path_factory.mktemp("img") / "blob.png"
    yy, xx = np.mgrid[0:30, 0:40]
    blob = np.exp(-((xx - 12.0) ** 2 + (yy - 15.0) ** 2) / 40.0)
    rgb = np.stack([blob * 255, blob * 200, blob * 100], axis=2).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(path)
    return path


def build(name, bins, picture):
    params = {"path": str(picture)} if name == "image" else {}
    return densities.get(name, bins=bins, **params)


def test_names_in_order():
    assert ALL[:7] == ["uniform", "gaussian", "blur_circles", "spiral", "qr", "words", "image"]
    assert set(ALL[7:]) == {"eight_gaussians", "checkerboard", "pinwheel", "two_moons", "rings"}


@pytest.mark.parametrize("bins", [8, 100, 257])
@pytest.mark.parametrize("name", ALL)
def test_every_target_is_a_normalised_positive_deterministic_grid(name, bins, picture):
    if name == "qr" and bins < 56:  # no QR code is readable on so coarse a grid
        with pytest.raises(DensityError, match="--bins 56"):
            build(name, bins, picture)
        return
    d = build(name, bins, picture)
    q = d.array
    assert q.shape == (bins, bins) and q.dtype == np.float64
    assert np.isfinite(q).all() and (q > 0).all()
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    assert q.max() > 1.5 / q.size or name == "uniform"  # the shape has structure
    assert np.array_equal(q, build(name, bins, picture).array)


def test_bins_limits():
    for bins in (MIN_BINS - 1, MAX_BINS + 1):
        with pytest.raises(DensityError, match=f"8 to 4096, got {bins}"):
            densities.get("gaussian", bins=bins)
    with pytest.raises(DensityError, match="integer"):
        densities.get("gaussian", bins=100.0)


# ---------------------------------------------------------------- sampling


def tv_bound(q, n, delta=1e-9):
    """A bound that the histogram's total variation to q exceeds with probability < delta.

    TV = 0.5 sum_i |h_i - q_i| with h the empirical cell frequencies of n i.i.d. samples.
    Mean: E|h_i - q_i| <= sqrt(Var h_i) = sqrt(q_i (1 - q_i) / n) by Jensen, so
    E[TV] <= 0.5 sum_i sqrt(q_i (1 - q_i) / n). Spread: moving one sample to another cell
    changes two h_i by 1/n, so TV changes by at most 1/n; McDiarmid's inequality gives
    P(TV - E[TV] >= t) <= exp(-2 t^2 / (n (1/n)^2)) = exp(-2 n t^2). With
    t = sqrt(ln(1 / delta) / (2 n)) the bound fails with probability below delta = 1e-9.
    """
    mean = 0.5 * np.sqrt(q * (1 - q) / n).sum()
    return mean + math.sqrt(math.log(1 / delta) / (2 * n))


@pytest.mark.parametrize("name", ["gaussian", "blur_circles", "spiral", "qr", "words", "pinwheel"])
def test_samples_match_the_density(name):
    d = densities.get(name, bins=100)
    n = 10**6
    points = d.sample(n, np.random.default_rng(1234))
    assert points.shape == (n, 2) and points.dtype == np.float64
    assert (np.abs(points) <= 1).all()
    h = d.histogram(points) / n
    tv = 0.5 * np.abs(h - d.array).sum()
    bound = tv_bound(d.array, n)
    assert bound < 0.05  # the test can tell a wrong sampler from a right one
    assert tv < bound
    # The picture shifted by 0.2 is far outside the bound: the test has teeth.
    assert 0.5 * np.abs(np.roll(h, 10, axis=1) - d.array).sum() > 3 * bound


def test_small_samples_are_exact_too():
    """The path for n < 2 cells (sorted uniforms) against the multinomial path's bound."""
    d = densities.get("spiral", bins=256)
    n = 60_000
    points = d.sample(n, np.random.default_rng(7))
    h = d.histogram(points) / n
    assert 0.5 * np.abs(h - d.array).sum() < tv_bound(d.array, n)
    assert d.sample(0, np.random.default_rng(0)).shape == (0, 2)
    a = d.sample(1000, np.random.default_rng(5))
    assert np.array_equal(a, d.sample(1000, np.random.default_rng(5)))
    with pytest.raises(DensityError):
        d.sample(-1, np.random.default_rng(0))


def test_image_orientation_top_left(tmp_path):
    """Mass only in the top-left quarter (rows 0.., columns 0..) gives x < 0 and y > 0."""
    array = np.zeros((20, 20))
    array[:10, :10] = 1.0
    np.save(tmp_path / "tl.npy", array)
    Image.fromarray((array * 255).astype(np.uint8), "L").save(tmp_path / "tl.png")
    for file in ("tl.npy", "tl.png"):
        d = densities.get("image", bins=64, path=str(tmp_path / file))
        points = d.sample(20_000, np.random.default_rng(0))
        assert (points[:, 0] < 0).all() and (points[:, 1] > 0).all()
        assert d.array[:32, :32].sum() == pytest.approx(1.0, abs=1e-12)


def test_image_letterbox_invert_and_alpha(tmp_path):
    wide = np.full((10, 40), 255, dtype=np.uint8)  # white, 4:1
    Image.fromarray(wide, "L").save(tmp_path / "wide.png")
    d = densities.get("image", bins=40, path=tmp_path / "wide.png")
    rows = d.array.sum(axis=1)
    assert rows[:15].max() < 1e-15 and rows[25:].max() < 1e-15  # letterbox bands: no mass
    assert np.allclose(d.array[15:25], 1 / 400)
    # Inverted: the dark left half of a picture carries the mass.
    half = np.zeros((16, 16), dtype=np.uint8)
    half[:, 8:] = 255
    Image.fromarray(half, "L").save(tmp_path / "half.png")
    inv = densities.get("image", bins=16, path=tmp_path / "half.png", invert=True).array
    assert inv[:, :8].sum() == pytest.approx(1.0, abs=1e-12)
    # Transparent pixels carry no mass either way.
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:4, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    for invert in (False, True):
        if invert:
            rgba[..., :3] = 0
            Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
        top = densities.get("image", bins=8, path=tmp_path / "alpha.png", invert=invert).array
        assert top[:4].sum() == pytest.approx(1.0, abs=1e-12)


def test_words_ink_where_the_text_is():
    i = densities.get("words", bins=60, text="I").array
    centre, edges = i[:, 20:40].sum(), i[:, :10].sum() + i[:, 50:].sum()
    assert centre > 0.99 and edges < 1e-12
    ab = densities.get("words", bins=60, text="A\nB").array
    assert ab[:25].sum() > 0.35 and ab[35:].sum() > 0.35 and ab[28:32].sum() < 0.01
    # "L" is upright and not mirrored: its stem is on the left, its foot at the bottom.
    ell = densities.get("words", bins=60, text="L").array
    assert ell[:, :30].sum() > 2 * ell[:, 30:].sum()
    assert ell[30:, 30:].sum() > 5 * ell[:30, 30:].sum()
    # The default phrase fills most of the square.
    ink = densities.get("words", bins=100).array > 1e-6
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    assert cols[-1] - cols[0] >= 85 and rows[-1] - rows[0] >= 70


def stroke_widths(line):
    """Lengths of the runs of inked cells along a line of cells."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (line > 1e-9).astype(int), [0]])))
    return np.diff(edges.reshape(-1, 2)).ravel()


def test_spiral_is_point_symmetric_and_tapers():
    q = densities.get("spiral", bins=200).array
    assert np.allclose(q, q[::-1, ::-1], atol=1e-9)
    x, y = np.meshgrid(np.linspace(-1, 1, 200), np.linspace(1, -1, 200))
    r = np.hypot(x, y)
    assert q[r < 0.2].max() > 2.5 * q[r > 0.85].max()  # mass per area fades toward the tips
    # Crossings of the ray from the centre upward; the first runs along the arm's start.
    up = stroke_widths(q[:100, 100][::-1])[1:]
    assert len(up) == 3 and list(up) == sorted(up, reverse=True) and up[0] >= 1.5 * up[-1]


def test_blur_circles_blur_more_per_quadrant():
    q = densities.get("blur_circles", bins=200).array
    peaks = [q[:100, :100].max(), q[:100, 100:].max(), q[100:, :100].max(), q[100:, 100:].max()]
    assert peaks[0] >= peaks[1] > peaks[2] > peaks[3]
    sharp = [
        np.abs(np.diff(quad, axis=1)).max()
        for quad in (q[:100, :100], q[:100, 100:], q[100:, :100], q[100:, 100:])
    ]
    assert sharp[0] > sharp[1] > sharp[2] > sharp[3]  # steepest edge softens quadrant by quadrant


# ---------------------------------------------------------------- qr


def decode(q, smooth=True):
    """Read the density as a picture, dark where the mass exceeds half its maximum.

    smooth: bilinear upsampling first, which keeps module edges where the area average put
    them (the reading behind the rule in densities/qr.py); else plain np.kron blocks, whose
    staircase edges confuse the decoder's grid fit now and then at 1.5 to 2 bins per module.
    """
    zxingcpp = pytest.importorskip("zxingcpp")
    scale = 6
    if smooth:
        side = q.shape[0] * scale
        up = Image.fromarray((q / q.max()).astype(np.float32), "F").resize(
            (side, side), Image.Resampling.BILINEAR
        )
        ink = np.asarray(up) > 0.5
    else:
        ink = np.kron(q > 0.5 * q.max(), np.ones((scale, scale), dtype=bool))
    picture = np.where(ink, 0, 255).astype(np.uint8)  # mass is dark, no mass is white
    return [r.text for r in zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)]


@pytest.mark.parametrize(
    "payload",
    [
        "DDN",
        "https://arxiv.org/abs/2401.00036",
        "https://example.org/discrete/distribution/networks?nodes=10000",  # ~60 characters
        "Grüße aus Zürich: Diskrete Verteilungsnetze ✓",
        "A" * 100 + "!",  # the rule of thumb: ~100 characters at 100 bins
    ],
)
def test_qr_decodes_to_its_payload(payload):
    q = densities.get("qr", bins=100, data=payload).array
    assert decode(q) == [payload]
    assert decode(q, smooth=False) == [payload]


def test_qr_has_a_quiet_zone_and_dark_modules():
    q = densities.get("qr", bins=100).array  # version 3: 29 modules + 2 x 4 quiet = 37
    quiet = math.floor(4 * 100 / 37)
    border = np.ones_like(q, dtype=bool)
    border[quiet:-quiet, quiet:-quiet] = False
    assert q[border].max() < 1e-15
    assert q[quiet + 1, quiet + 1] > 1e-4  # top-left finder pattern is dark, so it has mass


def test_qr_errors_name_the_limits():
    with pytest.raises(DensityError, match=f"at most {MAX_BYTES['M']} bytes.*--bins 278"):
        densities.get("qr", data="x" * 3000)
    size = modules("y" * 400).shape[0]
    need = math.ceil(BINS_PER_MODULE * size)
    with pytest.raises(DensityError, match=f"{size} modules.*--bins {need} or more"):
        densities.get("qr", bins=100, data="y" * 400)
    assert decode(densities.get("qr", bins=need, data="y" * 400).array) == ["y" * 400]
    for bad, message in [("", "empty"), (12, "string")]:
        with pytest.raises(DensityError, match=message):
            densities.get("qr", data=bad)
    with pytest.raises(DensityError, match="L, M, Q, H"):
        densities.get("qr", error="X")


# ---------------------------------------------------------------- the zoo


def ffjord_samples(name, n, rng):
    """Samples from FFJORD's toy samplers, mapped into the square as densities/zoo.py documents."""
    if name == "pinwheel":
        f = rng.normal(size=(n, 2)) * [0.3, 0.1]
        f[:, 0] += 1
        a = rng.integers(0, 5, n) * 2 * np.pi / 5 + 0.25 * np.exp(f[:, 0])
        x = f[:, 0] * np.cos(a) + f[:, 1] * np.sin(a)
        y = -f[:, 0] * np.sin(a) + f[:, 1] * np.cos(a)
        return 2 * np.stack([x, y], 1) / 4
    if name == "two_moons":
        t, upper = rng.random(n) * np.pi, rng.random(n) < 0.5
        p = np.stack(
            [
                np.where(upper, np.cos(t), 1 - np.cos(t)),
                np.where(upper, np.sin(t), 0.5 - np.sin(t)),
            ],
            1,
        )
        return (p + rng.normal(size=(n, 2)) * 0.1 - [0.5, 0.25]) * 0.55
    if name == "checkerboard":
        x1 = rng.random(n) * 4 - 2
        x2 = rng.random(n) - rng.integers(0, 2, n) * 2 + np.floor(x1) % 2
        return np.stack([x1, x2], 1) / 2
    raise KeyError(name)


@pytest.mark.parametrize("name", ["pinwheel", "two_moons", "checkerboard"])
def test_zoo_matches_its_sampler(name):
    n, bins = 10**6, 40
    points = ffjord_samples(name, n, np.random.default_rng(3))
    points = points[(np.abs(points) < 1).all(axis=1)]
    q = densities.get(name, bins=bins).array
    h = densities.histogram(points, bins) / len(points)
    assert 0.5 * np.abs(h - q).sum() < tv_bound(q, len(points))


# ---------------------------------------------------------------- bad input


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(DensityError, match="unknown target 'nope'; choose from: uniform, gaussian"):
        densities.get("nope")
    with pytest.raises(DensityError, match="'nope'.*blur_circles, spiral, qr, words, image"):
        densities.parse_names("gaussian,nope")
    assert densities.parse_names("gaussian, spiral") == ["gaussian", "spiral"]
    with pytest.raises(DensityError, match="takes no parameter 'turns'"):
        densities.get("qr", turns=2)


def test_image_errors_name_the_file(tmp_path):
    with pytest.raises(DensityError, match="needs --image PATH"):
        densities.get("image")
    with pytest.raises(DensityError, match="missing.png.*does not exist"):
        densities.get("image", path=str(tmp_path / "missing.png"))
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(DensityError, match="notes.png.*not an image"):
        densities.get("image", path=str(tmp_path / "notes.png"))
    (tmp_path / "bad.npy").write_text("nope")
    with pytest.raises(DensityError, match="bad.npy"):
        densities.get("image", path=str(tmp_path / "bad.npy"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(DensityError, match="black.png.*all black"):
        densities.get("image", path=str(tmp_path / "black.png"))
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "white.png")
    with pytest.raises(DensityError, match="white.png.*all white"):
        densities.get("image", path=str(tmp_path / "white.png"), invert=True)
    np.save(tmp_path / "neg.npy", -np.ones((4, 4)))
    with pytest.raises(DensityError, match="neg.npy.*negative"):
        densities.get("image", path=str(tmp_path / "neg.npy"))
    with pytest.raises(DensityError, match="is not a file"):
        densities.get("image", path=str(tmp_path))


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("words", {"text": ""}, "empty"),
        ("words", {"text": " \n\t"}, "empty"),
        ("words", {"text": 42}, "must be a string, got 42"),
        ("words", {"text": "héllo"}, "cannot draw: 'é'"),
        ("spiral", {"turns": 0}, r"turns must be in \(0, 10\], got 0"),
        ("spiral", {"turns": -1.5}, "got -1.5"),
        ("spiral", {"turns": "two"}, "turns must be a number"),
        ("spiral", {"width": 0.0}, r"width must be in \(0, 1\], got 0"),
        ("spiral", {"width": float("nan")}, "got nan"),
        ("spiral", {"width": 3}, "got 3"),
        ("gaussian", {"scale": -1}, "scale must be in"),
        ("image", {"path": 5}, "must be a file name"),
    ],
)
def test_bad_parameters(name, params, message):
    with pytest.raises(DensityError, match=message):
        densities.get(name, bins=32, **params)
