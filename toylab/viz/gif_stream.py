"""comparison.gif drawn in the helper process while the fit runs, so the run does not wait.

Rendering the GIF's frames (panels, labels, palette indices) and encoding them cost about as
much as the whole default fit. Every frame depends only on its own histograms and the run's
fixed metadata, so the helper process (toylab.transport) can draw each one as soon as it is
recorded, on the core the fit does not use: `GifStream.feed(run)` (called after every step)
sends the new frames, `GifStream.start_writing(path)` asks for the file once the fit is done,
and `Pending.result()` waits for it. The frames are drawn by `render.frame_indices` and
written by `gif.save_indexed_gif`, exactly as `gif.render_run` does, so the file is the same
byte for byte (tested). Without a helper, for MP4 output, or for a resumed run (whose early
frames the helper never saw) `GifStream.usable` is False and the run draws the GIF itself.

The helper-side functions (`begin`, `add`, `write`) keep their sessions in this module's
`_SESSIONS`, which only the helper process fills.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from toylab import transport
from toylab.store.frames import Frames

LANE = transport.PICTURES  # the helper that draws (another one computes the metrics)
_SESSIONS: dict[str, dict[str, Any]] = {}  # helper side: session id -> frames, images, options


# -- in the helper process ---------------------------------------------------------------------
def begin(session: str, meta: dict[str, Any], options: dict[str, Any]) -> None:
    """Open a session: empty Frames with the run's metadata, and the GIF options."""
    from toylab.viz import render

    frames = Frames(**meta)
    scale = options.get("scale")
    _SESSIONS[session] = {
        "frames": frames,
        "images": [],
        "real_kl": [math.nan] * len(meta["target_names"]),
        "scale": render.default_scale(frames.bins) if scale is None else int(scale),
        "panels": render.resolve_panels(frames, options.get("panels")),
        "fps": options.get("fps"),
        "theme": options.get("theme", render.DEFAULT_THEME),
    }


def add(session: str, frame: tuple, real_kl: float) -> None:
    """Record one frame (hists, target_index, step, global_step, kl) and draw it."""
    from toylab.viz import render

    s = _SESSIONS[session]
    frames: Frames = s["frames"]
    frames.add(*frame)
    s["real_kl"][frame[1]] = real_kl
    i = len(frames) - 1
    s["images"].append(render.frame_indices(frames, i, s["scale"], s["panels"], s["real_kl"]))


def write(session: str, path: str, frames_expected: int) -> str:
    """Write the session's GIF to `path` (atomically) and close the session."""
    from toylab.viz import gif

    s = _SESSIONS.pop(session)
    if len(s["images"]) != frames_expected:
        raise RuntimeError(f"the helper drew {len(s['images'])} of {frames_expected} frames")
    fps = gif.DEFAULT_FPS if s["fps"] is None else s["fps"]
    theme = s["theme"]
    images = s.pop("images")[::-1]

    def handed_over():  # each image leaves this list as Pillow takes its own copy of it
        while images:
            yield images.pop()

    return str(gif.write_gif(handed_over(), path, fps, theme=theme))


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
