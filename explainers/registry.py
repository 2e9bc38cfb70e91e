"""The registry of attribution methods: names -> explainer instances, in display order.

Methods register themselves with the `register` class decorator when their module is imported; `explainers/__init__`
imports every method module, so `available()` lists them all.
"""

from __future__ import annotations

from typing import TypeVar

from explainers.base import Explainer

_EXPLAINERS: dict[str, Explainer] = {}

E = TypeVar("E", bound=type[Explainer])


def register(cls: E) -> E:
    """Class decorator: add one instance of the explainer class under its `name`."""
    if cls.name in _EXPLAINERS:
        raise ValueError(f"An explainer named {cls.name!r} is already registered.")
    _EXPLAINERS[cls.name] = cls()
    return cls


def available() -> list[str]:
    """Names of every registered method, in registration (display) order."""
    return list(_EXPLAINERS)


def get(name: str) -> Explainer:
    """The explainer registered under `name`; ValueError naming the choices if there is none."""
    try:
        return _EXPLAINERS[name]
    except KeyError:
        raise ValueError(f"Unknown attribution method {name!r}; available: {', '.join(available())}.") from None
