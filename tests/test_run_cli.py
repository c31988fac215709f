"""`toylab run` and `toylab sample` end to end, resume after Ctrl-C, and every bad input."""

import json
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from toylab import load_run
from toylab.cli import main

TINY = [
    "--target",
    "gaussian",
    "--nodes",
    "200",
    "--steps",
    "60",
    "--batch",
    "10",
    "--frames",
    "4",
    "--bins",
    "24",
    "--quiet",
]


def toylab(*args, timeout=120, **kw):
    return subprocess.run(
        [sys.executable, "-m", "toylab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def test_run_writes_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(out)]) == 0
    files = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "metrics.json",
        "kl.csv",
        "nodes.npz",
        "checkpoint.pt",
        "frames.npz",
        "final.png",
        "comparison.gif",
    } <= files
    assert not [f for f in files if f.endswith(".tmp") or f.startswith(".")]
    table = capsys.readouterr().out
    assert "real KL" in table and "sp" in table and "gd" in table
    metrics = json.loads((out / "metrics.json").read_text())
    t = metrics["targets"][0]
    assert t["target"] == "gaussian" and set(t["methods"]) == {"gd", "sp"}
    assert set(t["real_samples"]) >= {"kl", "js", "tv", "hellinger"}
    config = json.loads((out / "config.json").read_text())
    assert (
        config["args"]["nodes"] == 200 and config["threads"] >= 1 and "torch" in config["versions"]
    )
    kl_csv = (out / "kl.csv").read_text().splitlines()
    assert kl_csv[0] == "step,target,method,kl,js,tv,hellinger,wasserstein"
    assert len(kl_csv) == 1 + 4 * 2  # 4 frames x 2 methods
    # W2 is computed at target end: only the last row of each method has it
    assert [bool(line.split(",")[-1]) for line in kl_csv[1:]] == [False] * 6 + [True] * 2
    assert set(t["floors"]) >= {"allocation_floor", "data_floor"} and t["floors"]["samples"] > 0
    record = load_run(out)
    assert record.nodes["sp"].shape == (200, 2) and record.nodes["sp"].dtype == np.float32
    assert f"{t['methods']['sp']['kl']:.4f}" in table


def test_sample_draws_from_the_fitted_nodes(tmp_path):
    out = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(out)]) == 0
    nodes = load_run(out).nodes["sp"]
    assert (
        main(["sample", str(out), "-n", "500", "--out", str(tmp_path / "pts.npy"), "--seed", "1"])
        == 0
    )
    pts = np.load(tmp_path / "pts.npy")
    assert pts.shape == (500, 2)
    node_set = {tuple(p) for p in nodes.tolist()}
    assert all(tuple(p) in node_set for p in pts.astype(np.float32).tolist())
    assert (
        main(["sample", str(out), "-n", "5", "--out", str(tmp_path / "pts.csv"), "--method", "gd"])
        == 0
    )
    lines = (tmp_path / "pts.csv").read_text().splitlines()
    assert lines[0] == "x,y" and len(lines) == 6


def test_ctrl_c_saves_and_resume_is_bit_exact(tmp_path):
    args = [
        "run",
        "--target",
        "gaussian,blur_circles",
        "--nodes",
        "3000",
        "--steps",
        "30000",
        "--batch",
        "10",
        "--frames",
        "6",
        "--bins",
        "32",
        "--quiet",
    ]
    full = tmp_path / "full"
    assert toylab(*args, "--out", str(full)).returncode == 0
    part = tmp_path / "my runs" / "int rupt"  # spaces: the printed resume line must paste
    proc = subprocess.Popen(
        [sys.executable, "-m", "toylab", *args, "--out", str(part)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (part / "config.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert (part / "checkpoint.pt").is_file() and (part / "comparison.gif").is_file()
    partial = json.loads((part / "metrics.json").read_text())
    assert partial["targets"] and partial["targets"][-1]["complete"] is False
    line = next(x for x in err.splitlines() if "toylab run --resume" in x)
    pasted = shlex.split(line[line.index("toylab run --resume") :])
    assert pasted == ["toylab", "run", "--resume", str(part)]  # quoted: pastes as one path
    r = toylab(*pasted[1:], "--quiet")
    assert r.returncode == 0, r.stderr
    a, b = np.load(full / "nodes.npz"), np.load(part / "nodes.npz")
    for m in ("gd", "sp"):
        assert np.array_equal(a[m], b[m])
    ma, mb = (
        json.loads((full / "metrics.json").read_text()),
        json.loads((part / "metrics.json").read_text()),
    )
    for ta, tb in zip(ma["targets"], mb["targets"], strict=True):
        for m in ("gd", "sp"):
            assert ta["methods"][m]["kl"] == tb["methods"][m]["kl"]
    assert (full / "kl.csv").read_text() == (part / "kl.csv").read_text()
    # resuming a finished run changes nothing
    before = (part / "nodes.npz").read_bytes()
    r = toylab("run", "--resume", str(part), "--quiet")
    assert r.returncode == 0 and "already complete" in r.stderr
    assert (part / "nodes.npz").read_bytes() == before


BAD = [
    (["--nodes", "1"], "--nodes"),
    (["--steps", "0"], "--steps"),
    (["--batch", "0"], "--batch"),
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--method", "gd,foo"], "foo"),
    (["--device", "tpu"], "tpu"),
    (["--device", "cuda:7"], "cuda"),
    (["--distance", "l3"], "l3"),
    (["--optimizer", "rmsprop"], "rmsprop"),
    (["--target", "gaussian,nope"], "nope"),
    (["--bins", "4"], "bins"),
    (["--image", "/does/not/exist.png", "--target", "image"], "exist.png"),
]


@pytest.mark.parametrize(("extra", "named"), BAD)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, named):
    out = tmp_path / "out"
    code = main(["run", *TINY, "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert named in err and "Traceback" not in err
    assert not out.exists()


def test_out_rules(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    assert main(["run", *TINY, "--out", str(a_file)]) != 0
    assert a_file.read_text() == "keep me"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("precious")
    assert main(["run", *TINY, "--out", str(other)]) != 0
    assert main(["run", *TINY, "--out", str(other), "--force"]) != 0  # not a run: never replaced
    assert (other / "notes.txt").read_text() == "precious"
    run = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(run)]) == 0
    assert main(["run", *TINY, "--out", str(run)]) != 0  # non-empty without --force
    assert main(["run", *TINY, "--out", str(run), "--force", "--seed", "3"]) == 0
    assert json.loads((run / "config.json").read_text())["args"]["seed"] == 3
    errs = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errs) == 4 and all("Traceback" not in e for e in errs)


def test_resume_bad_inputs(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path / "missing")]) != 0
    (tmp_path / "plain").mkdir()
    assert main(["run", "--resume", str(tmp_path / "plain")]) != 0
    run = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(run)]) == 0
    assert main(["run", "--resume", str(run), "--nodes", "5"]) != 0  # settings come from the run
    err = capsys.readouterr().err
    assert "does not exist" in err and "not a toylab run" in err and "--nodes" in err


def test_help_lists_the_options():
    r = toylab("run", "--help")
    assert r.returncode == 0
    for flag in (
        "--target",
        "--nodes",
        "--method",
        "--distance",
        "--optimizer",
        "--lr",
        "--batch",
        "--steps",
        "--max-splits",
        "--split-ratio",
        "--prune-ratio",
        "--threads",
        "--resume",
        "--qr-data",
        "--text",
        "--image",
        "--invert",
        "--spiral-turns",
        "--spiral-width",
        "--bins",
    ):
        assert flag in r.stdout


def test_console_script_points_at_the_cli(monkeypatch, capsys):
    """`toylab` runs `main`, then takes every live object out of the collector's reach (the
    process exits without collecting numba's garbage); `main` itself leaves the GC alone."""
    import gc
    from importlib.metadata import entry_points

    from toylab.cli import console

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "toylab"]
    assert script.load() is console
    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(capsys.readouterr().out))
    assert main(["densities"]) == 0 and frozen == []
    monkeypatch.setattr(sys, "argv", ["toylab", "densities"])
    assert console() == 0
    assert len(frozen) == 1 and "spiral" in frozen[0]  # after the command had printed
