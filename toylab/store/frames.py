"""Recorded frames of a run: per frame and method the node histogram on the target's grid.

Positions are never stored (at K = 10^6 they would be hundreds of MB); a histogram is all the
renderer needs. The file `frames.npz` holds:

    methods          (M,)                str    method names, panel order
    target_names     (T,)                str    the target sequence (a name may repeat)
    target_arrays    (T, bins, bins)     f64    each target's density Q (sums to 1)
    hist             (F, M, bins, bins)  int    node counts per cell (uint16 when K < 65536)
    target_index     (F,)                int    index into target_names of each frame
    step             (F,)                int    steps done on that target when recorded
    global_step      (F,)                int    steps done since the run began
    kl               (F, M)              f64    KL(P || Q) of each method at that frame
    nodes            ()                  int    K
    steps_per_target ()                  int
    saved_run_id     ()                  str    which run wrote it (absent before format 2)
    saved_generation ()                  int    the save that wrote it (see store.rundir)
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toylab.errors import ToylabError
from toylab.store.atomic import write_with

FRAMES_FILE = "frames.npz"


@dataclass
class Frames:
    """All frames of a run, in memory; append with `add`, persist with `save`."""

    methods: list[str]
    target_names: list[str]
    target_arrays: list[np.ndarray]
    nodes: int
    steps_per_target: int
    hist: list[np.ndarray] = field(default_factory=list)
    target_index: list[int] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    global_step: list[int] = field(default_factory=list)
    kl: list[np.ndarray] = field(default_factory=list)
    saved: dict = field(default_factory=dict)  # run_id and generation of the file read

    def __len__(self) -> int:
        return len(self.hist)

    @property
    def bins(self) -> int:
        return int(self.target_arrays[0].shape[0])

    def hist_dtype(self) -> type:
        return np.uint16 if self.nodes < 2**16 else np.int32

    def add(
        self, hists: np.ndarray, target_index: int, step: int, global_step: int, kl: np.ndarray
    ) -> None:
        """Append one frame: hists is (M, bins, bins) counts, kl is (M,)."""
        self.hist.append(np.asarray(hists, dtype=self.hist_dtype()))
        self.target_index.append(int(target_index))
        self.step.append(int(step))
        self.global_step.append(int(global_step))
        self.kl.append(np.asarray(kl, dtype=np.float64))

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz payload."""
        bins, m = self.bins, len(self.methods)
        return {
            "methods": np.array(self.methods, dtype=str),
            "target_names": np.array(self.target_names, dtype=str),
            "target_arrays": np.stack(self.target_arrays).astype(np.float64),
            "hist": np.stack(self.hist)
            if self.hist
            else np.zeros((0, m, bins, bins), self.hist_dtype()),
            "target_index": np.array(self.target_index, dtype=np.int64),
            "step": np.array(self.step, dtype=np.int64),
            "global_step": np.array(self.global_step, dtype=np.int64),
            "kl": np.stack(self.kl) if self.kl else np.zeros((0, m)),
            "nodes": np.array(self.nodes, dtype=np.int64),
            "steps_per_target": np.array(self.steps_per_target, dtype=np.int64),
        }

    def truncate(self, n: int) -> None:
        """Keep the first n frames (a resume drops frames recorded after its checkpoint)."""
        for seq in (self.hist, self.target_index, self.step, self.global_step, self.kl):
            del seq[n:]

    def save(self, path: str | os.PathLike, stamp: dict | None = None) -> Path:
        """Write frames.npz atomically (compressed: histograms are mostly zeros); `stamp`
        (run_id, generation) ties the file to the checkpoint saved with it."""
        payload = self.arrays()
        for key, value in (stamp or {}).items():
            payload[f"saved_{key}"] = np.array(value)

        def writer(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **payload)

        return write_with(path, writer)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Frames:
        """Read a frames.npz; a missing or malformed file is a one-line ToylabError."""
        path = Path(path)
        if path.is_dir():
            path = path / FRAMES_FILE
        if not path.is_file():
            where = path.parent if path.name == FRAMES_FILE else path
            raise ToylabError(f"{where} is not a toylab run directory (no {FRAMES_FILE})")
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = cls(
                    methods=[str(s) for s in z["methods"]],
                    target_names=[str(s) for s in z["target_names"]],
                    target_arrays=list(z["target_arrays"]),
                    nodes=int(z["nodes"]),
                    steps_per_target=int(z["steps_per_target"]),
                    hist=list(z["hist"]),
                    target_index=[int(v) for v in z["target_index"]],
                    step=[int(v) for v in z["step"]],
                    global_step=[int(v) for v in z["global_step"]],
                    kl=list(z["kl"]),
                )
                if "saved_run_id" in z.files:
                    frames.saved = {
                        "run_id": str(z["saved_run_id"]),
                        "generation": int(z["saved_generation"]),
                    }
        except (
            OSError,
            KeyError,
            ValueError,
            EOFError,
            TypeError,
            IndexError,
            zipfile.BadZipFile,
            zlib.error,
        ) as err:
            raise ToylabError(f"cannot read {path}: {err or type(err).__name__}") from None
        return frames
