"""Trust-section callbacks: quick metrics in the request, faithfulness and sanity as one background job, export.

- Run: the inside share and the agreement matrix come from stored maps at once (no model call); deletion/insertion
  curves and the sanity check go to a background job (`TRUST_REQUEST`) run by the same background-callback manager
  as the slow methods, with the same progress reporter, a progress bar and a cancel button. The job stores its results
  server-side and returns keys in `TRUST_RESULT`, which `handle_trust_result` draws unless the question changed.
- A new question (region, class or methods) resets the section, and replaces (so cancels) a running metric job.
- Export: a zip of the current explanation, streamed from a route (`dashboard.trust.download`) that a link fetches.

Messages go to the section's own status line (`TRUST_STATUS`), next to the controls the user just pressed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.callbacks.events import emit, event_output
from dashboard.callbacks.explain import job_may_run, pick_layer
from dashboard.callbacks.jobs import cancel_marker, start_job
from dashboard.config import AppConfig
from dashboard.jobs.progress import SetProgress
from dashboard.state.resources import MethodInfo, get_adapter, get_session_adapter, get_store, methods, session_config
from dashboard.state.store import StateStore, content_key
from dashboard.trust import download
from dashboard.trust import figures as trust_figures
from dashboard.trust import metrics as trust
from dashboard.trust.layout import (
    AGREEMENT_HINT,
    CURVES_HINT,
    RUN_HINT,
    SANITY_HINT,
    SHARE_HINT,
    auc_table,
    flag_note,
    sanity_grid,
    status_text,
)
from dashboard.usecases import analysis
from dashboard.view import ids
from dashboard.view.figures import placeholder_figure

log = logging.getLogger(__name__)
PARTS = {"faithfulness": "Deletion / insertion curves", "sanity": "Sanity check"}
RUNNING_TEXT = "Computing in a background job…"
NOT_REQUESTED = "Not requested (tick it above and press Run)."


def labels_of(infos: Sequence[MethodInfo]) -> dict[str, str]:
    """{method name: display label}."""
    return {info.name: info.label for info in infos}


def colours_of(infos: Sequence[MethodInfo]) -> dict[str, str]:
    """One colour per method, by registry order, the same in every trust figure."""
    return trust_figures.method_colours([info.name for info in infos])


def trust_layer(chosen: Sequence[str], infos: Sequence[MethodInfo], conv_layers: Sequence[str], index: Any) -> Any:
    """The slider's conv layer when a CAM method is among `chosen` (their maps are measured there), else None."""
    cams = {info.name for info in infos if info.is_cam}
    return pick_layer(conv_layers, index) if cams.intersection(chosen) else None


def handle_run(
    n_clicks: int | None,
    results: Mapping[str, Any] | None,
    session: str,
    layer_index: int | None,
    options: Sequence[str] | None,
    steps: Any,
    previous_request: Any,
    previous_result: Any,
    *,
    store: StateStore,
    infos: Sequence[MethodInfo],
    conv_layers: Sequence[str],
) -> tuple[Any, ...]:
    """(share figure, agreement figure, curves figure, AUC table, sanity figure, flags, status, job request)."""
    if not n_clicks:
        raise PreventUpdate
    keep = (no_update,) * 6
    question = (results or {}).get("question")
    if not question:
        return (*keep, "Select a region (and wait for its heatmaps) before measuring them.", no_update)
    chosen = list((results or {}).get("methods") or [])
    layer = trust_layer(chosen, infos, conv_layers, layer_index)
    labels, colours = labels_of(infos), colours_of(infos)
    try:
        quick = trust.quick_metrics(store, session, question, chosen, layer)
    except ValueError as err:
        return (*keep, str(err), no_update)
    share = trust_figures.share_figure(quick["shares"], quick["region_fraction"], labels, colours)
    matrix = quick["agreement"]
    agreement = (trust_figures.agreement_figure(matrix["names"], matrix["matrix"], labels) if matrix
                 else placeholder_figure(AGREEMENT_HINT))  # fmt: skip
    parts = [part for part in PARTS if part in (options or [])]
    measured = quick["methods"]
    status = status_text(measured, quick["missing"], labels, layer if trust_layer(measured, infos, conv_layers, 0)
                         else None)  # fmt: skip
    curves = placeholder_figure(RUNNING_TEXT if "faithfulness" in parts else NOT_REQUESTED)
    sanity = placeholder_figure(RUNNING_TEXT if "sanity" in parts else NOT_REQUESTED)
    if parts:
        analysis.share_question(store, session, question, measured)  # the job may run on another machine
        request = {"session": session, "question": question, "methods": measured, "layer": layer, "parts": parts,
                   "options": {"steps": int(steps or trust.DEFAULT_OPTIONS["steps"])},
                   "token": content_key(question, measured, layer, parts, time.time())}  # fmt: skip
    else:
        request = None if job_may_run(previous_request, previous_result) else no_update
    return (share, agreement, curves, [], sanity, [], status, request)


def run_trust_job(set_progress: SetProgress, request: Mapping[str, Any] | None, config: AppConfig) -> dict[str, Any]:
    """Compute the requested metrics, storing each as it finishes; returns keys and failure messages only."""
    parts = list((request or {}).get("parts") or [])
    reporter, adapter, store = start_job(set_progress, request, config, len(parts))
    session, question, names = request["session"], request["question"], list(request["methods"])
    out: dict[str, Any] = {"question": question, "methods": names, "layer": request.get("layer"),
                           "token": request.get("token"), "faith": None, "sanity": None, "failed": {}}  # fmt: skip
    for index, part in enumerate(parts):
        reporter.start(index, PARTS[part])
        try:
            if part == "faithfulness":
                out["faith"] = trust.compute_faithfulness(adapter, store, session, question, names, request["layer"],
                                                          request.get("options"), progress=reporter.report)  # fmt: skip
            else:
                out["sanity"] = trust.compute_sanity(adapter, store, session, question, names, request["layer"],
                                                     request.get("options"), progress=reporter.report)  # fmt: skip
        except Exception as err:
            log.exception("trust metric %s failed", part)
            out["failed"][part] = f"{PARTS[part]} failed: {err}"
    reporter.finish()
    return out


def handle_trust_result(
    trust_result: Mapping[str, Any] | None,
    results: Mapping[str, Any] | None,
    session: str,
    *,
    store: StateStore,
    infos: Sequence[MethodInfo],
) -> tuple[Any, ...]:
    """(curves figure, AUC table, sanity figure, flags, status) of a finished metric job; stale results are ignored."""
    if not trust_result or not trust_result.get("question") or not results:
        raise PreventUpdate  # nothing, or a cancellation marker
    if trust_result["question"] != results.get("question"):
        raise PreventUpdate  # stale: the question changed while the job ran
    labels, colours = labels_of(infos), colours_of(infos)
    failed = trust_result.get("failed") or {}
    curves, table, sanity_fig, flags = no_update, no_update, no_update, no_update
    faith = store.get(session, "faith", trust_result.get("faith")) if trust_result.get("faith") else None
    if faith:
        curves = trust_figures.curves_figure(faith["methods"], labels, colours)
        table = auc_table(trust_figures.auc_rows(faith["methods"], labels))
    elif "faithfulness" in failed:
        curves, table = placeholder_figure(failed["faithfulness"]), []
    sanity = store.get(session, "sanity", trust_result.get("sanity")) if trust_result.get("sanity") else None
    if sanity:
        sanity_fig = trust_figures.sanity_figure(sanity, labels, colours)
        flags = [flag_note(sanity, labels)]
        image = store.get(session, "image", trust_result["question"]["image"])
        if image is not None and sanity.get("maps"):
            flags.append(sanity_grid(image, sanity["depths"], sanity["maps"], labels,
                                     {info.name: info.signed for info in infos}, sanity.get("flagged")))  # fmt: skip
    elif "sanity" in failed:
        sanity_fig, flags = placeholder_figure(failed["sanity"]), []
    names = ", ".join(labels.get(m, m) for m in trust_result.get("methods", []))
    status = "; ".join(failed.values()) if failed else f"Trust metrics done for: {names}."
    return (curves, table, sanity_fig, flags, status)


def handle_cancel(n_clicks: int | None, request: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """(result marker, curves figure, sanity figure, status) when the user cancels the metric job."""
    if not n_clicks:
        raise PreventUpdate
    text = "Cancelled. Press Run again: parts that finished are kept and return at once."
    return (cancel_marker(request), placeholder_figure("Cancelled."), placeholder_figure("Cancelled."), text)


def handle_question_change(previous_request: Any, previous_result: Any) -> tuple[Any, ...]:
    """Reset the section for a new question: placeholders, the Run hint, and a new (empty) request replacing a job
    that may still run for the old question."""
    request = None if job_may_run(previous_request, previous_result) else no_update
    return (placeholder_figure(SHARE_HINT), placeholder_figure(AGREEMENT_HINT), placeholder_figure(CURVES_HINT), [],
            placeholder_figure(SANITY_HINT), [], RUN_HINT, request)  # fmt: skip


def handle_export(
    n_clicks: int | None,
    results: Mapping[str, Any] | None,
    image_ref: Mapping[str, Any] | None,
    session: str,
    layer_index: int | None,
    opacity: float | None,
    trust_result: Mapping[str, Any] | None,
    *,
    store: StateStore,
    infos: Sequence[MethodInfo],
    class_names: Sequence[str],
    conv_layers: Sequence[str],
    model: str,
) -> tuple[Any, str]:
    """(download ticket {"url", "filename", "n"}, status) for the current explanation with the metrics computed for it
    so far: the page then fetches the streamed zip from the ticket's URL (`dashboard.trust.download`)."""
    if not n_clicks:
        raise PreventUpdate
    question = (results or {}).get("question")
    if not question:
        return no_update, "Nothing to export yet: select a region first."
    chosen = list((results or {}).get("methods") or [])
    layer = trust_layer(chosen, infos, conv_layers, layer_index)
    same = bool(trust_result) and trust_result.get("question") == question  # type: ignore[union-attr]
    request = {
        "question": question, "methods": chosen, "layer": layer, "signed": {i.name: i.signed for i in infos},
        "labels": labels_of(infos), "class_names": list(class_names), "model": model,
        "image_name": str((image_ref or {}).get("name") or "image"),
        "opacity": 0.8 if opacity is None else float(opacity),
        "faith_key": trust_result.get("faith") if same else None,  # type: ignore[union-attr]
        "sanity_key": trust_result.get("sanity") if same else None,  # type: ignore[union-attr]
    }  # fmt: skip
    try:
        url, filename = download.issue_ticket(store, session, request)
    except ValueError as err:
        return no_update, str(err)
    return {"url": url, "filename": filename, "n": int(n_clicks)}, f"Exported {filename} (streamed download)."


def status_output(source: str) -> Output:
    """The output of `source`'s status-line event (the status line's one writer is `dashboard.callbacks.events`)."""
    return event_output(ids.TRUST_STATUS, source)


def with_status_event(outputs: tuple[Any, ...], index: int) -> tuple[Any, ...]:
    """A handler's outputs with the status text at `index` turned into its status-line event."""
    return (*outputs[:index], emit({"children": outputs[index]}), *outputs[index + 1 :])


SECTION_TRIGGERS = {f"{ids.RESULTS}.data": "question", f"{ids.TRUST_RUN}.n_clicks": "run",
                    f"{ids.TRUST_CANCEL}.n_clicks": "cancel"}  # fmt: skip
SECTION_PRECEDENCE = ("question", "run", "cancel")  # a new question resets whatever else fired with it


def section_event(triggered: Sequence[str]) -> str | None:
    """Which event the section callback handles for the inputs that fired: "question", "run" or "cancel" (in that
    precedence), or None. (The job's result has its own callback: one that read the result and wrote the request
    would close a dependency cycle, request -> job -> result -> request, which Dash cannot run.)"""
    fired = {SECTION_TRIGGERS[prop] for prop in triggered if prop in SECTION_TRIGGERS}
    return next((event for event in SECTION_PRECEDENCE if event in fired), None)


def section_outputs(event: str, out: tuple[Any, ...]) -> tuple[Any, ...]:
    """A handler's outputs placed on the section callback's outputs (share, agreement, curves, table, sanity, flags,
    status event, request, result), `no_update` where the handler sets nothing."""
    keep = no_update
    if event in ("run", "question"):
        share, agreement, curves, table, sanity, flags, status, request = out
        return (share, agreement, curves, table, sanity, flags, emit({"children": status}), request, keep)
    marker, curves, sanity, status = out  # cancel
    return (keep, keep, curves, keep, sanity, keep, emit({"children": status}), keep, marker)


def register(app: Dash, config: AppConfig) -> None:
    """Register the Trust-section callbacks and the metric job."""
    register_section(app, config)
    register_job(app, config)
    register_export(app, config)


def register_section(app: Dash, config: AppConfig) -> None:
    """The section callback: the Run button (quick metrics at once, a job request for the rest), the reset for a new
    question and the job's cancel, dispatched by the pure `section_event`; the job's result is drawn by its own
    callback (`register_job`)."""

    @app.callback(
        Output(ids.TRUST_SHARE, "figure"),
        Output(ids.TRUST_AGREEMENT, "figure"),
        Output(ids.TRUST_CURVES, "figure", allow_duplicate=True),  # and the job's result callback
        Output(ids.TRUST_TABLE, "children", allow_duplicate=True),
        Output(ids.TRUST_SANITY, "figure", allow_duplicate=True),
        Output(ids.TRUST_FLAGS, "children", allow_duplicate=True),
        status_output("section"),
        Output(ids.TRUST_REQUEST, "data"),
        Output(ids.TRUST_RESULT, "data", allow_duplicate=True),  # the background job writes it too
        Input(ids.TRUST_RUN, "n_clicks"),
        Input(ids.RESULTS, "data"),
        Input(ids.TRUST_CANCEL, "n_clicks"),
        State(ids.TRUST_RESULT, "data"),
        State(ids.SESSION, "data"),
        State(ids.LAYER, "value"),
        State(ids.TRUST_OPTIONS, "value"),
        State(ids.TRUST_STEPS, "value"),
        State(ids.TRUST_REQUEST, "data"),
        prevent_initial_call=True,
    )
    def on_section(n_clicks, results, cancel_clicks, trust_result, session, layer_index, options, steps, request):
        event = section_event([item["prop_id"] for item in ctx.triggered])
        if event == "run":
            adapter = get_session_adapter(config, session)
            out = handle_run(n_clicks, results, session, layer_index, options, steps, request, trust_result,
                             store=get_store(config), infos=methods(), conv_layers=adapter.conv_layers)  # fmt: skip
        elif event == "question":
            out = handle_question_change(request, trust_result)
        elif event == "cancel":
            out = handle_cancel(cancel_clicks, request)
        else:
            raise PreventUpdate
        return section_outputs(event, out)


def register_job(app: Dash, config: AppConfig) -> None:
    """The metric job, drawing its result, and cancelling it."""

    @app.callback(
        Output(ids.TRUST_RESULT, "data"),
        Input(ids.TRUST_REQUEST, "data"),
        background=True,
        progress=[Output(ids.TRUST_PROGRESS, "value"), Output(ids.TRUST_PROGRESS, "label"),
                  Output(ids.TRUST_PROGRESS_TEXT, "children")],
        progress_default=[0, "", "Starting…"],
        running=[
            (Output(ids.TRUST_PANEL, "style"), {"display": "flex"}, {"display": "none"}),
            (Output(ids.TRUST_CANCEL, "disabled"), False, True),
            (Output(ids.TRUST_RUN, "disabled"), True, False),
        ],
        cancel=[Input(ids.TRUST_CANCEL, "n_clicks")],
        interval=config.job_interval_ms,
        prevent_initial_call=True,
    )  # fmt: skip
    def trust_job(set_progress: SetProgress, request: Mapping[str, Any] | None) -> dict[str, Any]:
        return run_trust_job(set_progress, request, config)

    @app.callback(
        Output(ids.TRUST_CURVES, "figure", allow_duplicate=True),
        Output(ids.TRUST_TABLE, "children", allow_duplicate=True),
        Output(ids.TRUST_SANITY, "figure", allow_duplicate=True),
        Output(ids.TRUST_FLAGS, "children", allow_duplicate=True),
        status_output("result"),
        Input(ids.TRUST_RESULT, "data"),
        State(ids.RESULTS, "data"),
        State(ids.SESSION, "data"),
        prevent_initial_call=True,
    )
    def on_trust_result(trust_result, results, session):
        out = handle_trust_result(trust_result, results, session, store=get_store(config), infos=methods())
        return with_status_event(out, 4)


def register_export(app: Dash, config: AppConfig) -> None:
    """The export button: a zip of the current explanation."""

    @app.callback(
        Output(ids.TRUST_DOWNLOAD, "data"),
        status_output("export"),
        Input(ids.TRUST_EXPORT, "n_clicks"),
        State(ids.RESULTS, "data"),
        State(ids.IMAGE, "data"),
        State(ids.SESSION, "data"),
        State(ids.LAYER, "value"),
        State(ids.HEATMAP_OPACITY, "value"),
        State(ids.TRUST_RESULT, "data"),
        prevent_initial_call=True,
    )
    def on_export(n_clicks, results, image_ref, session, layer_index, opacity, trust_result):
        served = session_config(config, session)  # the session's uploaded model, if any
        adapter = get_adapter(served)
        out = handle_export(n_clicks, results, image_ref, session, layer_index, opacity, trust_result,
                            store=get_store(config), infos=methods(), class_names=list(adapter.class_names),
                            conv_layers=adapter.conv_layers, model=served.model_label)  # fmt: skip
        return with_status_event(out, 1)

    # The browser fetches the ticket's URL through a link (a download, the page stays); the link stays visible to
    # fetch the zip again.
    app.clientside_callback(
        """
        function(ticket) {
            const link = document.getElementById("LINK_ID");
            if (!ticket || !ticket.url || !link) { return window.dash_clientside.no_update; }
            link.setAttribute("href", ticket.url);
            link.setAttribute("download", ticket.filename);
            link.classList.remove("d-none");
            link.click();
            return ticket.url;
        }
        """.replace("LINK_ID", ids.TRUST_DOWNLOAD_LINK),
        Output(ids.TRUST_DOWNLOAD_LINK, "href"),
        Input(ids.TRUST_DOWNLOAD, "data"),
        prevent_initial_call=True,
    )
