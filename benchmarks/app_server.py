"""App benchmarks over HTTP on the real server (issue 4, P2 and P4): interactive latency and peak memory.

`run()` starts ``python app.py --port P --state-dir <tmp>`` (the bundled demo model) as a subprocess on a free
loopback port, waits until it serves and its start-up work (model load, tracing and shap's numba warm-up in the web
process, where background jobs run in threads; with ``--server-args=--job-processes`` TensorFlow and shap load in the
job forkserver instead) has gone quiet, then replays what the browser sends to ``/_dash-update-component``, and always
stops the server, its forkserver and any job processes at the end.

How the requests are made: a small model of dash-renderer 4.4.1 (`Page` + `DashClient`) loads the page the way the
browser does (``/`` for the ``_dash-config`` with its signed ``end_id``, ``/_dash-layout``, ``/_dash-dependencies``),
keeps every component's props, and turns a user's prop change into the callbacks that have it as an input; each
callback's payload (``output``, ``outputs``, ``inputs``, ``state``, ``changedPropIds``) is filled from the current
props, pattern-matching (ALL) ids are resolved against the components present, responses (including ``Patch``
operations and new ``children``) are applied, and the callbacks they trigger are posted at once, concurrently, as the
renderer does (checked against a recording of headless Chromium on this app: box -> ``selectedData`` and the mask's
``relayoutData`` together; then ``on_question`` and ``on_class`` in parallel). Background callbacks follow the
renderer's protocol: the first post returns signed ``cacheKey``/``job`` handles; the same payload, with input and
state values nulled, is re-posted with ``?endId=..&cacheKey=..&job=..`` every ``interval`` ms after the previous
answer until one carries ``response`` (progress arrives on the way). Not modelled: initial calls for components added
by a callback (every callback of this app has ``prevent_initial_call=True``), and events the browser raises itself
after rendering (the heatmaps' ``relayoutData={'autosize': True}``, answered 204 after the figures are shown).

Measured (a typical session, after two warm-up selections that are reported apart as "cold"):
- P2a region selection -> fast-method figures: boxes with varying size/place (``selectedData`` on the mask figure)
  and whole-class picks, on three samples; the chain time is user event -> the response carrying ``fast-grid``
  children read and applied (target p50 < 250 ms); each request is also timed (time to first byte ~ server time,
  total) with its response size.
- P2b layer slider -> figures: ``layer-slider.value`` -> the response with the heatmap figure patches (p50 < 80 ms).
- P4 / S6 peak memory: RSS of the server process, and of the server plus its children (with job processes: resource
  tracker, forkserver, job processes), sampled every 0.2 s through the session, one SHAP background job and one trust
  job (faithfulness curves and the sanity check) run to completion; PSS (which counts pages shared between the
  forkserver and its forked jobs once) is sampled every second. Target: < 1.5 GB.
- Context for the noisy, shared machine: the server's CPU time per interaction (all its threads and children) and the
  share of the machine's CPU that other processes used meanwhile, so a slow run can be told from a loaded machine.

    python -m benchmarks.app_server [--json out.json] [--selections 30] [--slider 50] [--no-shap] [--no-trust]
                                    [--server-args=--job-processes]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import json
import math
import operator
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
TARGET_SELECTION_P50_MS = 250.0
TARGET_SLIDER_P50_MS = 80.0
TARGET_PEAK_MB = 1536.0  # 1.5 GB, in MiB
UPDATE_PATH = "_dash-update-component"
PATCH_MARK = "__dash_patch_update"

# Component ids of the app (dashboard/ids.py); the benchmark reads them from the served layout, never imports them.
MASK_GRAPH = "mask-graph"
CLASS_PICKER = "class-picker"
FAST_GRID = "fast-grid"
SLOW_GRID = "slow-grid"
IMAGE = "image-store"
METHODS = "method-checklist"
TRUST_RUN = "trust-run"
TRUST_RESULT = "trust-result-store"
LAYER = "layer-slider"
SAMPLE_TYPE = "sample-thumb"
HEATMAP_TYPE = "heatmap-graph"


class BenchmarkError(RuntimeError):
    """The server failed to start or answered a request with an error."""


# ----------------------------------------------------------------------------------------------------------------
# Pure helpers: statistics, Dash ids and dependency strings, Patch operations, the renderer's payloads.
# ----------------------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be in [0, 100]")
    ordered = sorted(float(v) for v in values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float], digits: int = 1) -> dict[str, Any]:
    """n, p50, p95, mean, min and max of `values` (rounded), JSON-ready; NaN-free (None) when empty."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "min": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "mean": round(sum(values) / len(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def stringify_id(id_: str | Mapping[str, Any]) -> str:
    """A component id as the renderer and Dash key it: dict ids as JSON with sorted keys and no spaces."""
    if isinstance(id_, Mapping):
        return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(id_[k])}" for k in sorted(id_)) + "}"
    return str(id_)


def parse_id(id_str: str) -> str | dict[str, Any]:
    """The inverse of `stringify_id`."""
    return json.loads(id_str) if id_str.startswith("{") else id_str


def clean_property(prop: str) -> str:
    """`figure@<hash>` (an allow_duplicate output) -> `figure`."""
    return prop.split("@", 1)[0]


def is_multi_output(output: str) -> bool:
    """Whether a dependency's `output` string names several outputs (``..a.b...c.d..``)."""
    return output.startswith("..")


def parse_output_spec(output: str) -> list[tuple[str, str]]:
    """The (id string, property) pairs of a dependency's `output` string, properties with their ``@hash``."""
    parts = output[2:-2].split("...") if is_multi_output(output) else [output]
    pairs = []
    for part in parts:
        id_str, _, prop = part.rpartition(".")
        pairs.append((id_str, prop))
    return pairs


def is_wildcard(value: Any) -> bool:
    """ALL / MATCH / ALLSMALLER as they appear in ``/_dash-dependencies`` (a one-element list)."""
    return isinstance(value, list) and len(value) == 1 and value[0] in ("ALL", "MATCH", "ALLSMALLER")


def id_matches(pattern: Mapping[str, Any], concrete: Any) -> bool:
    """Whether a concrete dict id matches a pattern id (same keys; wildcards match any value)."""
    if not isinstance(concrete, Mapping) or set(pattern) != set(concrete):
        return False
    return all(is_wildcard(value) or concrete[key] == value for key, value in pattern.items())


ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mul": operator.mul,
    "Div": operator.truediv,
}


def _copied(value: Any) -> Any:
    """A shallow copy of a list or dict; a new dict for anything else (a path through a missing value)."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return {}


def apply_patch(value: Any, patch: Mapping[str, Any]) -> Any:
    """`value` with the operations of a serialised `dash.Patch` applied, as the renderer applies them.

    Only the containers along each operation's path are copied (the rest is shared, as with ramda's assocPath in the
    renderer), so `value` itself is left unchanged and large figures are not deep-copied.
    """
    result = value
    for op in patch.get("operations", []):
        name, location, params = op["operation"], list(op["location"]), op.get("params", {})
        root = _copied(result)
        if not location:
            if name == "Assign":
                root = params["value"]
            elif name == "Merge":
                root.update(params["value"])
            result = root
            continue
        parent = root
        for key in location[:-1]:
            present = isinstance(parent, list) or key in parent
            parent[key] = _copied(parent[key] if present else None)
            parent = parent[key]
        last = location[-1]
        present = isinstance(parent, list) or last in parent
        current = parent[last] if present else None
        if name == "Assign":
            parent[last] = params["value"]
        elif name == "Delete":
            if present:
                del parent[last]
        elif name == "Merge":
            parent[last] = {**(current or {}), **params["value"]}
        elif name in ("Append", "Extend", "Prepend", "Insert", "Clear", "Reverse", "Remove"):
            items = list(current or [])
            if name == "Append":
                items.append(params["value"])
            elif name == "Extend":
                items.extend(params["value"])
            elif name == "Prepend":
                items.insert(0, params["value"])
            elif name == "Insert":
                items.insert(params["index"], params["value"])
            elif name == "Clear":
                items.clear()
            elif name == "Reverse":
                items.reverse()
            elif params["value"] in items:
                items.remove(params["value"])
            parent[last] = items
        elif name in ARITHMETIC:
            parent[last] = ARITHMETIC[name](current, params["value"])
        result = root
    return result


def is_patch(value: Any) -> bool:
    """Whether a response value is a serialised `dash.Patch`."""
    return isinstance(value, Mapping) and value.get(PATCH_MARK) == PATCH_MARK


def is_component(value: Any) -> bool:
    """Whether a JSON value is a serialised Dash component."""
    return isinstance(value, Mapping) and "props" in value and "namespace" in value and "type" in value


def walk_components(node: Any) -> Iterator[dict[str, Any]]:
    """Every component in a layout (depth-first, in document order), descending through component-valued props."""
    if is_component(node):
        yield node  # type: ignore[misc]
        for value in node["props"].values():
            if is_component(value) or isinstance(value, list):
                yield from walk_components(value)
    elif isinstance(node, list):
        for item in node:
            if is_component(item) or isinstance(item, list):
                yield from walk_components(item)


def extract_config(index_html: str) -> dict[str, Any]:
    """The ``_dash-config`` JSON embedded in the app's index page (holds the signed ``end_id``)."""
    match = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', index_html, re.S)
    if not match:
        raise BenchmarkError("no _dash-config in the index page")
    return json.loads(match.group(1))


def update_url(
    base_url: str,
    end_id: str | None,
    cache_key: str | None = None,
    job: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """The callback URL as the renderer builds it: endId first, then background handles, then extra arguments."""
    url = f"{base_url.rstrip('/')}/{UPDATE_PATH}"
    args: list[tuple[str, str]] = []
    if end_id:
        args.append(("endId", end_id))
    if cache_key:
        args.append(("cacheKey", cache_key))
    if job:
        args.append(("job", job))
    args.extend(extra)
    if args:
        url += "?" + "&".join(f"{name}={quote(str(value), safe='~')}" for name, value in args)
    return url


def blank_values(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A background-callback poll body: the original payload with every input and state value set to null."""
    body = copy.deepcopy(dict(payload))
    for key in ("inputs", "state"):
        for item in body.get(key) or []:
            for entry in item if isinstance(item, list) else [item]:
                entry["value"] = None
    return body


def box_events(x0: float, y0: float, x1: float, y1: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(selectedData, relayoutData) that plotly.js reports for a box drag over an image/heatmap trace."""
    selected = {"points": [], "range": {"x": [x0, x1], "y": [y0, y1]}}
    relayout = {
        "selections": [
            {
                "xref": "x",
                "yref": "y",
                "line": {"color": "#ffffff", "width": 1.5, "dash": "dot"},
                "type": "rect",
                "x0": x0,
                "y0": y0,
                "x1": x1,
                "y1": y1,
            }
        ]
    }
    return selected, relayout


def random_boxes(
    n: int, height: int, width: int, rng: random.Random, min_side: float = 6.0, max_frac: float = 0.6
) -> list[tuple[float, float, float, float]]:
    """`n` boxes (x0, y0, x1, y1) in pixel coordinates of a `height` x `width` image, varying in place and size."""
    boxes = []
    for _ in range(n):
        w = rng.uniform(min_side, max(min_side, max_frac * width))
        h = rng.uniform(min_side, max(min_side, max_frac * height))
        x0 = rng.uniform(-0.5, max(-0.5, width - 0.5 - w))
        y0 = rng.uniform(-0.5, max(-0.5, height - 0.5 - h))
        boxes.append((round(x0, 3), round(y0, 3), round(x0 + w, 3), round(y0 + h, 3)))
    return boxes


def split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """`items` in `parts` consecutive chunks whose sizes differ by at most one (earlier chunks larger)."""
    size, rest = divmod(len(items), parts)
    chunks, start = [], 0
    for k in range(parts):
        end = start + size + (1 if k < rest else 0)
        chunks.append(list(items[start:end]))
        start = end
    return chunks


def layer_walk(n: int, n_layers: int, start: int, rng: random.Random) -> list[int]:
    """`n` slider positions in [0, n_layers), each different from the one before (a release that changes it)."""
    if n_layers < 2:
        return []
    positions, current = [], start
    for _ in range(n):
        step = rng.choice([-1, 1]) if rng.random() < 0.6 else rng.randrange(1, n_layers)
        nxt = (current + step) % n_layers
        if nxt == current:
            nxt = (current + 1) % n_layers
        positions.append(nxt)
        current = nxt
    return positions


# ----------------------------------------------------------------------------------------------------------------
# The client-side model: callbacks from /_dash-dependencies, the page's props, and payload building.
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    """One entry of ``/_dash-dependencies``."""

    index: int
    output: str
    outputs: tuple[tuple[str, str], ...]
    inputs: tuple[tuple[str, str], ...]
    state: tuple[tuple[str, str], ...]
    background: Mapping[str, Any] | None
    running: Mapping[str, Any] | None
    clientside: bool
    clientside_function: str | None = None  # its function name in the `segx` namespace (assets/dashboard.js)

    @property
    def multi(self) -> bool:
        return is_multi_output(self.output)

    @property
    def label(self) -> str:
        """`first input -> first output`, e.g. ``mask-graph.selectedData -> region-store.data``."""
        inp = ",".join(f"{_short(i)}.{p}" for i, p in self.inputs[:1])
        out = f"{_short(self.outputs[0][0])}.{clean_property(self.outputs[0][1])}" if self.outputs else "-"
        return f"{inp} -> {out}"


def _short(id_str: str) -> str:
    if id_str.startswith("{"):
        parsed = json.loads(id_str)
        return str(parsed.get("type", id_str)) + "[*]"
    return id_str


def parse_dependencies(deps: Sequence[Mapping[str, Any]]) -> list[Callback]:
    """`Callback`s from the JSON of ``/_dash-dependencies``."""
    callbacks = []
    for k, dep in enumerate(deps):
        callbacks.append(
            Callback(
                index=k,
                output=dep["output"],
                outputs=tuple(parse_output_spec(dep["output"])),
                inputs=tuple((d["id"], d["property"]) for d in dep.get("inputs", [])),
                state=tuple((d["id"], d["property"]) for d in dep.get("state", []) or []),
                background=dep.get("background"),
                running=dep.get("running"),
                clientside=bool(dep.get("clientside_function")),
                clientside_function=(dep.get("clientside_function") or {}).get("function_name"),
            )
        )
    return callbacks


class Page:
    """The browser-side state of one page load: the layout's components and their current props."""

    def __init__(self, layout: Mapping[str, Any], callbacks: Sequence[Callback]) -> None:
        self.layout = copy.deepcopy(dict(layout))
        self.callbacks = list(callbacks)
        self.index: dict[str, dict[str, Any]] = {}
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the id -> component index (after children changed)."""
        self.index = {}
        for comp in walk_components(self.layout):
            comp_id = comp["props"].get("id")
            if comp_id is not None:
                self.index[stringify_id(comp_id)] = comp

    def get(self, id_str: str, prop: str, default: Any = None) -> Any:
        """The current value of a prop (`default` if the component or prop is absent)."""
        comp = self.index.get(id_str)
        return default if comp is None else comp["props"].get(prop, default)

    def ids_matching(self, pattern: Mapping[str, Any]) -> list[str]:
        """Id strings of the components whose dict id matches `pattern`, in document order."""
        return [s for s in self.index if s.startswith("{") and id_matches(pattern, json.loads(s))]

    def set_props(self, id_str: str, props: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Apply new prop values (Patches applied to the current value); returns the (id, prop) pairs set."""
        comp = self.index.get(id_str)
        if comp is None:
            return []  # the renderer drops updates for components that are not (or no longer) on the page
        changed, new_children = [], False
        for prop, value in props.items():
            prop = clean_property(prop)
            if is_patch(value):
                value = apply_patch(comp["props"].get(prop), value)
            comp["props"][prop] = value
            changed.append((id_str, prop))
            new_children = new_children or prop == "children" or is_component(value) or isinstance(value, list)
        if new_children:
            self.reindex()
        return changed

    def apply_response(self, response: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
        """Apply a callback's ``response`` ({id: {prop: value}}); returns the (id, prop) pairs set."""
        changed: list[tuple[str, str]] = []
        for id_str, props in response.items():
            changed.extend(self.set_props(id_str, props))
        return changed

    def triggered(self, changed: Iterable[tuple[str, str]]) -> list[tuple[Callback, list[str]]]:
        """The callbacks that have one of the changed props as an input, with their changedPropIds: the server-side
        ones and the clientside event writers (`run_writer`); other clientside callbacks are not modelled."""
        changed = list(changed)
        found = []
        for cb in self.callbacks:
            if cb.clientside and cb.clientside_function != "writeEvents":
                continue
            prop_ids: list[str] = []
            for spec_id, spec_prop in cb.inputs:
                pattern = parse_id(spec_id)
                for id_str, prop in changed:
                    if prop != spec_prop:
                        continue
                    hit = (
                        id_str == spec_id
                        if isinstance(pattern, str)
                        else (id_str.startswith("{") and id_matches(pattern, json.loads(id_str)))
                    )
                    if hit and f"{id_str}.{prop}" not in prop_ids:
                        prop_ids.append(f"{id_str}.{prop}")
            if prop_ids:
                found.append((cb, prop_ids))
        return found

    def run_writer(self, cb: Callback, prop_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Run a clientside event writer (`segx.writeEvents`, in the page) as the browser does, with its rule in
        Python (`dashboard.callbacks.events.decide`); returns the (id, prop) pairs set."""
        from dash import no_update

        from dashboard.callbacks.events import decide

        fired = {prop_id: self.get(*prop_id.rsplit(".", 1)) for prop_id in prop_ids}
        values = decide([clean_property(prop) for _, prop in cb.outputs], list(prop_ids), fired)
        changed: list[tuple[str, str]] = []
        for (id_str, prop), value in zip(cb.outputs, values, strict=True):
            if value is not no_update:
                changed.extend(self.set_props(id_str, {prop: value}))
        return changed

    def _resolve(self, spec_id: str, prop: str, with_value: bool) -> Any:
        def entry(id_str: str) -> dict[str, Any]:
            item: dict[str, Any] = {"id": parse_id(id_str), "property": prop}
            if with_value:
                comp = self.index.get(id_str)
                clean = clean_property(prop)
                if comp is not None and clean in comp["props"]:
                    item["value"] = comp["props"][clean]
            return item

        pattern = parse_id(spec_id)
        if isinstance(pattern, str):
            return entry(spec_id)
        if any(is_wildcard(v) and v[0] == "MATCH" for v in pattern.values()):
            raise NotImplementedError("MATCH patterns are not used by this app")
        return [entry(s) for s in self.ids_matching(pattern)]

    def payload(self, cb: Callback, changed_prop_ids: Sequence[str]) -> dict[str, Any]:
        """The JSON body the renderer posts to ``/_dash-update-component`` for `cb`."""
        outputs = [self._resolve(i, p, with_value=False) for i, p in cb.outputs]
        body: dict[str, Any] = {
            "output": cb.output,
            "outputs": outputs if cb.multi else outputs[0],
            "inputs": [self._resolve(i, p, with_value=True) for i, p in cb.inputs],
            "changedPropIds": list(changed_prop_ids),
            "parsedChangedPropsIds": [
                parse_id(p[: p.rindex("}") + 1]) if p.startswith("{") else p for p in changed_prop_ids
            ],
        }
        if cb.state:
            body["state"] = [self._resolve(i, p, with_value=True) for i, p in cb.state]
        return body

    def apply_side_updates(self, updates: Mapping[str, Any]) -> None:
        """Apply ``{"id.prop": value}`` updates (running/progress side updates)."""
        for key, value in updates.items():
            id_str, _, prop = key.rpartition(".")
            self.set_props(id_str, {prop: value})


# ----------------------------------------------------------------------------------------------------------------
# HTTP: a renderer-like client that posts callbacks, concurrently, and follows background jobs.
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One HTTP request of an interaction (times in ms from the user event)."""

    label: str
    kind: str  # "callback", "job-start", "job-poll"
    start_ms: float
    ttfb_ms: float
    end_ms: float
    status: int
    bytes: int
    parse_ms: float = 0.0
    updated: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, label: str, kind: str, t0: float, posted: tuple[float, float, float, int, bytes],
           parse_ms: float = 0.0) -> RequestRecord:  # fmt: skip
        """The record of one `DashClient._post` result, its perf-counter times taken from the user event at `t0`."""
        start, headers_at, end, status, content = posted
        return cls(label, kind, 1000 * (start - t0), 1000 * (headers_at - t0), 1000 * (end - t0), status,
                   len(content), parse_ms)  # fmt: skip

    @property
    def total_ms(self) -> float:
        return self.end_ms - self.start_ms

    @property
    def server_ms(self) -> float:
        """Time to the response headers (the dev server sends them once the callback and its JSON are done)."""
        return self.ttfb_ms - self.start_ms


@dataclass
class Interaction:
    """The requests one user action caused, and when each prop was updated."""

    name: str
    requests: list[RequestRecord] = field(default_factory=list)
    updates: list[tuple[str, float]] = field(default_factory=list)
    settle_ms: float = 0.0
    client_ms: float = 0.0  # this client's own work on the event loop (payloads, applying responses)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used meanwhile (see `CpuProbe`)

    def first_update(self, predicate: Callable[[str], bool]) -> float | None:
        times = [t for key, t in self.updates if predicate(key)]
        return min(times) if times else None

    def last_update(self, predicate: Callable[[str], bool]) -> float | None:
        times = [t for key, t in self.updates if predicate(key)]
        return max(times) if times else None

    def request_carrying(self, predicate: Callable[[str], bool]) -> RequestRecord | None:
        for record in self.requests:
            if any(predicate(key) for key in record.updated):
                return record
        return None


class DashClient:
    """Loads the app like a browser and posts the callbacks the renderer would post for user prop changes."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 60.0,
        max_workers: int = 6,
        probe: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.probe = probe
        self.timeout = timeout
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dash-client")
        self.config: dict[str, Any] = {}
        self.page: Page | None = None
        self.load_stats: dict[str, Any] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"Accept": "application/json"})
            self._local.session = session
        return session

    def load_page(self) -> dict[str, Any]:
        """GET the index page (config, end_id), the layout and the dependencies; returns timings and sizes."""
        stats: dict[str, Any] = {}
        start = time.perf_counter()
        index = self.http.get(self.base_url + "/", timeout=self.timeout)
        index.raise_for_status()
        self.config = extract_config(index.text)
        stats["index_bytes"] = len(index.content)
        t = time.perf_counter()
        layout = self.http.get(self.base_url + "/_dash-layout", timeout=self.timeout)
        layout.raise_for_status()
        stats["layout_ms"] = round(1000 * (time.perf_counter() - t), 1)
        stats["layout_bytes"] = len(layout.content)
        deps = self.http.get(self.base_url + "/_dash-dependencies", timeout=self.timeout)
        deps.raise_for_status()
        stats["dependencies_bytes"] = len(deps.content)
        self.page = Page(layout.json(), parse_dependencies(deps.json()))
        stats["page_load_ms"] = round(1000 * (time.perf_counter() - start), 1)
        self.load_stats = stats
        return stats

    def _post(self, url: str, body: Mapping[str, Any]) -> tuple[float, float, float, int, bytes]:
        """POST; returns (start, headers received, body read) perf-counter times, status and raw body."""
        start = time.perf_counter()
        resp = self.http.post(url, json=body, timeout=self.timeout, stream=True)
        headers_at = time.perf_counter()
        content = resp.content
        end = time.perf_counter()
        if resp.status_code >= 400:
            raise BenchmarkError(f"{resp.status_code} from {url.split('?')[0]}: {content[:800]!r}")
        return start, headers_at, end, resp.status_code, content

    def _call(self, cb: Callback, payload: dict[str, Any], t0: float) -> tuple[list[RequestRecord], dict | None]:
        """One plain callback request."""
        url = update_url(self.base_url, self.config.get("end_id"))
        posted = self._post(url, payload)
        _, _, end, status, content = posted
        data = json.loads(content) if status == 200 and content else None
        parse_ms = 1000 * (time.perf_counter() - end)
        return [RequestRecord.of(cb.label, "callback", t0, posted, parse_ms)], data

    def _background(self, cb: Callback, payload: dict[str, Any], t0: float) -> tuple[list[RequestRecord], dict | None]:
        """A background callback: start the job, then poll with its signed handles until the result arrives."""
        end_id = self.config.get("end_id")
        interval = float((cb.background or {}).get("interval", 500)) / 1000.0
        records: list[RequestRecord] = []
        progress: dict[str, Any] = {}
        url = update_url(self.base_url, end_id)
        posted = self._post(url, payload)
        _, _, _, status, content = posted
        records.append(RequestRecord.of(cb.label, "job-start", t0, posted))
        if status != 200:
            return records, None
        handles = json.loads(content)
        if "response" in handles:
            return records, handles
        cache_key, job = handles.get("cacheKey"), handles.get("job")
        poll_body = blank_values(payload)
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            time.sleep(interval)
            url = update_url(self.base_url, end_id, cache_key, job)
            posted = self._post(url, poll_body)
            _, _, _, status, content = posted
            records.append(RequestRecord.of(cb.label, "job-poll", t0, posted))
            if status != 200:
                return records, None
            data = json.loads(content)
            progress.update(data.get("progress") or {})
            if "response" in data:
                data["progress"] = progress
                if handles.get("progressDefault"):
                    data["progressDefault"] = handles["progressDefault"]
                return records, data
        raise BenchmarkError("background job did not finish within 600 s")

    def interact(self, name: str, changes: Sequence[tuple[str, str, Any]], timeout: float = 300.0) -> Interaction:
        """Set user prop changes, post the triggered callbacks and everything they trigger; wait until idle."""
        page = self.page
        if page is None:
            raise BenchmarkError("load_page() first")
        result = Interaction(name)
        cpu_before = self.probe() if self.probe else {}
        t0 = time.perf_counter()
        changed: list[tuple[str, str]] = []
        for id_str, prop, value in changes:
            changed.extend(page.set_props(id_str, {prop: value}))
        pending: dict[Future, Callback] = {}

        def fire(triggered: list[tuple[Callback, list[str]]]) -> None:
            for cb, prop_ids in triggered:
                if cb.clientside:  # an event writer: in the page, at once
                    fire(page.triggered(page.run_writer(cb, prop_ids)))
                    continue
                payload = page.payload(cb, prop_ids)
                if cb.background is not None:
                    if cb.running:
                        page.apply_side_updates(cb.running.get("running", {}))
                    pending[self._pool.submit(self._background, cb, payload, t0)] = cb
                else:
                    pending[self._pool.submit(self._call, cb, payload, t0)] = cb

        fire(page.triggered(changed))
        busy = time.perf_counter() - t0
        deadline = t0 + timeout
        while pending:
            done, _ = wait(list(pending), timeout=max(0.0, deadline - time.perf_counter()), return_when=FIRST_COMPLETED)
            if not done:
                raise BenchmarkError(f"{name}: callbacks still pending after {timeout} s")
            for future in done:
                cb = pending.pop(future)
                records, data = future.result()
                busy_from = time.perf_counter()
                result.requests.extend(records)
                if cb.background is not None and cb.running:
                    page.apply_side_updates(cb.running.get("runningOff", {}))
                if not data:
                    busy += time.perf_counter() - busy_from
                    continue
                page.apply_side_updates(data.get("progress") or {})
                page.apply_side_updates(data.get("progressDefault") or {})
                for id_str, props in (data.get("sideUpdate") or {}).items():
                    page.set_props(id_str, props)
                set_now = page.apply_response(data.get("response") or {})
                applied_ms = 1000 * (time.perf_counter() - t0)
                keys = [f"{i}.{p}" for i, p in set_now]
                records[-1].updated = keys
                result.updates.extend((key, applied_ms) for key in keys)
                fire(page.triggered(set_now))
                busy += time.perf_counter() - busy_from
        result.settle_ms = 1000 * (time.perf_counter() - t0)
        result.client_ms = 1000 * busy
        if self.probe:
            cpu_after = self.probe()
            result.cpu = {key: max(0.0, cpu_after[key] - cpu_before.get(key, 0.0)) for key in cpu_after}
        return result


# ----------------------------------------------------------------------------------------------------------------
# The server process and memory sampling.
# ----------------------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_role(proc: psutil.Process) -> str:
    """forkserver / resource_tracker / job (a process forked from the forkserver) / other."""
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    try:
        parent = proc.parent()
        if parent is not None and "forkserver" in " ".join(parent.cmdline()):
            return "job"  # forked, not exec'd: its command line is the forkserver's
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    if "forkserver" in cmdline:
        return "forkserver"
    if "resource_tracker" in cmdline:
        return "resource_tracker"
    return "other"


class AppServer:
    """``python app.py --port P --state-dir D`` in its own process group; `stop()` ends it and its children."""

    def __init__(self, port: int, state_dir: str, log_path: str, extra_args: Sequence[str] = ()) -> None:
        self.port, self.state_dir, self.log_path = port, state_dir, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.cmd = [
            sys.executable,
            str(REPO_ROOT / "app.py"),
            "--port",
            str(port),
            "--state-dir",
            state_dir,
            *extra_args,
        ]
        self.proc: subprocess.Popen | None = None
        self.ps: psutil.Process | None = None
        self._log = None
        self._known_children: dict[int, psutil.Process] = {}

    def start(self) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.ps = psutil.Process(self.proc.pid)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def children(self) -> list[psutil.Process]:
        """The server's live descendants (remembered, so `stop` can end them even if re-parented)."""
        if self.ps is None:
            return []
        try:
            kids = self.ps.children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        for kid in kids:
            self._known_children.setdefault(kid.pid, kid)
        return kids

    def wait_serving(self, timeout: float = 180.0) -> float:
        """Seconds until ``GET /`` answers 200."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchmarkError(f"the app server exited during start-up:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/", timeout=2).status_code == 200:
                    return time.perf_counter() - start
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise BenchmarkError(f"the app server did not serve within {timeout} s:\n{self.log_tail()}")

    def wait_quiet(self, timeout: float = 120.0, cpu_limit: float = 15.0, settle: float = 1.5) -> float:
        """Seconds until the server and its children together use < `cpu_limit` % CPU for `settle` seconds."""
        start = time.perf_counter()
        quiet_since: float | None = None
        procs: dict[int, psutil.Process] = {}
        while time.perf_counter() - start < timeout:
            for proc in [self.ps, *self.children()]:
                if proc is not None and proc.pid not in procs:
                    procs[proc.pid] = proc
                    with contextlib.suppress(psutil.Error):
                        proc.cpu_percent(None)
            time.sleep(0.5)
            total = 0.0
            for pid, proc in list(procs.items()):
                try:
                    total += proc.cpu_percent(None)
                except psutil.Error:
                    procs.pop(pid)
            now = time.perf_counter()
            if total < cpu_limit:
                quiet_since = quiet_since or now
                if now - quiet_since >= settle:
                    return now - start
            else:
                quiet_since = None
        return time.perf_counter() - start

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the server's process group, then SIGKILL to whatever of it (or its known children) is left."""
        if self.proc is None:
            return
        self.children()
        procs = [p for p in [self.ps, *self._known_children.values()] if p is not None]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
        self.proc = None


class CpuProbe:
    """CPU seconds used so far by the server and its descendants, by this process, and by the whole machine."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.own = psutil.Process()

    def __call__(self) -> dict[str, float]:
        tree = 0.0
        for proc in [self.server.ps, *self.server.children()]:
            if proc is None:
                continue
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                tree += t.user + t.system + t.children_user + t.children_system
        own = self.own.cpu_times()
        machine = psutil.cpu_times()
        busy = sum(getattr(machine, key, 0.0) for key in ("user", "nice", "system", "irq", "softirq", "steal"))
        return {"server": tree, "own": own.user + own.system, "machine": busy, "wall": time.perf_counter()}


def cpu_summary(interactions: Sequence[Interaction], cpus: int | None = None) -> dict[str, Any]:
    """Server CPU ms per interaction, and the share of the machine's CPU capacity other processes used meanwhile."""
    with_cpu = [i for i in interactions if i.cpu]
    if not with_cpu:
        return {}
    cpus = cpus or os.cpu_count() or 1
    wall = sum(i.cpu["wall"] for i in with_cpu)
    others = sum(max(0.0, i.cpu["machine"] - i.cpu["server"] - i.cpu["own"]) for i in with_cpu)
    return {
        "server_cpu_ms": summarize([1000 * i.cpu["server"] for i in with_cpu]),
        "others_cpu_share": round(others / max(wall * cpus, 1e-9), 3),
    }


class MemorySampler:
    """Samples RSS of the server and its descendants every `period` s (PSS every `pss_every` samples)."""

    def __init__(self, server: AppServer, period: float = 0.2, pss_every: int = 5) -> None:
        self.server, self.period, self.pss_every = server, period, pss_every
        self.peak_server_rss = 0
        self.peak_total_rss = 0
        self.peak_total_pss = 0
        self.peak_server_pss = 0
        self.peak_by_role: dict[str, int] = {}
        self.peak_pss_by_role: dict[str, int] = {}
        self._roles: dict[int, str] = {}
        self.phases: dict[str, dict[str, float]] = {}
        self.samples = 0
        self._phase_peak = {"server_rss": 0, "total_rss": 0, "total_pss": 0}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self, with_pss: bool) -> dict[str, int]:
        """One sample: {server_rss, total_rss, [server_pss, total_pss]} in bytes; updates the peaks."""
        server = self.server.ps
        if server is None:
            return {}
        out: dict[str, int] = {}
        try:
            info = server.memory_full_info() if with_pss else server.memory_info()
        except psutil.Error:
            return {}
        out["server_rss"] = info.rss
        total_rss, total_pss = info.rss, getattr(info, "pss", 0)
        roles: dict[str, int] = {"server": info.rss}
        pss_roles: dict[str, int] = {"server": getattr(info, "pss", 0)}
        for kid in self.server.children():
            try:
                kinfo = kid.memory_full_info() if with_pss else kid.memory_info()
            except psutil.Error:
                continue
            role = self._roles.get(kid.pid) or self._roles.setdefault(kid.pid, process_role(kid))
            if role == "gone":
                continue
            total_rss += kinfo.rss
            total_pss += getattr(kinfo, "pss", 0)
            roles[role] = roles.get(role, 0) + kinfo.rss
            pss_roles[role] = pss_roles.get(role, 0) + getattr(kinfo, "pss", 0)
        out["total_rss"] = total_rss
        if with_pss:
            out["server_pss"], out["total_pss"] = getattr(info, "pss", 0), total_pss
        with self._lock:
            self.samples += 1
            self.peak_server_rss = max(self.peak_server_rss, out["server_rss"])
            self.peak_total_rss = max(self.peak_total_rss, total_rss)
            for role, value in roles.items():
                self.peak_by_role[role] = max(self.peak_by_role.get(role, 0), value)
            self._phase_peak["server_rss"] = max(self._phase_peak["server_rss"], out["server_rss"])
            self._phase_peak["total_rss"] = max(self._phase_peak["total_rss"], total_rss)
            if with_pss:
                self.peak_total_pss = max(self.peak_total_pss, total_pss)
                self.peak_server_pss = max(self.peak_server_pss, out["server_pss"])
                self._phase_peak["total_pss"] = max(self._phase_peak["total_pss"], total_pss)
                for role, value in pss_roles.items():
                    self.peak_pss_by_role[role] = max(self.peak_pss_by_role.get(role, 0), value)
        return out

    def _loop(self) -> None:
        k = 0
        while not self._stop.is_set():
            self.sample(with_pss=k % self.pss_every == 0)
            k += 1
            self._stop.wait(self.period)

    def mark(self, phase: str) -> None:
        """Record the current values and the peaks since the previous mark under `phase` (MiB)."""
        now = self.sample(with_pss=True)
        with self._lock:
            peaks = dict(self._phase_peak)
            self._phase_peak = {key: 0 for key in self._phase_peak}
        self.phases[phase] = {
            "server_rss_mb": _mb(now.get("server_rss", 0)),
            "total_rss_mb": _mb(now.get("total_rss", 0)),
            "total_pss_mb": _mb(now.get("total_pss", 0)),
            "peak_server_rss_mb": _mb(max(peaks["server_rss"], now.get("server_rss", 0))),
            "peak_total_rss_mb": _mb(max(peaks["total_rss"], now.get("total_rss", 0))),
            "peak_total_pss_mb": _mb(max(peaks["total_pss"], now.get("total_pss", 0))),
        }


def _mb(value: float) -> float:
    return round(value / MiB, 1)


# ----------------------------------------------------------------------------------------------------------------
# The session: page load -> samples -> selections -> slider -> SHAP job.
# ----------------------------------------------------------------------------------------------------------------


def _is_fast_grid(key: str) -> bool:
    return key == f"{FAST_GRID}.children"


def _is_heatmap_figure(key: str) -> bool:
    return key.endswith(".figure") and f'"type":"{HEATMAP_TYPE}"' in key


def _is_slow_grid(key: str) -> bool:
    return key == f"{SLOW_GRID}.children"


def _sample_ids(page: Page) -> list[str]:
    return page.ids_matching({"index": ["ALL"], "type": SAMPLE_TYPE})


def _option_values(options: Any) -> list[Any]:
    return [o.get("value") for o in options or [] if isinstance(o, Mapping)]


def _records_by_label(interactions: Sequence[Interaction], kinds: Sequence[str] = ("callback",)) -> dict[str, Any]:
    """Per-request latency, size and status summaries, grouped by `interaction: callback label`."""
    groups: dict[str, dict[str, list[float]]] = {}
    for inter in interactions:
        for rec in inter.requests:
            if rec.kind not in kinds:
                continue
            group = groups.setdefault(f"{inter.name}: {rec.label}", {key: [] for key in RECORD_FIELDS})
            for key in RECORD_FIELDS:
                group[key].append(getattr(rec, key))
    return {
        label: {
            "total_ms": summarize(g["total_ms"]),
            "ttfb_ms": summarize(g["server_ms"]),
            "parse_ms": summarize(g["parse_ms"]),
            "bytes": summarize(g["bytes"], 0),
            "status": sorted({int(s) for s in g["status"]}),
        }
        for label, g in groups.items()
    }


RECORD_FIELDS = ("total_ms", "server_ms", "parse_ms", "bytes", "status")


def _select_box(client: DashClient, box: tuple[float, float, float, float]) -> Interaction:
    selected, relayout = box_events(*box)
    return client.interact("box", [(MASK_GRAPH, "selectedData", selected), (MASK_GRAPH, "relayoutData", relayout)])


def _pick_class(client: DashClient, rng: random.Random, used: set[tuple[Any, Any]]) -> Interaction | None:
    page = client.page
    assert page is not None
    values = _option_values(page.get(CLASS_PICKER, "options"))
    current = page.get(CLASS_PICKER, "value")
    image = (page.get(IMAGE, "data") or {}).get("key")
    # a class not picked before on this image: a repeated pick is the same question, answered from stored results
    choices = [v for v in values if v != current and (image, v) not in used]
    if not choices:
        return None
    value = rng.choice(choices)
    used.add((image, value))
    return client.interact("class", [(CLASS_PICKER, "value", value)])


def _pick_sample(client: DashClient, sample_id: str) -> Interaction:
    page = client.page
    assert page is not None
    clicks = int(page.get(sample_id, "n_clicks") or 0) + 1
    return client.interact("sample", [(sample_id, "n_clicks", clicks)])


def _image_shape(page: Page) -> tuple[int, int]:
    ref = page.get(IMAGE, "data") or {}
    return int(ref.get("height", 128)), int(ref.get("width", 128))


def selection_session(
    client: DashClient, n_selections: int, warmup: int, class_every: int, n_samples: int, rng: random.Random
) -> dict[str, Any]:
    """Pick samples and make `n_selections` measured region selections (boxes; every `class_every`-th a class)."""
    page = client.page
    assert page is not None
    samples = _sample_ids(page)
    if not samples:
        raise BenchmarkError("the page has no sample gallery (is the demo model served?)")
    samples = samples[: max(1, min(n_samples, n_selections))]
    counts = [len(part) for part in split_evenly(list(range(n_selections)), len(samples))]
    sample_picks: list[Interaction] = []
    measured: list[Interaction] = []
    cold: list[Interaction] = []
    used_classes: set[tuple[Any, Any]] = set()
    for s, (sample_id, count) in enumerate(zip(samples, counts, strict=True)):
        sample_picks.append(_pick_sample(client, sample_id))
        height, width = _image_shape(page)
        extra = warmup if s == 0 else 0
        boxes = random_boxes(count + extra, height, width, rng)
        for k in range(count + extra):
            is_class = class_every > 0 and k >= extra and (k - extra) % class_every == class_every - 1
            inter = _pick_class(client, rng, used_classes) if is_class else None
            if inter is None:
                inter = _select_box(client, boxes[k])
            if inter.request_carrying(_is_fast_grid) is None:
                raise BenchmarkError(f"selection {k} ({inter.name}) returned no heatmaps: {inter.requests}")
            (cold if k < extra else measured).append(inter)
    chains = [i.first_update(_is_fast_grid) or math.nan for i in measured]
    by_kind: dict[str, list[float]] = {}
    for inter, chain in zip(measured, chains, strict=True):
        by_kind.setdefault(inter.name, []).append(chain)
    figure_bytes = [rec.bytes for i in measured if (rec := i.request_carrying(_is_fast_grid)) is not None]
    figure_ttfb = [rec.server_ms for i in measured if (rec := i.request_carrying(_is_fast_grid)) is not None]
    figure_total = [rec.total_ms for i in measured if (rec := i.request_carrying(_is_fast_grid)) is not None]
    p50 = percentile(chains, 50)
    return {
        "chain_ms": summarize(chains),
        "chain_ms_values": [round(c, 1) for c in chains],
        "chain_ms_by_kind": {kind: summarize(values) for kind, values in by_kind.items()},
        "settle_ms": summarize([i.settle_ms for i in measured]),
        "client_ms": summarize([i.client_ms for i in measured]),
        "cpu": cpu_summary(measured),
        "figures_request": {
            "total_ms": summarize(figure_total),
            "ttfb_ms": summarize(figure_ttfb),
            "bytes": summarize(figure_bytes, 0),
        },
        "requests": _records_by_label(measured),
        "requests_per_selection": summarize([len(i.requests) for i in measured], 1),
        "cold_chain_ms": [round(i.first_update(_is_fast_grid) or math.nan, 1) for i in cold],
        "sample_pick": {
            "chain_ms": summarize([i.settle_ms for i in sample_picks]),
            "requests": _records_by_label(sample_picks),
        },
        "samples": [json.loads(s)["index"] for s in samples],
        "target_p50_ms": TARGET_SELECTION_P50_MS,
        "met": bool(p50 < TARGET_SELECTION_P50_MS),
    }


def slider_session(client: DashClient, n_moves: int, rng: random.Random) -> dict[str, Any]:
    """`n_moves` layer-slider releases on the current question."""
    page = client.page
    assert page is not None
    comp = page.index.get(LAYER)
    if comp is None:
        raise BenchmarkError("no layer slider on the page")
    n_layers = int(comp["props"].get("max", 0)) + 1
    start = int(page.get(LAYER, "value") or 0)
    moves: list[Interaction] = []
    for position in layer_walk(n_moves, n_layers, start, rng):
        inter = client.interact("layer", [(LAYER, "value", position)])
        if inter.request_carrying(_is_heatmap_figure) is None:
            raise BenchmarkError(f"layer move to {position} changed no heatmap: {inter.requests}")
        moves.append(inter)
    chains = [i.first_update(_is_heatmap_figure) or math.nan for i in moves]
    figure_recs = [rec for i in moves if (rec := i.request_carrying(_is_heatmap_figure)) is not None]
    p50 = percentile(chains, 50)
    return {
        "n_layers": n_layers,
        "chain_ms": summarize(chains),
        "request_total_ms": summarize([r.total_ms for r in figure_recs]),
        "request_ttfb_ms": summarize([r.server_ms for r in figure_recs]),
        "bytes": summarize([r.bytes for r in figure_recs], 0),
        "client_ms": summarize([i.client_ms for i in moves]),
        "cpu": cpu_summary(moves),
        "requests": _records_by_label(moves),
        "target_p50_ms": TARGET_SLIDER_P50_MS,
        "met": bool(p50 < TARGET_SLIDER_P50_MS),
    }


def shap_session(client: DashClient, method: str = "shap") -> dict[str, Any]:
    """Tick the SHAP method (a background job) and follow it to its card, as the browser does."""
    page = client.page
    assert page is not None
    comp = page.index.get(METHODS)
    if comp is None:
        raise BenchmarkError("no method checklist on the page")
    options = _option_values(comp["props"].get("options"))
    if method not in options:
        return {"completed": False, "note": f"method {method!r} is not offered: {options}"}
    chosen = [*list(page.get(METHODS, "value") or []), method]
    inter = client.interact("shap", [(METHODS, "value", chosen)], timeout=300)
    polls = [r for r in inter.requests if r.kind == "job-poll"]
    starts = [r for r in inter.requests if r.kind == "job-start"]
    slow_grid_ms = inter.last_update(_is_slow_grid)
    slow_children = page.get(SLOW_GRID, "children")
    card = any(
        isinstance(c["props"].get("id"), Mapping)
        and c["props"]["id"].get("method") == method
        and c["props"]["id"].get("type") == HEATMAP_TYPE
        for c in walk_components(slow_children)
    )
    final = [r for r in inter.requests if r.label.startswith("slow-result-store")]
    return {
        "completed": bool(card),
        "tick_to_card_s": round((slow_grid_ms or math.nan) / 1000, 2),
        "settle_s": round(inter.settle_ms / 1000, 2),
        "job_start_ms": round(starts[0].total_ms, 1) if starts else None,
        "polls": len(polls),
        "poll_ms": summarize([r.total_ms for r in polls]),
        "poll_bytes": summarize([r.bytes for r in polls], 0),
        "card_request_bytes": final[-1].bytes if final else None,
        "requests": _records_by_label([inter]),
    }


def trust_session(client: DashClient) -> dict[str, Any]:
    """Click "Run" in the Trust section (faithfulness curves and the sanity check, a background job) and follow the
    job to its result, as the browser does."""
    page = client.page
    assert page is not None
    if TRUST_RUN not in page.index:
        return {"completed": False, "note": "no trust section on the page"}
    inter = client.interact("trust", [(TRUST_RUN, "n_clicks", (page.get(TRUST_RUN, "n_clicks") or 0) + 1)],
                            timeout=600)  # fmt: skip
    data = page.get(TRUST_RESULT, "data")
    polls = [r for r in inter.requests if r.kind == "job-poll"]
    done = isinstance(data, Mapping) and not data.get("job_error")
    return {
        "completed": bool(done and (data.get("faith") or data.get("sanity"))),
        "failed": dict(data.get("failed") or {}) if isinstance(data, Mapping) else None,
        "click_to_result_s": round((inter.last_update(lambda key: key.startswith(TRUST_RESULT)) or math.nan) / 1000, 2),
        "settle_s": round(inter.settle_ms / 1000, 2),
        "polls": len(polls),
    }


def run(
    n_selections: int = 30,
    n_slider: int = 50,
    *,
    warmup: int = 2,
    class_every: int = 5,
    n_samples: int = 3,
    shap: bool = True,
    trust: bool = True,
    seed: int = 0,
    port: int | None = None,
    server_args: Sequence[str] = (),
    startup_timeout: float = 180.0,
    verbose: bool = False,
) -> dict[str, Any]:
    """Start the app server, replay a session over HTTP, measure latencies and memory; returns JSON-ready results."""
    rng = random.Random(seed)
    port = port or free_port()
    started = time.perf_counter()
    result: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "dash": _version("dash"),
            "tensorflow": _version("tensorflow"),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "n_selections": n_selections,
            "n_slider": n_slider,
            "warmup": warmup,
            "seed": seed,
            "server_args": list(server_args),
        },
    }

    def say(text: str) -> None:
        if verbose:
            print(f"[{time.perf_counter() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="segx-bench-") as tmp:
        server = AppServer(port, os.path.join(tmp, "state"), os.path.join(tmp, "server.log"), server_args)
        sampler = MemorySampler(server)
        client = DashClient(server.url, probe=CpuProbe(server))
        try:
            say(f"starting {' '.join(server.cmd[1:])}")
            server.start()
            sampler.start()
            serving_s = server.wait_serving(startup_timeout)
            say(f"serving after {serving_s:.1f}s; waiting for start-up work to go quiet")
            quiet_s = server.wait_quiet()
            sampler.mark("idle_after_start")
            result["startup"] = {"serving_s": round(serving_s, 2), "quiet_s": round(quiet_s + serving_s, 2)}
            result["page_load"] = client.load_page()
            sampler.mark("after_page_load")
            say(f"page loaded ({result['page_load']['layout_bytes']} bytes of layout); selections")
            result["selection"] = selection_session(client, n_selections, warmup, class_every, n_samples, rng)
            sampler.mark("after_selections")
            say("slider moves")
            result["slider"] = slider_session(client, n_slider, rng)
            sampler.mark("after_slider")
            if shap:
                say("SHAP background job")
                result["shap"] = shap_session(client)
                sampler.mark("after_shap")
            if trust:
                say("trust job (faithfulness curves and sanity check)")
                result["trust"] = trust_session(client)
                sampler.mark("after_trust")
            time.sleep(0.5)
            sampler.sample(with_pss=True)
        finally:
            sampler.stop()
            client.close()
            server.stop()
            say("server stopped")
    result["memory"] = {
        "server_rss_peak_mb": _mb(sampler.peak_server_rss),
        "total_rss_peak_mb": _mb(sampler.peak_total_rss),
        "server_pss_peak_mb": _mb(sampler.peak_server_pss),
        "total_pss_peak_mb": _mb(sampler.peak_total_pss),
        "rss_peak_by_process_mb": {role: _mb(v) for role, v in sorted(sampler.peak_by_role.items())},
        "pss_peak_by_process_mb": {role: _mb(v) for role, v in sorted(sampler.peak_pss_by_role.items())},
        "phases": sampler.phases,
        "samples": sampler.samples,
        "target_mb": TARGET_PEAK_MB,
        "met": bool(sampler.peak_server_rss / MiB < TARGET_PEAK_MB),
        "total_met": bool(sampler.peak_total_rss / MiB < TARGET_PEAK_MB),
    }
    result["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["meta"]["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def _version(package: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:
        return None


# ----------------------------------------------------------------------------------------------------------------
# Output.
# ----------------------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else str(value)


def format_table(result: Mapping[str, Any]) -> str:
    """A compact text table of the results."""
    lines = []
    meta = result.get("meta", {})
    lines.append(
        f"SegXplain app server benchmark · {meta.get('date')} · {meta.get('cpus')} CPUs · "
        f"load {meta.get('loadavg_start')} -> {meta.get('loadavg_end')} · dash {meta.get('dash')}"
    )
    st, pl = result.get("startup", {}), result.get("page_load", {})
    lines.append(
        f"start-up: serving {_fmt(st.get('serving_s'), 1)} s, quiet {_fmt(st.get('quiet_s'), 1)} s; page "
        f"load {_fmt(pl.get('page_load_ms'))} ms (layout {_fmt(pl.get('layout_bytes'))} B)"
    )
    header = (
        f"{'interaction / request':56s} {'n':>3s} {'p50 ms':>8s} {'p95 ms':>8s} {'ttfb p50':>8s} "
        f"{'target':>10s} {'bytes p50':>10s}"
    )
    lines += [header, "-" * len(header)]

    def row(name: str, stats: Mapping[str, Any], ttfb: Any = None, target: str = "", size: Any = None) -> None:
        lines.append(
            f"{name[:56]:56s} {stats.get('n', 0):>3d} {_fmt(stats.get('p50'), 1):>8s} "
            f"{_fmt(stats.get('p95'), 1):>8s} {_fmt(ttfb, 1):>8s} {target:>10s} {_fmt(size):>10s}"
        )

    sel = result.get("selection")
    if sel:
        mark = "ok" if sel["met"] else "MISSED"
        fig = sel["figures_request"]
        row("region selection -> fast figures (chain)", sel["chain_ms"], None, f"<250 {mark}", fig["bytes"]["p50"])
        for kind, stats in sel["chain_ms_by_kind"].items():
            row(f"  {kind} (chain)", stats)
        for label, rec in sel["requests"].items():
            row(f"  {label}", rec["total_ms"], rec["ttfb_ms"]["p50"], "", rec["bytes"]["p50"])
        row("  this client's own work per selection", sel["client_ms"])
        if sel.get("cpu"):
            row("  server CPU time per selection (all threads)", sel["cpu"]["server_cpu_ms"])
            lines.append(
                f"  other processes used {100 * sel['cpu']['others_cpu_share']:.0f}% of the machine's CPU meanwhile"
            )
        if sel.get("cold_chain_ms"):
            lines.append(f"  cold (first selections after start-up, not counted): {sel['cold_chain_ms']} ms")
        pick = sel["sample_pick"]
        row("sample pick -> mask figure (until idle)", pick["chain_ms"])
    sl = result.get("slider")
    if sl:
        mark = "ok" if sl["met"] else "MISSED"
        row(
            "layer slider -> heatmap figure patches (chain)",
            sl["chain_ms"],
            sl["request_ttfb_ms"]["p50"],
            f"<80 {mark}",
            sl["bytes"]["p50"],
        )
        if sl.get("cpu"):
            row("  server CPU time per move (all threads)", sl["cpu"]["server_cpu_ms"])
            lines.append(
                f"  other processes used {100 * sl['cpu']['others_cpu_share']:.0f}% of the machine's CPU meanwhile"
            )
    sh = result.get("shap")
    if sh:
        lines.append(
            f"SHAP job: completed={sh.get('completed')} tick->card {_fmt(sh.get('tick_to_card_s'), 2)} s, "
            f"{sh.get('polls')} polls (p50 {_fmt(sh.get('poll_ms', {}).get('p50'), 1)} ms), card response "
            f"{_fmt(sh.get('card_request_bytes'))} B"
        )
    tr = result.get("trust")
    if tr:
        lines.append(
            f"trust job: completed={tr.get('completed')} click->result {_fmt(tr.get('click_to_result_s'), 2)} s, "
            f"{tr.get('polls')} polls" + (f", failed {tr['failed']}" if tr.get("failed") else "")
        )
    mem = result.get("memory")
    if mem:
        mark = "ok" if mem["met"] else "MISSED"
        rss = ", ".join(f"{k} {_fmt(v)}" for k, v in mem["rss_peak_by_process_mb"].items())
        pss = ", ".join(f"{k} {_fmt(v)}" for k, v in mem["pss_peak_by_process_mb"].items())
        lines.append(
            f"peak memory: server RSS {_fmt(mem['server_rss_peak_mb'])} MiB (target <{_fmt(mem['target_mb'])} "
            f"{mark}); server + children: RSS {_fmt(mem['total_rss_peak_mb'])} MiB, PSS "
            f"{_fmt(mem['total_pss_peak_mb'])} MiB"
        )
        lines.append(f"  RSS peaks per process (MiB): {rss}")
        lines.append(f"  PSS peaks per process (MiB): {pss}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: run, print the table, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--selections", type=int, default=30, help="measured region selections (default 30)")
    parser.add_argument("--slider", type=int, default=50, help="layer slider moves (default 50)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured first selections (default 2)")
    parser.add_argument("--no-shap", action="store_true", help="skip the SHAP background job")
    parser.add_argument("--no-trust", action="store_true", help="skip the trust background job")
    parser.add_argument("--server-args", default="", help="extra app.py flags, e.g. '--job-processes'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, help="port (default: a free one)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(argv)
    result = run(
        args.selections,
        args.slider,
        warmup=args.warmup,
        shap=not args.no_shap,
        trust=not args.no_trust,
        seed=args.seed,
        port=args.port,
        server_args=args.server_args.split(),
        verbose=not args.quiet,
    )
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
