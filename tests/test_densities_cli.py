"""`toylab densities`: the target list, the contact sheet, and one-line errors for bad input."""

import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import densities
from densities import sheet
from densities.qr import bins_needed, modules
from toylab.cli import main


def sheet_size(tiles, bins):
    """Expected (width, height) of a contact sheet, from the layout rules in densities/sheet.py."""
    side = (
        bins * math.ceil(sheet.MIN_TILE / bins)
        if bins < sheet.MIN_TILE
        else min(bins, sheet.MAX_TILE)
    )
    columns = math.ceil(math.sqrt(tiles))
    rows = math.ceil(tiles / columns)
    return sheet.GAP + columns * (side + sheet.GAP), sheet.GAP + rows * (
        sheet.LABEL + side + sheet.GAP
    )


def test_list_prints_every_target_with_its_parameters(capsys):
    assert main(["densities", "--list"]) == 0
    out = capsys.readouterr().out
    for name in densities.names():
        assert f"\n{name} " in "\n" + out
    for parameter in (
        "turns=1.5",
        "width=0.12",
        "data='https://arxiv.org/abs/2401.00036'",
        "path=None",
        "invert=False",
    ):
        assert parameter in out


def test_contact_sheet_of_every_target_but_image(tmp_path, capsys):
    out = tmp_path / "new" / "sheet.png"  # a missing folder is created
    assert main(["densities", "--out", str(out)]) == 0
    assert "11 targets at 100 bins" in capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.mode == "RGB"
        assert picture.size == sheet_size(len(densities.names()) - 1, 100)
        pixels = np.asarray(picture)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # viridis tiles, not a blank page
    assert [p.name for p in out.parent.iterdir()] == ["sheet.png"]  # no temporary file left


def test_contact_sheet_takes_the_target_options(tmp_path):
    picture = tmp_path / "dot.png"
    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 6)).save(picture)
    out = tmp_path / "sheet.png"
    args = ["densities", "--out", str(out), "--bins", "64", "--image", str(picture), "--invert"]
    args += ["--qr-data", "hi", "--text", "A\\nB", "--spiral-turns", "2", "--spiral-width", "0.05"]
    assert main(args) == 0
    with Image.open(out) as sheet_picture:
        assert sheet_picture.size == sheet_size(len(densities.names()), 64)


def test_contact_sheet_through_python_m_toylab(tmp_path):
    out = tmp_path / "sheet.png"
    done = subprocess.run(
        [sys.executable, "-m", "toylab", "densities", "--out", str(out), "--bins", "56"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--qr-data", "x" * 3000], "at most 2331 bytes"),
        (
            ["--qr-data", "y" * 400],
            f"use --bins {bins_needed(modules('y' * 400).shape[0])} or more",
        ),
        (["--qr-data", ""], "qr data is empty"),
        (["--text", ""], "words text is empty"),
        (["--text", "   "], "words text is empty"),
        (["--image", "missing.png"], "missing.png' does not exist"),
        (["--image", "notes.png"], "notes.png' is not an image"),
        (["--image", "black.png"], "all black"),
        (["--spiral-turns", "0"], "spiral turns must be in (0, 10], got 0"),
        (["--spiral-width", "-0.1"], "spiral width must be in (0, 1], got -0.1"),
        (["--bins", "7"], "bins must be from 8 to 4096, got 7"),
        (["--bins", "4097"], "bins must be from 8 to 4096, got 4097"),
        (["--bins", "32"], "use --bins 56 or more"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("not a picture")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "black.png")
    before = set(tmp_path.iterdir())
    assert main(["densities", "--out", "sheet.png", *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("toylab densities: error: ")
    assert message in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert set(tmp_path.iterdir()) == before  # no sheet, no temporary file


def test_out_pointing_at_a_directory(tmp_path, capsys):
    assert main(["densities", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a directory" in err


def test_bad_input_from_the_console(tmp_path):
    out = tmp_path / "sheet.png"
    done = subprocess.run(
        [sys.executable, "-m", "toylab", "densities", "--out", str(out), "--spiral-turns", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "spiral turns" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
