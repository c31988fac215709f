"""The helper process (toylab.transport, toylab.viz.gif_stream): the target-end metrics and the
GIF it computes are exactly those computed in the run's own process, and a dead helper costs
nothing but time (the run does the work itself)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import densities
from toylab import transport
from toylab.metrics import wasserstein


@pytest.fixture
def helper(monkeypatch):
    monkeypatch.setenv(transport.ENV_SWITCH, "1")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    transport.stop()
    assert transport.start()
    yield transport._helpers[transport.METRICS]
    transport.stop()


def test_the_helper_gives_the_numbers_of_an_in_process_call(helper):
    density = densities.get("spiral", 40)
    rng = np.random.default_rng(0)
    small, big = density.sample(50, rng), density.sample(3000, rng)  # exact, then sliced
    jobs = [transport.submit(x, density) for x in (small, big, small)]
    assert jobs[2].result() == wasserstein(small, density)  # read out of order
    assert jobs[0].result() == (wasserstein(small, density)[0], "exact")
    assert jobs[1].result() == (wasserstein(big, density)[0], "sliced")


def test_a_dead_helper_is_replaced_by_the_run_own_process(helper):
    density = densities.get("checkerboard", 30)
    nodes = density.sample(80, np.random.default_rng(1))
    helper.process.kill()
    helper.process.wait()
    assert transport.submit(nodes, density).result() == wasserstein(nodes, density)
    assert not transport.running()  # later jobs run here without trying the dead one again


def test_no_helper_when_switched_off(monkeypatch):
    transport.stop()
    monkeypatch.setenv(transport.ENV_SWITCH, "0")
    assert not transport.start()
    density = densities.get("spiral", 30)
    nodes = density.sample(40, np.random.default_rng(2))
    assert transport.submit(nodes, density).result() == wasserstein(nodes, density)


def _chain_metrics() -> tuple[str, list]:
    from toylab.config import RunConfig
    from toylab.run import Run

    cfg = RunConfig(
        targets=["spiral", "checkerboard"], nodes=300, steps=200, batch=10, frames=4, bins=40
    )
    run = Run(cfg.validate())
    run.advance()
    for target in run.results:  # wall seconds are the one thing allowed to differ
        for scores in target["methods"].values():
            scores.pop("seconds")
    return json.dumps(run.metrics()), run.kl_rows


def test_a_run_settles_the_helper_results_exactly_as_computed_in_process(helper, monkeypatch):
    with_helper = _chain_metrics()
    assert transport._helpers[transport.METRICS] is helper  # the helper answered every job
    transport.stop()
    monkeypatch.setenv(transport.ENV_SWITCH, "0")
    in_process = _chain_metrics()
    assert with_helper == in_process  # the nodes were copied at the target's end, not read late
    targets = json.loads(in_process[0])["targets"]
    assert all("data_floor" in t["floors"] and t["wasserstein_estimate"] for t in targets)
    assert [r["wasserstein"] for r in in_process[1] if "wasserstein" in r]  # last rows got W2


def _gif_run(out, monkeypatch, helper_on: bool, kill_helper: bool = False) -> tuple[bytes, int]:
    """The run's GIF, and how many times this process drew one itself."""
    from toylab.cli import main
    from toylab.viz import gif

    drawn_here = []
    original_render = gif.render_run

    def counting_render(*args, **kw):
        drawn_here.append(1)
        return original_render(*args, **kw)

    monkeypatch.setattr(gif, "render_run", counting_render)
    transport.stop()
    monkeypatch.setenv(transport.ENV_SWITCH, "1" if helper_on else "0")
    if kill_helper:  # the helper dies after the GIF session began: the run draws it itself
        from toylab.viz import gif_stream

        original = gif_stream.GifStream.feed

        def feed_then_die(self, run):
            original(self, run)
            if transport.running(transport.PICTURES) and run.global_step == 150:
                transport._helpers[transport.PICTURES].process.kill()

        monkeypatch.setattr(gif_stream.GifStream, "feed", feed_then_die)
    argv = ["run", "--nodes", "400", "--steps", "300", "--frames", "6", "--out", str(out)]
    assert main([*argv, "--quiet", "--target", "spiral,checkerboard"]) == 0
    transport.stop()
    return (out / "comparison.gif").read_bytes(), len(drawn_here)


def test_the_gif_drawn_by_the_helper_is_the_one_drawn_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    in_process, drawn = _gif_run(tmp_path / "a", monkeypatch, helper_on=False)
    assert drawn == 1
    assert _gif_run(tmp_path / "b", monkeypatch, helper_on=True) == (in_process, 0)
    # the helper dies during the fit: this process draws the same file itself
    assert _gif_run(tmp_path / "c", monkeypatch, True, kill_helper=True) == (in_process, 1)


def test_a_script_without_a_main_guard_runs_with_the_helper(tmp_path):
    """The helper is a fresh interpreter, not multiprocessing's spawn (which re-runs the
    calling script, here an unguarded one, and fails in the child)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "fit.py"
    out = tmp_path / "run"
    script.write_text(
        "import os, sys\n"
        "os.cpu_count = lambda: 2\n"
        "from toylab.cli import main\n"
        "from toylab import transport\n"
        f"rc = main(['run', '--nodes', '200', '--steps', '200', '--quiet', '--out', {str(out)!r}])\n"
        "print('helper', transport.running(), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), transport.ENV_SWITCH: "1"}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "helper True" in proc.stderr
    assert json.loads((out / "metrics.json").read_text())["targets"][0]["wasserstein_estimate"]


def test_the_helper_imports_only_the_parts_of_pot_it_uses():
    """POT's package __init__ loads every solver and scipy.stats (about 1 s); the helper loads
    ot.utils, ot.lp and ot.sliced alone, and their functions give the numbers they always do."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    density = densities.get("spiral", 30)
    x = density.sample(2000, np.random.default_rng(3))
    code = (
        "import sys, json, numpy as np, densities\n"
        "from toylab import transport\n"
        "transport._import_pot_parts()\n"
        "from toylab.metrics import wasserstein_arrays\n"
        "d = densities.get('spiral', 30)\n"
        "x = d.sample(2000, np.random.default_rng(3))\n"
        "print(json.dumps([wasserstein_arrays(x, d.array), wasserstein_arrays(x[:50], d.array),"
        " 'scipy.stats' in sys.modules]))\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "POT_BACKEND_DISABLE_PYTORCH": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    sliced, exact, loaded_scipy_stats = json.loads(proc.stdout)
    assert not loaded_scipy_stats, proc.stderr
    assert tuple(sliced) == wasserstein(x, density)
    assert tuple(exact) == wasserstein(x[:50], density)


def test_a_large_sliced_w2_split_between_the_helpers_is_the_whole_number(helper, monkeypatch):
    """From SPLIT_MIN nodes the directions are shared out between the two helpers (the
    pictures one imports POT's parts for it) and joined: the number of one whole call."""
    monkeypatch.setattr(transport, "SPLIT_MIN", 500)
    density = densities.get("spiral", 60)
    nodes = density.sample(3000, np.random.default_rng(4))
    job = transport.submit(nodes, density)
    assert isinstance(job, transport._Joined) and len(job.parts) == 2
    assert job.result() == wasserstein(nodes, density)
    import ot

    from toylab.metrics import _support, sliced_projections

    centres, weights = _support(density.array)
    whole = ot.sliced_wasserstein_distance(
        nodes, centres, None, weights, n_projections=sliced_projections(3000), seed=0
    )
    # POT's own single call (by quantile functions; each direction here by its exact 1D solver)
    assert job.result()[0] == pytest.approx(float(whole), rel=1e-9)


def test_a_run_whose_w2_will_be_split_has_the_pictures_helper_import_pot_at_once(monkeypatch):
    """From SPLIT_MIN nodes the pictures helper imports POT's parts when it starts (during the
    fit), not when the target ends; below that it never needs them."""
    monkeypatch.setenv(transport.ENV_SWITCH, "1")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    probe = "'ot' in __import__('sys').modules"  # eval is picklable; the job runs in the helper
    for nodes, loaded in ((transport.SPLIT_MIN - 1, False), (transport.SPLIT_MIN, True)):
        transport.stop()
        assert transport.start(nodes)
        assert transport.submit_call(eval, probe, lane=transport.PICTURES).result() is loaded
    transport.stop()


def test_the_helpers_run_at_a_lower_priority_than_the_run(helper):
    """While the fit runs, the run's own process gets the cores first; the helpers (whose
    results are only needed at a target's end) take the time it leaves."""
    import os

    for lane in transport.LANES:
        niceness = transport.submit_call(os.nice, 0, lane=lane, fallback=False).result()
        assert niceness == min(19, os.nice(0) + transport.HELPER_NICENESS)
