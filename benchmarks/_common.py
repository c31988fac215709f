"""Shared helpers of the benchmark scripts: threads, targets, fitting ours, the reference venv.

Scripts call `early_threads()` before anything imports numpy, so every BLAS / OpenMP pool
starts at the requested size (the reference subprocess gets the same variables).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
DEFAULT_REF_PYTHON = "/work/refvenv/bin/python"
DRIVER = Path(__file__).with_name("reference_driver.py")
REF_VENV_HELP = (
    "create the reference venv (it must stay separate from ours):\n"
    "    python3 -m venv /work/refvenv\n"
    "    /work/refvenv/bin/pip install torch==2.13.0 sddn distribution_playground opencv-python-headless\n"
    "then pass --ref-python /work/refvenv/bin/python"
)

# The paper's PNG targets in distribution_playground/density_map_imgs (its file names).
PAPER_PNGS = {"paper:spiral": "sprial", "paper:qr": "QR_code", "paper:words": "words"}
# The paper's figure (K = 10,000, 100 bins): gradient descent, Split-and-Prune, real samples.
# The paper's figure (gd, sp, real samples): one table, kept in toylab.viz.figure.
from toylab.paper import PAPER_KL  # noqa: E402

PAPER_NUMBERS = {name: (kl["gd"], kl["sp"], kl["real"]) for name, kl in PAPER_KL.items()}


def early_threads(default: int = 1) -> int:
    """Read --threads from argv (before argparse) and export it to the thread variables."""
    n = default
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            n = int(argv[i + 1])
        elif a.startswith("--threads="):
            n = int(a.split("=", 1)[1])
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    return n


def paper_key(label: str) -> str:
    """'paper:qr' and 'qr' both map to the paper row 'qr'."""
    return label.split(":", 1)[-1]


# -- the reference venv ---------------------------------------------------------------------
def check_ref_python(ref_python: str) -> str | None:
    """None if the reference venv imports sddn and distribution_playground, else why not."""
    if not Path(ref_python).exists():
        return f"{ref_python} does not exist"
    probe = subprocess.run(
        [ref_python, "-c", "import sddn, distribution_playground"],
        capture_output=True,
        text=True,
        env=ref_env(1),
    )
    if probe.returncode != 0:
        return f"{ref_python} cannot import sddn / distribution_playground:\n{probe.stderr.strip()[-800:]}"
    return None


def ref_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env.pop("PYTHONPATH", None)  # never let the reference see our repo
    return env


def run_driver(
    ref_python: str, args: list[str], threads: int, timeout: float | None = None
) -> dict[str, Any]:
    """Run reference_driver.py in the reference venv; return its RESULT json."""
    cmd = [ref_python, str(DRIVER), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=ref_env(threads), timeout=timeout, cwd="/"
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"reference driver failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}"
        )
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            out = json.loads(line[len("RESULT ") :])
            out["process_seconds"] = wall
            return out
    raise RuntimeError(
        f"reference driver printed no RESULT line:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )


def reference_arrays(ref_python: str, bins: int, threads: int, workdir: str) -> dict[str, Any]:
    """The reference's own density arrays (its blur_circles and PNG targets) and its PNG dir."""
    out = os.path.join(workdir, "ref_densities")
    return run_driver(
        ref_python,
        ["densities", "--out", out, "--bins", str(bins), "--threads", str(threads)],
        threads,
    )


def locate_paper_pngs(paper_dir: str | None, ref_python: str | None) -> Path | None:
    """--paper-images DIR, or distribution_playground/density_map_imgs in the reference venv."""
    if paper_dir:
        return Path(paper_dir)
    if ref_python:
        venv = Path(ref_python).parent.parent  # not resolved: bin/python links out of the venv
        for cand in sorted(
            venv.glob("lib/python*/site-packages/distribution_playground/density_map_imgs")
        ):
            return cand
    return None


# -- targets ---------------------------------------------------------------------------------
@dataclass
class Spec:
    """One target as both sides see it: our Density, and how to fit it with toylab."""

    label: str
    density: Any  # densities.Density
    via: str  # "registry", "image-target", "ref-array"
    fit_name: str | None = None  # toylab.fit target name, None: fit the Density directly
    fit_params: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def resolve_targets(
    labels: list[str],
    bins: int,
    png_dir: Path | None,
    ref_arrays: dict[str, str] | None,
) -> tuple[list[Spec], list[str]]:
    """Specs for the labels that can be built here, and a message for each one skipped.

    Our targets by registry name; 'paper:spiral|qr|words' from the paper's PNG through our
    `image` target (or, if that target is not registered yet, the reference's own converted
    array); 'paper:blur_circles' from the reference's procedural array.
    """
    import numpy as np

    import densities

    specs: list[Spec] = []
    skipped: list[str] = []
    have_image = "image" in densities.names()
    for label in labels:
        if not label.startswith("paper:"):
            if label not in densities.names():
                skipped.append(
                    f"{label}: not a registered target here yet (registered: {', '.join(densities.names())})"
                )
                continue
            specs.append(Spec(label, densities.get(label, bins), "registry", label))
            continue
        if label == "paper:blur_circles":
            if not ref_arrays or "blur_circles" not in ref_arrays:
                skipped.append(
                    f"{label}: needs the reference venv (its blur_circles is procedural)"
                )
                continue
            arr = np.load(ref_arrays["blur_circles"])
            specs.append(Spec(label, densities.Density(label, arr), "ref-array"))
            continue
        stem = PAPER_PNGS.get(label)
        if stem is None:
            skipped.append(
                f"{label}: unknown paper target (choose from {', '.join([*PAPER_PNGS, 'paper:blur_circles'])})"
            )
            continue
        png = png_dir / f"{stem}.png" if png_dir else None
        ref_arr = np.load(ref_arrays[stem]) if ref_arrays and stem in ref_arrays else None
        if have_image and png is not None and png.exists():
            dens = densities.get("image", bins, path=str(png))
            note = ""
            if ref_arr is not None:
                diff = 0.5 * np.abs(dens.array - ref_arr).sum()
                note = f"TV(our image target, reference conversion) = {diff:.4f}"
            specs.append(Spec(label, dens, "image-target", "image", {"path": str(png)}, note))
        elif ref_arr is not None:
            why = (
                "our `image` target is not registered yet" if not have_image else f"{png} not found"
            )
            specs.append(
                Spec(
                    label,
                    densities.Density(label, ref_arr),
                    "ref-array",
                    note=f"{why}: used the reference's conversion",
                )
            )
        else:
            where = (
                f"{png} not found"
                if png is not None
                else "no folder of the paper's PNGs (--paper-images DIR)"
            )
            skipped.append(f"{label}: {where} and no reference venv to convert it")
    return specs, skipped


def resolve_and_report(labels: list[str], bins: int, png_dir, ref_arrays) -> list:
    """resolve_targets, printing the targets skipped and any density not from our registry."""
    specs, skipped = resolve_targets(labels, bins, png_dir, ref_arrays)
    for s in skipped:
        print(f"skipped {s}")
    for s in specs:
        if s.via != "registry" or s.note:
            print(f"{s.label}: density via {s.via}{'; ' + s.note if s.note else ''}")
    return specs


# -- fitting ours ----------------------------------------------------------------------------
def fit_ours(
    spec: Spec,
    methods: list[str],
    nodes: int,
    steps: int,
    batch: int,
    seed: int,
    threads: int,
    max_splits: int = 1,
    eval_every: int | None = None,
) -> dict[str, Any]:
    """Fit with toylab; return metrics per method, real-samples KL, wall seconds, nodes, KL log."""
    import toylab
    from toylab.cli.driver import set_threads
    from toylab.config import RunConfig
    from toylab.run import Run

    common = dict(
        nodes=nodes,
        steps=steps,
        batch=batch,
        frames=0,
        seed=seed,
        threads=threads,
        max_splits=max_splits,
        eval_every=eval_every,
    )
    t0 = time.perf_counter()
    c0 = time.process_time()
    if spec.fit_name is not None:
        res = toylab.fit(spec.fit_name, methods=",".join(methods), **common, **spec.fit_params)
        metrics, positions, kl_rows = res.metrics, res.nodes, res.kl
    else:
        cfg = RunConfig(targets=["uniform"], methods=list(methods), **common).validate()
        cfg.threads = set_threads(threads)
        run = Run(cfg, targets=[spec.density])
        run.advance()
        metrics, positions, kl_rows = run.metrics(), run.positions(), list(run.kl_rows)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    t = metrics["targets"][0]
    return {
        "wall": wall,
        "cpu": cpu,
        "real_kl": t["real_samples"]["kl"],
        "methods": t["methods"],
        "floors": t.get("floors", {}),
        "nodes": positions,
        "kl_rows": kl_rows,
    }


def fit_sequence(
    specs: list[Spec],
    methods: list[str],
    nodes: int,
    steps: int,
    batch: int,
    seed: int,
    threads: int,
    max_splits: int = 1,
) -> list[dict[str, Any]]:
    """Fit a cycle of targets, nodes carried over from one to the next (the paper's experiment).

    Returns, per target, its metrics (real-samples KL, every method's kl/stray/seconds) and the
    node positions at the end of that target.
    """
    from toylab.cli.driver import set_threads
    from toylab.config import RunConfig
    from toylab.run import Run

    cfg = RunConfig(
        targets=["uniform"] * len(specs),
        methods=list(methods),
        nodes=nodes,
        steps=steps,
        batch=batch,
        frames=0,
        seed=seed,
        threads=threads,
        max_splits=max_splits,
    ).validate()
    cfg.threads = set_threads(threads)
    run = Run(cfg, targets=[s.density for s in specs])
    ends: list[dict[str, Any]] = []

    def on_step(r: Run, _results: dict) -> None:
        if r.step == steps:
            ends.append(r.positions())

    run.advance(on_step=on_step)
    out = []
    for t, pos in zip(run.metrics()["targets"], ends, strict=True):
        out.append(
            {
                "real_kl": t["real_samples"]["kl"],
                "methods": t["methods"],
                "floors": t.get("floors", {}),
                "nodes": pos,
            }
        )
    return out


# -- diagnostics -----------------------------------------------------------------------------
def stray_kl(nodes, density) -> float:
    """The part of KL(P || Q) contributed by cells outside the target's support."""
    import numpy as np

    import densities

    hist = densities.histogram(np.asarray(nodes), density.bins).astype(np.float64)
    p = hist / hist.sum()
    off = (~density.support_mask()) & (p > 0)
    return float(np.sum(p[off] * np.log(p[off] / density.array[off])))


def unmoved(nodes, seed: int) -> int:
    """Nodes still exactly at their initial position: never matched (dead) nodes."""
    import numpy as np

    from toylab import streams

    init = streams.initial_nodes(seed, len(nodes))
    return int(np.all(np.asarray(nodes) == init, axis=1).sum())


def stray_cost(k: int, bins: int) -> float:
    """KL of one node alone in an empty cell: (1/K) ln(1e20 bins^2 / K)."""
    import math

    return math.log(1e20 * bins * bins / k) / k


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def machine_line(threads: int) -> str:
    import platform

    try:
        load = os.getloadavg()
        load_text = f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    except OSError:
        load_text = ""
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  {os.cpu_count()} cores  "
        f"threads {threads}  python {platform.python_version()}  {load_text}"
    )


def tmpdir() -> str:
    return tempfile.mkdtemp(prefix="toylab-bench-")
