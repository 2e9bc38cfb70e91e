"""Export of one explanation as a zip: image, region mask, settings, heatmap PNGs, raw maps and metric tables.

Pure functions over plain arrays, dicts and strings (no Dash, no store, no model), so the round trip is tested
directly. The app streams the zip (`stream_zip`: one member at a time, from a Flask route, `dashboard.trust.export`),
so it is never held whole in memory nor base64-encoded into a callback response:

    image.png                      the explained image (RGB)
    region.png                     the region mask (L: 255 inside, 0 outside)
    settings.json                  model, class, layer, each method's resolved parameters, package versions, ...
    heatmaps/<method>.png          the overlay exactly as the heatmap cards render it (RGBA, `dashboard.view.render`)
    heatmaps/<method>_on_image.png the overlay composited over the image at the cards' opacity
    maps.npz                       every raw map: `<method>` at image size and, for CAMs, `<method>/layers/<layer>` for
                                   every conv layer AT THE LAYER'S OWN RESOLUTION (settings.json "layer_maps" says how
                                   to bring one to the image: bilinear, half-pixel centres, as the app does); float32
                                   arrays of the stored maps, which keep each map to 2^-11 of its largest magnitude
                                   (see `dashboard.state.records`)
    metrics/*.csv                  metric tables, when computed (deletion/insertion curves, AUCs, sanity, agreement)
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any

import numpy as np
from PIL import Image

from dashboard.view.render import colorize, display_range

PACKAGES = ("tensorflow", "keras", "numpy", "shap", "dash")
# Distribution names a package may be installed under (tensorflow ships as tensorflow-cpu here).
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos")}
LAYER_SEPARATOR = "/layers/"
_UNSAFE = re.compile(r"[^0-9A-Za-z_.+\-]+")


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for package in packages:
        versions[package] = None
        for dist in DISTRIBUTIONS.get(package, (package,)):
            try:
                versions[package] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def safe_name(name: str) -> str:
    """`name` usable as a file name inside the zip (letters, digits and `_.+-` kept)."""
    cleaned = _UNSAFE.sub("_", str(name)).strip("._")
    return cleaned or "unnamed"


def png_bytes(array: np.ndarray) -> bytes:
    """Lossless PNG of an (H, W) bool/uint8, (H, W, 3) or (H, W, 4) uint8 array (bool: 0 / 255). zlib level 1: at
    512x512 a quarter of Pillow's default level's time (~45 vs ~200 ms for an RGBA overlay) for ~13% more bytes."""
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def overlay_rgba(heatmap: np.ndarray, signed: bool) -> np.ndarray:
    """The RGBA overlay of a raw map, with the cards' display range and colour scale (`render.heatmap_uri`)."""
    lo, hi = display_range(heatmap, signed)
    return colorize(heatmap, lo, hi, signed)


def composite(image: np.ndarray, overlay: np.ndarray, opacity: float = 0.8) -> np.ndarray:
    """An (H, W, 3) uint8 image with the RGBA `overlay` drawn over it at `opacity` (as the cards stack them)."""
    base = np.asarray(image, dtype=np.float64)
    over = np.asarray(overlay, dtype=np.float64)
    alpha = over[..., 3:4] / 255.0 * float(np.clip(opacity, 0.0, 1.0))
    mixed = base * (1.0 - alpha) + over[..., :3] * alpha
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def flatten_maps(
    heatmaps: Mapping[str, np.ndarray], per_layer: Mapping[str, Mapping[str, np.ndarray]] | None = None
) -> dict[str, np.ndarray]:
    """One flat {npz key: array} dict: `<method>` for each map, `<method>/layers/<layer>` for each CAM layer map."""
    flat = {str(method): np.asarray(heatmap) for method, heatmap in heatmaps.items()}
    for method, layers in (per_layer or {}).items():
        for layer, heatmap in layers.items():
            flat[f"{method}{LAYER_SEPARATOR}{layer}"] = np.asarray(heatmap)
    return flat


def npz_bytes(maps: Mapping[str, np.ndarray]) -> bytes:
    """A compressed .npz holding every array of `maps` under its key."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{str(k): np.asarray(v) for k, v in maps.items()})
    return buffer.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def settings_json(settings: Mapping[str, Any]) -> str:
    """Settings as indented JSON (numpy scalars and arrays become numbers and lists; other objects strings)."""
    return json.dumps(settings, indent=2, default=_jsonable, ensure_ascii=False)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


CURVE_KINDS = ("deletion", "insertion", "random_deletion", "random_insertion")


def curves_csv(faithfulness: Mapping[str, Mapping[str, Any]]) -> str:
    """Long-format CSV of every deletion/insertion curve: method, curve, step, fraction, score.

    `faithfulness`: {method: {"deletion": {"fractions", "scores", "auc"}, "insertion": ..., "random_deletion": ...,
    "random_insertion": ..., "inside_share": float}} (the plain form `trust.metrics.plain_faithfulness` makes).
    """
    rows = []
    for method, result in faithfulness.items():
        for kind in CURVE_KINDS:
            curve = result.get(kind)
            if not curve:
                continue
            for step, (fraction, score) in enumerate(zip(curve["fractions"], curve["scores"], strict=True)):
                rows.append([method, kind, step, repr(float(fraction)), repr(float(score))])
    return _csv(["method", "curve", "step", "fraction", "score"], rows)


def auc_csv(faithfulness: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per method: raw and normalised deletion, insertion and random-order AUCs, and the inside share."""
    rows = []
    for method, result in faithfulness.items():
        values = []
        for kind in CURVE_KINDS:
            curve = result.get(kind) or {}
            values += [_number(curve.get("auc")), _number(curve.get("normalized_auc"))]
        rows.append([method, *values, _number(result.get("inside_share"))])
    header = [name for kind in CURVE_KINDS for name in (f"{kind}_auc", f"{kind}_normalized_auc")]
    return _csv(["method", *header, "inside_share"], rows)


def _number(value: Any) -> str:
    """A float as exact text ('nan' for NaN), '' when missing."""
    return "" if value is None else repr(float(value))


def sanity_csv(sanity: Mapping[str, Any]) -> str:
    """One row per (method, depth): Spearman (raw maps, and |map| when given) and SSIM with the original map, and
    whether the method is flagged."""
    rows = []
    depths = list(sanity["depths"])
    for method, values in sanity["spearman"].items():
        ssim = (sanity.get("ssim") or {}).get(method)
        absolute = (sanity.get("spearman_abs") or {}).get(method)
        flagged = bool((sanity.get("flagged") or {}).get(method, False))
        for index, depth in enumerate(depths):
            rows.append([method, index, depth, _number(values[index]),
                         "" if absolute is None else _number(absolute[index]),
                         "" if ssim is None else _number(ssim[index]), flagged])  # fmt: skip
    return _csv(["method", "depth_index", "depth", "spearman", "spearman_abs", "ssim", "flagged"], rows)


def agreement_csv(names: Sequence[str], matrix: np.ndarray | Sequence[Sequence[float]]) -> str:
    """The method-agreement matrix as a CSV with method names on both axes."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rows = [[name, *(repr(float(v)) for v in matrix[i])] for i, name in enumerate(names)]
    return _csv(["method", *names], rows)


class _Chunks(io.RawIOBase):
    """A write-only, unseekable sink that hands out what was written since the last `take` (zipfile then writes data
    descriptors instead of seeking back)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def zip_members(
    *,
    image: np.ndarray,
    region: np.ndarray,
    settings: Mapping[str, Any],
    maps: Mapping[str, np.ndarray],
    overlays: Mapping[str, np.ndarray] | None = None,
    opacity: float = 0.8,
    tables: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, bytes | str]]:
    """The export's members, (name in the zip, content), each made only when asked for.

    Args:
        image: (H, W, 3) uint8.
        region: (H, W) bool mask.
        settings: JSON-able facts (model, class, layer, method parameters, package versions, ...).
        maps: raw maps by npz key (see `flatten_maps`).
        overlays: {method: (H, W, 4) uint8 RGBA overlay} (see `overlay_rgba`), written as PNG alone and over the image.
        opacity: overlay opacity of the `_on_image` PNGs.
        tables: {file name: CSV text}, written under metrics/.
    """
    image = np.asarray(image)
    region = np.asarray(region, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or region.shape != image.shape[:2]:
        raise ValueError(f"Image {image.shape} and region {region.shape} do not match.")
    yield "image.png", png_bytes(image)
    yield "region.png", png_bytes(region)
    yield "settings.json", settings_json(settings)
    for method, overlay in (overlays or {}).items():
        name = safe_name(method)
        yield f"heatmaps/{name}.png", png_bytes(overlay)
        yield f"heatmaps/{name}_on_image.png", png_bytes(composite(image, overlay, opacity))
    yield "maps.npz", npz_bytes(maps)
    for filename, text in (tables or {}).items():
        yield f"metrics/{safe_name(filename)}", text


COMPRESSED_SUFFIXES = (".png", ".npz")  # compressed already: stored as they are, not deflated a second time


def stream_zip(members: Iterable[tuple[str, bytes | str]]) -> Iterator[bytes]:
    """The zip of `members` as a stream of byte chunks: each member compressed (deflate; PNGs and the npz are stored
    as they are, being compressed already) and handed out as soon as it is made."""
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            stored = name.endswith(COMPRESSED_SUFFIXES)
            archive.writestr(name, content, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
            if chunk := sink.take():
                yield chunk
    if chunk := sink.take():  # the central directory
        yield chunk


def build_zip(**members: Any) -> bytes:
    """The export zip's bytes: the streamed zip of `zip_members(**members)`, joined."""
    return b"".join(stream_zip(zip_members(**members)))
