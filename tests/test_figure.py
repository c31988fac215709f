"""`toylab figure` on a tiny config: the grid, the PDF and both tables."""

import csv

import numpy as np
import pytest
from PIL import Image

from toylab.cli import main
from toylab.viz.figure import FIGURE_TARGETS, PAPER_KL


def test_figure_writes_png_pdf_and_tables(tmp_path, capsys):
    out = tmp_path / "fig"
    code = main(
        [
            "figure",
            "--nodes",
            "120",
            "--steps",
            "30",
            "--seeds",
            "0,1",
            "--bins",
            "64",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    png = Image.open(out / "figure.png")
    assert png.width > 600 and png.height > 600
    assert (out / "figure.pdf").read_bytes().startswith(b"%PDF")
    rows = list(csv.DictReader((out / "figure.csv").open()))
    assert {r["target"] for r in rows} == set(FIGURE_TARGETS)
    assert {r["column"] for r in rows} == {"gd", "sp", "real", "data_floor", "allocation_floor"}
    floors = {
        (r["target"], r["column"]): float(r["kl_mean"]) for r in rows if "floor" in r["column"]
    }
    assert all(v > 0 for v in floors.values())
    rows = [r for r in rows if "floor" not in r["column"]]
    for r in rows:
        assert r["seeds"] == "2" and float(r["kl_mean"]) > 0 and float(r["kl_sd"]) >= 0
        assert float(r["paper_kl"]) == PAPER_KL[r["target"]][r["column"]]
    md = (out / "figure.md").read_text()
    assert "(20.19)" in md and "±" in md and "procedural" in md
    assert "| spiral |" in md and capsys.readouterr().out.strip().startswith("# 2D density figure")


def test_figure_with_paper_images(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("sprial.png", "QR_code.png", "words.png"):
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(images / name)
    out = tmp_path / "fig"
    code = main(
        [
            "figure",
            "--nodes",
            "50",
            "--steps",
            "5",
            "--method",
            "sp",
            "--bins",
            "64",
            "--paper-images",
            str(images),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert "paper's own images" in (out / "figure.md").read_text()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--seeds", "0,x"], "--seeds"),
        (["--seeds", "1,1"], "twice"),
        (["--nodes", "1"], "--nodes"),
        (["--method", "nope"], "nope"),
        (["--paper-images", "/nowhere"], "/nowhere"),
    ],
)
def test_figure_bad_input(tmp_path, capsys, args, named):
    out = tmp_path / "fig"
    assert (
        main(["figure", "--steps", "2", "--bins", "64", "--out", str(out), "--quiet", *args]) != 0
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err and "Traceback" not in err
    assert not out.exists()


def test_an_interrupted_figure_keeps_the_finished_fits(tmp_path):
    from toylab.config import RunConfig
    from toylab.viz import figure

    config = RunConfig(nodes=60, steps=20, bins=64, frames=0).validate()
    targets = figure.build_figure_targets(64, {}, None)
    steps_seen = []

    def stop_in_third_fit():
        steps_seen.append(1)
        return len(steps_seen) > 2 * 20 + 5  # two fits done, then Ctrl-C

    result = figure.compute(config, [0], targets, quiet=True, should_stop=stop_in_third_fit)
    assert not result.complete
    assert [t.name for t in result.targets] == ["spiral", "blur_circles"]
    figure.draw(result, tmp_path / "f.png", tmp_path / "f.pdf")
    figure.write_tables(result, tmp_path / "f.csv", tmp_path / "f.md", False)
    assert "Interrupted" in (tmp_path / "f.md").read_text()
    assert "qr" not in (tmp_path / "f.csv").read_text()
