"""Run one cell in a worker and send its run directory back as data.

A worker (a local process or a Ray task on another machine) fits the cell with the library
(`Run`, `rundir.write_config` / `Saver`, the pictures `toylab run` draws), writes the
run directory into a private temporary folder, and returns the metrics plus the whole folder
as zip bytes. The driver unpacks it under OUT/cells/<name>, so workers need no shared disk.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def single_thread_env() -> dict[str, str]:
    """Environment variables that keep a worker's BLAS / OpenMP / numba pools at 1 thread."""
    return dict.fromkeys(THREAD_VARS, "1")


def init_worker() -> None:
    """Process-pool initializer: one thread per worker, Ctrl-C left to the driver, numba warm."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C stops
    os.environ.update(single_thread_env())
    from toylab.compiled import warm_up_kernels
    from toylab.run import set_threads

    set_threads(1)
    warm_up_kernels()


def run_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """Fit one cell; return {"name", "metrics", "zip", "wall", "fit"} (zip = the run dir)."""
    t0 = time.perf_counter()
    begin = time.time()
    cpu = time.process_time()
    from toylab.config import RunConfig
    from toylab.run import Run, set_threads
    from toylab.store import rundir

    config = RunConfig.from_dict(payload["config"]).validate()
    config.threads = set_threads(1)
    output = payload.get("output", {})
    parts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="toylab-cell-") as tmp:
        out = Path(tmp) / payload["name"]
        out.mkdir()
        t = time.perf_counter()
        run = Run(config)
        extra = {
            "command": ["toylab", "run", *payload.get("argv", [])],
            "sweep": {"cell": payload["name"]},
        }
        rundir.write_config(out, config, extra)
        parts["start"] = time.perf_counter() - t
        t = time.perf_counter()
        run.advance()
        parts["advance"] = time.perf_counter() - t
        t = time.perf_counter()
        rundir.Saver(out, run_id=os.urandom(8).hex()).save_state(run)
        write_pictures(out, run, output)
        parts["write"] = time.perf_counter() - t
        t = time.perf_counter()
        data = zip_dir(out)
        parts["zip"] = time.perf_counter() - t
    metrics = run.metrics()
    return {
        "name": payload["name"],
        "metrics": metrics,
        "zip": data,
        "wall": time.perf_counter() - t0,
        "fit": sum(m["seconds"] for t in metrics["targets"] for m in t["methods"].values()),
        "parts": parts,
        "span": (begin, time.time()),  # wall-clock start and end, to measure idle gaps
        "cpu": time.process_time() - cpu,  # CPU seconds: cpu / wall = the share of a core it got
        "host": os.uname().nodename,
    }


def write_pictures(out: Path, run: Any, output: dict[str, Any]) -> None:
    """The optional pictures ([output] in the spec), drawn as `toylab run` draws them."""
    from toylab.outputs import write_pictures as draw

    final_png = bool(output.get("final_png") or output.get("report"))  # the report inlines it
    draw(out, run, {}, True, final_png=final_png, gif_file=bool(output.get("gif")))
    if output.get("report"):
        from toylab.viz.report import write_report

        write_report(out, run, {"sweep": True})


def zip_dir(path: Path) -> bytes:
    """Every file of a folder as zip bytes (stored: the npz and png files are compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(path).as_posix())
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Unpack a cell's zip into dest atomically: a hidden sibling first, then one rename.
    A previous attempt's folder (a failed cell) is replaced."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                target = (tmp / member).resolve()
                if not str(target).startswith(str(tmp.resolve())):
                    raise ValueError(f"unsafe path in a cell's zip: {member}")
            z.extractall(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
