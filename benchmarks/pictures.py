"""Cost of the pictures: rendering and encoding the comparison GIF, per theme and scale.

    python benchmarks/pictures.py                  # the default run's 96 frames (fit first)
    python benchmarks/pictures.py --run runs/X     # the frames of an existing run directory

Prints, per theme and scale, the best of --repeat wall-clock times of `gif.render_run` and the
GIF's size. The frames of the default run (spiral, K = 10,000, 10,000 steps, gd and sp) are
fitted in memory first when no --run is given (about a second of fitting).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import toylab
from toylab.store.frames import Frames
from toylab.viz import gif


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="run directory whose frames.npz to render")
    ap.add_argument("--repeat", type=int, default=3, help="timings per case (best is printed)")
    ap.add_argument("--scales", default="2,3", help="comma list of GIF scales (default 2,3)")
    args = ap.parse_args()
    if args.run is not None:
        frames = Frames.load(args.run)
        record = toylab.load_run(args.run)
        real = record.gif_frames()[1]
    else:
        result = toylab.fit("spiral")
        frames, real = result.gif_frames()
    panels = len(frames.methods) + 1
    print(f"{len(frames)} frames, {panels} panels, {frames.bins} bins, K = {frames.nodes:,}")
    print(f"{'theme':>6} {'scale':>5} {'seconds':>8} {'MB':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for theme in ("dark", "light"):
            for scale in (int(s) for s in args.scales.split(",")):
                path = Path(tmp) / f"{theme}-{scale}.gif"
                best = float("inf")
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    gif.render_run(frames, path, scale=scale, real_kl=real, theme=theme)
                    best = min(best, time.perf_counter() - start)
                size = path.stat().st_size / 2**20
                print(f"{theme:>6} {scale:>5} {best:>8.2f} {size:>6.2f}")


if __name__ == "__main__":
    main()
