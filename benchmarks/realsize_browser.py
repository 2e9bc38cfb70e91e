"""S3 and S4 (issue 15) in a real browser on a real-size model: box drag -> every fast heatmap visible in headless
Chromium, divided by the floor, at 512x512; the layer slider at 52 layers; the server's peak RSS over 50 questions.

The benchmark builds DeepLabV3+ on ResNet50 at 512x512 itself (`benchmarks.deeplab`, random weights, 52 conv layers),
measures the floor in its own process (one plain forward+backward of the region score, the median of interleaved runs,
as `benchmarks.fast_pass` does), saves the model and serves it with ``python app.py --model deeplab.keras`` (start-up
preparation included: the benchmark waits until the server is quiet). Then, in Chromium (selenium, the browser tests'
helpers `tests.browser.helpers`):

- box drags at new places (so nothing is served from a cache): milliseconds from the mouse release to the moment every
  fast card (four CAMs, saliency, gradient x input: the default ticks) shows its new heatmap, taken by a
  MutationObserver in the page; goal: median / floor <= 2.0. Each drag starts from a settled page, as a user's next
  box does: no callback request in flight for 300 ms (the previous question's follow-ups, the layer prefetch and
  the trust summary, answered). The same number of drags back to back (each right after the previous one's
  heatmaps, its follow-ups still running on the server) is reported beside it, the two kinds interleaved, after three
  unmeasured drags;
- layer slider moves by one step with the keyboard: milliseconds from the key press to the Grad-CAM card's new map, in
  the page as well; goal p50 < 80 ms (the slider reads stored maps; no model call);
- questions go on (box drags) until 50 in all, while the server's RSS is sampled every 0.2 s; goal peak < 3 GB.

    python -m benchmarks.realsize_browser [--questions 50] [--size 512]

The rows go into their own section of benchmarks/RESULTS.md. Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- realsize-browser:begin -->", "<!-- realsize-browser:end -->"
LATENCY_GOAL, SLIDER_GOAL_MS, RSS_GOAL_MB = 2.0, 80.0, 3072.0

# Times one slider step in the page: from the key press to the Grad-CAM card's overlay (its second image) changing.
SLIDER_JS = """
const timing = {down: null, shown: null};
const overlay = () => {
  const images = document.querySelectorAll('#fast-grid [data-method="gradcam"] .hm-graph image');
  return images.length >= 2 ? (images[1].getAttribute('href') || '').slice(-64) : '';
};
const before = overlay();
document.addEventListener('keydown', () => { timing.down = performance.now(); }, {capture: true, once: true});
const observer = new MutationObserver(() => {
  if (timing.down !== null && timing.shown === null && overlay() && overlay() !== before) {
    timing.shown = performance.now();
    observer.disconnect();
  }
});
observer.observe(document.body, {subtree: true, childList: true, attributes: true});
window.__segxSlider = timing;
"""


class Page:
    """The few `dash_duo` members the browser-test helpers use, over a plain selenium driver."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def find_element(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_elements(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)


def chromium() -> Any:
    """Headless Debian Chromium through its chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.browser.helpers import WINDOW

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}"):  # fmt: skip
        options.add_argument(arg)
    if Path("/usr/bin/chromium").exists():
        options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(options=options, service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))


def model_and_floor(size: int, repeats: int, path: Path) -> dict[str, Any]:
    """Build the DeepLabV3+, save it to `path`, and time the floor here: one plain forward+backward of a box score."""
    from benchmarks.deeplab import deeplabv3plus
    from benchmarks.engine import interleaved_medians
    from benchmarks.fast_pass import sample_question
    from explainers import SegmentationAdapter

    model = deeplabv3plus((size, size))
    model.save(path)
    adapter = SegmentationAdapter(model, class_names=[f"class {i}" for i in range(model.output_shape[-1])])
    image, region = sample_question((size, size))
    spec = adapter.score_spec(region, 0, image.shape[:2])
    x = adapter.model_input(image[None])
    medians = interleaved_medians({"floor": lambda: adapter.backend.input_gradients(x, spec)}, repeats)
    return {"floor_ms": 1000 * medians["floor"], "layers": len(adapter.conv_layers), "size": [size, size]}


def box_positions(n: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """`n` (start offset from the figure's centre, box size) pairs, each a box not drawn before."""
    out = []
    for k in range(n):
        dx, dy = -150 + (k * 37) % 160, -140 + (k * 53) % 150
        out.append(((dx, dy), (90 + (k * 29) % 90, 80 + (k * 41) % 80)))
    return out


# Counts the Dash callback requests in flight (and when that count last changed), so a drag can start from a
# settled page.
INFLIGHT_JS = """
if (!window.__segxInflight) {
  const state = {count: 0, changed: performance.now()};
  const original = window.fetch;
  window.fetch = function (url, options) {
    const dash = String(url).includes('_dash-update-component');
    if (dash) { state.count += 1; state.changed = performance.now(); }
    const done = () => { if (dash) { state.count -= 1; state.changed = performance.now(); } };
    return original.apply(this, arguments).then(r => { r.clone().text().then(done, done); return r; },
                                                e => { done(); throw e; });
  };
  window.__segxInflight = state;
}
"""
SETTLED_MS = 300.0
WARM_DRAGS = 3  # unmeasured drags after the first one


def settle(page: Page, quiet_ms: float = SETTLED_MS) -> None:
    """Wait until no Dash callback request has been in flight for `quiet_ms`."""
    from tests.browser.helpers import wait_for

    script = f"const s = window.__segxInflight; return s.count === 0 && performance.now() - s.changed >= {quiet_ms};"
    wait_for(lambda: page.driver.execute_script(script), timeout=120, message="a settled page")


def fast_card_count(page: Page) -> int:
    return len(page.find_elements("#fast-grid .hm-card .hm-graph"))


# The longest callback request between the key press and the map shown: (start, response end) in page time. A map
# drawn from the browser's cache of prefetched layers waits for none (the prefetch's request ends after it).
REQUEST_JS = """
const since = arguments[0], until = arguments[1];
const spans = performance.getEntriesByType('resource')
  .filter(e => e.name.includes('_dash-update-component') && e.startTime >= since && e.responseEnd <= until)
  .map(e => [e.startTime, e.responseEnd]);
spans.sort((a, b) => (b[1] - b[0]) - (a[1] - a[0]));
return spans.length ? spans[0] : null;
"""


def slider_step(page: Page, key: str) -> tuple[float, float]:
    """(milliseconds from one slider key press to the Grad-CAM card's new map, of which the longest callback request
    answered in that time took these milliseconds: 0 when the map came from the browser's cache)."""
    from tests.browser.helpers import wait_for

    page.driver.execute_script("performance.clearResourceTimings();" + SLIDER_JS)
    thumb = page.find_element("#layer-slider .dash-slider-thumb")
    thumb.send_keys(key)
    script = "const t = window.__segxSlider; return t && t.shown !== null ? t : null;"
    timing = wait_for(lambda: page.driver.execute_script(script), timeout=30, message="Grad-CAM at the next layer")
    span = page.driver.execute_script(REQUEST_JS, timing["down"], timing["shown"]) or [0.0, 0.0]
    return float(timing["shown"] - timing["down"]), float(span[1] - span[0])


def run(questions: int = 50, size: int = 512, drags: int = 8, slider: int = 20, repeats: int = 5,
        verbose: bool = True) -> dict[str, Any]:  # fmt: skip
    from selenium.webdriver.common.keys import Keys

    from benchmarks.app_server import AppServer, MemorySampler, free_port
    from dashboard.factory import default_samples_dir
    from tests.browser.helpers import box_select_and_time, pick_sample, wait_for

    started = time.perf_counter()

    def say(text: str) -> None:
        if verbose:
            print(f"[{time.perf_counter() - started:6.1f}s] {text}", flush=True)

    result: dict[str, Any] = {"loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="segx-realsize-") as tmp:
        model_path = Path(tmp) / f"deeplab{size}.keras"
        result.update(model_and_floor(size, repeats, model_path))
        say(f"floor {result['floor_ms']:.0f} ms over {result['layers']} conv layers; starting the server")
        server = AppServer(free_port(), os.path.join(tmp, "state"), os.path.join(tmp, "server.log"),
                           ["--model", str(model_path), "--samples", str(default_samples_dir(None))])  # fmt: skip
        sampler = MemorySampler(server)
        driver = None
        try:
            server.start()
            sampler.start()
            server.wait_serving(600)
            server.wait_quiet(timeout=600)
            sampler.mark("idle_after_start")
            driver = chromium()
            page = Page(driver)
            driver.get(server.url)
            wait_for(lambda: page.find_elements(".sample-thumb"), timeout=120, message="the sample gallery")
            driver.execute_script(INFLIGHT_JS)
            t0 = time.perf_counter()
            pick_sample(page, 0)
            result["sample_to_mask_s"] = time.perf_counter() - t0
            positions = box_positions(max(questions, WARM_DRAGS + 2 * drags + 1))
            first_start, first_size = positions[0]
            result["first_drag_ms"] = box_select_and_time(page, first_start, first_size, want=1)
            wait_for(lambda: fast_card_count(page) >= 6, timeout=120, message="the six fast cards")
            want = fast_card_count(page)
            say(f"first box -> a heatmap {result['first_drag_ms']:.0f} ms; {want} fast cards")
            for start, box in positions[1 : WARM_DRAGS + 1]:  # unmeasured: the page's and server's first calls
                box_select_and_time(page, start, box, want=want)
            settled, back_to_back = [], []
            measured = positions[WARM_DRAGS + 1 : WARM_DRAGS + 1 + 2 * drags]
            for k in range(drags):  # interleaved, so both kinds see the same warm state
                settle(page)
                settled.append(box_select_and_time(page, *measured[2 * k], want=want))
                back_to_back.append(box_select_and_time(page, *measured[2 * k + 1], want=want))
            result["drag_ms"], result["drag_back_to_back_ms"] = settled, back_to_back
            result["drag_median_ms"] = statistics.median(settled)
            result["drag_ratio"] = result["drag_median_ms"] / result["floor_ms"]
            result["drag_back_to_back_median_ms"] = statistics.median(back_to_back)
            say(f"box -> {want} heatmaps from a settled page: median {result['drag_median_ms']:.0f} ms, "
                f"{result['drag_ratio']:.2f}x the floor; back to back {result['drag_back_to_back_median_ms']:.0f} ms")
            settle(page)
            page.find_element("#layer-slider .dash-slider-thumb").click()
            steps = [slider_step(page, Keys.ARROW_LEFT if k % 2 else Keys.ARROW_RIGHT) for k in range(slider)]
            result["slider_ms"] = [total for total, _ in steps]
            result["slider_request_ms"] = [request for _, request in steps]
            result["slider_p50_ms"] = statistics.median(result["slider_ms"])
            result["slider_request_p50_ms"] = statistics.median(result["slider_request_ms"])
            say(f"slider p50 {result['slider_p50_ms']:.0f} ms over {slider} steps (request round trip "
                f"{result['slider_request_p50_ms']:.0f} ms)")  # fmt: skip
            done = WARM_DRAGS + 2 * drags + 1
            for start, box in positions[done:questions]:
                box_select_and_time(page, start, box, want=want)
            result["questions"] = max(questions, done)
            sampler.mark(f"after_{result['questions']}_questions")
            result["server_rss_peak_mb"] = sampler.peak_server_rss / 2**20
            result["phases"] = sampler.phases
            say(f"{result['questions']} questions; server peak RSS {result['server_rss_peak_mb']:.0f} MB")
        finally:
            if driver is not None:
                driver.quit()
            sampler.stop()
            server.stop()
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def section(result: dict[str, Any]) -> str:
    """The RESULTS.md section of one run."""
    size = "x".join(str(s) for s in result["size"])
    rows = [
        ("S3 box drag -> all fast heatmaps in Chromium / floor",
         f"{result['drag_ratio']:.2f} ({result['drag_median_ms']:.0f} vs {result['floor_ms']:.0f} ms)",
         f"<= {LATENCY_GOAL}", result["drag_ratio"] <= LATENCY_GOAL),
        ("S3 box drags back to back (the previous question's follow-up requests still running) / floor",
         f"{result['drag_back_to_back_median_ms'] / result['floor_ms']:.2f} "
         f"({result['drag_back_to_back_median_ms']:.0f} ms)", "(not a goal)", None),
        (f"S3 layer slider p50 at {result['layers']} layers, key press -> map in Chromium",
         f"{result['slider_p50_ms']:.0f} ms", f"< {SLIDER_GOAL_MS:.0f} ms", result["slider_p50_ms"] < SLIDER_GOAL_MS),
        (f"S3 layer slider p50 at {result['layers']} layers, the callback request on the way (0: from the cache)",
         f"{result['slider_request_p50_ms']:.0f} ms", f"< {SLIDER_GOAL_MS:.0f} ms",
         result["slider_request_p50_ms"] < SLIDER_GOAL_MS),
        (f"S4 server peak RSS over {result['questions']} questions", f"{result['server_rss_peak_mb']:.0f} MB",
         f"< {RSS_GOAL_MB:.0f} MB", result["server_rss_peak_mb"] < RSS_GOAL_MB),
    ]  # fmt: skip
    table = ["| target | measured | goal | met |", "| --- | --- | --- | --- |"]
    table += [f"| {name} | {value} | {goal} | {'' if met is None else 'yes' if met else '**no**'} |"
              for name, value, goal, met in rows]  # fmt: skip
    return "\n".join([
        BEGIN,
        "## S3 and S4 in a real browser on a real-size model (`python -m benchmarks.realsize_browser`)",
        "",
        f"DeepLabV3+ on ResNet50, {size}, {result['layers']} conv layers, random weights, served by `python app.py "
        f"--model`; headless Chromium. Floor = one plain forward+backward of the region score in the benchmark's own "
        f"process, {result['floor_ms']:.0f} ms. Load average {tuple(result['loadavg_start'])} at start, "
        f"{tuple(result['loadavg_end'])} at the end (a shared 2-core machine).",
        "",
        *table,
        "",
        f"Box drags (ms, mouse release -> every fast card redrawn), each from a settled page (no callback request in"
        f" flight for {SETTLED_MS:.0f} ms): {listed(result['drag_ms'])}; back to back:"
        f" {listed(result['drag_back_to_back_ms'])}. The first box after"
        f" the sample: {result['first_drag_ms']:.0f} ms to the first heatmap. Sample click -> mask"
        f" {result['sample_to_mask_s']:.1f} s. Slider steps (ms, key press -> Grad-CAM redrawn):"
        f" {listed(result['slider_ms'])}; of which a callback request's round trip answered before the map (p50"
        f" {result['slider_request_p50_ms']:.0f} ms; 0: the map came from the browser's cache of prefetched layers,"
        f" `dashboard.callbacks.layers`): {listed(result['slider_request_ms'])}; the rest is the page (Dash's"
        " renderer, the clientside callback, Plotly redrawing the four overlays, the browser decoding their PNGs).",
        END,
    ])  # fmt: skip


def listed(values: list[float]) -> str:
    return ", ".join(f"{value:.0f}" for value in values)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--drags", type=int, default=8, help="measured box drags (default 8)")
    parser.add_argument("--slider", type=int, default=20, help="measured slider steps (default 20)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    result = run(args.questions, args.size, args.drags, args.slider)
    text = section(result)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if not args.no_write:
        from benchmarks import sections

        sections.write_section(HERE / "RESULTS.md", text, BEGIN, END)
    return result


if __name__ == "__main__":
    main()
