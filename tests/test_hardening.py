"""Issue 12, in process: one consistent saved state, the run-directory lock, the checkpoint as
the truth at resume, checksums, --force rules, repaired outputs, size guards and the inputs
that used to end in tracebacks. Each test fails on the code before the fix."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import toylab
from toylab import budget, transport
from toylab.cli import main
from toylab.store import frames as frames_mod
from toylab.store import rundir

TINY = [
    "--target",
    "gaussian",
    "--nodes",
    "60",
    "--steps",
    "40",
    "--frames",
    "5",
    "--bins",
    "16",
    "--quiet",
]


def run(tmp_path, name="run", *extra):
    out = tmp_path / name
    return main(["run", *TINY, *extra, "--out", str(out)]), out


def one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: what every repaired or resumed run must equal."""
    tmp = tmp_path_factory.mktemp("ref")
    rc, out = run(tmp)
    assert rc == 0
    return out


def same_results(a: Path, b: Path) -> None:
    na, nb = toylab.load_run(a).nodes, toylab.load_run(b).nodes
    assert sorted(na) == sorted(nb)
    for k in na:
        assert np.array_equal(na[k], nb[k]), k
    fa, fb = frames_mod.Frames.load(a), frames_mod.Frames.load(b)
    for key, value in fa.arrays().items():
        assert np.array_equal(value, fb.arrays()[key]), key
    assert (a / "kl.csv").read_text() == (b / "kl.csv").read_text()


# -- 1. one consistent state -----------------------------------------------------------------
def test_second_interrupt_between_frames_and_checkpoint_is_repaired(
    tmp_path, monkeypatch, capsys, reference
):
    real = rundir.write_checkpoint
    calls = {"n": 0}

    def interrupted(path, state):
        calls["n"] += 1
        if calls["n"] == 2:  # the final save: frames.npz is written, the checkpoint is not
            raise KeyboardInterrupt
        real(path, state)

    monkeypatch.setattr(rundir, "write_checkpoint", interrupted)
    rc, out = run(tmp_path, "run", "--checkpoint-every", "0")
    assert rc == 130
    monkeypatch.setattr(rundir, "write_checkpoint", real)
    newer = frames_mod.Frames.load(out)
    assert len(newer) == 5 and rundir.read_checkpoint(out)["saved"]["frames"] == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert "repaired: dropped 5 frame(s)" in capsys.readouterr().err
    same_results(out, reference)


def test_frames_older_than_the_checkpoint_are_refused(tmp_path, monkeypatch, capsys):
    saved = tmp_path / "first-frames.npz"
    real = frames_mod.Frames.save

    def keep_first(self, path, stamp=None, **kw):
        out = real(self, path, stamp, **kw)
        if not saved.exists():
            shutil.copy(path, saved)
        return out

    monkeypatch.setattr(frames_mod.Frames, "save", keep_first)
    rc, out = run(tmp_path)
    assert rc == 0
    shutil.copy(saved, out / "frames.npz")  # frames of generation 1 beside checkpoint 2
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    one_line_error(capsys, "older than the checkpoint")


def test_frames_of_another_run_are_refused(tmp_path, capsys):
    _, a = run(tmp_path, "a")
    _, b = run(tmp_path, "b")
    shutil.copy(a / "frames.npz", b / "frames.npz")
    capsys.readouterr()
    assert main(["run", "--resume", str(b), "--quiet"]) == 2
    one_line_error(capsys, "belongs to another run")


# -- 7. a complete run's stale or missing outputs are rebuilt --------------------------------
def test_interrupt_during_the_report_is_repaired_by_resume(tmp_path, monkeypatch, capsys):
    import toylab.viz.report as report

    def broken(out, run, extra=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", broken)
    rc, out = run(tmp_path)
    assert rc == 130 and not (out / "report.html").exists()
    monkeypatch.undo()
    (out / "comparison.gif").unlink()
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "rebuilding" in err and "report.html" in err and "comparison.gif" in err
    assert (out / "report.html").is_file() and (out / "comparison.gif").is_file()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert "already complete" in capsys.readouterr().err


# -- 2. the lock -----------------------------------------------------------------------------
def test_a_second_run_into_a_locked_directory_names_the_holder(tmp_path, capsys):
    _, out = run(tmp_path)
    before = (out / "config.json").read_text()
    with rundir.RunLock(out):
        capsys.readouterr()
        assert main(["run", *TINY, "--seed", "2", "--out", str(out), "--force"]) == 2
        one_line_error(capsys, "in use by another toylab process", f"pid {os.getpid()}")
        assert main(["run", "--resume", str(out), "--quiet"]) == 2
        one_line_error(capsys, "in use")
    assert (out / "config.json").read_text() == before
    assert not (out / rundir.LOCK_FILE).exists()  # released and removed


# -- 3. the checkpoint's config is the truth -------------------------------------------------
@pytest.mark.parametrize(
    "key, value", [("targets", ["spiral"]), ("steps", 80), ("bins", 32), ("methods", ["gd"])]
)
def test_an_edited_config_json_is_refused_naming_the_key(tmp_path, capsys, key, value):
    _, out = run(tmp_path)
    config = json.loads((out / "config.json").read_text())
    config["args"][key] = value
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    one_line_error(capsys, f"says {key} = ")


# -- 4. checksums and structure --------------------------------------------------------------
def test_a_flipped_byte_in_the_checkpoint_is_detected(tmp_path, capsys):
    _, out = run(tmp_path)
    data = bytearray((out / "checkpoint.pt").read_bytes())
    data[len(data) // 2] ^= 0x10
    (out / "checkpoint.pt").write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    one_line_error(capsys, "damaged")


@pytest.mark.parametrize("kind", ["random", "torch_dict", "wrong_state"])
def test_foreign_checkpoints_are_one_line(tmp_path, capsys, kind):
    _, out = run(tmp_path)
    path = out / "checkpoint.pt"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif kind == "torch_dict":
        torch.save({"weights": torch.zeros(3)}, path)
    else:  # valid checksum, right keys, wrong content
        state = rundir.read_checkpoint(out)
        state["methods"] = {"gd": {"nonsense": 1}}
        path.write_bytes(rundir.checkpoint_bytes(state))
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    one_line_error(capsys, "checkpoint.pt")


# -- 6. --force ------------------------------------------------------------------------------
def test_force_never_replaces_the_working_directory(tmp_path, monkeypatch, capsys):
    _, out = run(tmp_path)
    monkeypatch.chdir(out)
    assert main(["run", *TINY, "--out", ".", "--force"]) == 2
    one_line_error(capsys, "working directory")
    monkeypatch.chdir(out / "..")
    (out / "sub").mkdir()
    monkeypatch.chdir(out / "sub")
    assert main(["run", *TINY, "--out", "..", "--force"]) == 2
    one_line_error(capsys, "parent of the working directory")
    assert (out / "checkpoint.pt").is_file()


def test_force_keeps_the_users_files(tmp_path, capsys):
    _, out = run(tmp_path)
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["run", *TINY, "--out", str(out), "--force"]) == 2
    one_line_error(capsys, "notes.txt")
    assert (out / "notes.txt").read_text() == "mine" and (out / "checkpoint.pt").is_file()
    (out / "notes.txt").unlink()
    (out / ".checkpoint.pt.x1y2.tmp.pt").write_bytes(b"left by kill -9")  # ours: removed
    assert main(["run", *TINY, "--out", str(out), "--force"]) == 0
    assert not (out / ".checkpoint.pt.x1y2.tmp.pt").exists()


def test_force_through_a_symlink_replaces_the_run_and_keeps_the_link(tmp_path, capsys):
    _, real = run(tmp_path, "real")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    (real / "final.png").unlink()
    (real / "final.png").symlink_to(tmp_path / "outside.png")  # a link inside: removed only
    (tmp_path / "outside.png").write_bytes(b"not ours")
    assert main(["run", *TINY, "--seed", "5", "--out", str(link), "--force"]) == 0
    assert link.is_symlink() and (real / "report.html").is_file()
    assert json.loads((real / "config.json").read_text())["seed"] == 5
    assert (tmp_path / "outside.png").read_bytes() == b"not ours"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    capsys.readouterr()
    assert main(["run", *TINY, "--out", str(dangling), "--force"]) == 2
    one_line_error(capsys, "symbolic link to nothing")


# -- 8. a diverging fit ----------------------------------------------------------------------
@pytest.mark.parametrize("index", ["brute", "kdtree"])
def test_a_diverging_fit_stops_with_one_line(tmp_path, capsys, index):
    args = ["--optimizer", "adam", "--lr", "1e19", "--method", "gd", "--index", index]
    rc, _ = run(tmp_path, "run", *args)
    assert rc == 2
    one_line_error(capsys, "method gd diverged", "--lr")


# -- 9. size guards --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, named",
    [
        (["--nodes", str(10**8)], "--nodes 100000000"),
        (["--nodes", str(2 * 10**6)], "W2 metric"),  # the nodes fit, the helpers' W2 does not
        (["--bins", "1024", "--steps", "500", "--frames", "96", "--scale", "3"], "GIF's 96 frames"),
        (["--batch", str(10**9)], "--batch 1000000000"),
        (["--bins", "4096", "--frames", "96"], "--bins 4096 with --frames 96"),
        (["--threads", "100000"], "--threads 100000"),
        (["--bins", "100", "--scale", "300"], "--scale 300"),
    ],
)
def test_run_size_guards(tmp_path, monkeypatch, capsys, extra, named):
    monkeypatch.setattr(budget, "available_bytes", lambda: 2 * 10**9)  # a 2 GB machine
    out = tmp_path / "run"
    assert main(["run", *TINY, *extra, "--out", str(out)]) == 2
    one_line_error(capsys, named)
    assert not out.exists()


def test_gif_and_sample_size_guards(tmp_path, monkeypatch, capsys, reference):
    monkeypatch.setattr(budget, "available_bytes", lambda: 2 * 10**9)
    assert main(["gif", str(reference), "--scale", "500", "--out", str(tmp_path / "a.gif")]) == 2
    one_line_error(capsys, "--scale 500", "GB")  # 24000 x 8000 px frames: memory
    assert main(["gif", str(reference), "--scale", "2000", "--out", str(tmp_path / "a.gif")]) == 2
    one_line_error(capsys, "--scale 2000", "65535")  # wider than a GIF can be
    assert main(["sample", str(reference), "-n", str(10**10)]) == 2
    one_line_error(capsys, "-n 10000000000")


def test_a_huge_picture_is_refused_before_decoding(tmp_path, monkeypatch, capsys):
    import densities.image as image

    monkeypatch.setattr(image, "available_bytes", lambda: 10**9)
    big = tmp_path / "big.png"
    Image.new("L", (6000, 6000), 255).save(big)
    assert main(["run", *TINY, "--target", "image", "--image", str(big)]) == 2
    one_line_error(capsys, "6000 x 6000", "GB")


def test_a_one_pixel_high_picture_needs_no_square_of_its_width(tmp_path):
    """1 x 100,000 pixels letterboxed used to allocate a 100,000^2 square (80 GB)."""
    import densities

    wide = tmp_path / "wide.png"
    Image.fromarray(np.full((1, 100_000), 200, np.uint8)).save(wide)
    d = densities.get("image", 20, path=str(wide))
    assert d.array.shape == (20, 20) and np.isclose(d.array.sum(), 1.0)
    middle = d.array[10].sum() + d.array[9].sum()  # the one row of ink lies in the middle
    assert middle > 0.99


# -- 10, 11, 12. inputs that ended in tracebacks ---------------------------------------------
def test_a_failed_picture_never_loses_the_fit(tmp_path, monkeypatch, capsys, reference):
    import errno

    from toylab.viz import gif

    def full_disk(frames, path, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(gif, "render_run", full_disk)
    monkeypatch.setenv("TOYLAB_HELPERS", "0")  # the GIF is drawn in this process
    transport.stop()
    rc, out = run(tmp_path)
    assert rc == 2
    line = one_line_error(capsys, "comparison.gif", "No space left", "--resume")
    assert "fit is saved" in line
    monkeypatch.undo()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert "rebuilding" in capsys.readouterr().err
    assert (out / "comparison.gif").is_file()
    same_results(out, reference)


def test_corrupted_frames_deflate_is_one_line(tmp_path, capsys):
    _, out = run(tmp_path)
    path = out / "frames.npz"
    data = bytearray(path.read_bytes())
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = z.getinfo("hist.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 8
    data[start : start + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["gif", str(out), "--out", str(tmp_path / "x.gif"), "--quiet"]) == 2
    one_line_error(capsys, "frames.npz")
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    one_line_error(capsys, "frames.npz")


def test_non_utf8_names_and_payloads_are_one_line(tmp_path, capsys):
    bad = os.fsdecode(b"run-\xff")
    assert main(["run", *TINY, "--out", str(tmp_path / bad)]) == 2
    one_line_error(capsys, "not valid UTF-8")
    assert not (tmp_path / bad).exists()
    assert main(["run", *TINY, "--target", "qr", "--qr-data", os.fsdecode(b"\xff\xfe")]) == 2
    one_line_error(capsys, "not valid UTF-8")


def test_an_image_path_that_is_not_utf8_reaches_the_report(tmp_path):
    path = tmp_path / os.fsdecode(b"pic-\xff.npy")
    np.save(path, np.eye(16))
    out = tmp_path / "run"
    assert main(["run", *TINY, "--target", "image", "--image", str(path), "--out", str(out)]) == 0
    assert "pic-\\udcff.npy" in (out / "report.html").read_text(encoding="utf-8")


def test_a_complex_npy_image_is_refused(tmp_path, capsys):
    path = tmp_path / "c.npy"
    np.save(path, np.ones((20, 20)) * (1 + 2j))
    assert main(["run", *TINY, "--target", "image", "--image", str(path)]) == 2
    one_line_error(capsys, "complex")


# -- 5. periodic saves do not change results -------------------------------------------------
def test_periodic_saves_leave_results_unchanged(tmp_path, reference):
    rc, out = run(tmp_path, "run", "--checkpoint-every", "1e-9")  # a save after every step
    assert rc == 0
    assert rundir.read_checkpoint(out)["saved"]["generation"] > 40
    same_results(out, reference)


# -- 13. which results depend on --index ---------------------------------------------------
def test_only_soft_on_the_grid_index_draws_differently():
    """gd, sp and kmeans match exactly whatever the index; soft draws with the compiled
    sampler on the grid index and with numpy otherwise (the same law, other random draws:
    tests/test_soft_kmeans.py checks both laws)."""
    kw = dict(nodes=150, steps=60, batch=10, frames=2, bins=16, seed=4)
    fits = {
        index: toylab.fit("gaussian", methods="gd,sp,soft,kmeans", index=index, **kw)
        for index in ("grid", "kdtree", "brute")
    }
    for method in ("gd", "sp", "kmeans"):
        for index in ("kdtree", "brute"):
            assert np.array_equal(fits[index].nodes[method], fits["grid"].nodes[method])
    assert np.array_equal(fits["kdtree"].nodes["soft"], fits["brute"].nodes["soft"])
    assert not np.array_equal(fits["grid"].nodes["soft"], fits["brute"].nodes["soft"])


def test_frames_at_large_bins_are_held_compressed_and_streamed(tmp_path):
    """96 frames at 4096 bins used to need 6.4 GB of raw counts in memory."""
    bins, k = 1024, 500
    rng = np.random.default_rng(0)
    frames = frames_mod.Frames(
        ["gd", "sp"], ["gaussian"], [np.full((bins, bins), 1 / bins**2)], k, 10
    )
    raw = []
    for f in range(12):
        hists = np.zeros((2, bins, bins), np.uint16)
        np.add.at(
            hists, (rng.integers(0, 2, k), rng.integers(0, bins, k), rng.integers(0, bins, k)), 1
        )
        frames.add(hists, 0, f, f, np.zeros(2))
        raw.append(hists)
    assert frames.hist.nbytes() < 0.01 * sum(h.nbytes for h in raw)
    frames.save(tmp_path / "frames.npz")
    with np.load(tmp_path / "frames.npz") as z:  # still a plain npz, as savez writes it
        assert np.array_equal(z["hist"], np.stack(raw))
    back = frames_mod.Frames.load(tmp_path / "frames.npz")
    assert len(back) == 12 and all(
        np.array_equal(a, b) for a, b in zip(back.hist, raw, strict=True)
    )


def test_a_config_json_of_the_wrong_shape_is_one_line(tmp_path, capsys):
    _, out = run(tmp_path)
    for text in ('["not", "an", "object"]', '{"args": "spiral"}', "{broken"):
        (out / "config.json").write_text(text)
        capsys.readouterr()
        assert main(["run", "--resume", str(out), "--quiet"]) == 2
        one_line_error(capsys, "config.json")


def test_a_run_without_checkpoint_gets_messages_that_agree(tmp_path, capsys):
    """Before: the new-run refusal said "use --resume" and --resume said "cannot be resumed"."""
    _, out = run(tmp_path)
    (out / "checkpoint.pt").unlink()
    capsys.readouterr()
    assert main(["run", *TINY, "--out", str(out)]) == 2
    assert "cannot be resumed" in one_line_error(capsys, "--force")
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    line = one_line_error(capsys, "cannot be resumed", "--force")
    assert "--resume" not in line.split("resumed")[1]


def test_a_checkpoint_that_does_not_fit_is_one_line_even_for_a_long_library_error(
    tmp_path, capsys, monkeypatch
):
    """torch's state-dict errors run over several lines (a neural tree saved before its layout
    changed): the refusal keeps one."""
    _, out = run(tmp_path)

    def mismatch(self, state, frames=None):
        raise RuntimeError('Error(s) in loading state_dict:\n\tMissing key(s): "0.inp.weight"')

    monkeypatch.setattr(toylab.run.Run, "load_state_dict", mismatch)
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "does not fit this run" in err[0] and "Missing key" in err[0], err


def test_every_command_error_is_printed_on_one_line(monkeypatch, capsys):
    """The CLI prints any error message on one line, whichever command raised it."""
    from toylab.cli import gif_cmd
    from toylab.errors import ToylabError

    def fails(args):
        raise ToylabError("first part\n\tsecond part\n")

    monkeypatch.setattr(gif_cmd, "main", fails)
    assert main(["gif", "/anywhere"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["toylab gif: error: first part second part"]
