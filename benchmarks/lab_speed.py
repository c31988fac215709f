"""Speed of the live lab, measured through the page in headless Chromium (selenium).

    python benchmarks/lab_speed.py              # ~1 minute
    python benchmarks/lab_speed.py --seconds 8  # longer windows, steadier figures
    python benchmarks/lab_speed.py --screenshot gifs/lab.png

It starts `toylab lab` as a real server process and prints:
  - time to ready: process start until the page answers (imports included);
  - at K = 10,000 with gd and sp, at full speed: frames drawn per second by the page (counted in
    its requestAnimationFrame draw, not frames sent) and training steps per second, next to the
    step rate of the same fit run the way `toylab run` runs it (a Run, same flags, in this
    process, timed just before and just after the page, mean of the two), and their ratio;
  - the same at K = 100,000;
  - the latency of a parameter change: from the page sending a new setup (the seed input
    changed while playing) to the first frame of the new run drawn on screen (median, max).
The issue's targets: >= 30 frames/s and >= half the `toylab run` step rate at K = 10,000,
>= 10 frames/s at K = 100,000, a change on screen within 100 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1300,900")


def start_server(runs: Path) -> tuple[subprocess.Popen, str, float]:
    """`toylab lab` in a subprocess; (process, URL, seconds until the page answered)."""
    import httpx

    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "toylab", "lab", "--no-browser", "--port", "0"]
        + ["--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    line = proc.stdout.readline()
    match = re.search(r"serving on (http://\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"toylab lab did not start: {line!r}")
    url = match.group(1)
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.02)
    return proc, url, time.perf_counter() - t0


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next(p for p in map(shutil.which, ("chromium", "chromium-browser")) if p)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def js(driver, expr: str):
    return driver.execute_script(f"return {expr};")


def wait(driver, cond: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not js(driver, f"!!({cond})"):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {cond}: {js(driver, 'window.lab.error')}")
        time.sleep(0.05)


def page_rates(driver, url: str, seconds: float, warm: float = 1.5) -> tuple[float, float]:
    """(frames drawn per second, training steps per second) over `seconds` of play."""
    driver.get("about:blank")
    driver.get(url)
    wait(driver, "window.lab && lab.connected && lab.frame")
    driver.find_element("id", "play").click()
    time.sleep(warm)
    d0, s0, t0 = js(driver, "[lab.drawn, lab.frame.header.global_step, performance.now()]")
    time.sleep(seconds)
    d1, s1, t1 = js(driver, "[lab.drawn, lab.frame.header.global_step, performance.now()]")
    driver.find_element("id", "play").click()
    dt = (t1 - t0) / 1000
    return (d1 - d0) / dt, (s1 - s0) / dt


_RUNS: dict[int, object] = {}


def run_step_rate(nodes: int, seconds: float) -> float:
    """Steps per second of a Run as `toylab run` steps it (spiral, gd and sp, the lab's
    1,000,000-step setup, so frames are as sparse as the lab's), over about `seconds`."""
    from toylab.cli.driver import set_threads
    from toylab.config import RunConfig
    from toylab.run import Run

    set_threads(None)
    if nodes not in _RUNS:
        run = Run(RunConfig(targets=["spiral"], nodes=nodes, steps=1_000_000))
        run.advance(lambda: run.global_step >= 200)  # warm
        _RUNS[nodes] = run
    run = _RUNS[nodes]
    start = run.global_step
    t0 = time.perf_counter()
    run.advance(lambda: time.perf_counter() - t0 >= seconds)
    return (run.global_step - start) / (time.perf_counter() - t0)


def compare(driver, url: str, nodes: int, seconds: float) -> tuple[float, float, float]:
    """(page frames/s, page steps/s, run steps/s); the run is timed just before and just after
    the page (mean of the two), so both sides see about the same load on a shared machine."""
    before = run_step_rate(nodes, seconds / 2)
    fps, rate = page_rates(driver, url, seconds)
    after = run_step_rate(nodes, seconds / 2)
    return fps, rate, (before + after) / 2


def change_latency(driver, url: str, repeats: int) -> list[float]:
    """Milliseconds from a new setup sent (seed changed, while playing) to its frame drawn."""
    driver.get("about:blank")
    driver.get(url)
    wait(driver, "window.lab && lab.connected && lab.frame")
    driver.find_element("id", "play").click()
    time.sleep(1.0)
    out = []
    for seed in range(1, repeats + 1):
        before = js(driver, "lab.setupId")
        driver.execute_script(
            "const e = document.getElementById('seed'); e.value = arguments[0];"
            " e.dispatchEvent(new Event('change'));",
            seed,
        )
        wait(driver, f"lab.drawnSetupId > {before}", 30)
        out.append(js(driver, "lab.setupLatency"))
        time.sleep(0.3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring window per figure")
    parser.add_argument("--repeats", type=int, default=7, help="parameter changes timed")
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the page here")
    parser.add_argument(
        "--screenshot-only", action="store_true", help="take the screenshot, measure nothing"
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    if args.screenshot_only:
        if args.screenshot is None:
            parser.error("--screenshot-only needs --screenshot PATH")
        with tempfile.TemporaryDirectory() as tmp:
            proc, url, _ = start_server(Path(tmp))
            driver = browser()
            try:
                take_screenshot(driver, url, args.screenshot)
            finally:
                driver.quit()
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
        return
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, ready = start_server(Path(tmp))
        driver = browser()
        try:
            base = url + "#t=spiral&m=gd,sp&steps=1000000&sp=0"
            rows = [
                (
                    "K 10,000 gd+sp histogram",
                    *compare(driver, base + "&nodes=10000&v=hist", 10_000, args.seconds),
                ),
                (
                    "K 10,000 gd+sp points",
                    *compare(driver, base + "&nodes=10000&v=points", 10_000, args.seconds),
                ),
                (
                    "K 100,000 gd+sp histogram",
                    *compare(driver, base + "&nodes=100000&v=hist", 100_000, args.seconds),
                ),
            ]
            lat = change_latency(driver, base + "&nodes=10000&v=hist", args.repeats)
            if args.screenshot:
                take_screenshot(driver, url, args.screenshot)
        finally:
            driver.quit()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=30)
    load = (load0 + os.getloadavg()[0]) / 2
    print(
        f"\ntoylab lab through headless Chromium; {os.cpu_count()} cores, load average "
        f"{load:.1f} while measuring (browser, server and run share the cores)"
    )
    print(f"  time to ready (process start -> page served): {ready:.2f} s; Ctrl-C exit {code}")
    print(f"  {'view':<28} {'frames/s':>9} {'lab steps/s':>12} {'run steps/s':>12} {'ratio':>6}")
    for name, fps, rate, ref in rows:
        print(f"  {name:<28} {fps:9.1f} {rate:12,.0f} {ref:12,.0f} {rate / ref:6.2f}")
    print(
        f"  parameter change -> new run on screen (K 10,000, playing): median "
        f"{statistics.median(lat):.0f} ms, max {max(lat):.0f} ms over {len(lat)} changes"
    )


def take_screenshot(driver, url: str, path: Path) -> None:
    """The README's picture: blur_circles at K = 48, mid-run, teaching overlays on."""
    driver.set_window_size(1330, 820)
    driver.get("about:blank")
    driver.get(url + "#t=blur_circles&nodes=48&m=gd,sp&sp=2")
    wait(driver, "window.lab && lab.connected && lab.frame")
    driver.find_element("id", "play").click()
    wait(driver, "lab.step >= 120", 60)
    driver.find_element("id", "play").click()
    time.sleep(0.5)
    tmp = path.with_suffix(".full.png")
    driver.save_screenshot(str(tmp))
    from PIL import Image

    with Image.open(tmp) as im:
        im = im.convert("RGB")
        im.thumbnail((1100, 1100))
        im = im.quantize(colors=128)
        im.save(path, optimize=True)
    tmp.unlink()
    print(f"screenshot: {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
