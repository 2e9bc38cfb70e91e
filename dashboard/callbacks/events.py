"""One writer per output: event stores and the writer callbacks that turn them into the output's properties.

An output that several events must update (`ids.EVENT_SOURCES`) is written by exactly one callback, registered here.
Each event source writes only its own small event store, `ids.event(output, source)`, with `emit({prop: value})`:
the properties it wants to set (a property it leaves alone is simply absent; no event at all is `no_update`). The
writer reads every event store of the output and applies `decide`'s rule: the event that fired wins; when several
fired in the same round, the newest (by its stamp) wins. The writers registered here run it in the browser
(`segx.writeEvents`, assets/dashboard.js: no server round trip between a selection and the question callback);
`decide` is the same rule in Python, for the mask figure's writer (`dashboard.callbacks.mask`), which draws on the
server; `decide_message` is it for the message area. A browser test runs both on the same cases.

Why a stamp: the same event twice (the same refusal after the user closed the message) must fire again, and two
events that reach the writer together need an order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, no_update

from dashboard.config import AppConfig
from dashboard.view import ids

# The properties each writer sets, in its output order.
PROPS: dict[str, tuple[str, ...]] = {
    ids.MESSAGE: ("children", "color", "is_open"),
    ids.IMAGE: ("data",),
    ids.REGION: ("data",),
    ids.TARGET: ("value", "options"),
    ids.REGION_INFO: ("children",),
    ids.TRUST_STATUS: ("children",),
}


def emit(values: Mapping[str, Any], at: int | None = None) -> Any:
    """The event-store value asking for `values` ({prop: value}; props set to `no_update` are left out), stamped
    with `at` (default: now, in ns); `no_update` when nothing is asked for."""
    wanted = {prop: value for prop, value in values.items() if value is not no_update}
    if not wanted:
        return no_update
    return {"set": wanted, "at": time.time_ns() if at is None else int(at)}


def event_output(output: str, source: str) -> Output:
    """The Output through which `source` sends its events for `output`."""
    return Output(ids.event(output, source), "data")


def decide(
    props: Sequence[str], triggered: Sequence[str], events: Mapping[str, Mapping[str, Any] | None]
) -> tuple[Any, ...]:
    """The values of `props` for the events that fired (`triggered`: their sources) given every source's last event.

    The newest fired event wins; a property it does not set is `no_update`; nothing fired (or only cleared events):
    everything is `no_update`.
    """
    fired = [events[source] for source in triggered if events.get(source)]
    if not fired:
        return (no_update,) * len(props)
    newest = max(fired, key=lambda event: int(event.get("at") or 0))
    wanted = newest.get("set") or {}
    return tuple(wanted.get(prop, no_update) for prop in props)


def decide_message(triggered: Sequence[str], events: Mapping[str, Mapping[str, Any] | None]) -> tuple[Any, Any, Any]:
    """(children, color, is_open) of the message area for the message events that fired."""
    children, color, is_open = decide(PROPS[ids.MESSAGE], triggered, events)
    return children, color, is_open


def register_writer(app: Dash, output: str) -> None:
    """Register the one callback writing `output` from its event stores: `decide`'s rule, run in the browser
    (`segx.writeEvents` in assets/dashboard.js), so an event reaches the callbacks that read `output` without a server
    round trip (one per selection before the question callback starts)."""
    app.clientside_callback(
        ClientsideFunction(namespace="segx", function_name="writeEvents"),
        *[Output(output, prop) for prop in PROPS[output]],
        *[Input(ids.event(output, source), "data") for source in ids.EVENT_SOURCES[output]],
        prevent_initial_call=True,
    )


def register(app: Dash, config: AppConfig) -> None:
    """Register the writer of every output in `PROPS` (the mask figure has its own: `dashboard.callbacks.mask`)."""
    for output in PROPS:
        register_writer(app, output)
