"""How close to the data-budget floor can a method get? The study behind `bsp` and `replay` (issue 16).

    /work/venv/bin/python benchmarks/floor_study.py --paper-images DIR            # the goal check
    /work/venv/bin/python benchmarks/floor_study.py --paper-images DIR --variants all --seeds 0

Paper budget: K = 10,000 nodes, 10,000 steps of batch 10 (N = 100,000 points a target), 100
bins. Targets: the paper's images (sprial.png, QR_code.png, words.png from --paper-images DIR,
e.g. distribution_playground's density_map_imgs) and our procedural blur circles. Two
protocols: fresh nodes on each target, and the paper's chain gaussian -> blur circles -> QR ->
spiral -> words with the nodes carried over. Every method of one run sees the same data, so
its data floor (toylab.floors on the run's own points) is shared. Variants are bsp or replay
with one knob changed (VARIANTS, REPLAY_VARIANTS below); all run side by side with sp, bsp and
replay in one Run, each timed on its own.

Prints per target: KL of each method, the floors, KL / data floor, seconds / sp seconds; then
the goal check for --goal (default replay): mean KL over seeds within 1.3 x the mean data
floor, and no more than 2 x sp's seconds. Timings are per-method step time inside one process (comparable within a run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import densities
from toylab import catalog
from toylab.config import RunConfig
from toylab.fitting.balanced import BalancedSplitAndPrune
from toylab.fitting.replay import ReplaySplitAndPrune
from toylab.run import Run

PAPER = {"spiral": "sprial.png", "qr": "QR_code.png", "words": "words.png"}
CHAIN = ["gaussian", "blur_circles", "qr", "spiral", "words"]

# name -> knobs changed from the bsp defaults (the study's variants; "bsp" itself = defaults).
VARIANTS: dict[str, dict] = {
    "v_splits4": {"max_splits": 4},
    "v_on_top": {"offset": 0.0},
    "v_offset03": {"offset": 0.3},
    "v_offset1": {"offset": 1.0},
    "v_halve_n": {"halve_n": True},
    "v_no_cap": {"n_cap": 1e12},
    "v_cap16": {"n_cap": 16.0},
    "v_cap8": {"n_cap": 8.0},
    "v_reset0": {"n_reset": 0.0},
    "v_reset4": {"n_reset": 4.0},
    "c_off1_halve": {"offset": 1.0, "halve_n": True},
    "c_off1_halve_cap8": {"offset": 1.0, "halve_n": True, "n_cap": 8.0},
    "c_off15_halve": {"offset": 1.5, "halve_n": True},
    "c_off1_cap8": {"offset": 1.0, "n_cap": 8.0},
    "c_off1_halve_cap4": {"offset": 1.0, "halve_n": True, "n_cap": 4.0},
    "m_off125": {"offset": 1.25},
    "v_splits2": {"max_splits": 2},
    "p_07": {"prune_ratio": 0.7},
    "p_09": {"prune_ratio": 0.9},
    "r_3_02": {
        "offset": 1.0,
        "halve_n": True,
        "n_cap": 8.0,
        "split_ratio": 3.0,
        "prune_ratio": 0.2,
    },
    "r_3_05": {
        "offset": 1.0,
        "halve_n": True,
        "n_cap": 8.0,
        "split_ratio": 3.0,
        "prune_ratio": 0.5,
    },
    "r_2_02": {
        "offset": 1.0,
        "halve_n": True,
        "n_cap": 8.0,
        "split_ratio": 2.0,
        "prune_ratio": 0.2,
    },
    "r_4_01": {
        "offset": 1.0,
        "halve_n": True,
        "n_cap": 8.0,
        "split_ratio": 4.0,
        "prune_ratio": 0.1,
    },
    "r_15_05": {
        "offset": 1.0,
        "halve_n": True,
        "n_cap": 8.0,
        "split_ratio": 1.5,
        "prune_ratio": 0.5,
    },
}


# replay variants: name -> knobs changed from the replay defaults.
REPLAY_VARIANTS: dict[str, dict] = {
    "x_growth10": {"refit_growth": 0.1},
    "x_growth50": {"refit_growth": 0.5},
    "x_passes2": {"passes": 2},
    "x_start4": {"refit_start": 4.0},  # not measured
    "x_window": {"reset_buffer": False},  # detection-free: a sliding window, no reset
    "x_trim05": {"trim": 0.05},
    "x_trim10": {"trim": 0.1},
    "x_trim20": {"trim": 0.2},
    "x_trim07": {"trim": 0.07},
    "x_trim05_g10": {"trim": 0.05, "refit_growth": 0.1},
}


def register_variants(names: list[str]) -> None:
    for name in names:
        if name in catalog.CATALOG:
            continue
        if name in REPLAY_VARIANTS:
            base, knobs = ReplaySplitAndPrune, REPLAY_VARIANTS[name]
        else:
            base, knobs = BalancedSplitAndPrune, VARIANTS[name]
        catalog.register(name, name, type(name, (base,), {"name": name, **knobs}))


def build_targets(paper_dir: Path, bins: int, names: list[str]) -> list[densities.Density]:
    out = []
    for name in names:
        if name in PAPER:
            d = densities.get("image", bins, path=str(paper_dir / PAPER[name]))
            d.name = name
        else:
            d = densities.get(name, bins)
        out.append(d)
    return out


def fit(targets, methods, seed, args) -> list[dict]:
    cfg = RunConfig(
        targets=[t.name for t in targets],
        nodes=args.nodes,
        methods=methods,
        steps=args.steps,
        batch=args.batch,
        bins=args.bins,
        seed=seed,
        frames=0,
        threads=1,
    )
    run = Run(cfg, targets)
    run.advance()
    return run.results


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--paper-images", required=True, type=Path, help="folder of the paper's PNGs")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--bins", type=int, default=100)
    p.add_argument("--targets", default="spiral,blur_circles,qr,words")
    p.add_argument(
        "--variants",
        default="",
        help=f"comma list of {', '.join([*VARIANTS, *REPLAY_VARIANTS])} or 'all' (default none)",
    )
    p.add_argument("--goal", default="replay", help="the method the goal check is for")
    p.add_argument("--no-chain", action="store_true", help="skip the chain protocol")
    p.add_argument("--no-fresh", action="store_true", help="skip the fresh-nodes protocol")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    variants = (
        list(VARIANTS) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    )
    register_variants(variants)
    methods = ["sp", "bsp", "replay", *variants]
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.targets.split(",")
    print(
        f"K = {args.nodes}, {args.steps} steps x batch {args.batch}, {args.bins} bins, "
        f"seeds {seeds}, methods {methods} (measured under shared load)",
        flush=True,
    )
    protocols = [] if args.no_fresh else [("fresh nodes", False)]
    protocols += [] if args.no_chain else [("chain " + " -> ".join(CHAIN), True)]
    goal_ok = True
    for label, chain in protocols:
        rows: dict[str, list[dict]] = {}
        t0 = time.perf_counter()
        for seed in seeds:
            if chain:
                res = fit(build_targets(args.paper_images, args.bins, CHAIN), methods, seed, args)
                for r in res:
                    if r["target"] in names:
                        rows.setdefault(r["target"], []).append(r)
            else:
                for d in build_targets(args.paper_images, args.bins, names):
                    rows.setdefault(d.name, []).append(fit([d], methods, seed, args)[0])
            print(f"  {label}: seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        print(f"\n== {label}: mean over seeds {seeds} ==")
        head = f"{'target':13s} {'alloc':>7s} {'data':>7s}" + "".join(f" {m:>14s}" for m in methods)
        print(head + "   (each method: KL [KL/data floor])")
        for name, rs in rows.items():
            data = statistics.mean(r["floors"]["data_floor"] for r in rs)
            alloc = statistics.mean(r["floors"]["allocation_floor"] for r in rs)
            line = f"{name:13s} {alloc:7.4f} {data:7.4f}"
            for m in methods:
                kl = statistics.mean(r["methods"][m]["kl"] for r in rs)
                line += f" {kl:7.4f} [{kl / data:4.2f}]"
            print(line)
        print(
            f"{'seconds / sp':27s}"
            + "".join(
                f" {statistics.mean(r['methods'][m]['seconds'] / r['methods']['sp']['seconds'] for rs in rows.values() for r in rs):14.2f}"
                for m in methods
            )
        )
        print(
            f"{'W2 (per target kind)':27s}"
            + "".join(
                f" {statistics.mean(r['methods'][m]['wasserstein'] for rs in rows.values() for r in rs):14.4f}"
                for m in methods
            )
        )
        g = args.goal
        print(f"goal: {g} mean KL <= 1.3 x mean data floor; {g} seconds <= 2 x sp seconds")
        for name, rs in rows.items():
            data = statistics.mean(r["floors"]["data_floor"] for r in rs)
            kl = statistics.mean(r["methods"][g]["kl"] for r in rs)
            sd = statistics.stdev(r["methods"][g]["kl"] for r in rs) if len(rs) > 1 else 0.0
            sec = statistics.mean(r["methods"][g]["seconds"] for r in rs)
            sp_sec = statistics.mean(r["methods"]["sp"]["seconds"] for r in rs)
            ok = kl <= 1.3 * data and sec <= 2 * sp_sec
            goal_ok &= ok
            print(
                f"  {name:13s} {g} {kl:.4f} (sd {sd:.4f}) = {kl / data:.2f} x data floor "
                f"{data:.4f}; {sec:.2f} s vs sp {sp_sec:.2f} s = {sec / sp_sec:.2f} x: "
                f"{'met' if ok else 'NOT met'}"
            )
    print(f"\nall goals met: {goal_ok}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
