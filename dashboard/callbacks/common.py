"""Helpers shared by the callback modules: the message area and small conversions.

Handlers return a message as a `Message` triple (children, color, is_open); a callback sends it to the message area
as its own message event (`message_output(source)`, `message_event`), never to the message area itself: the one
writer of the message area is `dashboard.callbacks.events`.
"""

from __future__ import annotations

from typing import Any

from dash import Output, no_update

from dashboard.callbacks.events import PROPS, emit, event_output
from dashboard.view import ids

Message = tuple[Any, Any, Any]
KEEP: Message = (no_update, no_update, no_update)
CLEAR: Message = (no_update, no_update, False)


def show(text: str, color: str = "danger") -> Message:
    """Values for the message outputs that show `text` (colour: danger, warning, info, success)."""
    return text, color, True


def message_output(source: str) -> Output:
    """The output of `source`'s message event (`source`: one of `ids.EVENT_SOURCES[ids.MESSAGE]`)."""
    return event_output(ids.MESSAGE, source)


def message_event(message: Message) -> Any:
    """The message-event value for `message` (KEEP: `no_update`, no event)."""
    return emit(dict(zip(PROPS[ids.MESSAGE], message, strict=True)))


def with_message_event(outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """A handler's outputs ending with a `Message` triple -> the same outputs ending with its message event."""
    return (*outputs[:-3], message_event(tuple(outputs[-3:])))  # type: ignore[arg-type]


def as_int(value: Any) -> int | None:
    """`value` as an int, or None."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
