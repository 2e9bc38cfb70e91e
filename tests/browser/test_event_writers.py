"""The evented outputs' writers run in the browser (`segx.writeEvents`, assets/dashboard.js): the same cases through
its rule (`segx.decideEvents`) and through Python's `events.decide` must give the same properties, and the real app
must register no server callback for them."""

from __future__ import annotations

from dash import no_update

from dashboard.callbacks import events
from tests.browser.helpers import open_app, wait_for

PROPS = ("value", "options")
IMAGE_FIRST = {"image": {"set": {"value": None, "options": [1]}, "at": 10}, "region": {"set": {"value": 2}, "at": 20}}
CASES = [  # (the sources that fired, what every source's event store holds)
    (["image"], IMAGE_FIRST),  # the one that fired wins, not a newer one that did not
    (["image", "region"], {"image": {"set": {"value": 5}, "at": 30}, "region": {"set": {"value": 2}, "at": 20}}),
    (["region", "image"], {"image": {"set": {"value": 5}, "at": 10}, "region": {"set": {"options": [3]}, "at": 20}}),
    (["region"], {"image": {"set": {"value": 5}, "at": 10}, "region": None}),  # a cleared store: nothing
    ([], {"image": {"set": {"value": 5}, "at": 10}}),
    (["image"], {"image": {"set": {}, "at": 1}}),
    # stamps as the app makes them (time.time_ns(), beyond a JavaScript integer's exact range): 1 us apart still wins
    (["a", "b"], {"a": {"set": {"value": "old"}, "at": 1_796_354_403_128_244_000},
                  "b": {"set": {"value": "new"}, "at": 1_796_354_403_128_245_000}}),
]


def test_the_browser_writer_decides_as_events_decide(dash_duo, segx_app):
    open_app(dash_duo, segx_app)
    wait_for(lambda: dash_duo.driver.execute_script("return !!(window.dash_clientside && "
                                                    "window.dash_clientside.segx.decideEvents)"), message="segx")
    for fired, stored in CASES:
        expected = events.decide(PROPS, fired, stored)
        got = dash_duo.driver.execute_script(
            "return window.dash_clientside.segx.decideEvents(arguments[0], arguments[1]);",
            list(PROPS), [stored.get(source) for source in fired],
        )
        as_python = tuple(no_update if chosen is None else chosen["value"] for chosen in got)
        assert as_python == expected, (fired, stored)


def test_no_server_callback_writes_an_evented_output(segx_app):
    served = {part.split("@")[0] for dependency in segx_app.server.test_client().get("/_dash-dependencies").get_json()
              if not dependency.get("clientside_function") for part in dependency["output"].strip(".").split("...")}
    for output, props in events.PROPS.items():
        assert not any(f"{output}.{prop}" in served for prop in props), output
