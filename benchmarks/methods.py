"""Four methods on the paper's four targets: gd, sp, soft selection and online k-means.

    python benchmarks/methods.py                       # K = 10^3, 10^4 and 10^5 (~15 min)
    python benchmarks/methods.py --nodes 10000 --targets spiral

For every K: 10,000 steps, batch max(10, K / 1000) (10 points a node at K >= 10^4), and
Split-and-Prune at the paper's pace of one split per 10 points (--max-splits batch / 10). The
KL is logged every 100 steps; "reach" is the first logged step where a method's KL is at or
below the real-samples KL of K points ("-" if never). Also printed: the KL that k-means'
asymptotic node density ~ p^(1/2) would score at this K (theory line: the target
sqrt-flattened, binned and scored against itself with K real-sample noise left out).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import densities
import toylab
from toylab.metrics import divergences

TARGETS = ("spiral", "blur_circles", "qr", "words")
METHODS = ("gd", "sp", "soft", "kmeans")


def first_reach(kl_rows: list[dict], method: str, real: float) -> str:
    for row in kl_rows:
        if row["method"] == method and row["kl"] <= real:
            return f"{row['step']:,}"
    return "-"


def kmeans_theory_kl(target: str, bins: int) -> float:
    """KL of the node density that k-means tends to (p^(1/2), Zador/Gersho) against p."""
    q = densities.get(target, bins).array
    p = np.sqrt(q)
    return divergences(p / p.sum(), q)["kl"]


def run(k: int, targets: list[str], steps: int) -> None:
    batch = max(10, k // 1000)
    splits = max(1, batch // 10)
    print(
        f"\nK = {k:,}: {steps:,} steps of {batch} points ({steps * batch / k:.0f} a node), "
        f"--max-splits {splits}; reach = first step with KL <= real-samples KL (logged every 100)"
    )
    print(
        f"{'target':<13} {'real KL':>8} "
        + " ".join(f"{m + ' KL':>10} {'reach':>7} {'s':>6}" for m in METHODS)
        + f" {'p^1/2 KL':>9}"
    )
    for target in targets:
        start = time.perf_counter()
        r = toylab.fit(
            target,
            nodes=k,
            methods=",".join(METHODS),
            steps=steps,
            batch=batch,
            max_splits=splits,
            frames=0,
            eval_every=100,
        )
        t = r.metrics["targets"][0]
        real = t["real_samples"]["kl"]
        cells = []
        for m in METHODS:
            s = t["methods"][m]
            cells.append(f"{s['kl']:>10.4f} {first_reach(r.kl, m, real):>7} {s['seconds']:>6.1f}")
        print(
            f"{target:<13} {real:>8.4f} "
            + " ".join(cells)
            + f" {kmeans_theory_kl(target, 100):>9.4f}"
            f"   ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--nodes", default="1000,10000,100000", help="comma list of K")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--steps", type=int, default=10_000)
    args = ap.parse_args()
    for k in (int(v) for v in args.nodes.split(",")):
        run(k, args.targets.split(","), args.steps)


if __name__ == "__main__":
    main()
