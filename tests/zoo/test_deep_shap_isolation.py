"""DeepSHAP leaves TensorFlow as it found it: after a failed shap.DeepExplainer run, gradients are still right, and a
function first traced while DeepSHAP runs does not capture shap's gradient rules."""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from explainers import SegmentationAdapter, registry
from explainers.backends.tf_isolation import GRADIENT_LOCK, TFGradientState
from explainers.shap_methods import deep_explainer_values, tf_ops_without_rules
from tests.zoo.keras_models import randomize, scene

SIZE = (32, 48)


def relu6_net(seed: int = 0) -> keras.Model:
    """A small net with ReLU6 (as MobileNetV2 has), for which shap's DeepExplainer has no rule; linear logits."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*SIZE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.ReLU(max_value=6.0)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    outputs = keras.layers.Conv2D(3, 1, name="logits")(x)
    return randomize(keras.Model(inputs, outputs), seed)


@pytest.fixture(scope="module")
def question():
    region = np.zeros(SIZE, dtype=bool)
    region[8:24, 12:36] = True
    return scene(SIZE, seed=4), region, 1


def independent_gradient(model: keras.Model, image: np.ndarray, region: np.ndarray, target: int) -> np.ndarray:
    """dS/dx with a plain GradientTape on the model's own (linear) logits: S = mean of z_target over the region."""
    x = tf.constant(image[None].astype(np.float32) / 255.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)
        score = tf.reduce_sum(logits[0, :, :, target] * region) / region.sum()
    return tape.gradient(score, x).numpy()[0]


def slowed_deep_shap(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make every DeepSHAP run hold shap's gradient rules in place 0.5 s longer; the event is set once they are."""
    from shap.explainers._deep import deep_tf

    inside = threading.Event()
    original = deep_tf.TFDeep.execute_with_overridden_gradients

    def slowed(self, f):
        def run():
            inside.set()
            time.sleep(0.5)  # shap's registry patch is in place now
            return f()

        return original(self, run)

    monkeypatch.setattr(deep_tf.TFDeep, "execute_with_overridden_gradients", slowed)
    return inside


def test_deep_shap_refuses_an_op_it_has_no_rule_for_before_touching_tensorflow(question):
    image, region, target = question
    adapter = SegmentationAdapter(relu6_net())
    before = TFGradientState.capture()
    with pytest.raises(ValueError, match=r"DeepSHAP cannot run on this model.*Relu6"):
        registry.get("deep_shap").explain(adapter, image, region, target)
    assert before.differences() == []
    saliency = registry.get("saliency").explain(adapter, image, region, target)
    assert np.isfinite(saliency.heatmap).all() and np.abs(saliency.heatmap).max() > 0


def test_a_failed_deep_explainer_run_leaves_gradients_intact(question):
    image, region, target = question
    model = relu6_net()
    adapter = SegmentationAdapter(model)
    native = adapter.native_score_model(region, target, SIZE)
    assert tf_ops_without_rules(native.model, (1, *SIZE, 3)) == ["Relu6"]
    x = adapter.model_input(image[None])
    before = TFGradientState.capture()
    # Past the engine's own check, straight into shap: it fails inside its patched-registry section.
    with pytest.raises(Exception, match="shap_Relu6"):
        deep_explainer_values(native.model, native.to_native(np.zeros_like(x)), native.to_native(x))
    assert before.differences() == []

    expected = independent_gradient(model, image, region, target)
    saliency = registry.get("saliency").explain(adapter, image, region, target)
    np.testing.assert_allclose(saliency.heatmap, expected.sum(axis=-1), rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    cam = registry.get("gradcam").explain(adapter, image, region, target)
    assert np.isfinite(cam.heatmap).all()

    probe = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        value = tf.nn.relu(probe) * tf.nn.relu6(probe) + tf.reduce_sum(tf.nn.conv2d(tf.ones((1, 3, 3, 1)) * probe,
                                                                                    tf.ones((3, 3, 1, 1)), 1, "SAME"))
    # d(p^2)/dp = 4, and a 3x3 SAME conv of a 3x3 field of ones sums 49 cells
    assert float(tape.gradient(value, probe)) == pytest.approx(2 * 2.0 + 49.0)


def test_a_function_first_traced_during_deep_shap_does_not_capture_its_gradients(question, monkeypatch):
    """DeepSHAP runs on one thread; while shap's rules are in place, another thread asks for saliency from a fresh
    adapter (its gradient function not yet traced). It waits for the run to end, and gets the true gradient."""
    image, region, target = question
    model = relu6_net(seed=1)
    inside = slowed_deep_shap(monkeypatch)
    tiny = keras.Sequential([keras.Input((*SIZE, 3)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                             keras.layers.Conv2D(2, 1)])  # fmt: skip
    deep = SegmentationAdapter(randomize(tiny, seed=2))
    done: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: done.setdefault("deep", registry.get("deep_shap").explain(deep, image, region, 1)), daemon=True
    )
    worker.start()
    assert inside.wait(120)
    fresh = SegmentationAdapter(model)
    saliency = registry.get("saliency").explain(fresh, image, region, target)
    worker.join(120)
    assert "deep" in done
    expected = independent_gradient(model, image, region, target).sum(axis=-1)
    np.testing.assert_allclose(saliency.heatmap, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_shared_holders_wait_for_an_exclusive_one_and_nesting_is_refused():
    order: list[str] = []
    with GRADIENT_LOCK.exclusive():
        thread = threading.Thread(target=_hold_shared, args=(order,))
        thread.start()
        time.sleep(0.2)
        order.append("exclusive done")
    thread.join(5)
    assert order == ["exclusive done", "shared"]
    with GRADIENT_LOCK.shared(), pytest.raises(RuntimeError, match="inside a shared one"):
        with GRADIENT_LOCK.exclusive():
            pass


def _hold_shared(order: list[str]) -> None:
    with GRADIENT_LOCK.shared():
        order.append("shared")


def test_a_custom_gradient_traced_inside_the_window_keeps_its_gradient_after_restore():
    """TensorFlow registers a `CustomGradient-<uid>` entry each time a `tf.custom_gradient` function is traced (Keras's
    swish in EfficientNet: ~300 in one zoo run); restoring the captured state must keep it, or a function traced
    inside the window (forward only) has no gradient afterwards (LookupError)."""

    @tf.custom_gradient
    def square(x):
        return x * x, lambda upstream: upstream * 4.0 * x  # twice the true gradient, to see that this rule is used

    state = TFGradientState.capture()
    forward = tf.function(square).get_concrete_function(tf.TensorSpec((), tf.float32))  # traced inside the window
    state.restore()
    assert state.differences() == []  # TensorFlow's own per-trace entries are not a change
    x = tf.constant(3.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = forward(x)
    assert float(tape.gradient(y, x)) == 12.0


def test_a_deep_shap_job_in_a_job_thread_leaves_requests_of_the_web_process_exact(question, monkeypatch, tmp_path):
    """The embedded default runs background jobs in threads of the web process (`dashboard.jobs.thread_jobs`): while
    a DeepSHAP job runs there, with shap's gradient rules in place, the web process's requests on the same adapter
    keep getting the true gradient, and the job's result arrives through Dash's job protocol."""
    import diskcache

    from dashboard.jobs.thread_jobs import ThreadJobManager

    image, region, target = question
    tiny = keras.Sequential([keras.Input((*SIZE, 3)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                             keras.layers.Conv2D(3, 1)])  # fmt: skip
    model = randomize(tiny, seed=3)
    adapter = SegmentationAdapter(model)
    inside = slowed_deep_shap(monkeypatch)
    manager = ThreadJobManager(diskcache.Cache(str(tmp_path / "jobs")), workers=1)

    def job(set_progress):
        result = registry.get("deep_shap").explain(adapter, image, region, target)
        return {"finite": bool(np.isfinite(result.heatmap).all()), "shape": list(result.heatmap.shape)}

    # Before the job: shap's rules replace TensorFlow's gradients process-wide while it runs, so a GradientTape that
    # does not take the engine's lock (this reference) would see them; every gradient of the engine takes it.
    expected = independent_gradient(model, image, region, target).sum(axis=-1)
    job_id = manager.call_job_fn("deep", manager.make_job_fn(job, progress=True), [], {})
    assert inside.wait(120)
    during, end = [], time.monotonic() + 120
    while (result := manager.get_result("deep", job_id)) is manager.UNDEFINED:  # (reading the result consumes it)
        assert time.monotonic() < end, "the DeepSHAP job did not finish"
        adapter.clear_cache()  # a real pass each time, not a cached answer
        during.append(registry.get("saliency").explain(adapter, image, region, target).heatmap)
    assert result == {"finite": True, "shape": list(SIZE)}
    assert during, "no request ran while the job did"
    for saliency in during:
        np.testing.assert_allclose(saliency, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
