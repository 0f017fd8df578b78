"""The HTML report: built from the sample photos, then driven in a real headless Chromium (skipped where
no browser is installed; CI installs Debian's chromium and chromium-driver)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bprefine.cli import main
from bprefine.data.images import read_mask
from bprefine.demo import SAMPLES


@pytest.fixture
def report(tmp_path):
    """A report over the four sample photos: 'after' is the ground truth for two, an eroded coarse mask for two."""
    import cv2

    after = tmp_path / "after"
    after.mkdir()
    for k, path in enumerate(sorted((SAMPLES / "coarse").glob("*.png"))):
        mask = read_mask(SAMPLES / "gt" / path.name) if k % 2 == 0 else \
            cv2.erode(read_mask(path).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        Image.fromarray(mask.astype(np.uint8) * 255).save(after / path.name)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["report", "--images", str(SAMPLES / "images"), "--before", str(SAMPLES / "coarse"),
                                    "--after", str(after), "--gt", str(SAMPLES / "gt"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_report_is_one_self_contained_file(report):
    text = report.read_text()
    assert text.count("data:image/jpeg;base64,") == 8  # before and after of four photos
    assert "http://" not in text and "https://" not in text and "<script src" not in text


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no chromium/chromedriver installed (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        opts.add_argument(arg)
    opts.binary_location = chromium
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_path))


def test_report_in_a_real_browser(report, tmp_path):
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(report.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        names = lambda: [r.get_attribute("data-name") for r in driver.find_elements(By.CSS_SELECTOR, "#images tbody tr")]
        gains = lambda: [float(r.find_elements(By.TAG_NAME, "td")[-1].text)
                         for r in driver.find_elements(By.CSS_SELECTOR, "#images tbody tr")]
        assert len(names()) == 4
        header = driver.find_element(By.CSS_SELECTOR, "th[data-key='gain']")
        header.click()  # first click on a metric: largest gain first
        assert gains() == sorted(gains(), reverse=True) and gains()[0] > 0
        header.click()  # second click: largest loss first
        assert gains() == sorted(gains()) and gains()[0] < 0
        driver.find_element(By.CSS_SELECTOR, "th[data-key='name']").click()
        assert names() == sorted(names())
        picture = driver.find_element(By.ID, "picture")
        shown = picture.get_attribute("src")
        assert picture.get_attribute("data-state") == "after"
        driver.find_element(By.ID, "toggle").click()
        assert picture.get_attribute("data-state") == "before" and picture.get_attribute("src") != shown
        driver.find_elements(By.CSS_SELECTOR, "#images tbody tr")[2].click()
        assert driver.find_element(By.ID, "title").text.startswith(names()[2])
        driver.save_screenshot(str(tmp_path / "report.png"))
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
