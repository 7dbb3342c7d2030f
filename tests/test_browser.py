"""The browser app in a real headless Chromium against a real ``semstyle serve`` on loopback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from .helpers import REPO, data_dir
from .test_server import start

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = REPO / "benchmarks" / "results" / "screenshots"


@pytest.fixture(scope="module")
def server(model):
    proc, url = start(model, "--workers", "1")
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: apt-get install chromium "
                    "chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
                 # a made-up camera (a moving test pattern), allowed without asking: the Live tab's input
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


def wait_for(condition, timeout=60, message="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def test_stylize_a_photo_with_a_gallery_painting_and_the_brush(browser, server, photo):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#gallery button")) >= 26, message="the gallery")
    wait_for(lambda: browser.execute_script(
        "return [...document.querySelectorAll('#gallery img')].slice(0, 4).every(i => i.complete && i.naturalWidth)"),
        message="thumbnails")
    browser.find_element(By.ID, "photo").send_keys(str(photo))
    browser.find_element(By.CSS_SELECTOR, "#gallery button[data-id=the_scream]").click()
    browser.execute_script("const s = document.getElementById('strength'); s.value = 0.8;"
                           "s.dispatchEvent(new Event('input'));")
    assert browser.find_element(By.ID, "strength-value").text == "0.80"
    wait_for(lambda: browser.execute_script("return document.getElementById('brush-canvas').width") > 0,
             message="the brush canvas")
    browser.find_element(By.CSS_SELECTOR, "input[name=brush][value=protect]").click()
    canvas = browser.find_element(By.ID, "brush-canvas")
    ActionChains(browser).move_to_element_with_offset(canvas, -20, 0).click_and_hold().move_by_offset(40, 10) \
        .release().perform()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.find_element(By.ID, "go").click()
    wait_for(lambda: browser.execute_script(
        "const a = document.getElementById('after'); return a.complete && a.naturalWidth > 0"), message="the result")
    assert browser.execute_script("return window.semstyle.lastRequest") == {
        "mask": False, "protect": True, "labels": False, "autoRegions": 0, "refine": 0, "styleFit": 0}
    assert browser.find_element(By.ID, "status").text.startswith("Done in")
    download = browser.find_element(By.ID, "download")
    assert download.is_displayed() and download.get_attribute("href").startswith("blob:")
    size = browser.execute_script("const a = document.getElementById('after');"
                                  "return [a.naturalWidth, a.naturalHeight]")
    assert size == [90, 60]
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(SCREENSHOTS / "desktop.png"))
    # the screenshot shows the change: left of the split the photo, right of it the stylized image
    import io

    import numpy as np
    from PIL import Image

    browser.execute_script("window.scrollTo(0, 0)")   # the controls are taller than the window
    shot = np.asarray(Image.open(io.BytesIO(browser.find_element(By.ID, "compare").screenshot_as_png)).convert("RGB"))
    height, width = shot.shape[:2]
    before = shot[: height - 30, : width // 2 - 4].astype(int)   # the bottom strip is the split slider
    after = shot[: height - 30, width // 2 + 4:].astype(int)
    photo_pixels = np.asarray(Image.open(photo).convert("RGB").resize((width, height - 30))).astype(int)
    assert np.abs(before - photo_pixels[:, : width // 2 - 4]).mean() < 25   # the photo, as uploaded
    assert np.abs(after - photo_pixels[:, width // 2 + 4:]).mean() > 25     # visibly changed


def image_difference(browser, first: str, second: str) -> float:
    """Mean absolute RGB difference (0-255) of two <img> elements of the page, both drawn at 64x64."""
    return browser.execute_script("""
        const draw = (img) => {
          const c = document.createElement('canvas'); c.width = c.height = 64;
          const g = c.getContext('2d'); g.drawImage(img, 0, 0, 64, 64); return g.getImageData(0, 0, 64, 64).data;
        };
        const a = draw(document.getElementById(arguments[0])), b = draw(document.getElementById(arguments[1]));
        let sum = 0;
        for (let i = 0; i < a.length; i += 4) for (let j = 0; j < 3; j++) sum += Math.abs(a[i + j] - b[i + j]);
        return sum / (64 * 64 * 3);""", first, second)


def open_page(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#gallery button")) >= 26, message="the gallery")


def stylize_and_wait(browser, timeout=120) -> None:
    """Click Stylize and wait until a new result is shown."""
    from selenium.webdriver.common.by import By

    previous = browser.execute_script("return window.semstyle.result")
    browser.find_element(By.ID, "go").click()
    wait_for(lambda: browser.execute_script(
        "const a = document.getElementById('after');"
        "return window.semstyle.result !== arguments[0] && a.src === window.semstyle.result"
        " && a.complete && a.naturalWidth > 0", previous), timeout=timeout, message="the result")


def test_label_maps_and_automatic_regions(browser, server):
    """Label maps of a photo and a painting, then automatic regions: each gives a changed image."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    semantic = data_dir("semantic")
    open_page(browser, server)
    browser.find_element(By.ID, "photo").send_keys(str(semantic / "dpst_house_content.jpg"))
    browser.find_element(By.ID, "own-style").send_keys(str(semantic / "dpst_house_style.jpg"))
    Select(browser.find_element(By.ID, "size")).select_by_value("512")
    browser.find_element(By.ID, "content-labels").send_keys(str(semantic / "dpst_house_content_mask.png"))
    browser.find_element(By.ID, "go").click()   # one map alone: the page says so, nothing is sent
    assert "both label maps" in browser.find_element(By.ID, "status").text
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")
    browser.find_element(By.ID, "style-labels").send_keys(str(semantic / "dpst_house_style_mask.png"))
    stylize_and_wait(browser)
    assert browser.execute_script("return window.semstyle.lastRequest")["labels"] is True
    assert browser.find_element(By.ID, "status").text.startswith("Done in")
    size = browser.execute_script("const a = document.getElementById('after');"
                                  "return [a.naturalWidth, a.naturalHeight]")
    assert size == [512, 342]
    assert image_difference(browser, "before", "after") > 10   # the result is not the photo
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "label_maps.png"))
    labelled = browser.execute_script("return window.semstyle.result")

    browser.execute_script("for (const id of ['content-labels', 'style-labels'])"
                           " document.getElementById(id).value = ''")
    regions = browser.find_element(By.ID, "auto-regions")
    regions.clear()
    regions.send_keys("3")
    stylize_and_wait(browser)
    request = browser.execute_script("return window.semstyle.lastRequest")
    assert request["labels"] is False and request["autoRegions"] == 3
    assert browser.execute_script("return window.semstyle.result") != labelled
    assert image_difference(browser, "before", "after") > 10


def test_refine_shows_its_progress_then_the_result(browser, server):
    """Refinement runs as a job: the progress bar shows, rises step by step, and the result follows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    semantic = data_dir("semantic")
    open_page(browser, server)
    browser.find_element(By.ID, "photo").send_keys(str(semantic / "gogh_portrait_content.jpg"))
    browser.find_element(By.ID, "own-style").send_keys(str(semantic / "gogh_portrait_style.jpg"))
    browser.find_element(By.ID, "content-labels").send_keys(str(semantic / "gogh_portrait_content_mask.png"))
    browser.find_element(By.ID, "style-labels").send_keys(str(semantic / "gogh_portrait_style_mask.png"))
    Select(browser.find_element(By.ID, "size")).select_by_value("256")
    browser.execute_script("const r = document.getElementById('refine'); r.value = 12;"
                           "r.dispatchEvent(new Event('input'));")
    assert browser.find_element(By.ID, "refine-value").text == "12"
    previous = browser.execute_script("return window.semstyle.result")
    browser.find_element(By.ID, "go").click()
    bar = browser.find_element(By.ID, "progress")
    wait_for(bar.is_displayed, timeout=30, message="the progress bar")
    wait_for(lambda: "Refining: step" in browser.find_element(By.ID, "status").text
             and 0 < float(bar.get_attribute("value")) < 1, timeout=120, message="the steps counted")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "refine_progress.png"))
    wait_for(lambda: browser.execute_script(
        "const a = document.getElementById('after');"
        "return window.semstyle.result !== arguments[0] && a.src === window.semstyle.result"
        " && a.complete && a.naturalWidth > 0", previous), timeout=180, message="the refined result")
    assert browser.find_element(By.ID, "status").text.startswith("Done in")
    assert not bar.is_displayed()
    seen = browser.execute_script("return window.semstyle.progressSeen")
    assert seen == sorted(seen) and seen[-1] == 1 and any(0 < p < 1 for p in seen), seen
    assert browser.execute_script("return window.semstyle.lastRequest")["refine"] == 12
    size = browser.execute_script("const a = document.getElementById('after');"
                                  "return [a.naturalWidth, a.naturalHeight]")
    assert size == [176, 256]
    assert image_difference(browser, "before", "after") > 10


def test_closer_to_the_painting_fits_the_style(browser, server, photo):
    """The "Closer to the painting" box sends style_fit (20 steps) and the picture changes."""
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    browser.find_element(By.ID, "photo").send_keys(str(photo))
    browser.find_element(By.CSS_SELECTOR, "#gallery button[data-id=starry_night]").click()
    stylize_and_wait(browser)
    plain = browser.execute_script("return window.semstyle.result")
    browser.execute_script("const i = document.createElement('img'); i.id = 'plain-copy';"
                           "i.src = arguments[0]; document.body.appendChild(i);", plain)
    box = browser.find_element(By.ID, "style-fit")
    assert not box.is_selected()
    box.click()
    stylize_and_wait(browser)
    assert browser.execute_script("return window.semstyle.lastRequest")["styleFit"] == 20
    wait_for(lambda: browser.execute_script(
        "const i = document.getElementById('plain-copy'); return i.complete && i.naturalWidth > 0"),
        message="the plain result's copy")
    assert image_difference(browser, "plain-copy", "after") > 0.5
    box.click()  # leave the page as the next test expects it


def test_live_tab_streams_the_camera_stylized(browser, server):
    """Chromium's fake camera -> WebSocket -> stylized frames back in the page, with the fps shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, server)
    browser.find_element(By.CSS_SELECTOR, "#gallery button[data-id=the_scream]").click()
    browser.find_element(By.ID, "tab-live").click()
    assert browser.find_element(By.ID, "panel-live").is_displayed()
    Select(browser.find_element(By.ID, "live-size")).select_by_value("256")
    toggle = browser.find_element(By.ID, "live-toggle")
    toggle.click()
    wait_for(lambda: float(browser.find_element(By.ID, "live-fps").text) > 0, timeout=90, message="frames per second")
    assert toggle.text == "Stop"
    frames = browser.execute_script("return window.semstyle.live.frames")
    wait_for(lambda: browser.execute_script("return window.semstyle.live.frames") >= frames + 2, timeout=60,
             message="more frames")
    size = browser.execute_script("const o = document.getElementById('live-output');"
                                  "return [o.naturalWidth, o.naturalHeight]")
    assert size == [256, 192]   # the fake camera's 640x480, capped at 256
    contrast, change = browser.execute_script("""
        const pixels = (source) => {
          const c = document.createElement('canvas'); c.width = 64; c.height = 48;
          const g = c.getContext('2d'); g.drawImage(source, 0, 0, 64, 48); return g.getImageData(0, 0, 64, 48).data;
        };
        const out = pixels(document.getElementById('live-output'));
        const cam = pixels(document.getElementById('live-camera'));
        let low = 255, high = 0, diff = 0;
        for (let i = 0; i < out.length; i += 4) {
          const v = (out[i] + out[i + 1] + out[i + 2]) / 3;
          low = Math.min(low, v); high = Math.max(high, v);
          for (let j = 0; j < 3; j++) diff += Math.abs(out[i + j] - cam[i + j]);
        }
        return [high - low, diff / (64 * 48 * 3)];""")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "live.png"))
    # A picture, not a blank frame: the tiny untrained test model paints the fake camera's green frame dark
    # (its contrast varies with the pac-man's phase, 16-40 seen), while a blank JPEG stays within a few levels.
    assert contrast > 8, contrast
    assert change > 20, change       # and not the camera's picture sent back
    toggle.click()
    assert toggle.text == "Start the camera"
    assert browser.execute_script("return window.semstyle.live.socket === null && window.semstyle.live.stream === null")
    assert browser.find_element(By.ID, "live-status").text == "Stopped."


def test_phone_sized_screen_and_keyboard(browser, server):
    """390 px wide: one column, no sideways scrolling, on every tab; every control reached with Tab
    (the gallery is one tab stop, its paintings chosen with the arrow keys), tabs opened with the keyboard."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(390, 844)
    try:
        open_page(browser, server)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        body = browser.find_element(By.TAG_NAME, "body")
        reached = []
        for _ in range(30):
            body.send_keys(Keys.TAB)
            reached.append(browser.execute_script(
                "const a = document.activeElement; return a.id || a.dataset.id || a.name || a.tagName"))
        for control in ("tab-photo", "tab-video", "tab-live", "drop", "photo", "starry_night", "own-style",
                        "strength", "preserve", "size", "brush", "clear-brush", "content-labels", "style-labels",
                        "auto-regions", "refine"):   # (Stylize waits, disabled, for a photo)
            assert control in reached, (control, reached)
        assert reached.index("content-labels") < reached.index("auto-regions") < reached.index("refine")
        gallery_stops = [r for r in reached[:reached.index("own-style")] if r not in
                         ("tab-photo", "tab-video", "tab-live", "drop", "photo")]
        assert gallery_stops == ["starry_night"], gallery_stops    # one stop for 26 paintings
        chosen = browser.find_element(By.CSS_SELECTOR, "#gallery button[data-id=starry_night]")
        chosen.send_keys(Keys.ARROW_RIGHT)
        moved = browser.execute_script("return document.activeElement.dataset.id")
        assert moved != "starry_night" and browser.execute_script("return window.semstyle.styleId") == moved
        regions = browser.find_element(By.ID, "auto-regions")
        assert regions.get_attribute("aria-describedby") == "auto-help"
        assert browser.find_element(By.CSS_SELECTOR, "label[for=auto-regions]").text == "Automatic regions"
        browser.save_screenshot(str(SCREENSHOTS / "phone.png"))

        browser.find_element(By.ID, "tab-photo").send_keys(Keys.ARROW_RIGHT)   # arrow keys move between tabs
        assert browser.find_element(By.ID, "panel-video").is_displayed()
        assert browser.execute_script("return document.activeElement.id") == "tab-video"
        browser.find_element(By.ID, "tab-live").send_keys(Keys.ENTER)
        assert browser.find_element(By.ID, "panel-live").is_displayed()
        assert not browser.find_element(By.ID, "panel-photo").is_displayed()
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        reached = []
        for _ in range(6):
            browser.switch_to.active_element.send_keys(Keys.TAB)
            reached.append(browser.execute_script("return document.activeElement.id"))
        assert reached[:2] == ["live-size", "live-toggle"], reached
        browser.save_screenshot(str(SCREENSHOTS / "phone_live.png"))
    finally:
        browser.set_window_size(1280, 900)


def test_chromium_is_the_systems():
    """The tests drive Debian's Chromium, never a downloaded browser."""
    assert shutil.which("chromium") == CHROMIUM
