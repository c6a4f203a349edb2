"""The operator console's fixtures: `zerotouch up --sandbox` on free ports, a headless Chromium, an artifacts dir."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.console.up import ConsoleUp
from tests.support.policies import REPO

INSTALL_HINT = "apt-get install -y --no-install-recommends chromium chromium-driver"


@pytest.fixture
def console_up(tmp_path: Path) -> Iterator[ConsoleUp]:
    up = ConsoleUp(tmp_path)
    try:
        up.wait_up()
        yield up
    finally:
        code = up.stop()
    assert code == 0, f"`zerotouch up` exited with {code}; see {up.log_path}"


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where screenshots go: $ZEROTOUCH_TEST_ARTIFACTS (CI keeps it), else .artifacts/ in the repo."""
    root = Path(os.environ.get("ZEROTOUCH_TEST_ARTIFACTS") or REPO / ".artifacts")
    path = root / "console" / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        # A fail, not a skip, as for PostgreSQL and Prometheus: CI installs it (.ci/run).
        pytest.fail(f"Chromium and its driver are not installed; CI installs them ({INSTALL_HINT})")
    return browser, driver


@pytest.fixture
def browser(artifacts: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium through Debian's chromedriver; a screenshot of the last page is kept as an artifact.

    Not its HTML: the UI's settings in the page hold the codec endpoint's capability URL.
    """
    binary, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield chrome
    finally:
        try:
            chrome.save_screenshot(str(artifacts / "last-page.png"))
        finally:
            chrome.quit()
