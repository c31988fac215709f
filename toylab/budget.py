"""Memory estimates and caps, checked before a command starts work.

Each estimate is the bytes the named option makes the command hold at its peak (rounded up,
from the array sizes involved); a command refuses, with one line naming the option and the
estimate, what would not fit in the memory available now (MemAvailable of /proc/meminfo),
so it fails in a second instead of after the fit. Caps refuse values that have no meaning
(more threads than cores, a GIF wider than the format allows).
"""

from __future__ import annotations

import os
from typing import Any

from densities.image import available_bytes  # MemAvailable, one reader for both
from toylab.errors import ToylabError

USABLE_FRACTION = 0.8
"""Share of the available memory a command may plan to use (the rest is left to others)."""

BYTES_PER_NODE = 240
"""Per node and method: positions, optimizer state, split counts, the nearest-node index and
the temporaries of one step (float64). Measured peak about 200 B at K = 10^6 on the CPU."""

W2_BYTES_PER_NODE_DIRECTION = 160
"""Per node and sliced-W2 direction at a target's end (POT's sorts, cumulative weights and
quantiles of the projected nodes): measured 600 MB for 4 directions at K = 10^6. The
directions are split between the two helper processes, which hold them at the same time."""

BYTES_PER_POINT = 96
"""Per data point of a step: the drawn point, its match, distances and update temporaries."""

BYTES_PER_CELL = 128
"""Peak bytes per grid cell of a run besides the stored frames (see frames_bytes)."""

GIF_MAX_SIDE = 65535
"""A GIF frame's width and height are 16-bit numbers."""

RGB_WORK_BYTES = 12
"""Per GIF pixel while a frame is drawn: RGB, palette indices and Pillow's copy."""


def human(n: float) -> str:
    """Bytes as a short human-readable string (1.5 GB, 320 MB)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def require(option: str, need: float, what: str, hint: str = "") -> None:
    """Refuse (one line) when `need` bytes would not fit in the usable available memory."""
    avail = available_bytes()
    if avail is None or need <= USABLE_FRACTION * avail:
        return
    raise ToylabError(
        f"{option} needs about {human(need)} for {what}, but only {human(avail)} of memory is "
        f"available{'; ' + hint if hint else ''}"
    )


def check_threads(threads: int | None) -> None:
    """More threads than cores only adds overhead: refuse them."""
    cores = os.cpu_count() or 1
    if threads is not None and threads > cores:
        raise ToylabError(f"--threads {threads} is more than the {cores} cores of this machine")


def frames_bytes(config: Any) -> int:
    """Frame histograms of a run: they are kept compressed (at most about 16 bytes per node and
    method a frame, never more than the raw counts), plus what scales with bins^2 besides:
    one frame's counts, the targets, final.png and the report (measured: 2.1 GB peak at 4096
    bins, 2 methods, so BYTES_PER_CELL per cell and target)."""
    itemsize = 2 if config.nodes < 2**16 else 4
    frames = len(config.frame_steps()) * len(config.targets)
    methods = len(config.methods)
    stored = frames * methods * min(config.bins**2 * itemsize, 16 * config.nodes)
    working = config.bins**2 * (BYTES_PER_CELL + 8 * methods * len(config.targets))
    return stored + working


def gif_frame_side(bins: int, scale: int) -> int:
    return bins * scale


def check_gif(bins: int, scale: int, panels: int, option: str = "--scale") -> None:
    """A GIF frame of `panels` panels of bins x scale pixels: within the format and memory."""
    side = gif_frame_side(bins, scale)
    width = panels * side
    if width > GIF_MAX_SIDE:
        top = max(1, GIF_MAX_SIDE // (panels * bins))
        raise ToylabError(
            f"{option} {scale} makes a GIF {width} px wide ({panels} panels of {bins} bins); "
            f"a GIF is at most {GIF_MAX_SIDE} px: use {option} {top} or less"
        )
    require(
        f"{option} {scale}", width * side * RGB_WORK_BYTES, f"each GIF frame ({width} x {side} px)"
    )


def check_gif_frames(config: Any, scale: int) -> None:
    """The GIF of a run: Pillow holds every frame (palette indices, a byte a pixel) while it
    encodes them, so all of them must fit at once, besides one frame's drawing."""
    side = gif_frame_side(config.bins, scale)
    panels = len(config.methods) + 1
    frames = len(config.frame_steps()) * len(config.targets)
    require(
        f"--frames {config.frames} at --scale {scale}",
        frames * panels * side * side + panels * side * side * RGB_WORK_BYTES,
        f"the GIF's {frames} frames of {panels * side} x {side} px",
        "lower --frames, --scale or --bins",
    )


def check_run(config: Any, scale: int | None = None) -> None:
    """Everything `toylab run` would hold, checked against the available memory."""
    methods = len(config.methods)
    require(
        f"--nodes {config.nodes}",
        config.nodes * (BYTES_PER_NODE * methods + 16),
        f"{methods} method(s) of {config.nodes} nodes",
    )
    from toylab.metrics import sliced_projections

    require(
        f"--nodes {config.nodes}",
        config.nodes * sliced_projections(config.nodes) * W2_BYTES_PER_NODE_DIRECTION,
        "the W2 metric at each target's end (one method's at a time)",
    )
    points = max(config.batch, 1 << 16)  # batches are drawn 2^16 points at a time
    brute = config.nodes * config.batch * 8 * 2 if config.index == "brute" else 0
    require(
        f"--batch {config.batch}",
        points * BYTES_PER_POINT * methods + brute,
        "the points of a step" + (" and the brute-force distance matrix" if brute else ""),
    )
    require(
        f"--bins {config.bins} with --frames {config.frames}",
        frames_bytes(config),
        "the frame histograms",
        "lower --bins or --frames",
    )
    if scale is not None:
        check_gif(config.bins, scale, methods + 1)


def check_sample(n: int) -> None:
    """`toylab sample -n N`: the points (float64) and their CSV text."""
    require(f"-n {n}", n * (16 + 8 + 32), f"{n} points")
