"""Take the README screenshot: start the app, drive headless Chromium through a selection, save a PNG.

    python scripts/screenshot.py                       # demo model -> docs/screenshot.png
    python scripts/screenshot.py --sample mushroom_03 --region cap --with-shap --out docs/screenshot.png
    python scripts/screenshot.py --overview ""         # without the every-class overview grid

By default the shot includes the every-class overview grid (Grad-CAM, one card per predicted class).

Needs Debian's `chromium` and `chromium-driver` (chromedriver on PATH). The app runs in a child process of this
script on a free local port and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(port: int, args: argparse.Namespace, state_dir: str) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "app.py"), "--port", str(port), "--state-dir", state_dir]
    if args.model:
        command += ["--model", args.model]
    if args.class_names:
        command += ["--class-names", args.class_names]
    if args.samples:
        command += ["--samples", args.samples]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the app exited with code {process.returncode}") from None
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("the app did not start in time")


def browser(width: int, height: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
        if os.path.exists(path):
            options.binary_location = path
            break
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 f"--window-size={width},{height}", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options)


def wait(predicate, message: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # stale elements while React re-renders
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {message}")


def pick_class(driver: webdriver.Chrome, name: str) -> None:
    """Select every pixel predicted as `name` with the whole-class picker."""
    picker = driver.find_element(By.ID, "class-picker")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", picker)
    wait(lambda: picker.click() or True, "a clickable class picker")  # retried while a closing menu covers it
    options = wait(lambda: driver.find_elements(By.CSS_SELECTOR, "[role=option]"), "the class options")
    choice = next((o for o in options if o.text.split(" ")[0] == name), options[-1])
    wait(lambda: choice.click() or True, f"the {name} option")
    wait(lambda: driver.find_element(By.ID, "region-info").text.startswith("Class") and name in driver.find_element(
        By.ID, "region-info").text, f"the {name} region")  # fmt: skip


def choose(driver: webdriver.Chrome, dropdown: str, text: str) -> None:
    """Open the dcc.Dropdown with id `dropdown` and click the option whose text starts with `text`."""
    element = driver.find_element(By.ID, dropdown)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    wait(lambda: element.click() or True, f"a clickable {dropdown}")  # retried while a closing menu covers it
    options = wait(lambda: [o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]")
                            if o.text.startswith(text)], f"the option {text!r}")  # fmt: skip
    wait(lambda: options[0].click() or True, f"the {text!r} option")


def show_sample(driver: webdriver.Chrome, thumb: Any) -> None:
    """Click a gallery thumbnail and wait until the mask figure shows it."""
    name = thumb.get_attribute("title")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", thumb)
    wait(lambda: thumb.click() or True, f"a clickable {name}")
    wait(lambda: driver.find_element(By.ID, "image-info").text.startswith(name), f"the sample {name}")
    wait(lambda: driver.execute_script("const g = document.querySelector('#mask-graph .js-plotly-plot');"
                                       "return g && g.data && g.data.length > 1"), "the mask figure")  # fmt: skip


def drive(driver: webdriver.Chrome, args: argparse.Namespace) -> None:
    thumbs = wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".sample-thumb"), "the sample gallery")
    thumb = next((t for t in thumbs if t.get_attribute("title") == args.sample), thumbs[0])
    name = thumb.get_attribute("title")
    # Warm-up on another sample: the first selection and the first overview trace the model's gradient steps, so
    # the shot shows warm compute times (the overview's method stays chosen: the shown sample gets its own).
    warm = next(t for t in thumbs if t.get_attribute("title") != name)
    show_sample(driver, warm)
    pick_class(driver, "background")
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#fast-grid .hm-graph .js-plotly-plot")) >= 3, "warm-up")
    if args.overview:
        # The shared step is traced per number of classes: warm it up on samples until one predicts every class.
        classes = int(driver.find_element(By.ID, "model-facts").text.split(" classes")[0].split("·")[-1])
        choose(driver, "overview-method", args.overview)
        for other in [t for t in thumbs if t.get_attribute("title") != name][:4]:
            if other is not warm:
                show_sample(driver, other)
            note = wait(lambda: (t := driver.find_element(By.ID, "overview-note").text) and " predicted classes" in t
                        and t, "the warm-up overview")  # fmt: skip
            if f"for {classes} predicted classes" in note:
                break
            driver.execute_script("document.getElementById('overview-note').textContent = '';")
    show_sample(driver, thumb)
    if args.region:
        pick_class(driver, args.region)
    else:
        area = driver.find_element(By.CSS_SELECTOR, "#mask-graph .nsewdrag")
        ActionChains(driver).move_to_element(area).move_by_offset(-70, -90).click_and_hold().move_by_offset(
            70, 60).move_by_offset(70, 60).release().perform()  # fmt: skip
        wait(lambda: driver.find_element(By.ID, "region-info").text.startswith("Box"), "the box region")
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#fast-grid .hm-graph .js-plotly-plot")) >= 3, "heatmaps")
    if args.with_shap:
        label = next(e for e in driver.find_elements(By.CSS_SELECTOR, "#method-checklist label")
                     if e.text.startswith("SHAP"))  # fmt: skip
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", label)
        wait(lambda: label.click() or True, "a clickable SHAP switch")
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, '#slow-grid [data-method="shap"] .js-plotly-plot'),
             "the SHAP job", timeout=300)  # fmt: skip
    if args.overview:
        wait(lambda: driver.find_element(By.ID, "overview-note").text.startswith(args.overview), "the overview grid")
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    ActionChains(driver).move_to_element(driver.find_element(By.CLASS_NAME, "brand")).perform()
    time.sleep(1.5)


def save_full_page(driver: webdriver.Chrome, out: Path, width: int) -> None:
    """Grow the window to the page's height (the graphs are responsive) and save a screenshot of it."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    inner = int(driver.execute_script("return window.innerHeight"))
    driver.set_window_size(width, driver.get_window_size()["height"] + max(0, height - inner))
    time.sleep(1.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    parser.add_argument("--model", help="a .keras model (default: the demo model)")
    parser.add_argument("--class-names")
    parser.add_argument("--samples")
    parser.add_argument("--sample", default="", help="gallery sample to open (default: the first)")
    parser.add_argument("--region", default="cap", help="select this whole class ('' for a box selection)")
    parser.add_argument("--overview", default="Grad-CAM", help="method of the every-class overview grid ('' for none)")
    parser.add_argument("--with-shap", action="store_true", help="also run SHAP (background job) before the shot")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="segx-shot-") as state_dir:
        process = start_app(port, args, state_dir)
        driver = browser(args.width, args.height)
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            drive(driver, args)
            save_full_page(driver, Path(args.out), args.width)
            print(f"saved {args.out}")
        finally:
            driver.quit()
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
