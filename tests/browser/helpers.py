"""Selenium helpers for the dash_duo browser tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

WINDOW = (1600, 1100)
TIMEOUT = 60

# Records the time of the next mouseup and the first moment afterwards when at least `want` heatmap cards show both
# image layers (photo + overlay), using a MutationObserver so the measurement does not depend on polling.
TIMER_JS = """
const want = arguments[0];
const timing = {up: null, shown: null};
function count() {
  let n = 0;
  document.querySelectorAll('#fast-grid .hm-graph').forEach(g => {
    const images = g.querySelectorAll('.imagelayer image, image');
    if (images.length >= 2 && images[1].getAttribute('href')) { n += 1; }
  });
  return n;
}
document.addEventListener('mouseup', () => { timing.up = performance.now(); timing.before = count(); },
                          {capture: true, once: true});
const observer = new MutationObserver(() => {
  if (timing.up !== null && timing.shown === null && count() >= want && window.__segxChanged()) {
    timing.shown = performance.now();
    observer.disconnect();
  }
});
const initial = JSON.stringify(Array.from(document.querySelectorAll('#fast-grid .hm-graph image'))
  .map(i => (i.getAttribute('href') || '').slice(-64)));
window.__segxChanged = () => JSON.stringify(Array.from(document.querySelectorAll('#fast-grid .hm-graph image'))
  .map(i => (i.getAttribute('href') || '').slice(-64))) !== initial;
observer.observe(document.body, {subtree: true, childList: true, attributes: true});
window.__segxTiming = timing;
"""


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT, message: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as err:  # stale elements while React re-renders
            last_error = err
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}" + (f" (last error: {last_error})" if last_error else ""))


def open_app(dash_duo, app) -> None:
    """Start the app, size the window and wait for the sample gallery."""
    dash_duo.start_server(app)
    dash_duo.driver.set_window_size(*WINDOW)
    dash_duo.wait_for_element(".sample-thumb", timeout=TIMEOUT)


def pick_sample(dash_duo, index: int = 0) -> str:
    """Click the index-th gallery thumbnail; wait until the mask figure shows it; returns the sample name."""
    thumbs = dash_duo.find_elements(".sample-thumb")
    thumb = thumbs[index % len(thumbs)]
    name = thumb.get_attribute("title")
    thumb.click()
    wait_for(lambda: dash_duo.find_element("#image-info").text.startswith(name), message=f"sample {name}")
    wait_for(lambda: dash_duo.driver.execute_script(
        "const g = document.querySelector('#mask-graph .js-plotly-plot');"
        "return g && g.data && g.data.length > 0 && g.data[0].type === 'heatmap'"
        " && document.querySelectorAll('#mask-graph .hm, #mask-graph .heatmaplayer image').length > 0;"),
        message="mask figure")  # fmt: skip
    return name


def drag_area(dash_duo, graph: str = "#mask-graph"):
    return dash_duo.find_element(f"{graph} .nsewdrag")


def drag(dash_duo, element, start: tuple[int, int], moves: list[tuple[int, int]]) -> None:
    """Press at `start` (offset from the element's centre), move by each offset, release."""
    chain = ActionChains(dash_duo.driver).move_to_element(element).move_by_offset(*start).click_and_hold()
    for dx, dy in moves:
        chain = chain.move_by_offset(dx, dy)
    chain.release().perform()


def card_methods(dash_duo, grid: str = "") -> list[str]:
    return dash_duo.driver.execute_script(
        f"return Array.from(document.querySelectorAll('{grid} .hm-card')).filter(c => c.querySelector('.hm-graph'))"
        ".map(c => c.getAttribute('data-method'))"
    )


def overlay_sources(dash_duo) -> dict[str, str]:
    """{method: overlay PNG data URI} of every rendered heatmap card: the figure's overlay layout image, checked to
    be the one drawn (the href of the graph's second image element, after the photo)."""
    return dash_duo.driver.execute_script(
        "const out = {}; document.querySelectorAll('.hm-card').forEach(c => {"
        "  const g = c.querySelector('.js-plotly-plot');"
        "  const images = g ? (g.layout || {}).images || [] : [];"
        "  const drawn = g ? g.querySelectorAll('.imagelayer image') : [];"
        "  if (images.length > 1) { out[c.getAttribute('data-method')] ="
        "    drawn.length > 1 && drawn[1].getAttribute('href') === images[1].source ? images[1].source : 'not drawn'; }"
        "}); return out;"
    )


def photos(dash_duo) -> dict[str, list[Any]]:
    """{graph: [photo URL in the figure, HTTP status of fetching it, its content type]} for the mask figure and every
    heatmap card: the photo is a layout image drawn below the traces, fetched by URL."""
    return dash_duo.driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const out = {};"
        "const graphs = Array.from(document.querySelectorAll('.js-plotly-plot'));"
        "Promise.all(graphs.map(g => {"
        "  const card = g.closest('.hm-card'); const key = card ? card.getAttribute('data-method') : 'mask';"
        "  const image = g.querySelector('.layer-subplot .imagelayer image');"
        "  const url = (g.layout.images || [{}])[0].source;"
        "  if (!image) { out[key] = [url, 'not drawn', null]; return null; }"
        "  return fetch(image.getAttribute('href')).then(r => { out[key] = [url, r.status,"
        "    r.headers.get('content-type')]; });"
        "})).then(() => done(out)).catch(e => done({error: String(e)}));"
    )


def ranges(dash_duo) -> dict[str, list[float]]:
    """{graph container id: x range} of the mask figure and every heatmap."""
    return dash_duo.driver.execute_script(
        "const out = {}; document.querySelectorAll('#mask-graph .js-plotly-plot, .hm-card .js-plotly-plot')"
        ".forEach(g => {"
        "  const card = g.closest('.hm-card'); const key = card ? card.getAttribute('data-method') : 'mask';"
        "  out[key] = g._fullLayout.xaxis.range.slice(); }); return out;"
    )


def box_select_and_time(dash_duo, start=(-60, -50), size=(110, 90), want: int = 3) -> float:
    """Drag a box on the mask figure; returns milliseconds from mouse release to `want` heatmaps visible."""
    dash_duo.driver.execute_script(TIMER_JS, want)
    half = (size[0] // 2, size[1] // 2)
    drag(dash_duo, drag_area(dash_duo), start, [half, (size[0] - half[0], size[1] - half[1])])
    script = "const t = window.__segxTiming; return t && t.shown !== null ? t : null;"
    timing = wait_for(lambda: dash_duo.driver.execute_script(script), message="heatmaps after the box")
    return float(timing["shown"] - timing["up"])


def settle_and_check_console(dash_duo) -> None:
    """Wait until no callback is pending (so teardown stops an idle server), then assert a clean console."""
    script = "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length === 0"
    wait_for(lambda: dash_duo.driver.execute_script(script), message="idle app")
    time.sleep(0.5)
    assert dash_duo.get_logs() == []


FIGURE_JS = "const g = document.querySelector(arguments[0] + ' .js-plotly-plot'); return g && g.data ? g.data : null;"


def figure_data(dash_duo, graph_id: str):
    """The Plotly traces drawn in the graph with this id (None before it is drawn)."""
    return dash_duo.driver.execute_script(FIGURE_JS, f"#{graph_id}")


def click(dash_duo, selector: str) -> None:
    """Scroll the element into view, wait until it is enabled, and click it (retried while another element covers
    it)."""
    element = dash_duo.find_element(selector)
    wait_for(lambda: element.is_enabled(), message=f"{selector} enabled")

    def press() -> bool:  # scrolled again on each try: cards arriving above it move the page
        dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()
        return True

    wait_for(press, message=f"a clickable {selector}")


def run_trust(
    dash_duo, methods: list[str], sanity: bool = True, done: str = "Trust metrics done"
) -> tuple[list[dict], list[dict] | None]:
    """Click "run trust metrics" and check what arrives: the agreement matrix and the inside share at once (for two
    methods or more), then, from the background job, the deletion/insertion curves of every method plus the
    random-order baseline (20 steps -> 21 points), the sanity-check curves (when `sanity`), the table's rows and a
    status line starting with `done`. Returns (deletion/insertion traces, sanity traces or None)."""
    click(dash_duo, "#trust-run")
    if len(methods) >= 2:
        agreement = wait_for(lambda: (d := figure_data(dash_duo, "trust-agreement")) and d[0]["type"] == "heatmap"
                             and d, message="agreement matrix")  # fmt: skip
        z = np.array(agreement[0]["z"], dtype=float)
        assert z.shape == (len(methods), len(methods)) and np.allclose(np.diag(z), 1)
    shares = wait_for(lambda: (d := figure_data(dash_duo, "trust-share")) and d[0]["type"] == "bar" and d,
                      message="inside share")  # fmt: skip
    assert len(shares[0]["x"]) == len(methods) and all(0 <= x <= 1 for x in shares[0]["x"])

    def curves_drawn():
        data = figure_data(dash_duo, "trust-curves")
        return data if data and len(data) >= 2 * (len(methods) + 1) else None

    curves = wait_for(curves_drawn, timeout=240, message="deletion/insertion curves")
    names = {trace["name"] for trace in curves}
    assert "random order" in names and len(names) == len(methods) + 1
    assert all(len(trace["x"]) == 21 for trace in curves)
    sanity_traces = None
    if sanity:
        sanity_traces = wait_for(lambda: (d := figure_data(dash_duo, "trust-sanity")) and
                                 len(d) == 2 * len(methods) and d, timeout=240,
                                 message="sanity-check curves")  # fmt: skip
        assert all(len(trace["x"]) >= 2 for trace in sanity_traces)
    rows = dash_duo.find_elements("#trust-table tbody tr")
    assert sorted(r.get_attribute("data-method") for r in rows) == sorted(methods)
    wait_for(lambda: dash_duo.find_element("#trust-status").text.startswith(done), message=f"status {done!r}")
    return curves, sanity_traces


def tick_method(dash_duo, label: str) -> None:
    """Toggle the method switch whose label starts with `label` in the Methods card."""
    items = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#method-checklist label")
    next(item for item in items if item.text.strip().startswith(label)).click()


def export_zip(dash_duo) -> str:
    """Press "Export zip" and wait for the streamed zip in the browser's download folder; returns its path."""
    click(dash_duo, "#trust-export")
    folder = dash_duo.download_path
    return wait_for(lambda: [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".zip")],
                    timeout=60, message="downloaded zip")[0]  # fmt: skip
