"""`toylab sweep`: a real local sweep (process pool), resume, a failing cell, a real Ray head
started as a separate process, and every kind of bad spec."""

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from toylab.cli import main
from toylab.sweep import load_spec, parse_spec, run_sweep
from toylab.sweep.results import RESULTS_CSV, read_results

REPO = Path(__file__).resolve().parent.parent

SPEC = """
[fixed]
target = "gaussian"
steps = 150
bins = 24
frames = 3
method = "gd,sp"

[axes]
nodes = [100, 300]
seed = [0, 1]
"""
CELL_FILES = {"config.json", "metrics.json", "kl.csv", "nodes.npz", "checkpoint.pt", "frames.npz"}


def rows_of(out: Path) -> list[dict[str, str]]:
    return read_results(out / RESULTS_CSV)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """One real sweep on the local executor (2 worker processes), run through the CLI."""
    root = tmp_path_factory.mktemp("sweep")
    spec = root / "spec.toml"
    spec.write_text(SPEC)
    out = root / "out"
    code = main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"])
    return spec, out, code


def test_local_sweep_writes_cells_results_and_summary(local_sweep):
    spec, out, code = local_sweep
    assert code == 0
    cells = sorted(p for p in (out / "cells").iterdir())
    assert len(cells) == 4  # 2 nodes x 2 seeds
    for cell in cells:
        files = {p.name for p in cell.iterdir()}
        assert files >= CELL_FILES
        assert not files & {"comparison.gif", "report.html", "final.png"}  # off by default
        config = json.loads((cell / "config.json").read_text())
        assert config["threads"] == 1 and config["command"][:2] == ["toylab", "run"]
    rows = rows_of(out)
    assert len(rows) == 4 * 2  # one per cell and method
    assert {(r["nodes"], r["seed"], r["method"]) for r in rows} == {
        (k, s, m) for k in ("100", "300") for s in ("0", "1") for m in ("gd", "sp")
    }
    for r in rows:
        assert r["status"] == "done" and r["attempts"] == "1" and r["steps"] == "150"
        assert r["target"] == "gaussian" and r["bins"] == "24"
        for key in ("kl", "js", "tv", "hellinger", "real_kl", "seconds"):
            assert np.isfinite(float(r[key])), key
        assert int(r["stray"]) >= 0
        # every metric is the cell's own metrics.json value
        metrics = json.loads((out / "cells" / r["cell"] / "metrics.json").read_text())
        assert float(r["kl"]) == metrics["targets"][0]["methods"][r["method"]]["kl"]
    # Split-and-Prune beats plain gradient descent in every cell (the paper's point)
    by = {(r["cell"], r["method"]): float(r["kl"]) for r in rows}
    assert all(by[(c.name, "sp")] < by[(c.name, "gd")] for c in cells)
    for name in ("summary.png", "summary.pdf", "summary.md", "results.parquet", "sweep.json"):
        assert (out / name).stat().st_size > 0, name
    assert "KL over seeds" in (out / "summary.md").read_text()
    import pyarrow.parquet as pq

    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == len(rows) and table.column("kl").to_pylist() == [
        float(r["kl"]) for r in rows
    ]


def test_a_cell_is_the_same_as_toylab_run(local_sweep, tmp_path):
    """A cell's numbers are those of `toylab run` with the argv in its config.json."""
    _, out, _ = local_sweep
    cell = sorted((out / "cells").iterdir())[0]
    argv = json.loads((cell / "config.json").read_text())["command"][2:]
    assert main(["run", *argv, "--out", str(tmp_path / "run"), "--quiet", "--threads", "1"]) == 0
    ours = json.loads((cell / "metrics.json").read_text())["targets"][0]["methods"]
    theirs = json.loads((tmp_path / "run" / "metrics.json").read_text())["targets"][0]["methods"]
    assert {m: v["kl"] for m, v in ours.items()} == {m: v["kl"] for m, v in theirs.items()}


def test_second_run_skips_every_cell(local_sweep, capsys):
    spec, out, _ = local_sweep
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*/metrics.json")}
    rows_before = rows_of(out)
    t0 = time.perf_counter()
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 0
    assert main(["sweep", "--resume", str(out), "--quiet"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*/metrics.json")}
    assert after == before  # no cell was run again
    assert rows_of(out) == rows_before
    assert "4/4 cells finished (4 skipped" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 60  # no worker pool was started


def test_a_failing_cell_is_retried_then_recorded_and_the_others_go_on(tmp_path):
    """An image target whose file exists when the spec is checked and is deleted before its
    cell runs: the cell fails twice (retry) for a real reason, the other cells finish."""
    from PIL import Image

    picture = tmp_path / "blob.png"
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(picture)
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        f"""
[fixed]
steps = 80
nodes = 100
bins = 16
frames = 2
method = "sp"
image = "{picture}"
[axes]
target = ["gaussian", "image", "uniform"]
[output]
final_png = true
gif = true
"""
    )
    spec = load_spec(spec_file)  # validated: the image exists now
    picture.unlink()
    out = tmp_path / "out"
    outcome = run_sweep(spec, out, workers=1, quiet=True)
    assert outcome.exit_code == 1 and outcome.done == 2
    (failed_name, error), *_ = outcome.failed.items()
    assert "image" in failed_name and "blob.png" in error and "\n" not in error
    rows = {r["targets"]: r for r in rows_of(out)}
    assert rows["image"]["status"] == "failed" and rows["image"]["attempts"] == "2"
    assert rows["image"]["kl"] == "" and "blob.png" in rows["image"]["error"]
    for name in ("gaussian", "uniform"):
        assert rows[name]["status"] == "done" and rows[name]["attempts"] == "1"
        files = {p.name for p in (out / "cells" / rows[name]["cell"]).iterdir()}
        assert {"final.png", "comparison.gif"} <= files and "report.html" not in files
    assert (out / "cells" / failed_name / "error.txt").read_text().strip() == error
    assert "Failed cells (1)" in (out / "summary.md").read_text()


@pytest.mark.slow  # two worker pools on a loaded machine: ~30-60 s
def test_ctrl_c_keeps_finished_cells_and_a_rerun_finishes_the_rest(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        GOOD_FIXED.replace("steps = 10", "steps = 150000")  # about a second a cell
        + 'method = "sp"\nnodes = 500\nframes = 2\n[axes]\nseed = [0, 1, 2, 3, 4]\n'
    )
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "toylab", "sweep", str(spec), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (out / RESULTS_CSV).is_file() and any(r["status"] == "done" for r in rows_of(out)):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    kept = {r["cell"] for r in rows_of(out) if r["status"] == "done"}
    assert 1 <= len(kept) < 5
    assert "--resume" in err and "Traceback" not in err
    stamps = {c: (out / "cells" / c / "metrics.json").stat().st_mtime_ns for c in kept}
    assert not [p for p in (out / "cells").iterdir() if p.name.startswith(".")]  # no half cell
    done = subprocess.run(cmd + ["--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = rows_of(out)
    assert len(rows) == 5 and all(r["status"] == "done" for r in rows)
    assert {c: (out / "cells" / c / "metrics.json").stat().st_mtime_ns for c in kept} == stamps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A real Ray head in its own process (`ray start --head --block`), stopped afterwards by
    signalling that process, which takes down what it started."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the `ray` command is not installed")
    port = free_port()
    temp = Path("/tmp") / f"toylab-ray-{os.getpid()}"  # short: Ray's socket paths are limited
    # Token authentication (Ray's default for new clusters) with a token of this test only, so
    # neither ~/.ray/auth_token nor another Ray on the machine changes the outcome.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env = dict(os.environ, PYTHONPATH=str(REPO), **auth)  # workers import this checkout
    cmd = [
        str(ray_bin),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--num-cpus=1",
        "--include-dashboard=false",
        f"--dashboard-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
    ]
    log = tmp_path_factory.mktemp("ray") / "ray.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        yield f"127.0.0.1:{port}", auth, proc, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow  # a Ray head takes 20-60 s to start on a loaded 2-core machine
def test_ray_executor_gives_the_same_kls_as_local(local_sweep, ray_head, tmp_path):
    spec, local_out, _ = local_sweep
    address, auth, head, log = ray_head
    out = tmp_path / "ray"
    code = None
    for _ in range(90):  # the head takes a while to come up on a loaded machine
        if head.poll() is not None:  # the head died: say why instead of retrying for minutes
            pytest.fail(f"the Ray head exited ({head.returncode}): {log.read_text()[-1500:]}")
        proc = subprocess.run(
            [sys.executable, "-m", "toylab", "sweep", str(spec), "--out", str(out)]
            + ["--executor", "ray", "--address", address, "--quiet"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(REPO), **auth),
        )
        code = proc.returncode
        starting = ("cannot start or reach a Ray cluster", "no Ray head answers there")
        if code == 0 or not any(s in proc.stderr for s in starting):
            break
        time.sleep(2)
    assert code == 0, proc.stderr[-2000:]
    local = {(r["cell"], r["method"]): r["kl"] for r in rows_of(local_out)}
    ray = {(r["cell"], r["method"]): r["kl"] for r in rows_of(out)}
    assert ray == local  # same cells, bit-identical KLs
    # the run directories came back from the workers as data, whole
    for cell in (out / "cells").iterdir():
        assert {p.name for p in cell.iterdir()} >= CELL_FILES
        with (
            np.load(cell / "nodes.npz") as z,
            np.load(local_out / "cells" / cell.name / "nodes.npz") as w,
        ):
            assert np.array_equal(z["sp"], w["sp"])


# -- bad specs ---------------------------------------------------------------------------
GOOD_FIXED = '[fixed]\ntarget = "gaussian"\nsteps = 10\nbins = 16\n'


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (GOOD_FIXED + "nodez = 100\n", "fixed.nodez"),
        (GOOD_FIXED + "[axes]\nseed = []\n", "axes.seed"),
        (GOOD_FIXED + "[axes]\nnodes = [100, 1]\n", "--nodes must be an integer >= 2"),
        (GOOD_FIXED + "[axes]\nnodes = [100, 2.5]\n", "axes.nodes"),
        (GOOD_FIXED + "[axes]\nmethod = ['gd', 'bogus']\n", "'bogus'"),
        (GOOD_FIXED + "[axes]\ndistance = ['l1', 'l3']\n", "distance"),
        (GOOD_FIXED + "[axes]\nlr = [0.1, 2.0]\n", "--lr 2.0"),
        (GOOD_FIXED + "[axes]\nsteps = [10, 20]\n", "axes.steps: also given as fixed.steps"),
        (GOOD_FIXED + "threads = 2\n", "fixed.threads"),
        (GOOD_FIXED + "out = 'x'\n", "fixed.out"),
        (GOOD_FIXED + "nodes = [1, 2]\n", "fixed.nodes"),
        (GOOD_FIXED + "[axes]\nseed = 3\n", "axes.seed"),
        (GOOD_FIXED + "invert = 1\n", "invert is a flag"),
        (GOOD_FIXED + "[grid]\nseed = [1]\n", "[grid]"),
        (GOOD_FIXED + "[output]\nmovie = true\n", "output.movie"),
        (GOOD_FIXED.replace("gaussian", "image") + "image = '/no/such.png'\n", "/no/such.png"),
        (GOOD_FIXED.replace("gaussian", "nowhere"), "'nowhere'"),
        ("[fixed\nsteps = 1\n", "not valid TOML"),
    ],
)
def test_bad_spec_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, text, names):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toylab sweep: error: ") and "\n" not in err
    assert names in err
    assert not out.exists()


def test_grid_over_the_cap_needs_yes(tmp_path, capsys):
    text = GOOD_FIXED + "[axes]\nseed = [0, 1, 2]\nnodes = [10, 20]\n"
    spec = tmp_path / "big.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--max-cells", "5"]) == 2
    err = capsys.readouterr().err
    assert "6 cells" in err and "over the cap of 5" in err and "--yes" in err
    assert not out.exists()
    assert len(parse_spec(text, max_cells=5, yes=True).cells) == 6


def test_spec_keys_accept_both_spellings_and_cell_names_are_stable(tmp_path):
    a = parse_spec(GOOD_FIXED + "max_splits = 2\n[axes]\nspiral-turns = [1.0, 2.5]\n")
    b = parse_spec(GOOD_FIXED + "max-splits = 2\n[axes]\nspiral_turns = [1.0, 2.5]\n")
    assert [c.config.max_splits for c in a.cells] == [2, 2]
    assert [c.config.target_options for c in a.cells] == [{"turns": 1.0}, {"turns": 2.5}]
    assert [c.name.rsplit("_", 1)[1] for c in a.cells] == [
        c.name.rsplit("_", 1)[1] for c in b.cells
    ]
    assert a.cells[0].name.startswith("spiral-turns-1_") and a.cells[0].name != a.cells[1].name
    # a change of a fixed option gives new cells (never reuses a stale run directory)
    c = parse_spec(
        GOOD_FIXED.replace("steps = 10", "steps = 11") + "[axes]\nspiral-turns = [1.0]\n"
    )
    assert c.cells[0].name != a.cells[0].name


def test_out_that_is_not_a_sweep_is_refused(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(GOOD_FIXED)
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["sweep", str(spec), "--out", str(out)]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main(["sweep", "--resume", str(tmp_path / "nope")]) == 2


def test_unreachable_ray_address_is_one_line_and_nothing_written(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(GOOD_FIXED)
    out = tmp_path / "out"
    args = ["sweep", str(spec), "--out", str(out), "--executor", "ray"]
    assert main([*args, "--address", f"127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err
    assert "no Ray head answers there" in err and "ray start --head" in err
    assert not out.exists()
    assert main(["sweep", str(spec), "--out", str(out), "--address", "127.0.0.1:1"]) == 2
    assert "--address is for --executor ray" in capsys.readouterr().err


def test_help_shows_a_spec_and_ray_instructions(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "[axes]" in text and "ray start --head" in text and "--resume" in text


def test_results_csv_is_plain_csv(local_sweep):
    _, out, _ = local_sweep
    with open(out / RESULTS_CSV, newline="") as fh:
        header = next(csv.reader(fh))
    for col in ("cell", "target", "method", "nodes", "seed", "kl", "js", "tv", "hellinger"):
        assert col in header
    assert {"real_kl", "stray", "seconds", "steps"} <= set(header)
