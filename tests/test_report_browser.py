"""report.html in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by selenium. Skipped, with the reason, where either is missing; .ci/run installs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from toylab.cli import main as cli_main

pytestmark = pytest.mark.browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_PATHS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1200,900",
)


def _browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or pytest.skip saying what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    binary = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if binary is None:
        pytest.skip("no Chromium found (apt-get install chromium chromium-driver)")
    driver = next((p for p in DRIVER_PATHS if Path(p).is_file()), None) or shutil.which(
        "chromedriver"
    )
    if driver is None:
        pytest.skip("no chromedriver found (apt-get install chromium-driver)")
    return binary, driver


@pytest.fixture
def browser(tmp_path):
    binary, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # An explicit driver path: Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_displays_in_chromium(tmp_path, browser):
    out = tmp_path / "r"
    argv = [
        "run",
        "--target",
        "gaussian",
        "--nodes",
        "200",
        "--steps",
        "50",
        "--batch",
        "10",
        "--frames",
        "4",
        "--bins",
        "32",
        "--out",
        str(out),
        "--quiet",
    ]
    assert cli_main(argv) == 0
    browser.get((out / "report.html").resolve().as_uri())

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);"
    )
    assert len(images) >= 3  # GIF, KL curves, final.png
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, f"image {alt!r} did not decode"

    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('td[data-metric]')).map(td => "
        "[td.dataset.target, td.dataset.method, td.dataset.metric, td.textContent, "
        "td.getBoundingClientRect().width]);"
    )
    shown = {(int(t), m, k): text for t, m, k, text, _ in cells}
    assert all(width > 0 for *_, width in cells)  # laid out, not hidden
    metrics = json.loads((out / "metrics.json").read_text())
    for t, target in enumerate(metrics["targets"]):
        for method, values in target["methods"].items():
            assert shown[(t, method, "kl")] == f"{values['kl']:.4f}"
            assert shown[(t, method, "hellinger")] == f"{values['hellinger']:.4f}"
            assert shown[(t, method, "real_kl")] == f"{target['real_samples']['kl']:.4f}"
            assert shown[(t, method, "steps")] == f"{values['steps']:,}"
    assert (
        browser.execute_script("return document.getElementById('status').dataset.complete")
        == "true"
    )

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(int(height) + 40, 6000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
