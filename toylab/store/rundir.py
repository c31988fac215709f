"""The run directory: what a run writes, how it is checked before writing, and how it is read.

    config.json  metrics.json  kl.csv  nodes.npz  checkpoint.pt  frames.npz  final.png
    comparison.gif (comparison.mp4)  report.html

Every file is written atomically (temp file, then rename).
"""

from __future__ import annotations

import csv
import io
import platform
import shutil
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from toylab.config import RunConfig
from toylab.errors import ToylabError
from toylab.lazy import torch
from toylab.metrics import METRIC_NAMES
from toylab.store.atomic import write_json, write_text, write_with
from toylab.store.frames import FRAMES_FILE, Frames

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
KL_FILE = "kl.csv"
NODES_FILE = "nodes.npz"
CHECKPOINT_FILE = "checkpoint.pt"
FINAL_PNG = "final.png"
GIF_FILE = "comparison.gif"
REPORT_FILE = "report.html"


def default_out(config: RunConfig) -> Path:
    """runs/<target>-<YYYYmmdd-HHMMSS> (a sequence joins its target names with '+')."""
    name = "+".join(dict.fromkeys(config.targets))[:60]
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def check_new_out(
    out: Path, force: bool, owned: Callable[[Path], bool] = is_run_dir, kind: str = "toylab run"
) -> None:
    """Refuse an --out that is a file, or a non-empty directory without --force; and never
    replace a non-empty directory that `owned` does not recognise, even with --force."""
    if out.exists() and not out.is_dir():
        raise ToylabError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            hint = f" or use --resume {out}" if owned is is_run_dir else ""
            raise ToylabError(f"--out {out} is not empty; add --force to replace it{hint}")
        if not owned(out):
            raise ToylabError(
                f"--out {out} is not empty and is not a {kind}; refusing to replace it"
            )


def claim_out(out: Path, force: bool, owned: Callable[[Path], bool] = is_run_dir) -> None:
    """Create the output directory (emptying a replaced one of ours under --force)."""
    if force and out.is_dir() and owned(out):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def versions() -> dict[str, str]:
    """Versions of Python and the packages a run's numbers depend on."""
    out = {"python": platform.python_version()}
    for pkg in ("toylab", "torch", "numpy", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def write_config(out: Path, config: RunConfig, extra: dict[str, Any] | None = None) -> None:
    """config.json: every argument after defaults, package versions, seed and threads."""
    payload = {
        "args": config.to_dict(),
        "seed": config.seed,
        "threads": config.threads,
        "versions": versions(),
        "command": sys.argv,
    }
    payload.update(extra or {})
    write_json(out / CONFIG_FILE, payload)


def kl_csv_text(rows: list[dict[str, Any]]) -> str:
    """kl.csv: step (since the run began), target, method, then the divergences."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["step", "target", "method", *METRIC_NAMES])
    for r in rows:
        writer.writerow(
            [r["step"], r["target"], r["method"], *(f"{r[k]:.6g}" for k in METRIC_NAMES)]
        )
    return buf.getvalue()


def write_nodes(path: Path, positions: dict[str, np.ndarray]) -> None:
    """nodes.npz: one (K, 2) float32 array per method, keyed by method name."""
    arrays = {name: np.asarray(p, dtype=np.float32) for name, p in positions.items()}

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    write_with(path, writer)


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    write_with(path, lambda tmp: torch.save(state, tmp))


def write_state(out: Path, run) -> None:
    """Everything but the pictures: checkpoint, metrics, KL log, nodes, frames."""
    write_checkpoint(out / CHECKPOINT_FILE, run.state_dict())
    write_json(out / METRICS_FILE, run.metrics())
    write_text(out / KL_FILE, kl_csv_text(run.kl_rows))
    write_nodes(out / NODES_FILE, run.positions())
    run.frames.save(out / FRAMES_FILE)


@dataclass
class RunRecord:
    """A run directory read back: its config, metrics and final nodes (frames on demand)."""

    path: Path
    config: RunConfig
    metrics: dict[str, Any]
    nodes: dict[str, np.ndarray]

    def frames(self) -> Frames:
        return Frames.load(self.path / FRAMES_FILE)

    def checkpoint(self) -> dict[str, Any]:
        return read_checkpoint(self.path)


def read_config(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ToylabError(f"cannot read {path / CONFIG_FILE}: {err}") from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    file = path / CHECKPOINT_FILE
    if not file.is_file():
        raise ToylabError(f"{path} has no {CHECKPOINT_FILE}; it cannot be resumed")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise ToylabError(f"cannot read {file}: {err}") from None


def require_run_dir(path: Path, what: str = "a toylab run directory") -> None:
    if not path.exists():
        raise ToylabError(f"{path} does not exist")
    if not path.is_dir():
        raise ToylabError(f"{path} is a file, not {what}")
    if not is_run_dir(path):
        raise ToylabError(f"{path} is not {what} (no {CONFIG_FILE})")


def load_run(path: str | Path) -> RunRecord:
    """Read a run directory written by `toylab run`."""
    path = Path(path)
    require_run_dir(path)
    config = RunConfig.from_dict(read_config(path).get("args", {}))
    try:
        metrics = __import__("json").loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = {"targets": []}
    nodes: dict[str, np.ndarray] = {}
    if (path / NODES_FILE).is_file():
        try:
            with np.load(path / NODES_FILE, allow_pickle=False) as z:
                nodes = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise ToylabError(f"cannot read {path / NODES_FILE}: {err}") from None
    return RunRecord(path, config, metrics, nodes)
