"""comparison.gif drawn in the helper process while the fit runs, so the run does not wait.

Rendering the GIF's frames (panels, labels, palette indices) and encoding them cost about as
much as the whole default fit. Every frame depends only on its own histograms and the run's
fixed metadata, so the helper process (toylab.transport) can draw each one as soon as it is
recorded, on the core the fit does not use, and hand it to Pillow's GIF encoder at once (which
maps it to the palette and finds what changed, half of the encoding): `GifStream.feed(run)`
(called after every step) sends the new frames, `GifStream.start_writing(path)` asks for the
file once the fit is done, and `Pending.result()` waits for it. The frames are drawn by
`render.frame_indices` and encoded by `gif.encode_gif`, exactly as `gif.render_run` does, so
the file is the same byte for byte (tested). Without a helper, for MP4 output, or for a resumed run (whose early
frames the helper never saw) `GifStream.usable` is False and the run draws the GIF itself.

The helper-side functions (`begin`, `add`, `write`) keep their sessions in this module's
`_SESSIONS`, which only the helper process fills.
"""

from __future__ import annotations

import io
import math
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toylab import transport
from toylab.store.atomic import write_bytes
from toylab.store.frames import Frames

LANE = transport.PICTURES  # the helper that draws (another one computes the metrics)
_SESSIONS: dict[str, dict[str, Any]] = {}  # helper side: session id -> frames, images, options


# -- in the helper process ---------------------------------------------------------------------
def begin(session: str, meta: dict[str, Any], options: dict[str, Any]) -> None:
    """Open a session: empty Frames with the run's metadata, the GIF options, and the encoder
    thread that hands each drawn frame to Pillow as it comes (see `_encode`)."""
    from toylab.viz import gif, render

    frames = Frames(**meta)
    scale = options.get("scale")
    fps = options.get("fps")
    s = {
        "frames": frames,
        "drawn": 0,
        "images": queue.SimpleQueue(),  # drawn frames on their way to Pillow; None ends them
        "gif": io.BytesIO(),
        "error": [],
        "real_kl": [math.nan] * len(meta["target_names"]),
        "scale": render.default_scale(frames.bins) if scale is None else int(scale),
        "panels": render.resolve_panels(frames, options.get("panels")),
        "fps": gif.DEFAULT_FPS if fps is None else fps,
        "theme": options.get("theme", render.DEFAULT_THEME),
    }
    s["encoder"] = threading.Thread(target=_encode, args=(s,), name="toylab-gif", daemon=True)
    s["encoder"].start()
    _SESSIONS[session] = s


def _encode(s: dict[str, Any]) -> None:
    """Pillow's GIF encoding of the session's frames into memory, taking each as it is drawn:
    mapping frames to the palette and finding what changed (about half of the encoding) runs
    during the fit, and only the compression is left when the run asks for the file."""
    from toylab.viz import gif

    def drawn() -> Iterator[np.ndarray]:
        while (image := s["images"].get()) is not None:
            yield image

    try:
        gif.encode_gif(drawn(), s["gif"], s["fps"], theme=s["theme"])
    except BaseException as err:  # reported by `write`, in the run
        s["error"].append(err)
        while s["images"].get() is not None:  # let `add` go on; `write` reports the error
            pass


def add(session: str, frame: tuple, real_kl: float) -> None:
    """Record one frame (hists, target_index, step, global_step, kl), draw it, pass it on."""
    from toylab.viz import render

    s = _SESSIONS[session]
    frames: Frames = s["frames"]
    frames.add(*frame)
    s["real_kl"][frame[1]] = real_kl
    i = len(frames) - 1
    s["images"].put(render.frame_indices(frames, i, s["scale"], s["panels"], s["real_kl"]))
    s["drawn"] += 1


def write(session: str, path: str, frames_expected: int) -> str:
    """Write the session's GIF to `path` (atomically) and close the session."""
    s = _SESSIONS.pop(session)
    s["images"].put(None)
    s["encoder"].join()
    if s["error"]:
        raise s["error"][0]
    if s["drawn"] != frames_expected:
        raise RuntimeError(f"the helper drew {s['drawn']} of {frames_expected} frames")
    return str(write_bytes(path, s["gif"].getvalue()))


# -- in the run's process ----------------------------------------------------------------------
class GifStream:
    """Feeds a fresh run's frames to the helper as they are recorded (see the module doc)."""

    def __init__(self, run: Any, options: dict[str, Any]):
        self.usable = transport.running(LANE) and not options.get("mp4") and len(run.frames) == 0
        self.sent = 0
        self.session = os.urandom(8).hex()
        if self.usable:
            f = run.frames
            meta = {
                "methods": list(f.methods),
                "target_names": list(f.target_names),
                "target_arrays": list(f.target_arrays),
                "nodes": f.nodes,
                "steps_per_target": f.steps_per_target,
            }
            keep = ("fps", "scale", "theme", "panels")
            options = {k: options[k] for k in keep if k in options}
            transport.submit_call(begin, self.session, meta, options, lane=LANE, reply=False)

    def feed(self, run: Any) -> None:
        """Send the frames recorded since the last call (cheap when there are none)."""
        frames = run.frames
        while self.usable and self.sent < len(frames):
            i = self.sent
            frame = (
                np.asarray(frames.hist[i]),
                frames.target_index[i],
                frames.step[i],
                frames.global_step[i],
                frames.kl[i],
            )
            real = run.real.get(frames.target_index[i], {}).get("kl", math.nan)
            transport.submit_call(add, self.session, frame, real, lane=LANE, reply=False)
            self.sent += 1

    def start_writing(self, run: Any, path: Path) -> transport.Pending | None:
        """Ask the helper for the GIF at `path`; None if this run must draw it itself."""
        self.feed(run)
        if not self.usable or self.sent != len(run.frames) or not transport.running(LANE):
            return None
        return transport.submit_call(
            write, self.session, str(path), self.sent, lane=LANE, fallback=False
        )
