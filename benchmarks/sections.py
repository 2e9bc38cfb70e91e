"""Sections of benchmarks/RESULTS.md that one benchmark owns, between its own begin/end markers: read one, or replace
it (appending it the first time), leaving every other part of the file as it was."""

from __future__ import annotations

from pathlib import Path


def extract_section(text: str, begin: str, end: str) -> str:
    """The section of `text` from `begin` to `end` (markers included), or ''."""
    start, stop = text.find(begin), text.find(end)
    return text[start : stop + len(end)] if 0 <= start < stop else ""


def write_section(path: Path, section: str, begin: str, end: str) -> None:
    """Replace the `begin`..`end` section of the file at `path` with `section` (or append it)."""
    text = path.read_text() if path.exists() else ""
    old = extract_section(text, begin, end)
    text = text.replace(old, section) if old else text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
