"""The paper's quality table: KL of gradient descent and Split-and-Prune against real samples.

    /work/venv/bin/python benchmarks/quality.py                      # every target, 3 seeds
    /work/venv/bin/python benchmarks/quality.py --targets spiral --seeds 0 --steps 2000

K = 10,000 nodes, 10,000 steps, batch 10, 100 x 100 bins (the paper's figure). Targets: ours
(spiral, blur_circles, qr, words) and the paper's own images through our `image` target
(paper:spiral = sprial.png, paper:qr = QR_code.png, paper:words = words.png, from
--paper-images DIR or the reference venv's distribution_playground/density_map_imgs) and the
reference's procedural blur circles (paper:blur_circles, its array written by the reference
venv). The paper's numbers are printed beside each row.

Columns: KL(P || Q) in nats of gd and sp (or --methods, e.g. gd,sp,bsp), the real-samples KL (K i.i.d. samples), stray nodes
(in cells outside the target's support), stray-KL (the part of the KL those cells add: with the
1e-20 floor one node alone in an empty cell adds (1/K) ln(1e20 bins^2 / K), 0.0046 at
K = 10,000 and 100 bins), unmoved nodes (still at their initial position: never matched) and
seconds (each method's own step time); the KL floors of toylab.floors (alloc floor: K nodes
in largest-remainder proportion to Q; data floor: the same from the histogram of the N = steps
x batch points the run drew; both mean over seeds), the best method's KL / data floor, and W2
per method (toylab.metrics.wasserstein at target end: exact, or sliced when K x cells is big).

stray-KL can exceed the whole KL: the in-support cells contribute a negative part.

Checks (the issue's claims): on our targets sp < real and gd >= 10 x real; on the paper's
images sp <= the paper's sp and gd within 15-30.

Last section: the paper's own protocol, one run through the cycle gaussian -> blur circles ->
QR -> spiral -> words with the nodes carried over from target to target (--cycle, --no-cycle).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import early_threads  # noqa: E402

THREADS = early_threads()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import _common as C  # noqa: E402

OUR_TARGETS = ["spiral", "blur_circles", "qr", "words"]
PAPER_TARGETS = ["paper:spiral", "paper:blur_circles", "paper:qr", "paper:words"]
# The reference's experiment shows the targets in a cycle, nodes carried over (ddn-2d-notes.md).
CYCLE = ["gaussian", "paper:blur_circles", "paper:qr", "paper:spiral", "paper:words"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--targets",
        default=",".join(OUR_TARGETS + PAPER_TARGETS),
        help="comma list (default %(default)s)",
    )
    p.add_argument(
        "--paper-images", default=None, help="folder with sprial.png, QR_code.png, words.png"
    )
    p.add_argument(
        "--ref-python",
        default=C.DEFAULT_REF_PYTHON,
        help="reference venv python, only to locate the paper's PNGs and build its blur circles (optional)",
    )
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--bins", type=int, default=100)
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds (default %(default)s)")
    p.add_argument("--methods", default="gd,sp")
    p.add_argument(
        "--max-splits", type=int, default=1, help="sp splits per step (1 = the paper's pace)"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--checkpoints", type=int, default=4, help="sp KL printed at this many points of the run"
    )
    p.add_argument(
        "--cycle",
        default=",".join(CYCLE),
        help="the paper's cycle of targets, nodes carried over from one to the next (default %(default)s)",
    )
    p.add_argument("--no-cycle", action="store_true", help="skip the cycle section")
    return p.parse_args()


def mean_sd(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f}±{statistics.stdev(values):.{digits}f}"


FLOOR_HEADER = ["alloc floor", "data floor", "best / data floor"]


def floor_cells(rs: list[dict], methods: list[str]) -> list[str]:
    """The KL floors (toylab.floors: allocation, and data budget from each seed's own points)
    and the best method's mean KL over the mean data floor."""
    alloc = statistics.mean(r["floors"]["allocation_floor"] for r in rs)
    data = statistics.mean(r["floors"]["data_floor"] for r in rs)
    best = min(statistics.mean(r[m]["kl"] for r in rs) for m in methods)
    return [f"{alloc:.4f}", f"{data:.4f}", f"{best / data:.2f}"]


def mean_int(values: list[int]) -> str:
    if len(values) == 1:
        return str(values[0])
    return f"{statistics.mean(values):.1f}"


def run_cycle(
    args, cycle: list[str], methods: list[str], seeds: list[int], png_dir, ref_arrays
) -> None:
    """The paper's own protocol: one run through the cycle, nodes carried over between targets.

    The paper's gd column comes from this protocol, not from a fresh uniform start: gd's nodes
    have already gathered where earlier targets had mass, which changes its stray count.
    """
    specs, skipped = C.resolve_targets(cycle, args.bins, png_dir, ref_arrays)
    print()
    if skipped or not specs:
        print("== Cycle skipped: " + "; ".join(skipped or ["no targets"]) + " ==")
        return
    print(
        f"== The paper's cycle {' -> '.join(s.label for s in specs)} (nodes carried over, {args.steps} steps each, "
        f"sp counts reset per target; mean{'±sd' if len(seeds) > 1 else ''} over {len(seeds)} seed(s)) =="
    )
    per: dict[str, list[dict]] = {}
    for seed in seeds:
        t0 = time.perf_counter()
        out = C.fit_sequence(
            specs, methods, args.nodes, args.steps, args.batch, seed, args.threads, args.max_splits
        )
        for spec, res in zip(specs, out, strict=True):
            row = {"real": res["real_kl"], "floors": res["floors"]}
            for m in methods:
                row[m] = {
                    "kl": res["methods"][m]["kl"],
                    "w2": res["methods"][m].get("wasserstein", float("nan")),
                    "stray": res["methods"][m]["stray"],
                    "stray_kl": C.stray_kl(res["nodes"][m], spec.density),
                }
            per.setdefault(spec.label, []).append(row)
        print(f"  done cycle seed {seed} in {time.perf_counter() - t0:.1f} s", flush=True)
    header = (
        ["target"]
        + [f"{m} KL" for m in methods]
        + ["real KL"]
        + [f"{m} stray" for m in methods]
        + [f"{m} stray-KL" for m in methods]
        + FLOOR_HEADER
        + [f"{m} W2" for m in methods]
        + ["paper gd/sp/real"]
    )
    rows = []
    for label, rs in per.items():
        cells = [label]
        cells += [mean_sd([r[m]["kl"] for r in rs], 3 if m == "gd" else 4) for m in methods]
        cells += [mean_sd([r["real"] for r in rs], 4)]
        cells += [mean_int([r[m]["stray"] for r in rs]) for m in methods]
        cells += [mean_sd([r[m]["stray_kl"] for r in rs], 4) for m in methods]
        cells += floor_cells(rs, methods)
        cells += [f"{statistics.mean(r[m]['w2'] for r in rs):.4f}" for m in methods]
        paper = C.PAPER_NUMBERS.get(C.paper_key(label))
        cells += ["/".join(f"{v:g}" for v in paper) if paper else "-"]
        rows.append(cells)
    print(C.table(header, rows))


def main() -> int:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    labels = [t.strip() for t in args.targets.split(",") if t.strip()]
    print("quality:", C.machine_line(args.threads), flush=True)
    print(
        f"K = {args.nodes}, {args.steps} steps, batch {args.batch}, {args.bins} bins, seeds {seeds}, "
        f"methods {methods}, max splits {args.max_splits}; one stray node alone in an empty cell costs "
        f"{C.stray_cost(args.nodes, args.bins):.4f} nats",
        flush=True,
    )

    cycle = [] if args.no_cycle else [t.strip() for t in args.cycle.split(",") if t.strip()]
    ref_arrays = None
    png_dir = None
    if any(label.startswith("paper:") for label in labels + cycle):
        why = C.check_ref_python(args.ref_python) if args.ref_python else "no --ref-python"
        if why is None:
            ref_arrays = C.reference_arrays(args.ref_python, args.bins, args.threads, C.tmpdir())[
                "arrays"
            ]
        elif not args.paper_images:
            print(
                f"reference venv not usable ({why}); paper:* targets need --paper-images DIR "
                f"(paper:blur_circles needs the venv).\n{C.REF_VENV_HELP}"
            )
        png_dir = C.locate_paper_pngs(args.paper_images, args.ref_python if why is None else None)
    specs = C.resolve_and_report(labels, args.bins, png_dir, ref_arrays)

    every = max(1, args.steps // max(1, args.checkpoints))
    t_all = time.perf_counter()
    results: dict[str, list[dict]] = {}
    for spec in specs:
        for seed in seeds:
            r = C.fit_ours(
                spec,
                methods,
                args.nodes,
                args.steps,
                args.batch,
                seed,
                args.threads,
                max_splits=args.max_splits,
                eval_every=every,
            )
            row = {"seed": seed, "real": r["real_kl"], "wall": r["wall"], "floors": r["floors"]}
            for m in methods:
                mm = r["methods"][m]
                row[m] = {
                    "kl": mm["kl"],
                    "w2": mm.get("wasserstein", float("nan")),
                    "stray": mm["stray"],
                    "stray_kl": C.stray_kl(r["nodes"][m], spec.density),
                    "unmoved": C.unmoved(r["nodes"][m], seed),
                    "seconds": mm["seconds"],
                    "curve": [
                        (row_["step"], row_["kl"]) for row_ in r["kl_rows"] if row_["method"] == m
                    ],
                }
            results.setdefault(spec.label, []).append(row)
            print(
                f"  done {spec.label} seed {seed} in {r['wall']:.1f} s: "
                + ", ".join(f"{m} KL {row[m]['kl']:.4f} stray {row[m]['stray']}" for m in methods)
                + f", real {row['real']:.4f}",
                flush=True,
            )

    # Per seed.
    print()
    print("== Per seed ==")
    header = ["target", "seed", "real KL"]
    for m in methods:
        header += [f"{m} KL", f"{m} stray", f"{m} stray-KL", f"{m} unmoved", f"{m} s"]
    rows = []
    for label, rs in results.items():
        for r in rs:
            cells = [label, str(r["seed"]), f"{r['real']:.4f}"]
            for m in methods:
                x = r[m]
                cells += [
                    f"{x['kl']:.4f}",
                    str(x["stray"]),
                    f"{x['stray_kl']:.4f}",
                    str(x["unmoved"]),
                    f"{x['seconds']:.1f}",
                ]
            rows.append(cells)
    print(C.table(header, rows))

    # Per target, with the paper's numbers.
    print()
    print(
        f"== Per target (mean{'±sd' if len(seeds) > 1 else ''} over {len(seeds)} seed(s)); paper = gd/sp/real of the paper's figure =="
    )
    header = (
        ["target"]
        + [f"{m} KL" for m in methods]
        + ["real KL"]
        + [f"{m} stray" for m in methods]
        + [f"{m} stray-KL" for m in methods]
        + [f"{m} s" for m in methods]
        + FLOOR_HEADER
        + [f"{m} W2" for m in methods]
        + ["paper gd/sp/real"]
    )
    rows = []
    for label, rs in results.items():
        cells = [label]
        cells += [mean_sd([r[m]["kl"] for r in rs], 3 if m == "gd" else 4) for m in methods]
        cells += [mean_sd([r["real"] for r in rs], 4)]
        cells += [mean_int([r[m]["stray"] for r in rs]) for m in methods]
        cells += [mean_sd([r[m]["stray_kl"] for r in rs], 4) for m in methods]
        cells += [f"{statistics.mean(r[m]['seconds'] for r in rs):.1f}" for m in methods]
        cells += floor_cells(rs, methods)
        cells += [f"{statistics.mean(r[m]['w2'] for r in rs):.4f}" for m in methods]
        paper = C.PAPER_NUMBERS.get(C.paper_key(label))
        cells += ["/".join(f"{v:g}" for v in paper) if paper else "-"]
        rows.append(cells)
    print(C.table(header, rows))

    # sp KL over the run.
    if "sp" in methods:
        print()
        print("== sp KL during the run (mean over seeds) ==")
        steps_logged = (
            [s for s, _ in results[next(iter(results))][0]["sp"]["curve"]] if results else []
        )
        header = ["target"] + [f"step {s}" for s in steps_logged]
        rows = []
        for label, rs in results.items():
            curves = [dict(r["sp"]["curve"]) for r in rs]
            rows.append(
                [label] + [f"{statistics.mean(c[s] for c in curves):.4f}" for s in steps_logged]
            )
        print(C.table(header, rows))

    # The claims.
    print()
    print("== Checks ==")
    header = ["target", "claim", "measured", "ok"]
    rows = []
    for label, rs in results.items():
        real = statistics.mean(r["real"] for r in rs)
        sp = statistics.mean(r["sp"]["kl"] for r in rs) if "sp" in methods else None
        gd = statistics.mean(r["gd"]["kl"] for r in rs) if "gd" in methods else None
        paper = C.PAPER_NUMBERS.get(C.paper_key(label))
        if sp is not None:
            worst = max(r["sp"]["kl"] - r["real"] for r in rs)
            rows.append(
                [
                    label,
                    "sp KL < real KL",
                    f"{sp:.4f} vs {real:.4f} (worst seed diff {worst:+.4f})",
                    "yes" if sp < real else "NO",
                ]
            )
        if not label.startswith("paper:"):
            if gd is not None:
                rows.append(
                    [
                        label,
                        "gd KL >= 10 x real",
                        f"{gd:.2f} = {gd / real:.0f} x real",
                        "yes" if gd >= 10 * real else "NO",
                    ]
                )
        elif paper is not None:
            if sp is not None:
                rows.append(
                    [
                        label,
                        f"sp KL <= paper {paper[1]}",
                        f"{sp:.4f}",
                        "yes" if sp <= paper[1] else "NO",
                    ]
                )
            if gd is not None:
                rows.append(
                    [
                        label,
                        "gd KL in 15-30",
                        f"{gd:.2f} (paper {paper[0]})",
                        "yes" if 15 <= gd <= 30 else "NO",
                    ]
                )
    print(C.table(header, rows))
    if cycle:
        run_cycle(args, cycle, methods, seeds, png_dir, ref_arrays)
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s; {C.machine_line(args.threads)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
