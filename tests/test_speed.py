"""Start-up stays light, the compiled planner and grid index are exact and safe.

No timings here (benchmarks/latency.py and benchmarks/scale.py print those): these tests pin
what the speed rests on, so that a change that would bring it back fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toylab import compiled
from toylab.fitting import grid_index, splitting
from toylab.fitting.nearest import brute_force_nearest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "matplotlib", "numba", "imageio", "scipy", "tqdm")


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


# What the CLI imported after handling argv: its exit code and the heavy modules loaded.
_PROBE_TEMPLATE = """
import json, sys
from toylab.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exit:
    rc = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print(json.dumps({"rc": rc, "heavy": heavy}), file=sys.stderr)
"""
_PROBE = _PROBE_TEMPLATE.replace("HEAVY", repr(HEAVY))


def _probe(*argv: str) -> tuple[int, list[str], str]:
    proc = _python(_PROBE, *argv)
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    return result["rc"], result["heavy"], proc.stdout + proc.stderr


def test_importing_the_cli_loads_no_heavy_library():
    proc = _python(
        "import sys, toylab, toylab.cli; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["run", "--help"],
        ["gif", "--help"],
        ["figure", "--help"],
        ["densities", "--help"],
        ["sample", "--help"],
        ["explain", "--help"],
        ["--version"],
    ],
)
def test_help_loads_no_heavy_library(argv):
    rc, heavy, _ = _probe(*argv)
    assert rc == 0
    assert heavy == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--target", "moons"], "unknown target 'moons'"),
        (["run", "--nodes", "1"], "--nodes must be an integer >= 2"),
        (["run", "--method", "gd,nope"], "unknown method 'nope'"),
        (["run", "--lr", "-1"], "--lr must be a positive"),
        (["run", "--fps", "0"], "fps must be a whole number"),
        (["run", "--target", "image", "--image", "/no/such.png"], "does not exist"),
        (["run", "--steps", "x"], "invalid int value: 'x'"),
        (["gif", "/no/such/run"], "does not exist"),
        (["sample", "/no/such/run", "-n", "3"], "does not exist"),
        (["explain", "--target", "moons"], "unknown target 'moons'"),
        (["figure", "--seeds", "x"], "--seeds"),
        (["densities", "--bins", "3", "--out", "x.png"], "bins"),
        (["nope"], "unknown command"),
    ],
)
def test_bad_input_is_rejected_without_heavy_libraries(argv, says):
    rc, heavy, output = _probe(*argv)
    assert rc == 2, output
    assert says in output
    assert "Traceback" not in output
    assert heavy == [], f"{argv} loaded {heavy}"


def test_a_cpu_run_and_its_resume_load_neither_torch_nor_pot(tmp_path):
    """torch (1-2 s) is not needed for numpy nodes or the checkpoint, and POT (about 1 s) is
    imported by the W2 helper process, not the run's own."""
    out = tmp_path / "r"
    argv = ["run", "--nodes", "300", "--steps", "300", "--out", str(out), "--quiet"]
    argv += ["--method", "gd,sp,soft,kmeans,bsp,replay"]
    proc = _python(_PROBE_TEMPLATE.replace("HEAVY", "('torch', 'ot')"), *argv)
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"rc": 0, "heavy": []}, proc.stderr
    assert json.loads((out / "metrics.json").read_text())["targets"][0]["wasserstein_estimate"]
    proc = _python(_PROBE_TEMPLATE.replace("HEAVY", "('torch', 'ot')"), "run", "--resume", str(out))
    assert json.loads(proc.stderr.strip().splitlines()[-1])["heavy"] == [], proc.stderr


def test_numba_is_set_up_without_importing_scipy_linalg():
    """numba probes for BLAS by importing scipy.linalg (0.25-0.3 s) when it loads its NumPy
    support; toylab's kernels need none, so it is kept out, and importable afterwards."""
    proc = _python(
        "import sys, numpy as np\n"
        "from toylab.fitting.grid_index import GridIndex\n"
        "index = GridIndex(np.array([[0.0, 0.0], [0.5, 0.5]]), 'l2')\n"
        "print(index.query(np.array([[0.4, 0.45]])).tolist(), 'scipy.linalg' in sys.modules)\n"
        "import scipy.linalg\n"
        "print(scipy.linalg.norm(np.ones(4)))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[1]", "False", "2.0"]


def test_a_numba_that_needs_scipy_linalg_at_set_up_still_loads():
    """If a numba's set-up fails without scipy.linalg, it is set up again with it."""
    proc = _python(
        "import sys, numpy as np\n"
        "from numba.core import base\n"
        "original = base.BaseContext.refresh\n"
        "def refresh(self):\n"
        "    if sys.modules.get('scipy.linalg', 0) is None:\n"
        "        raise ImportError('this numba wants scipy.linalg')\n"
        "    return original(self)\n"
        "base.BaseContext.refresh = refresh\n"
        "from toylab.fitting.grid_index import GridIndex\n"
        "index = GridIndex(np.array([[0.0, 0.0], [0.5, 0.5]]), 'l2')\n"
        "print(index.query(np.array([[0.4, 0.45]])).tolist(), 'scipy.linalg' in sys.modules)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[1]", "True"]


def test_no_command_prints_the_usage_with_every_command():
    proc = _python("from toylab.cli import main; main([])")
    assert proc.returncode == 2
    for command in ("run", "gif", "figure", "densities", "sample", "explain"):
        assert f"\n    {command} " in proc.stderr
    assert "toylab: error: no command" in proc.stderr


def test_version_flag_prints_the_version():
    import toylab

    for flag in ("--version", "-V"):
        proc = _python("from toylab.cli import main; main()", flag)
        assert proc.returncode == 0
        assert proc.stdout.strip() == f"toylab {toylab.__version__}"


def test_toylab_names_load_on_first_use():
    proc = _python(
        "import sys, toylab; before = 'toylab.api' in sys.modules; "
        "fit = toylab.fit; print(before, 'toylab.api' in sys.modules, callable(fit))"
    )
    assert proc.stdout.split() == ["False", "True", "True"]


def test_the_embedded_viridis_table_is_matplotlibs():
    from matplotlib import colormaps

    from toylab.viz.viridis import viridis_240

    expected = np.round(colormaps["viridis"].resampled(240)(np.arange(240))[:, :3] * 255)
    assert np.array_equal(viridis_240(), expected.astype(np.uint8))


# --------------------------------------------------------------------------- compiled planner


def _random_counts(rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(2, 80))
    counts = rng.integers(0, 6, k).astype(np.float64)  # many ties, as real counts have
    if rng.random() < 0.5:
        counts /= 2.0 ** rng.integers(0, 4, k)  # halves, as splits make
    return counts


def test_compiled_planner_makes_the_rules_pairs():
    """The compiled replay gives the pairs (and counts) of the one-at-a-time rule."""
    rng = np.random.default_rng(12)
    for _ in range(400):
        counts = _random_counts(rng)
        max_splits = int(rng.integers(4, 2 * counts.size + 4))
        ratios = (float(rng.uniform(1.2, 3.0)), float(rng.uniform(0.1, 0.9)))
        direct, heap, fast = counts.copy(), counts.copy(), counts.copy()
        expected = splitting._plan_direct(direct, max_splits, *ratios)
        assert splitting._plan_heap(heap, max_splits, *ratios) == expected
        assert splitting._plan_compiled(fast, max_splits, *ratios) == expected
        assert np.array_equal(fast, direct)


def test_plan_splits_uses_the_compiled_path_on_numpy_counts(monkeypatch):
    calls = []
    real = splitting._plan_compiled
    monkeypatch.setattr(
        splitting, "_plan_compiled", lambda *a: calls.append(1) or real(*a), raising=True
    )
    pairs = splitting.plan_splits(np.array([0.0, 9.0, 1.0, 0.0]), 8)
    assert calls and pairs[0] == (1, 0)


# --------------------------------------------------------------------------- grid index


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_grid_index_survives_diverged_nodes(distance):
    """Nodes at inf, -inf, nan or 1e300 never make a cell index leave the grid."""
    rng = np.random.default_rng(3)
    pos = rng.uniform(-1, 1, (300, 2))
    bad = [np.inf, -np.inf, np.nan, 1e300, -1e300, 1e19]
    for n, value in enumerate(bad):
        pos[n] = (value, 0.0)
        pos[len(bad) + n] = (0.3, value)
        pos[2 * len(bad) + n] = (value, value)
    index = grid_index.GridIndex(pos, distance)
    g = index.g
    assert ((index._cell >= 0) & (index._cell < g * g)).all()
    points = rng.uniform(-1.2, 1.2, (500, 2))
    got = index.query(points)
    finite = np.isfinite(pos).all(axis=1) & (np.abs(pos) < 1e10).all(axis=1)
    # the finite nodes decide: the answer is brute force's over them
    expected = np.flatnonzero(finite)[brute_force_nearest(points, pos[finite], distance)]
    assert np.array_equal(got, expected)
    # moving finite nodes out to infinity and back keeps every list inside the grid
    moved = np.arange(100, 140)
    pos[moved] = np.inf
    index.mark_moved(moved)
    pos[moved] = rng.uniform(-1, 1, (40, 2))
    index.mark_moved(moved)
    assert ((index._cell >= 0) & (index._cell < g * g)).all()
    assert ((index.query(points) >= 0) & (index.query(points) < len(pos))).all()


def test_grid_index_answers_a_valid_node_when_every_node_diverged():
    pos = np.full((20, 2), np.nan)
    pos[:10] = np.inf
    index = grid_index.GridIndex(pos, "l1")
    out = index.query(np.zeros((5, 2)))
    assert ((out >= 0) & (out < 20)).all()


def test_diverging_adam_run_stops_with_one_line(tmp_path):
    """Issue 12 item 8: lr 1e19 sends nodes to inf/nan; the compiled index must not crash (it
    used to segfault, exit 139), and the fit stops with one line naming the method."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toylab",
            "run",
            "--optimizer",
            "adam",
            "--lr",
            "1e19",
            "--method",
            "gd",
            "--nodes",
            "500",
            "--steps",
            "200",
            "--frames",
            "2",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "method gd diverged" in err and "--lr" in err
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_parallel_query_matches_the_serial_one_for_any_thread_count():
    """Large batches go through the prange kernel: same answers as the serial kernel."""
    import numba

    rng = np.random.default_rng(5)
    pos = rng.uniform(-1, 1, (20_000, 2))
    pos[:50] = pos[50:100]  # exact ties (split copies) must still go to the lowest index
    index = grid_index.GridIndex(pos, "l1")
    points = rng.uniform(-1.1, 1.1, (grid_index.PARALLEL_POINTS * 3, 2))
    serial = np.empty(points.shape[0], dtype=np.int64)
    args = (points, pos, index.g, index._head, index._next, True, serial)
    grid_index._query(*args)
    answers = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        compiled.set_threads(threads)
        answers.append(index.query(points))
    compiled.set_threads(1)
    for got in answers:
        assert np.array_equal(got, serial)
    assert np.array_equal(serial, brute_force_nearest(points, pos, "l1"))


def test_kernels_load_lazily_and_replace_themselves():
    """A declared kernel compiles on first call and puts numba's dispatcher in its module."""
    proc = _python(
        "import sys, numpy as np\n"
        "from toylab.fitting import optim\n"
        "print('numba' in sys.modules, type(optim._sgd_in_order).__name__)\n"
        "pos = np.zeros((2, 2)); optim._sgd_in_order(pos, np.ones((1, 2)), np.array([1]), 0.5)\n"
        "print('numba' in sys.modules, type(optim._sgd_in_order).__name__, pos[1].tolist())\n"
    )
    lines = proc.stdout.split("\n")
    assert lines[0] == "False Kernel", proc.stderr
    assert lines[1].startswith("True CPUDispatcher [0.5, 0.5]"), proc.stderr


def test_results_do_not_depend_on_the_thread_count():
    """A fit whose batches take the parallel path gives the same nodes with 1 or 2 threads."""
    import toylab
    from toylab.cli.driver import set_threads

    runs = [
        toylab.fit(
            "spiral",
            nodes=3000,
            methods="gd,sp",
            steps=15,
            batch=grid_index.PARALLEL_POINTS + 500,
            max_splits=40,
            frames=0,
            threads=threads,
        )
        for threads in (1, 2, 2)
    ]
    set_threads(1)  # back to the default for the tests that follow
    for other in runs[1:]:
        for name in ("gd", "sp"):
            assert np.array_equal(np.asarray(runs[0].nodes[name]), np.asarray(other.nodes[name]))


def test_a_kernel_may_call_a_kernel_imported_from_another_module(tmp_path):
    script = tmp_path / "cells.py"  # a file: numba caches only kernels that have one
    script.write_text(
        "import numpy as np\n"
        "from toylab.compiled import njit\n"
        "from toylab.fitting.grid_index import _cell\n"
        "@njit()\n"
        "def cells(points, g, out):\n"
        "    for k in range(points.shape[0]):\n"
        "        out[k] = _cell(points[k, 0], points[k, 1], g)\n"
        "out = np.empty(3, dtype=np.int64)\n"
        "cells(np.array([[-1.0, -1.0], [0.99, -1.0], [np.inf, np.nan]]), 4, out)\n"
        "print(out.tolist())\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.stdout.strip() == "[0, 3, 3]", proc.stderr


def test_the_parallel_selection_makes_the_same_pairs(monkeypatch):
    """With --threads >= 2 large counts are selected in slices and merged: the same pairs and
    counts as the one-at-a-time rule (forced here on small arrays, 2 and 3 slices)."""
    monkeypatch.setattr(splitting, "PARALLEL_SELECT_MIN", 0)
    rng = np.random.default_rng(21)
    for threads in (2, 3):
        monkeypatch.setattr(compiled, "threads", lambda t=threads: t)
        for _ in range(200):
            counts = _random_counts(rng)
            max_splits = int(rng.integers(4, 2 * counts.size + 4))
            ratios = (float(rng.uniform(1.2, 3.0)), float(rng.uniform(0.1, 0.9)))
            direct, fast = counts.copy(), counts.copy()
            expected = splitting._plan_direct(direct, max_splits, *ratios)
            assert splitting._plan_compiled(fast, max_splits, *ratios) == expected
            assert np.array_equal(fast, direct)


def test_the_compiled_histogram_counts_as_the_cell_rule():
    """node_histogram's kernel (large K) gives densities.histogram's counts, edges included:
    cell boundaries, the domain's edges, points far outside, NaN and infinities."""
    from densities import histogram
    from toylab import metrics

    rng = np.random.default_rng(4)
    bins = 37
    edges = -1.0 + np.arange(bins + 1) * (2.0 / bins)
    special = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, -1.0, 1.0, 0.0, 1 + 1e-16])
    pts = np.concatenate(
        [
            rng.uniform(-1.2, 1.2, (5000, 2)),
            np.stack([rng.choice(edges, 3000), rng.choice(edges, 3000)], axis=1),
            np.stack(np.meshgrid(special, special), axis=-1).reshape(-1, 2),
        ]
    )
    out = np.zeros(bins * bins, dtype=np.int64)
    metrics._count_cells(pts, bins, out)
    assert np.array_equal(out.reshape(bins, bins), histogram(pts, bins))
    big = rng.normal(0, 0.6, (metrics.COMPILED_HISTOGRAM_MIN, 2))
    assert np.array_equal(metrics.node_histogram(big, 100), histogram(big, 100))


def test_selection_near_last_steps_thresholds_makes_the_same_pairs(monkeypatch):
    """Large counts are selected in one pass at the thresholds a hint remembers from the last
    call: with a right, a passed (values beyond it, up to 2 m), a near, a wrong and no
    remembered threshold, in 1 to 3 slices and with room for all or too few values beyond it,
    the pairs and counts are the rule's, and the hint then holds this call's m-th largest and
    smallest counts."""
    monkeypatch.setattr(splitting, "THRESHOLD_SELECT_MIN", 0)
    monkeypatch.setattr(splitting, "PARALLEL_SELECT_MIN", 0)
    rng = np.random.default_rng(33)
    for trial in range(300):
        threads, room = 1 + trial % 3, (4, 1)[trial % 2]
        monkeypatch.setattr(compiled, "threads", lambda t=threads: t)
        monkeypatch.setattr(splitting, "BEYOND_ROOM", room)
        counts = _random_counts(rng)
        max_splits = int(rng.integers(4, counts.size + 5))
        ratios = (float(rng.uniform(1.2, 3.0)), float(rng.uniform(0.1, 0.9)))
        m = min(max_splits, counts.size)
        ordered = np.sort(counts)
        right = (ordered[-m], ordered[m - 1])
        passed = (ordered[-min(2 * m, counts.size)], ordered[min(2 * m, counts.size) - 1])
        near = [(right[0] * f, right[1] / f) for f in (0.97, 1.03)]
        wrong = [(right[0] + 0.5, right[1]), (np.nan, np.nan), (right[0], -1.0)]
        for guess in (right, passed, *near, *wrong):
            hint = splitting.SelectionHint()
            hint.top, hint.low = guess
            direct, fast = counts.copy(), counts.copy()
            expected = splitting._plan_direct(direct, max_splits, *ratios)
            assert splitting._plan_compiled(fast, max_splits, *ratios, hint) == expected
            assert np.array_equal(fast, direct)
            if m < counts.size:
                assert (hint.top, hint.low) == right


def test_planner_warm_up_loads_the_kernel_the_fit_calls():
    """The warm-up compiles (or loads) the selection at last step's thresholds with the very
    argument types a large fit passes: the fit's first guessed selection adds no signature."""
    splitting._warm_up(("sp",), "l1", 64)
    before = list(splitting._gather_at.signatures)
    counts = np.random.default_rng(5).integers(0, 9, splitting.THRESHOLD_SELECT_MIN).astype(float)
    hint = splitting.SelectionHint()
    splitting._plan_compiled(counts.copy(), 64, 2.0, 0.5, hint)  # sets the hint
    splitting._plan_compiled(counts, 64, 2.0, 0.5, hint)  # the guessed selection
    assert before and splitting._gather_at.signatures == before
