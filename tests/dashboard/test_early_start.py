"""The region callback's early start of a question's fast methods (`dashboard.usecases.early`) and the question
callback joining it: one engine call per question, and the same cards as without it."""

from __future__ import annotations

import threading
import time

import pytest

import explainers
from dashboard.callbacks import explain, selection
from dashboard.state.resources import methods
from dashboard.usecases import analysis
from dashboard.usecases.early import EarlyStarts
from tests.dashboard.test_callbacks import box, card_methods


def test_a_joined_run_has_finished_and_a_missing_one_is_not_waited_for():
    early, done, started, gate = EarlyStarts(), [], threading.Event(), threading.Event()
    early.start("k", "s", lambda: started.set() or (gate.wait(5) and done.append(1)))
    assert started.wait(5)
    threading.Timer(0.1, gate.set).start()
    assert early.join("k") is True and done == [1]  # waited for the running run
    assert early.join("k") is False and early.join("other") is False  # finished (forgotten) or never started


def test_a_failed_run_is_joined_as_not_done():
    early, started, gate = EarlyStarts(), threading.Event(), threading.Event()

    def fail():
        started.set()
        gate.wait(5)
        raise RuntimeError("boom")

    early.start("k", "s", fail)
    assert started.wait(5)
    threading.Timer(0.1, gate.set).start()
    assert early.join("k") is False  # waited for it (running), then saw it fail


def test_a_newer_start_of_a_session_cancels_its_queued_one_and_leaves_others():
    early, ran, gate = EarlyStarts(), [], threading.Event()
    early.start("first", "s", lambda: gate.wait(5) and ran.append("first"))  # runs, holding the turn
    time.sleep(0.1)
    early.start("second", "s", lambda: ran.append("second"))  # waits for its turn
    early.start("other", "t", lambda: ran.append("other"))  # another session: kept
    early.start("third", "s", lambda: ran.append("third"))  # cancels "second", still waiting
    assert early.join("second") is False  # cancelled
    assert early.join("other") is False  # queued: cancelled by its joiner, who computes itself
    gate.set()
    deadline = time.monotonic() + 10
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == ["first", "third"]  # one at a time; "second" and "other" never ran


def test_a_worker_stopped_from_outside_fails_its_run_and_is_replaced():
    """A harness that stops threads it did not start (dash's test runner raises SystemExit in them) must not leave a
    run that a later join waits for forever, nor a dead worker that later runs queue behind."""
    early = EarlyStarts()

    started = threading.Event()

    def stopped():
        started.set()
        raise SystemExit

    early.start("k", "s", stopped)
    assert started.wait(5) and early.join("k") is False
    done = []
    early.start("next", "s", lambda: done.append(1) or True)
    deadline = time.monotonic() + 10
    while not done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done == [1]  # a new worker ran it


@pytest.fixture()
def engine_calls(monkeypatch):
    calls = []
    original = explainers.explain

    def counted(*args, **kwargs):
        calls.append(kwargs.get("methods"))
        return original(*args, **kwargs)

    monkeypatch.setattr(explainers, "explain", counted)
    return calls


def test_the_question_callback_joins_the_early_start_instead_of_computing_again(store, session, adapter, engine_calls):
    image_ref = analysis.ingest_image(store, session, adapter, _image(adapter), name="test")
    out = selection.handle_selected(store, session, image_ref, box(4, 20, 6, 18), adapter.class_names)
    region, target = out[0], out[1]
    chosen = ["gradcam", "saliency", "integrated_gradients"]  # integrated_gradients is slow: not started early
    assert explain.start_early(region, target, chosen, image_ref, session, None, adapter=adapter, store=store,
                               infos=methods())  # fmt: skip
    fast, _slow, request, *_ = explain.handle_explain(region, target, chosen, image_ref, session, None, 0.8, None, None,
                                                     adapter=adapter, store=store, infos=methods())  # fmt: skip
    assert engine_calls == [["gradcam", "saliency"]]  # one engine call, the early one
    assert card_methods(fast) == ["gradcam", "saliency"] and request["methods"] == ["integrated_gradients"]


def test_no_early_start_for_a_question_the_callback_would_not_compute(store, session, adapter, engine_calls):
    image_ref = analysis.ingest_image(store, session, adapter, _image(adapter), name="test")
    region, target = selection.handle_selected(store, session, image_ref, box(4, 20, 6, 18), adapter.class_names)[:2]
    infos = methods()
    start = explain.start_early
    assert not start(region, target, ["integrated_gradients"], image_ref, session, None, adapter=adapter, store=store,
                     infos=infos)  # no fast method  # fmt: skip
    assert not start(region, target, ["gradcam"], image_ref, session, target, adapter=adapter, store=store,
                     infos=infos)  # contrast == target: refused by the question callback  # fmt: skip
    assert not start(region, None, ["gradcam"], image_ref, session, None, adapter=adapter, store=store, infos=infos)
    other = {**image_ref, "key": "another-image"}
    assert not start(region, target, ["gradcam"], other, session, None, adapter=adapter, store=store, infos=infos)
    assert engine_calls == []


def _image(adapter):
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (*adapter.input_size, 3), dtype=np.uint8)
