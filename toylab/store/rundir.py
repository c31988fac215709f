"""The run directory: what a run writes, how it is checked before writing, and how it is read.

    config.json  metrics.json  kl.csv  nodes.npz  checkpoint.pt  frames.npz  final.png
    comparison.gif (comparison.mp4)  report.html  outputs.json  .toylab.lock

Every file is written atomically (temp file, then rename). The saved state is one consistent
set although it spans several files: each save has a generation number, written into
frames.npz first and into checkpoint.pt second (the commit point); metrics.json, kl.csv and
nodes.npz are derived from the checkpoint, and outputs.json, written last, records the
generation that the derived files and pictures show. A resume trusts the checkpoint, trims
frames recorded after it, and rebuilds outputs that are missing or older than it.
A run holds an OS lock (flock) on .toylab.lock for its whole life.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import socket
import sys
import time
import zipfile
import zlib
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
from toylab.store import statefile
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
MP4_FILE = "comparison.mp4"
OUTPUTS_FILE = "outputs.json"
LOCK_FILE = ".toylab.lock"

# Every name `toylab run` writes; --force removes these and nothing else.
RUN_FILES = frozenset(
    {
        CONFIG_FILE,
        METRICS_FILE,
        KL_FILE,
        NODES_FILE,
        CHECKPOINT_FILE,
        FRAMES_FILE,
        FINAL_PNG,
        GIF_FILE,
        REPORT_FILE,
        MP4_FILE,
        OUTPUTS_FILE,
        LOCK_FILE,
    }
)
# Temporary files of store.atomic (".NAME.XXXX.tmp.ext") left by a killed process.
_TEMP_FILE = re.compile(
    r"^\.(?:" + "|".join(map(re.escape, sorted(RUN_FILES))) + r")\.\w+\.tmp(?:\.\w+)?$"
)

# checkpoint.pt: a magic, the sha256 of the payload, the payload. Format 3 (now): the payload is
# a state file (store/statefile.py: JSON + .npy, no pickle, no torch). Format 2: a torch file
# after CHECKPOINT_MAGIC. Format 1: a bare torch zip. Formats 1 and 2 still load (with torch).
STATE_MAGIC = b"TOYLABS3"
CHECKPOINT_MAGIC = b"TOYLABCK"


RUNS_FOLDER = Path("runs")


def default_out(name: str | RunConfig) -> Path:
    """runs/<name>-<YYYYmmdd-HHMMSS>: the default --out of every command that writes a folder.
    A RunConfig names it after its targets (a sequence joins them with '+')."""
    if not isinstance(name, str):
        name = "+".join(dict.fromkeys(name.targets))[:60]
    return RUNS_FOLDER / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def is_run_file(name: str) -> bool:
    """True for a file name that `toylab run` writes (or a temporary file of one)."""
    return name in RUN_FILES or bool(_TEMP_FILE.match(name))


def _entries(out: Path) -> list[str]:
    """Names in out, the lock file aside (an empty directory may hold a stale one)."""
    return sorted(e for e in os.listdir(out) if e != LOCK_FILE)


def _check_not_cwd_or_parent(out: Path) -> None:
    """--force never replaces the working directory or one of its parents."""
    try:
        target, cwd = out.resolve(), Path.cwd().resolve()
    except OSError:
        return
    if target == cwd or target in cwd.parents:
        what = "the working directory" if target == cwd else "a parent of the working directory"
        raise ToylabError(f"--out {out} is {what}; --force never replaces it, choose a new --out")


def check_new_out(
    out: Path, force: bool, owned: Callable[[Path], bool] = is_run_dir, kind: str = "toylab run"
) -> None:
    """Refuse an --out that is a file, or a non-empty directory without --force; and never
    replace a non-empty directory that `owned` does not recognise, even with --force. A run
    directory under --force must hold only files toylab wrote. A symbolic link to a directory
    is used as that directory (its contents are replaced, the link stays)."""
    try:
        str(out).encode("utf-8")
    except UnicodeEncodeError:
        raise ToylabError(
            f"--out {ascii(str(out))} is not valid UTF-8; choose a name that is"
        ) from None
    if out.is_symlink() and not out.exists():
        raise ToylabError(f"--out {out} is a symbolic link to nothing ({os.readlink(out)})")
    if out.exists() and not out.is_dir():
        raise ToylabError(f"--out {out} is a file, not a directory")
    if not out.is_dir() or not _entries(out):
        return
    if not force:
        if owned is is_run_dir and (out / CHECKPOINT_FILE).is_file():
            hint = f" or continue it with --resume {shlex.quote(str(out))}"
        elif owned is is_run_dir and is_run_dir(out):
            hint = " (it stopped before its first save, so it cannot be resumed)"
        else:
            hint = ""
        raise ToylabError(f"--out {out} is not empty; add --force to replace it{hint}")
    _check_not_cwd_or_parent(out)
    if not owned(out):
        raise ToylabError(f"--out {out} is not empty and is not a {kind}; refusing to replace it")
    if owned is is_run_dir:
        foreign = [e for e in _entries(out) if not is_run_file(e)]
        if foreign:
            raise ToylabError(
                f"--out {out} holds files toylab did not write ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); move them away or choose another --out"
            )


def claim_out(out: Path, force: bool, owned: Callable[[Path], bool] = is_run_dir) -> None:
    """Create the output directory; under --force empty a replaced one of ours. For a run
    directory only toylab's own files are removed (a link is removed, never followed)."""
    if force and out.is_dir() and owned(out):
        _check_not_cwd_or_parent(out)
        if owned is is_run_dir:
            for name in _entries(out):
                if is_run_file(name):
                    (out / name).unlink()
        else:
            for child in out.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    out.mkdir(parents=True, exist_ok=True)


class RunLock:
    """An exclusive OS lock (flock) on DIR/.toylab.lock, held while the object lives.

    The lock file names its holder (pid and host), so a second run can say who has it. The
    kernel drops the lock when the process dies, kill -9 included: a stale file locks nothing.
    """

    def __init__(self, out: Path):
        self.path = out / LOCK_FILE
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = ""
                with contextlib.suppress(OSError):
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ToylabError(
                        f"{out} is in use by another toylab process ({holder or 'holder unknown'})"
                        "; wait for it to finish or choose another --out"
                    ) from None
                raise
            # The holder before us unlinks the file as it lets go: lock the file that is there.
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self.fd: int | None = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock (a killed process leaves the file: harmless)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def versions() -> dict[str, str]:
    """Versions of Python and the packages a run's numbers depend on."""
    out = {"python": platform.python_version()}
    for pkg in ("toylab", "torch", "numpy", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def config_payload(config: RunConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """config.json's content: every argument after defaults, package versions, seed, threads."""
    payload = {
        "args": config.to_dict(),
        "seed": config.seed,
        "threads": config.threads,
        "versions": versions(),
        "command": sys.argv,
    }
    payload.update(extra or {})
    return payload


def write_config(out: Path, config: RunConfig, extra: dict[str, Any] | None = None) -> None:
    """config.json (see config_payload)."""
    write_json(out / CONFIG_FILE, config_payload(config, extra))


def kl_csv_text(rows: list[dict[str, Any]]) -> str:
    """kl.csv: step (since the run began), target, method, then the divergences, then
    wasserstein (filled on each target's last row only: it is computed at target end)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["step", "target", "method", *METRIC_NAMES, "wasserstein"])
    for r in rows:
        w = f"{r['wasserstein']:.6g}" if "wasserstein" in r else ""
        writer.writerow(
            [r["step"], r["target"], r["method"], *(f"{r[k]:.6g}" for k in METRIC_NAMES), w]
        )
    return buf.getvalue()


def read_kl_csv(path: Path) -> list[dict[str, Any]]:
    """kl.csv as rows like Run.kl_rows (empty when the file is missing)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [
            {"step": int(r["step"]), "target": r["target"], "method": r["method"]}
            | {k: float(r[k]) for k in METRIC_NAMES if k in r}
            for r in csv.DictReader(fh)
        ]


def write_nodes(path: Path, positions: dict[str, np.ndarray]) -> None:
    """nodes.npz: one (K, 2) float32 array per method, keyed by method name."""
    arrays = {name: np.asarray(p, dtype=np.float32) for name, p in positions.items()}

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    write_with(path, writer)


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """The checkpoint file's bytes: STATE_MAGIC, sha256 of the payload, the payload (a state
    file: no torch needed to write or read it)."""
    payload = statefile.dumps(state)
    return STATE_MAGIC + hashlib.sha256(payload).digest() + payload


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    data = checkpoint_bytes(state)
    write_with(path, lambda tmp: tmp.write_bytes(data))


@dataclass
class Saver:
    """Writes a run's state as one consistent set of files (see the module docstring).

    `generation` counts saves; `run_id` tells this run's files from another's."""

    out: Path
    run_id: str
    generation: int = 0

    def stamp(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "generation": self.generation}

    def save_state(self, run: Any) -> None:
        """frames.npz, then checkpoint.pt (from here on the state is saved), then the files
        derived from it: metrics.json, kl.csv, nodes.npz."""
        self.generation += 1
        run.frames.save(self.out / FRAMES_FILE, stamp=self.stamp())
        state = run.state_dict()
        state["saved"] = self.stamp() | {"frames": len(run.frames)}
        write_checkpoint(self.out / CHECKPOINT_FILE, state)
        self.write_derived(run)

    def write_derived(self, run: Any) -> None:
        write_json(self.out / METRICS_FILE, run.metrics())
        write_text(self.out / KL_FILE, kl_csv_text(run.kl_rows))
        write_nodes(self.out / NODES_FILE, run.positions())

    def write_outputs_record(self, files: list[Path], complete: bool) -> None:
        """outputs.json, last of all: the generation the derived files and pictures show."""
        write_json(
            self.out / OUTPUTS_FILE,
            self.stamp() | {"complete": complete, "files": sorted(p.name for p in files)},
        )

    def stale_outputs(self, expected: list[str]) -> list[str]:
        """The outputs among `expected` that are missing or older than the checkpoint."""
        try:
            record = json.loads((self.out / OUTPUTS_FILE).read_text(encoding="utf-8"))
            current = record.get("generation") == self.generation and record.get("complete")
        except (OSError, ValueError, AttributeError):
            current = False
        return [n for n in expected if not current or not (self.out / n).is_file()]


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
    try:
        return json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ToylabError(f"cannot read {path / CONFIG_FILE}: {err}") from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The state saved in path/checkpoint.pt, its checksum verified; a missing, damaged or
    foreign file is a one-line ToylabError. Format-1 files (no checksum) still load."""
    file = path / CHECKPOINT_FILE
    if not file.is_file():
        raise ToylabError(
            f"{path} has no {CHECKPOINT_FILE} (the run stopped before its first save), so it "
            f"cannot be resumed; start it again with --out {path} --force"
        )
    try:
        data = file.read_bytes()
    except OSError as err:
        raise ToylabError(f"cannot read {file}: {err.strerror or err}") from None
    n = len(CHECKPOINT_MAGIC)
    if data.startswith((STATE_MAGIC, CHECKPOINT_MAGIC)):
        digest, payload = data[n : n + 32], data[n + 32 :]
        if hashlib.sha256(payload).digest() != digest:
            raise ToylabError(f"{file} is damaged (its checksum does not match); cannot resume")
    elif data.startswith(b"PK"):  # format 1: a bare torch zip file, no checksum
        payload = data
    else:
        raise ToylabError(f"{file} is not a toylab checkpoint")
    try:
        if data.startswith(STATE_MAGIC):
            state = statefile.loads(payload)
        else:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds on a damaged file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ToylabError(f"cannot read {file}: {first[:200]}") from None
    if not isinstance(state, dict) or not {"config", "methods", "step"} <= set(state):
        raise ToylabError(f"{file} is not a toylab checkpoint (unexpected structure)")
    return state


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
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = {"targets": []}
    nodes: dict[str, np.ndarray] = {}
    if (path / NODES_FILE).is_file():
        try:
            with np.load(path / NODES_FILE, allow_pickle=False) as z:
                nodes = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as err:
            raise ToylabError(f"cannot read {path / NODES_FILE}: {err}") from None
    return RunRecord(path, config, metrics, nodes)
