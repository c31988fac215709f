"""What a new user trips on: target-name suggestions, progress in a log, `toylab gif` keeping
the run's own GIF."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import densities
from densities import DensityError
from toylab.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- target names


@pytest.mark.parametrize(
    ("given", "suggested"),
    [("moons", "two_moons"), ("spirl", "spiral"), ("checker", "checkerboard"), ("qr-code", "qr")],
)
def test_unknown_target_suggests_the_closest_name(given, suggested):
    with pytest.raises(DensityError) as err:
        densities.get(given)
    text = str(err.value)
    assert f"unknown target {given!r} (did you mean {suggested}?)" in text
    assert text.endswith("choose from: " + ", ".join(densities.names()))


def test_no_suggestion_for_nonsense():
    with pytest.raises(DensityError) as err:
        densities.parse_names("spiral,xyzzy")
    assert "did you mean" not in str(err.value) and "'xyzzy'" in str(err.value)


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("Spiral", "spiral"),
        ("two-moons", "two_moons"),
        ("Two Moons", "two_moons"),
        ("Blur-Circles", "blur_circles"),
    ],
)
def test_case_and_hyphen_variants_name_one_target(given, name):
    assert densities.parse_names(f"gaussian,{given}") == ["gaussian", name]
    assert densities.get(given, bins=16).name == name


def test_cli_unknown_target_is_one_line_with_the_suggestion(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["run", "--target", "moons", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean two_moons?" in err and "Traceback" not in err
    assert not out.exists()


# --------------------------------------------------------------------------- progress in a log


def run_cli(
    args: list[str], env_extra: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "toylab", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    return proc, time.perf_counter() - start


def test_progress_in_a_pipe_is_plain_lines_every_few_seconds(tmp_path):
    interval = 0.3
    steps = 40_000
    proc, seconds = run_cli(
        [
            "run",
            "--target",
            "gaussian",
            "--nodes",
            "50",
            "--steps",
            str(steps),
            "--frames",
            "2",
            "--bins",
            "16",
            "--out",
            str(tmp_path / "run"),
        ],
        {"TOYLAB_PROGRESS_SECONDS": str(interval)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr  # no carriage-return flood in a log
    bars = [ln for ln in proc.stderr.splitlines() if ln.startswith("gaussian:")]
    # a first line, a last line at 100%, and at most one line per interval in between
    assert bars[-1].startswith("gaussian: 100%") and f"{steps}/{steps}" in bars[-1]
    assert 2 <= len(bars) <= seconds / interval + 3
    assert all(re.search(r"\d+/40000", ln) for ln in bars)
    assert "sp KL" in bars[-1]  # the live KL is still there


def test_progress_default_interval_keeps_a_short_run_to_a_few_lines(tmp_path):
    proc, _ = run_cli(
        [
            "run",
            "--target",
            "gaussian",
            "--nodes",
            "50",
            "--steps",
            "200",
            "--frames",
            "2",
            "--bins",
            "16",
            "--out",
            str(tmp_path / "run"),
        ],
        {},
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    bars = [ln for ln in proc.stderr.splitlines() if ln.startswith("gaussian:")]
    assert 1 <= len(bars) <= 3


# --------------------------------------------------------------------------- toylab gif


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("polish") / "run"
    args = ["run", "--target", "spiral", "--nodes", "200", "--steps", "200", "--frames", "3"]
    assert cli_main([*args, "--bins", "24", "--out", str(out), "--quiet"]) == 0
    return out


def test_gif_keeps_the_runs_own_gif(small_run, capsys):
    own = small_run / "comparison.gif"
    before = own.read_bytes()
    assert cli_main(["gif", str(small_run), "--quiet", "--scale", "2"]) == 0
    assert cli_main(["gif", str(small_run), "--quiet", "--scale", "2"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(small_run / "comparison-2.gif"), str(small_run / "comparison-3.gif")]
    assert own.read_bytes() == before
    # --force replaces the run's own GIF (here with a smaller scale, so it differs)
    assert cli_main(["gif", str(small_run), "--quiet", "--scale", "1", "--force"]) == 0
    assert capsys.readouterr().out.split() == [str(own)]
    assert own.read_bytes() != before
    for extra in ("comparison-2.gif", "comparison-3.gif"):
        (small_run / extra).unlink()
