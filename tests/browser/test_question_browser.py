"""A sharper question in real headless Chromium: a box, its inner border, "rather than" the runner-up class, the
heatmaps of that contrast, and the question in the exported settings.json."""

from __future__ import annotations

import json
import zipfile

from selenium.webdriver.common.by import By

from tests.browser.helpers import (
    card_methods,
    click,
    drag,
    drag_area,
    export_zip,
    open_app,
    pick_sample,
    settle_and_check_console,
    wait_for,
)


def choose(dash_duo, dropdown: str, text: str) -> None:
    """Open a dcc.Dropdown and click the option whose text starts with `text`."""
    element = dash_duo.find_element(dropdown)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    wait_for(lambda: element.click() or True, message=f"a clickable {dropdown}")  # retried while covered
    option = wait_for(lambda: [o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")
                               if o.text.startswith(text)], message=f"option {text!r}")  # fmt: skip
    wait_for(lambda: option[0].click() or True, message=f"a clickable option {text!r}")


def test_border_ring_explained_rather_than_the_runner_up_and_exported(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    pick_sample(dash_duo, 1)
    drag(dash_duo, drag_area(dash_duo), (-60, -50), [(55, 45), (55, 45)])  # a box
    wait_for(lambda: dash_duo.find_element("#region-info").text.startswith("Box ·"), message="the box")
    # The first request traces the model (tens of seconds on a busy 2-core machine): wait generously.
    wait_for(lambda: len(card_methods(dash_duo, "#fast-grid")) >= 3, timeout=300, message="heatmaps of the box")
    mark_cards = "document.querySelectorAll('#fast-grid .hm-card').forEach(c => c.dataset.old = 1)"
    old_cards = "return document.querySelectorAll('#fast-grid .hm-card[data-old]').length"
    dash_duo.driver.execute_script(mark_cards)  # the box's cards: the inner border's replace them
    choose(dash_duo, "#region-border", "inner border")
    wait_for(lambda: dash_duo.find_element("#region-info").text.startswith("Inner border (3 px) of box ·"),
             message="the inner border of the box")  # fmt: skip
    # Its cards must be in before the contrast is asked for: otherwise they may land after the click and pass for
    # the contrast's below.
    wait_for(lambda: len(card_methods(dash_duo, "#fast-grid")) >= 3 and not dash_duo.driver.execute_script(old_cards),
             timeout=300, message="heatmaps of the inner border")  # fmt: skip
    before = dash_duo.find_element("#question-text").text
    assert before.startswith("Explaining: why is this inner border (3 px) of box") and "rather than" not in before

    # Mark the cards on the page: the contrast's cards replace them, so a marked card means the old question's.
    dash_duo.driver.execute_script(mark_cards)
    click(dash_duo, "#runner-up")
    text = wait_for(lambda: (t := dash_duo.find_element("#question-text").text) and "rather than" in t and t,
                    message="the contrast in the question line")  # fmt: skip
    contrast_name = text.split("rather than “")[1].rstrip("”?")
    wait_for(lambda: len(card_methods(dash_duo, "#fast-grid")) >= 3 and not dash_duo.driver.execute_script(old_cards),
             timeout=300, message="heatmaps of the contrast")  # fmt: skip

    path = export_zip(dash_duo)
    with zipfile.ZipFile(path) as archive:
        question = json.loads(archive.read("settings.json"))["question"]
    assert question["label"] == "border-inner(3) of box" and question["contrast_name"] == contrast_name
    assert question["contrast"] is not None and question["contrast"] != question["target"]
    settle_and_check_console(dash_duo)
