"""The reference 2D DDN experiment loop, run inside the REFERENCE venv (not ours).

The public `sddn` / `distribution_playground` wheels do not ship the paper's toy_exp.py, so this
driver re-states its loop from the published description (nothing here is copied from them):

    param = K nodes, uniform in [-1, 1]^2;  sdd = sddn.SplitableDiscreteDistribution(K)
    every step:
        gts = DistributionByDensityArray(density).sample(batch)
        loss_matrix = L1 distance (batch, K) between every point and every node
        i_nears = sdd.add_loss_matrix(loss_matrix)["i_nears"]
        split = sdd.try_split(); if split: param[i_disapear] = param[i_split]
        for i_near, gt in zip(i_nears, gts, strict=True): param[i_near] += 2 * (gt - param[i_near]) * 0.2

Two modes:

    fit        run that loop on a density array (.npy), save the final nodes and every step's
               time, print one JSON line with the totals.
    densities  write the reference's own density arrays (its procedural blur_circles and its
               PNG targets: sprial.png, QR_code.png, words.png) as .npy files and print where
               its PNGs are, so our side can score against the very same arrays.

It is launched by benchmarks/vs_reference.py and benchmarks/quality.py with
`--ref-python /work/refvenv/bin/python`; it never imports toylab. Create that venv with

    python3 -m venv /work/refvenv
    /work/refvenv/bin/pip install torch==2.13.0 sddn distribution_playground opencv-python-headless
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _set_threads(n: int) -> None:
    # Before numpy / torch are imported, so their thread pools start at this size.
    for var in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        os.environ[var] = str(n)


def run_fit(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from distribution_playground import DistributionByDensityArray
    from sddn import SplitableDiscreteDistribution

    torch.set_num_threads(args.threads)
    density = np.load(args.density).astype(np.float64)
    density = density / density.sum()
    np.random.seed(args.seed)  # noqa: NPY002  (the reference's sampler draws from numpy's global RNG)
    k = args.nodes
    param = np.random.uniform(-1.0, 1.0, (k, 2))  # noqa: NPY002
    sdd = SplitableDiscreteDistribution(k)
    dist = DistributionByDensityArray(density)

    step_times = np.zeros((args.steps, 2))  # wall and CPU seconds of every step
    splits = 0
    done = 0
    t_start = time.perf_counter()
    c_start = time.process_time()
    for step in range(args.steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        gts = dist.sample(args.batch)
        loss_matrix = np.abs(param[None] - gts[:, None]).sum(-1)
        i_nears = sdd.add_loss_matrix(loss_matrix)["i_nears"]
        split = sdd.try_split()
        if split:
            param[split["i_disapear"]] = param[split["i_split"]]
            splits += 1
        for i_near, gt in zip(i_nears, gts, strict=True):
            param[i_near] += 2 * (gt - param[i_near]) * 0.2
        step_times[step] = (time.perf_counter() - t0, time.process_time() - c0)
        done = step + 1
        if args.max_seconds and time.perf_counter() - t_start > args.max_seconds:
            break
    loop_seconds = time.perf_counter() - t_start
    loop_cpu = time.process_time() - c_start
    np.save(args.out_nodes, param)
    if args.out_times:
        np.save(args.out_times, step_times[:done])
    return {
        "steps_done": done,
        "steps_requested": args.steps,
        "loop_seconds": loop_seconds,
        "loop_cpu_seconds": loop_cpu,
        "splits": splits,
        "torch_threads": torch.get_num_threads(),
        "nodes_file": args.out_nodes,
    }


def run_densities(args: argparse.Namespace) -> dict:
    import glob

    import distribution_playground as dp
    import numpy as np
    from distribution_playground import density_maps

    os.makedirs(args.out, exist_ok=True)
    img_dir = os.path.join(os.path.dirname(dp.__file__), "density_map_imgs")
    written = {}
    arr = density_maps.build_blur_circles_density_map(args.bins)["density"]
    path = os.path.join(args.out, "blur_circles.npy")
    np.save(path, np.asarray(arr, dtype=np.float64))
    written["blur_circles"] = path
    for png in sorted(glob.glob(os.path.join(img_dir, "*.png"))):
        name = os.path.splitext(os.path.basename(png))[0]
        arr = density_maps.convert_density_map_img(png, args.bins)["density"]
        path = os.path.join(args.out, f"{name}.npy")
        np.save(path, np.asarray(arr, dtype=np.float64))
        written[name] = path
    return {"image_dir": img_dir, "arrays": written}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("fit", help="run the reference loop on a density array")
    f.add_argument("--density", required=True, help="(bins, bins) .npy density array, row 0 = top")
    f.add_argument("--nodes", type=int, default=2000)
    f.add_argument("--steps", type=int, default=1800)
    f.add_argument("--batch", type=int, default=40)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=1)
    f.add_argument(
        "--max-seconds", type=float, default=0.0, help="stop the loop after this long (0: never)"
    )
    f.add_argument("--out-nodes", required=True, help="where to save the final (K, 2) nodes (.npy)")
    f.add_argument(
        "--out-times",
        default="",
        help="where to save the per-step (wall, CPU) seconds (.npy, shape (steps, 2))",
    )
    d = sub.add_parser("densities", help="write the reference's density arrays as .npy")
    d.add_argument("--out", required=True)
    d.add_argument("--bins", type=int, default=100)
    d.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    _set_threads(args.threads)
    result = run_fit(args) if args.mode == "fit" else run_densities(args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
