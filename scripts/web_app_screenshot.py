#!/usr/bin/env python
"""The README's screenshot of the web app: the shipped default model behind ``semstyle serve`` on
loopback, a photo and a gallery painting chosen in headless Chromium, the result on screen.

    .venv/bin/python scripts/web_app_screenshot.py [-o docs/web_app.jpg]

Needs Debian's chromium and chromium-driver (what the browser tests use).
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "content" / "chicago.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.3)


def up(url: str) -> bool:
    try:
        return urllib.request.urlopen(url + "/healthz", timeout=1).status == 200
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "web_app.jpg")
    parser.add_argument("--style", default="starry_night", help="gallery id of the painting")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "semstyle.cli", "serve", "--port", str(port), "--workers", "1"])
    try:
        wait_for(lambda: up(url))
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={tempfile.mkdtemp()}"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            browser.set_window_size(1280, 860)
            browser.get(url + "/")
            wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#gallery button")) >= 26)
            browser.find_element(By.ID, "photo").send_keys(str(PHOTO))
            browser.find_element(By.CSS_SELECTOR, f"#gallery button[data-id={args.style}]").click()
            browser.find_element(By.ID, "go").click()
            wait_for(lambda: browser.execute_script(
                "const a = document.getElementById('after'); return a.complete && a.naturalWidth > 0"))
            time.sleep(0.5)
            browser.execute_script("window.scrollTo(0, 0)")
            shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
        finally:
            browser.quit()
    finally:
        server.terminate()
        server.wait(30)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    shot.save(args.output, quality=88)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
