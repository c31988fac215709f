"""Headless Chromium for the browser tests (Debian's chromium + chromium-driver, driven by
selenium), shared by the report and lab tests; skips with the reason where either is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium webdriver with its own profile folder, quit afterwards."""
    binary, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
