"""Issue 12 with real processes and real file systems: SIGTERM, kill -9 then --resume, a
second process refused by the lock, Ctrl-C while the modules load, and read-only or full
tmpfs mounts (skipped with a reason where this sandbox cannot mount one)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toylab.cli import main
from toylab.store import rundir

LONG = [
    "run",
    "--target",
    "gaussian",
    "--nodes",
    "100",
    "--method",
    "gd",
    "--steps",
    "2000000",
    "--frames",
    "4",
    "--bins",
    "16",
    "--checkpoint-every",
    "0.2",
    "--quiet",
]


def start(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "toylab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def generation(out: Path) -> tuple[int, int]:
    """(generation, global step) of the checkpoint on disk, (0, 0) before the first."""
    try:
        state = rundir.read_checkpoint(out)
    except Exception:
        return 0, 0
    return state["saved"]["generation"], state["global_step"]


def wait_for_saves(out: Path, after: int, proc, count: int = 2, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while generation(out)[0] < after + count:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "no periodic save arrived"
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_and_kill_9_keep_progress_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    proc = start(*LONG, "--out", str(out))
    wait_for_saves(out, 0, proc, count=3)
    # a second process is refused by the lock, naming the holder
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    assert f"pid {proc.pid}" in capsys.readouterr().err
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGTERM" in err and f"--resume {out}" in err and "Traceback" not in err
    assert (out / "report.html").is_file() and (out / "comparison.gif").is_file()
    gen1, step1 = generation(out)
    assert step1 > 0

    proc = start("run", "--resume", str(out), "--quiet")
    wait_for_saves(out, gen1, proc)
    proc.kill()  # SIGKILL: nothing runs, only the periodic saves remain
    proc.communicate(timeout=60)
    gen2, step2 = generation(out)
    assert gen2 > gen1 and step2 > step1, "kill -9 lost the periodic saves"

    # the messages agree: a new run points at --resume, and --resume accepts the directory
    assert main(["run", "--out", str(out), "--quiet"]) == 2
    assert f"--resume {out}" in capsys.readouterr().err
    proc = start("run", "--resume", str(out), "--quiet")
    wait_for_saves(out, gen2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert generation(out)[1] > step2


def test_ctrl_c_while_the_modules_load_is_one_line(tmp_path):
    """numpy is the first heavy import every command makes (help loads no torch any more)."""
    hook = (
        "import builtins, runpy, sys\n"
        "real = builtins.__import__\n"
        "def imp(name, *a, **k):\n"
        "    if name == 'numpy':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = imp\n"
        "sys.argv = ['toylab', 'densities', '--list']\n"
        "runpy.run_module('toylab', run_name='__main__')\n"
    )
    r = subprocess.run([sys.executable, "-c", hook], capture_output=True, text=True, timeout=120)
    assert r.returncode == 130, r.stderr
    assert "Traceback" not in r.stderr and "interrupted" in r.stderr


# -- read-only and full file systems -------------------------------------------------------
@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


TINY = ["--target", "gaussian", "--nodes", "60", "--steps", "30", "--bins", "16", "--quiet"]


def one_line(capsys, *words):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]


def test_read_only_file_system(tmp_path, monkeypatch, capsys):
    fitted = tmp_path / "fitted"
    assert main(["run", *TINY, "--out", str(fitted)]) == 0
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        capsys.readouterr()
        assert main(["run", *TINY, "--out", str(ro / "run")]) == 1
        one_line(capsys, str(ro / "run"), "Read-only file system")
        assert main(["sample", str(fitted), "-n", "10", "--out", str(ro / "p.csv")]) == 1
        one_line(capsys, "Read-only file system")
        assert main(["gif", str(fitted), "--out", str(ro / "a.gif"), "--quiet"]) == 1
        one_line(capsys, "Read-only file system")
        small = ["--nodes", "40", "--steps", "20", "--quiet"]
        assert main(["explain", *small, "--out", str(ro / "ex")]) == 1
        one_line(capsys, "Read-only file system")
        assert main(["figure", *small, "--bins", "56", "--out", str(ro / "fig")]) == 1
        one_line(capsys, "Read-only file system")
        monkeypatch.chdir(ro)  # the default --out is runs/... under the working directory
        assert main(["run", *TINY]) == 1
        one_line(capsys, "runs", "Read-only file system")


def test_full_file_system(tmp_path, capsys):
    with tmpfs(tmp_path / "full", "size=96k") as full:
        out = full / "run"
        rc = main(["run", *TINY, "--nodes", "3000", "--bins", "64", "--out", str(out)])
        assert rc in (1, 2)
        one_line(capsys, "No space left on device", str(out))
        leftovers = [p.name for p in out.iterdir()] if out.exists() else []
        assert not [n for n in leftovers if ".tmp" in n], leftovers  # no half-written files
        shutil.rmtree(out, ignore_errors=True)
    assert not os.path.ismount(tmp_path / "full")
