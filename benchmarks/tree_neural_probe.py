"""Fixed-step probe of the neural DDN: where its KL comes from (the exploration behind issue 11).

    /work/venv/bin/python benchmarks/tree_neural_probe.py --steps 3000 --targets spiral
    /work/venv/bin/python benchmarks/tree_neural_probe.py --steps 1500 -o '{"k": 8, "layers": 5}'

Trains NeuralTree directly (no Run) for --steps steps of --batch points, then on 10^6 fresh
points from the target prints: KL with the model's learned prior (as the benchmark scores it),
KL with the prior recounted on the fresh points ("fresh"), the model's mass in cells where the
target is ~0 (with the 1e-20 floor each 1% there costs about 0.45 nats), the mass-weighted rms
distance from each leaf to the centroid of the points that choose it, and the KL of the same
partition with every used leaf moved to that centroid ("snapped": what perfect leaf positions
would give). -o takes the network's options as JSON (neural.OPTIONS keys, plus k, layers, lr,
half_life).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import early_threads  # noqa: E402

THREADS = early_threads()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import densities  # noqa: E402
from toylab.cli.driver import set_threads  # noqa: E402
from toylab.fitting.tree.method import NEURAL_PRIOR_HALF_LIFE, prior_decay  # noqa: E402
from toylab.fitting.tree.neural import NeuralTree  # noqa: E402
from toylab.fitting.tree.points import nearest_children  # noqa: E402
from toylab.fitting.tree.table import TreeTable  # noqa: E402
from toylab.metrics import evaluate  # noqa: E402


def recounted_prior(chosen: np.ndarray, k: int, layers: int) -> list[np.ndarray]:
    out = []
    for lv in range(layers):
        use = np.bincount(chosen[:, lv], minlength=k ** (lv + 1)).astype(float).reshape(-1, k)
        total = use.sum(axis=1, keepdims=True)
        out.append(np.where(total > 0, use / np.where(total > 0, total, 1), 1.0 / k).ravel())
    return out


def probe(target: str, args, opts: dict) -> str:
    opts = dict(opts)
    k, layers = int(opts.pop("k", 32)), int(opts.pop("layers", 3))
    lr, half = float(opts.pop("lr", 6e-3)), float(opts.pop("half_life", NEURAL_PRIOR_HALF_LIFE))
    density = densities.get(target, 100)
    net = NeuralTree(k, layers, np.random.default_rng(args.seed), lr=lr, **opts)
    rng = np.random.default_rng(args.seed + 1)
    decay = prior_decay(args.steps, half)
    t0 = time.process_time()
    for t in range(args.steps):
        net.step(density.sample(args.batch, rng), t, args.steps, decay)
    per_step = (time.process_time() - t0) / args.steps
    table = net.table()
    pts = density.sample(1_000_000, rng)
    chosen = nearest_children(table.positions, k, pts)
    fresh = recounted_prior(chosen, k, layers)
    leaf = chosen[:, -1]
    n = np.bincount(leaf, minlength=k**layers).astype(float)
    used = n > 0
    cen = np.stack([np.bincount(leaf, pts[:, i], k**layers)[used] / n[used] for i in (0, 1)], 1)
    off = np.sqrt(((table.leaves[used] - cen) ** 2).sum(axis=1))
    offset = float(np.sqrt((n[used] * off**2).sum() / n.sum()))
    snapped = table.leaves.copy()
    snapped[used] = cen
    eval_rng = np.random.default_rng(2)
    samples = table.sample(1_000_000, eval_rng)
    hist = densities.histogram(samples, density.bins) / len(samples)
    empty = float(hist[density.array / density.array.sum() < 1e-12].sum())
    kl = evaluate(samples, density)["kl"]
    kl_fresh = evaluate(TreeTable(k, table.positions, fresh).sample(10**6, eval_rng), density)
    kl_snap = evaluate(
        TreeTable(k, [*table.positions[:-1], snapped], fresh).sample(10**6, eval_rng), density
    )
    return (
        f"{target:16s} {kl:7.4f} {kl_fresh['kl']:7.4f} {kl_snap['kl']:7.4f} {empty:7.4f} "
        f"{offset:8.5f} {args.steps:6d} {per_step * 1e3:6.1f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", default="spiral,checkerboard")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32768)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("-o", "--options", default="{}", help="JSON: NeuralTree options")
    args = p.parse_args()
    set_threads(args.threads)
    opts = json.loads(args.options)
    print(f"batch {args.batch}, seed {args.seed}, options {json.dumps(opts)}")
    print(
        f"{'target':16s} {'KL':>7s} {'fresh':>7s} {'snapped':>7s} {'empty':>7s} "
        f"{'offset':>8s} {'steps':>6s} {'ms':>6s}"
    )
    for target in args.targets.split(","):
        print(probe(target.strip(), args, opts), flush=True)


if __name__ == "__main__":
    main()
