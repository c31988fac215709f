"""Speed and quality of our Split-and-Prune against the reference (sddn), same config both ways.

    /work/venv/bin/python benchmarks/vs_reference.py --ref-python /work/refvenv/bin/python

Part 1 (K = 2,000, 1,800 steps, batch 40, the reference's small experiment): on each target,
our `sp` (toylab.fit, methods="sp") and the reference loop (benchmarks/reference_driver.py in
the reference venv, a subprocess) fit the SAME density array; both final node sets are scored
by `toylab.evaluate` on that density. Printed: both times, the ratio, both KLs, the
real-samples KL (K i.i.d. samples) and stray nodes.

Part 2 (K = 10,000, batch 10): the reference slows down as its K x K statistics fill, so it
runs a few hundred steps under a time budget and its per-step time is reported over windows
(default steps 0-100, 400-500, 700-800); ours runs the full 10,000 steps, timed per step too.

Threads: the same count both ways (default 1): OMP/MKL/OPENBLAS/NUMEXPR variables for both
processes, torch.set_num_threads in both. Timings on a shared machine are noisy: the load
average is printed with the results.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import early_threads  # noqa: E402

THREADS = early_threads()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import _common as C  # noqa: E402
import numpy as np  # noqa: E402

DEFAULT_TARGETS = "blur_circles,spiral,paper:spiral,paper:qr,paper:words"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--ref-python",
        default=C.DEFAULT_REF_PYTHON,
        help="python of the reference venv (%(default)s)",
    )
    p.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help="comma list: our target names and/or paper:spiral, paper:qr, paper:words, paper:blur_circles (default %(default)s)",
    )
    p.add_argument(
        "--paper-images",
        default=None,
        help="folder with sprial.png, QR_code.png, words.png (default: the reference venv's distribution_playground)",
    )
    p.add_argument("--bins", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="threads for BOTH sides (default 1)")
    p.add_argument("--nodes", type=int, default=2000)
    p.add_argument("--steps", type=int, default=1800)
    p.add_argument("--batch", type=int, default=40)
    p.add_argument("--seeds", default="0", help="comma list of seeds (each runs both sides)")
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timing repeats of ours (median reported; KL is deterministic)",
    )
    p.add_argument("--skip-small", action="store_true", help="skip part 1")
    p.add_argument("--skip-big", action="store_true", help="skip part 2")
    p.add_argument("--big-target", default="blur_circles")
    p.add_argument("--big-nodes", type=int, default=10_000)
    p.add_argument("--big-batch", type=int, default=10)
    p.add_argument("--big-steps", type=int, default=10_000, help="our steps in part 2")
    p.add_argument(
        "--big-ref-steps", type=int, default=800, help="reference steps in part 2 (at most)"
    )
    p.add_argument(
        "--big-ref-seconds",
        type=float,
        default=300,
        help="time budget of the reference loop in part 2 (default %(default)s s)",
    )
    p.add_argument(
        "--windows",
        default="auto",
        help="step windows for per-step times, e.g. 0-100,400-500,700-800 (default: every 100 steps the reference reached)",
    )
    return p.parse_args()


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def small(args, specs, ref_ok: bool, work: str) -> list[dict]:
    import toylab

    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    # Warm-up: the first fit pays lazy imports (scipy's KD-tree, ...); keep it out of the timing.
    toylab.fit(
        "gaussian",
        nodes=200,
        methods="sp",
        steps=20,
        batch=args.batch,
        frames=0,
        threads=args.threads,
    )
    for spec in specs:
        arr_path = os.path.join(work, f"{spec.label.replace(':', '_')}.npy")
        np.save(arr_path, np.asarray(spec.density.array))
        for seed in seeds:
            runs = [
                C.fit_ours(spec, ["sp"], args.nodes, args.steps, args.batch, seed, args.threads)
                for _ in range(max(1, args.repeats))
            ]
            ours = runs[0]
            sp = ours["methods"]["sp"]
            row = {
                "target": spec.label,
                "seed": seed,
                "via": spec.via,
                "ours_wall": statistics.median(r["wall"] for r in runs),
                "ours_cpu": statistics.median(r["cpu"] for r in runs),
                "ours_step_s": statistics.median(r["methods"]["sp"]["seconds"] for r in runs),
                "ours_kl": sp["kl"],
                "ours_stray": sp["stray"],
                "ours_stray_kl": C.stray_kl(ours["nodes"]["sp"], spec.density),
                "real_kl": ours["real_kl"],
            }
            if ref_ok:
                out_nodes = os.path.join(work, f"ref_{spec.label.replace(':', '_')}_{seed}.npy")
                ref = C.run_driver(
                    args.ref_python,
                    [
                        "fit",
                        "--density",
                        arr_path,
                        "--nodes",
                        str(args.nodes),
                        "--steps",
                        str(args.steps),
                        "--batch",
                        str(args.batch),
                        "--seed",
                        str(seed),
                        "--threads",
                        str(args.threads),
                        "--out-nodes",
                        out_nodes,
                    ],
                    args.threads,
                )
                ref_nodes = np.load(out_nodes)
                score = toylab.evaluate(ref_nodes, spec.density)
                row |= {
                    "ref_loop": ref["loop_seconds"],
                    "ref_cpu": ref["loop_cpu_seconds"],
                    "ref_process": ref["process_seconds"],
                    "ref_kl": score["kl"],
                    "ref_stray": score["stray"],
                    "ref_stray_kl": C.stray_kl(ref_nodes, spec.density),
                    "ref_splits": ref["splits"],
                }
            rows.append(row)
            print(
                f"  done {spec.label} seed {seed}: ours {row['ours_wall']:.2f}s KL {row['ours_kl']:.4f}"
                + (f" | reference {row['ref_loop']:.1f}s KL {row['ref_kl']:.4f}" if ref_ok else ""),
                flush=True,
            )
    return rows


def print_small(args, rows, ref_ok: bool) -> None:
    print()
    print(
        f"== Part 1: K = {args.nodes}, {args.steps} steps, batch {args.batch}, {args.bins} bins, threads {args.threads} =="
    )
    print(
        "ours = toylab.fit(methods='sp'), median of repeats, wall and CPU seconds (includes setup, sampling,"
    )
    print(
        "evaluation); ours step = sp's own step time; ref = the reference loop (sampling, matching, sddn, update)."
    )
    header = [
        "target",
        "seed",
        "ours s",
        "ours cpu",
        "ours step",
        "ref s",
        "ref cpu",
        "ref/ours",
        "cpu ratio",
        "ours KL",
        "ref KL",
        "real KL",
        "stray o/r",
        "stray-KL o/r",
        "ref splits",
    ]
    out = []
    for r in rows:
        base = [
            r["target"],
            str(r["seed"]),
            fmt_s(r["ours_wall"]),
            fmt_s(r["ours_cpu"]),
            fmt_s(r["ours_step_s"]),
        ]
        if ref_ok:
            out.append(
                base
                + [
                    fmt_s(r["ref_loop"]),
                    fmt_s(r["ref_cpu"]),
                    f"{r['ref_loop'] / r['ours_wall']:.0f}x",
                    f"{r['ref_cpu'] / r['ours_cpu']:.0f}x",
                    f"{r['ours_kl']:.4f}",
                    f"{r['ref_kl']:.4f}",
                    f"{r['real_kl']:.4f}",
                    f"{r['ours_stray']}/{r['ref_stray']}",
                    f"{r['ours_stray_kl']:.4f}/{r['ref_stray_kl']:.4f}",
                    str(r["ref_splits"]),
                ]
            )
        else:
            out.append(
                base
                + [
                    "-",
                    "-",
                    "-",
                    "-",
                    f"{r['ours_kl']:.4f}",
                    "-",
                    f"{r['real_kl']:.4f}",
                    f"{r['ours_stray']}/-",
                    f"{r['ours_stray_kl']:.4f}/-",
                    "-",
                ]
            )
    print(C.table(header, out))
    if not ref_ok:
        return
    print()
    print(
        "Per target (mean over seeds). The issue's target: ours >= 100x faster at equal or better KL."
    )
    print(
        "ref/ours: wall; cpu: CPU seconds (steadier on a shared machine); ref/step: vs sp's own step time."
    )
    header = [
        "target",
        "ref/ours",
        "cpu ratio",
        "ref/step",
        "ours KL",
        "ref KL",
        "KL diff",
        "real KL",
        "100x?",
        "KL <= ref?",
    ]
    out = []
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["target"], []).append(r)
    for t, rs in by.items():

        def mean(key: str, rs: list[dict] = rs) -> float:
            return statistics.mean(r[key] for r in rs)

        ratio, cpu_ratio = mean("ref_loop") / mean("ours_wall"), mean("ref_cpu") / mean("ours_cpu")
        ratio_step = mean("ref_loop") / mean("ours_step_s")
        ok, rk = mean("ours_kl"), mean("ref_kl")
        out.append(
            [
                t,
                f"{ratio:.0f}x",
                f"{cpu_ratio:.0f}x",
                f"{ratio_step:.0f}x",
                f"{ok:.4f}",
                f"{rk:.4f}",
                f"{ok - rk:+.4f}",
                f"{mean('real_kl'):.4f}",
                "yes" if min(ratio, cpu_ratio) >= 100 else "NO",
                "yes" if ok <= rk else "NO",
            ]
        )
    print(C.table(header, out))


def parse_windows(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        a, b = part.split("-")
        out.append((int(a), int(b)))
    return out


def big(args, ref_ok: bool, work: str) -> None:
    import densities
    import toylab
    from toylab.cli.driver import set_threads
    from toylab.config import RunConfig
    from toylab.run import Run

    name = args.big_target
    if name not in densities.names():
        print(f"\n== Part 2 skipped: target {name!r} is not registered ==")
        return
    density = densities.get(name, args.bins)

    # Ours: the full run, timed per step (wall and CPU) through Run's on_step callback.
    cfg = RunConfig(
        targets=[name],
        nodes=args.big_nodes,
        methods=["sp"],
        steps=args.big_steps,
        batch=args.big_batch,
        frames=0,
        seed=0,
        threads=args.threads,
    ).validate()
    cfg.threads = set_threads(args.threads)
    run = Run(cfg)
    stamps = []
    t0, c0 = time.perf_counter(), time.process_time()
    run.advance(should_stop=lambda: True)  # begins the target (real samples, first KL) and stops
    stamps.append((time.perf_counter(), time.process_time()))
    run.advance(on_step=lambda r, s: stamps.append((time.perf_counter(), time.process_time())))
    ours_wall, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    ours_times = np.diff(np.array(stamps), axis=0)  # (steps, 2): wall, CPU
    ours_res = run.metrics()["targets"][0]
    sp = ours_res["methods"]["sp"]

    ref = None
    if ref_ok:
        arr_path = os.path.join(work, f"big_{name}.npy")
        np.save(arr_path, np.asarray(density.array))
        out_nodes = os.path.join(work, "big_ref_nodes.npy")
        out_times = os.path.join(work, "big_ref_times.npy")
        ref = C.run_driver(
            args.ref_python,
            [
                "fit",
                "--density",
                arr_path,
                "--nodes",
                str(args.big_nodes),
                "--steps",
                str(args.big_ref_steps),
                "--batch",
                str(args.big_batch),
                "--seed",
                "0",
                "--threads",
                str(args.threads),
                "--max-seconds",
                str(args.big_ref_seconds),
                "--out-nodes",
                out_nodes,
                "--out-times",
                out_times,
            ],
            args.threads,
        )
        ref_times = np.load(out_times).reshape(-1, 2)
        ref_score = toylab.evaluate(np.load(out_nodes), density)

    print()
    print(
        f"== Part 2: K = {args.big_nodes}, batch {args.big_batch}, target {name}, threads {args.threads} =="
    )
    print(
        f"ours: {args.big_steps} steps in {ours_wall:.2f} s wall / {ours_cpu:.2f} s CPU"
        f" ({ours_wall / args.big_steps * 1e3:.3f} ms/step incl. sampling), sp step time"
        f" {sp['seconds'] / args.big_steps * 1e3:.3f} ms/step; final KL {sp['kl']:.4f}, stray {sp['stray']},"
        f" real-samples KL {ours_res['real_samples']['kl']:.4f}"
    )
    ref_done = len(ref_times) if ref is not None else 0
    if args.windows == "auto":
        span = ref_done if ref is not None else args.big_ref_steps
        windows = [(a, min(a + 100, span)) for a in range(0, span, 100)]
    else:
        windows = parse_windows(args.windows)
    header = [
        "steps",
        "ours ms/step",
        "ours cpu ms",
        "ref ms/step",
        "ref cpu ms",
        "ref/ours",
        "cpu ratio",
    ]
    rows = []
    for a, b in windows:
        o = ours_times[a:b].mean(axis=0) * 1e3
        label = f"{a}-{b}"
        if ref is not None and a < ref_done:
            if b > ref_done:
                b, label = ref_done, f"{a}-{ref_done} (partial)"
            r = ref_times[a:b].mean(axis=0) * 1e3
            rows.append(
                [
                    label,
                    f"{o[0]:.3f}",
                    f"{o[1]:.3f}",
                    f"{r[0]:.1f}",
                    f"{r[1]:.1f}",
                    f"{r[0] / o[0]:.0f}x",
                    f"{r[1] / o[1]:.0f}x",
                ]
            )
        else:
            rows.append(
                [
                    label,
                    f"{o[0]:.3f}",
                    f"{o[1]:.3f}",
                    "not reached" if ref is not None else "-",
                    "-",
                    "-",
                    "-",
                ]
            )
    o_all = ours_times.mean(axis=0) * 1e3
    rows.append(
        [f"all {len(ours_times)} (ours)", f"{o_all[0]:.3f}", f"{o_all[1]:.3f}", "-", "-", "-", "-"]
    )
    if ref is not None:
        o = ours_times[:ref_done].mean(axis=0) * 1e3
        r = ref_times.mean(axis=0) * 1e3
        rows.append(
            [
                f"first {ref_done} (both)",
                f"{o[0]:.3f}",
                f"{o[1]:.3f}",
                f"{r[0]:.1f}",
                f"{r[1]:.1f}",
                f"{r[0] / o[0]:.0f}x",
                f"{r[1] / o[1]:.0f}x",
            ]
        )
    print(C.table(header, rows))
    if ref is not None:
        last = ref_times[max(0, ref_done - 100) : ref_done, 0].mean()
        est = ref_times[:, 0].sum() + last * (args.big_steps - ref_done)
        print(
            f"reference: {ref_done} of {args.big_ref_steps} steps in {ref['loop_seconds']:.1f} s wall /"
            f" {ref['loop_cpu_seconds']:.1f} s CPU (budget {args.big_ref_seconds:.0f} s), {ref['splits']} splits,"
            f" KL after {ref_done} steps {ref_score['kl']:.4f} (stray {ref_score['stray']});"
            f" last-100-step rate {last * 1e3:.0f} ms/step."
        )
        print(
            f"reference extrapolated to {args.big_steps} steps at that rate: >= {est:.0f} s ({est / 3600:.2f} h)"
            f" vs ours {ours_wall:.1f} s: >= {est / ours_wall:.0f}x."
        )


def main() -> int:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print("vs_reference:", C.machine_line(args.threads), flush=True)
    why = C.check_ref_python(args.ref_python)
    ref_ok = why is None
    if not ref_ok:
        print(
            f"\nreference venv not usable: {why}\n{C.REF_VENV_HELP}\nRunning our side only.\n",
            flush=True,
        )
    work = C.tmpdir()
    ref_arrays = None
    if ref_ok:
        ref_arrays = C.reference_arrays(args.ref_python, args.bins, args.threads, work)["arrays"]
    png_dir = C.locate_paper_pngs(args.paper_images, args.ref_python if ref_ok else None)
    labels = [t.strip() for t in args.targets.split(",") if t.strip()]
    specs = C.resolve_and_report(labels, args.bins, png_dir, ref_arrays)
    t0 = time.perf_counter()
    if not args.skip_small and specs:
        rows = small(args, specs, ref_ok, work)
        print_small(args, rows, ref_ok)
    if not args.skip_big:
        big(args, ref_ok, work)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; {C.machine_line(args.threads)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
