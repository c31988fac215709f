"""report.html in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by selenium. Skipped, with the reason, where either is missing; .ci/run installs them."""

from __future__ import annotations

import json

import pytest
from browser_helper import chromium

from toylab.cli import main as cli_main

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


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
