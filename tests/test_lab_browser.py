"""The lab page in a real browser: headless Chromium (selenium) against a real uvicorn server on
a free loopback port. Skipped, with the reason, where Chromium or chromedriver is missing."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from browser_helper import chromium

import toylab

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from toylab.lab.server import create_app

    runs = tmp_path_factory.mktemp("lab-runs")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(create_app(runs_dir=runs), log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/", runs
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def lab(driver, expr: str):
    return driver.execute_script(f"return window.lab.{expr};")


def wait_for(driver, condition: str, timeout: float = 60.0):
    """Poll a JavaScript condition on window.lab until it holds (or fail with the page state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(f"const lab = window.lab; return !!({condition});"):
            return
        time.sleep(0.05)
    state = driver.execute_script(
        "const l = window.lab; return {step: l.step, kl: l.kl, real: l.realKl, error: l.error,"
        " message: l.message, connected: l.connected};"
    )
    raise AssertionError(f"timed out waiting for {condition}; page state: {state}")


def settled_step(driver, quiet: float = 0.6, timeout: float = 30.0) -> int:
    """The step counter once no frame has arrived for `quiet` seconds (paused and drawn)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        seq = lab(driver, "drawnSeq")
        if seq != last:
            last, since = seq, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return lab(driver, "step")
        time.sleep(0.05)
    raise AssertionError("frames kept arriving after pause")


def open_page(driver, url: str) -> None:
    driver.get("about:blank")
    driver.get(url)
    wait_for(driver, "lab.connected && lab.target && lab.frame", 60)


def test_spiral_sp_falls_below_real_samples_then_pause_and_step_moves_one(browser, server):
    url, _ = server
    open_page(browser, url + "#t=spiral&nodes=2000&m=gd,sp&sp=0")
    assert lab(browser, "target.nodes") == 2000
    browser.find_element("id", "play").click()
    wait_for(browser, "lab.kl.sp !== undefined && lab.realKl && lab.kl.sp < lab.realKl", 90)
    assert lab(browser, "kl.gd") > lab(browser, "realKl")  # gd's dead nodes keep it above
    browser.find_element("id", "play").click()  # pause
    wait_for(browser, "!lab.playing")
    before = settled_step(browser)
    browser.find_element("id", "step").click()
    wait_for(browser, f"lab.step !== {before}", 60)
    time.sleep(0.5)
    assert lab(browser, "step") == before + 1
    assert browser.find_element("id", "step-counter").text.startswith(f"step {before + 1:,}")


def test_drawing_changes_the_target_and_a_copied_link_restores_it(browser, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    url, _ = server
    open_page(browser, url + "#t=spiral&nodes=64&m=gd,sp,kmeans&seed=3")
    spiral = np.array(lab(browser, "target.array"))
    # Small K: the teaching overlays; clicking a node shows its share and pins its region.
    browser.find_element("id", "step").click()
    wait_for(browser, "lab.step === 1", 60)
    canvas = browser.find_element("css selector", "#panel-sp canvas")
    x, y = lab(browser, "frame.arrays.sp.pos.slice(0, 2)")
    size = canvas.size["width"]
    dx, dy = (x + 1) / 2 * size - size / 2, (1 - y) / 2 * size - size / 2
    ActionChains(browser).move_to_element_with_offset(canvas, dx, dy).click().perform()
    wait_for(browser, "lab.pins && lab.pins.method === 'sp'", 20)
    tip = browser.find_element("id", "tooltip").text
    assert "sp node" in tip and "match share" in tip and "region" in tip
    Select(browser.find_element("id", "target")).select_by_value("drawing")
    wait_for(browser, "lab.error !== '' ", 60)
    assert "drawing is empty" in lab(browser, "error")
    canvas = browser.find_element("id", "draw")
    # A blob in the top-left quarter of the square: drag the brush across it.
    (
        ActionChains(browser)
        .move_to_element_with_offset(canvas, -80, -80)
        .click_and_hold()
        .move_by_offset(30, 0)
        .move_by_offset(0, 30)
        .move_by_offset(-30, 0)
        .release()
        .perform()
    )
    wait_for(browser, "lab.target.setup.target === 'drawing'", 60)
    drawn = np.array(lab(browser, "target.array")).reshape(100, 100)
    assert not np.allclose(drawn.ravel(), spiral)
    assert drawn[:50, :50].sum() > 0.99  # the mass is where the brush went
    wait_for(browser, "document.getElementById('link').value.includes('draw=')", 60)
    link = browser.find_element("id", "link").get_attribute("value")
    assert "t=drawing" in link and "draw=" in link and "seed=3" in link
    open_page(browser, link)
    restored = np.array(lab(browser, "target.array")).reshape(100, 100)
    np.testing.assert_allclose(restored, drawn, rtol=1e-6)
    assert lab(browser, "target.methods") == ["gd", "sp", "kmeans"]
    assert browser.find_element("id", "seed").get_attribute("value") == "3"
    # A registry target's parameters travel in the link too.
    Select(browser.find_element("id", "target")).select_by_value("spiral")
    turns = browser.find_element("id", "p.turns")
    turns.clear()
    turns.send_keys("2.5\t")
    wait_for(browser, "lab.target.setup.params && lab.target.setup.params.turns === 2.5", 60)
    wait_for(browser, "document.getElementById('link').value.includes('p.turns=2.5')", 60)
    open_page(browser, browser.find_element("id", "link").get_attribute("value"))
    assert browser.find_element("id", "p.turns").get_attribute("value") == "2.5"
    assert lab(browser, "target.setup.params.turns") == 2.5


def test_save_run_from_the_page_is_read_by_load_run(browser, server):
    url, runs = server
    open_page(browser, url + "#t=rings&nodes=100&m=gd,sp&steps=50&sp=0")
    browser.find_element("id", "play").click()
    wait_for(browser, "lab.frame.header.done", 60)
    browser.find_element("id", "save").click()
    wait_for(browser, "lab.saved", 60)
    path = Path(lab(browser, "saved"))
    assert path.parent == runs
    record = toylab.load_run(path)
    assert record.config.targets == ["rings"] and record.config.nodes == 100
    assert record.metrics["targets"][0]["methods"]["sp"]["steps"] == 50
    assert (path / "comparison.gif").is_file()
