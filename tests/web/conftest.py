"""Browser tests of the web page: one real server and one headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium with /usr/bin/chromedriver; no Selenium Manager download) per session.

Without them the browser tests skip, saying what to install. `MFMC_WEB_SHOTS=docs/img` also writes a screenshot
of each page there.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mfmc.cli.main import main
from tests.web.scenario import PASSPHRASE, Site, running_site

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 10


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("web-site")) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("headless Chromium is not installed: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,900", "--force-device-scale-factor=1", "--force-color-profile=srgb",
                "--disable-extensions", "--no-first-run", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors (CSP violations too)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in_link(site: Site, user: str, capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """The link `mfmc open --as USER` prints (the real command: the user's keyring logs in by key)."""
    monkeypatch.setenv("MFMC_PASSPHRASE", PASSPHRASE)
    capsys.readouterr()
    code = main(["open", "--as", user, "--server", site.url, "--data-dir", str(site.data_dir), "--no-browser"])
    out = capsys.readouterr().out
    assert code == 0, out
    link = out.splitlines()[0]
    assert link.startswith(f"{site.url}/web/signin.html#code="), out
    return link


def wait_for(driver, condition, timeout: float = WAIT_S):  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    # while a page is being replaced, the driver can answer about the old document ("no such element", "stale
    # element", or an inspector error that a node "does not belong to the document"): ask again until `timeout`;
    # a condition that never holds still fails the test with a TimeoutException
    wait = WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=(WebDriverException,))
    return wait.until(condition)


def sign_in(driver, site: Site, user: str, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
            monkeypatch: pytest.MonkeyPatch) -> None:
    driver.get(sign_in_link(site, user, capsys, monkeypatch))
    wait_for(driver, lambda d: d.find_element("id", "who").text == f"Signed in as {user}")


def shown_pixels(driver, img) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The pixels of an <img> as the browser decoded it (drawn into a canvas and read back), RGB."""
    wait_for(driver, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img))
    data = driver.execute_script("""
        const img = arguments[0];
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const ctx = canvas.getContext("2d");
        ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let s = ""; for (let i = 0; i < px.length; i += 1) s += String.fromCharCode(px[i]);
        return [canvas.width, canvas.height, btoa(s)];
    """, img)
    w, h, raw = data
    return np.frombuffer(base64.b64decode(raw), dtype=np.uint8).reshape(h, w, 4)[:, :, :3]


def screenshot(driver, name: str) -> None:  # type: ignore[no-untyped-def]
    """With MFMC_WEB_SHOTS=FOLDER: the page as shown, saved as a small PNG (palette of 64 colours)."""
    folder = os.environ.get("MFMC_WEB_SHOTS")
    if not folder:
        return
    from PIL import Image

    Path(folder).mkdir(parents=True, exist_ok=True)
    target = Path(folder) / f"web-{name}.png"
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1100, min(1800, max(900, height + 140)))  # the whole page (window chrome aside)
    try:
        driver.save_screenshot(str(target))
    finally:
        driver.set_window_size(1100, 900)
    with Image.open(target) as shot:
        small = shot.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(target, optimize=True)
