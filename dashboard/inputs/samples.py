"""The gallery's sample images: discovery and thumbnails."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from dashboard.view.render import png_data_uri

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
THUMB_SIDE = 72


def list_samples(directory: str | None) -> dict[str, Path]:
    """{name (file stem): path} of the images in `directory`, sorted by name ({} if there is none)."""
    if not directory or not Path(directory).is_dir():
        return {}
    files = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
    return {p.stem: p for p in files}


@functools.lru_cache(maxsize=256)
def thumbnail_uri(path: str, mtime: float, side: int = THUMB_SIDE) -> str:
    """A small PNG data URI of an image file (cached per path and modification time)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        return png_data_uri(np.asarray(image))


def gallery_items(directory: str | None) -> list[tuple[str, str]]:
    """(name, thumbnail URI) of every sample, for the layout."""
    return [(name, thumbnail_uri(str(path), path.stat().st_mtime)) for name, path in list_samples(directory).items()]
