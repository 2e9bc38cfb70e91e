"""Helpers shared by the callback modules: the message area and small conversions."""

from __future__ import annotations

from typing import Any

from dash import Output, no_update

from dashboard.view import ids

Message = tuple[Any, Any, Any]
KEEP: Message = (no_update, no_update, no_update)
CLEAR: Message = (no_update, no_update, False)


def show(text: str, color: str = "danger") -> Message:
    """Values for the message outputs that show `text` (colour: danger, warning, info, success)."""
    return text, color, True


def message_outputs() -> list[Output]:
    """The outputs of the message area (children, color, is_open), shareable by several callbacks."""
    return [
        Output(ids.MESSAGE, "children", allow_duplicate=True),
        Output(ids.MESSAGE, "color", allow_duplicate=True),
        Output(ids.MESSAGE, "is_open", allow_duplicate=True),
    ]


def as_int(value: Any) -> int | None:
    """`value` as an int, or None."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
