"""The batch report's questions: which (image, region, target class) cases to explain, from a folder of images.

A case source is any iterable of `Case`; `folder_cases` makes one region per predicted class of every image in a
folder. (The demo's held-out procedural mushrooms with their ground-truth parts are a case source of `models.report`,
so the engine never imports the demo.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from explainers.adapter import SegmentationAdapter
from explainers.question import Question

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Case:
    """One question: explain S_target(image; region)."""

    image_id: str
    image: np.ndarray
    region: np.ndarray
    target: int
    source: str  # "ground truth" | "predicted"
    truth: np.ndarray | None = None  # the image's ground-truth label map (H, W), when known: the errors section

    @property
    def question(self) -> Question:
        """The case as a `Question` (recorded in results.json, so each case can be reproduced)."""
        return Question(self.region, self.target, label=f"{self.source} region")


@dataclass(frozen=True)
class CaseSource:
    """Where the cases come from, and how the report describes them."""

    cases: Iterable[Case]
    input_text: str  # e.g. "Images from `photos/`, predicted classes"
    regions_text: str  # how the regions were chosen


def label_regions(
    num_classes: int, labels: np.ndarray, ignore: set[int], min_pixels: int
) -> Iterator[tuple[np.ndarray, int]]:
    """(region, class) for every class of a label map with at least `min_pixels` pixels, `ignore` left out."""
    for target in range(num_classes):
        region = labels == target
        if target not in ignore and region.sum() >= min_pixels:
            yield region, target


def load_image(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """An RGB uint8 array; centre-cropped and resized to `size` (H, W) when the model has a fixed input size."""
    try:
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError) as error:
        raise ValueError(f"{path.name} is not a readable image: {error}") from error
    if size is not None and picture.size != (size[1], size[0]):
        picture = ImageOps.fit(picture, (size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.uint8)


def folder_cases(
    adapter: SegmentationAdapter, folder: Path, limit: int, min_pixels: int, ignore: set[int]
) -> Iterator[Case]:
    """Every image of `folder` (sorted by name), one region per predicted class."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}.")
    count = 0
    for path in paths:
        image = load_image(path, adapter.input_size)
        labels = adapter.predict(image).argmax(-1)
        for region, target in label_regions(adapter.num_classes, labels, ignore, min_pixels):
            if count >= limit:
                return
            yield Case(path.name, image, region, target, "predicted")
            count += 1



def folder_source(
    adapter: SegmentationAdapter, folder: Path, limit: int, min_pixels: int, ignore: set[int]
) -> CaseSource:
    """`folder_cases` with its description."""
    return CaseSource(
        folder_cases(adapter, folder, limit, min_pixels, ignore),
        f"Images from `{folder.name}/`, predicted classes",
        f"one per (image, predicted class), at least {min_pixels} px, first {limit}.",
    )
