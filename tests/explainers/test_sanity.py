"""Cascading randomization (Adebayo et al. 2018) on the tiny U-Net: the clone changes, the user's model does not,
the maps change, and the steps run from the logits toward the input."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.backends.keras_backend import (
    clone_with_weights,
    randomization_blocks,
    randomization_units,
    reinitialise,
)
from explainers.sanity import (
    RandomizationCascade,
    cascade_steps,
    cascading_randomization,
    compare_maps,
    map_ssim,
    shared_cascade,
)
from models.unet import build_unet

TARGET = 1


def weights_by_layer(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def test_reinitialising_a_clone_changes_its_block_only_and_never_the_users_model(tiny_model):
    before = weights_by_layer(tiny_model)
    clone = clone_with_weights(tiny_model)
    for name, weights in weights_by_layer(clone).items():
        for ours, theirs in zip(weights, before[name], strict=True):
            np.testing.assert_array_equal(ours, theirs)
    reinitialise(clone, ["logits", "dec1"], seed=3)
    after_clone = weights_by_layer(clone)
    for name in ("logits", "dec1"):
        kernel_before, kernel_after = before[name][0], after_clone[name][0]
        assert kernel_after.shape == kernel_before.shape and not np.allclose(kernel_after, kernel_before)
    for name in ("enc1", "bottom", "up"):
        np.testing.assert_array_equal(after_clone[name][0], before[name][0])
    for name, weights in weights_by_layer(tiny_model).items():
        for ours, theirs in zip(weights, before[name], strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_steps_run_from_the_logits_toward_the_input(tiny_model, adapter):
    assert randomization_blocks(tiny_model) == ["logits", "dec1", "up", "bottom", "enc1"]
    assert cascade_steps(randomization_units(tiny_model)) == [["logits"], ["dec1"], ["up"], ["bottom"], ["enc1"]]
    assert cascade_steps(randomization_units(tiny_model), max_depths=3) == [
        ["logits"],
        ["dec1", "up"],
        ["bottom", "enc1"],
    ]
    assert [s[-1] for s in cascade_steps(randomization_units(tiny_model))] == list(reversed(adapter.conv_layers))


def test_batch_norm_stays_with_its_conv_and_the_unet_gets_one_step_per_level():
    steps = cascade_steps(randomization_units(build_unet((32, 32, 3), filters=(4, 4, 4, 4))))
    assert [block[-1] for block in steps] == [
        "logits",
        "up1",
        "up2",
        "up3",
        "bottleneck_conv1",
        "enc3_conv1",
        "enc2_conv1",
        "enc1_conv1",
    ]
    assert steps[1] == ["dec1_bn2", "dec1_conv2", "dec1_bn1", "dec1_conv1", "up1"]


def test_randomization_changes_the_maps_and_leaves_the_model_alone(tiny_model, adapter, image, region):
    before = weights_by_layer(tiny_model)
    reported, untouched = [], []

    def progress(fraction: float) -> None:  # checks the user's model mid-run, while the clone is randomized
        reported.append(fraction)
        now = weights_by_layer(tiny_model)
        untouched.append(all(np.array_equal(a, b) for n in before for a, b in zip(now[n], before[n], strict=True)))

    result = cascading_randomization(
        adapter,
        image,
        region,
        TARGET,
        ["gradcam", "saliency"],
        params={"gradcam": {"layer": "dec1"}},
        progress=progress,
    )
    assert result.depths == ["logits", "dec1", "up", "bottom", "enc1"]
    for name in ("gradcam", "saliency"):
        assert result.spearman[name].shape == (5,) and result.ssim[name].shape == (5,)
        assert result.maps[name].shape == (6, *image.shape[:2])
        assert not np.allclose(result.maps[name][0], result.maps[name][-1])
    deepest = result.spearman["gradcam"][-1]
    assert np.isnan(deepest) or deepest < result.threshold  # the Grad-CAM map no longer resembles the original
    assert not result.flagged["gradcam"] and not result.flagged["saliency"]
    assert reported == sorted(reported) and reported[-1] == pytest.approx(1.0)
    for part in range(1, 7):  # the end of the trained maps and of each of the 5 steps is reported
        assert any(f == pytest.approx(part / 6) for f in reported)
    # and between the methods inside each part (a background job's cancellation points): two methods, 6 parts
    assert len(reported) > 6 and all(untouched)
    assert all(0.0 <= f <= 1.0 for f in reported)
    for name, weights in weights_by_layer(tiny_model).items():
        for ours, theirs in zip(weights, before[name], strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_a_cascade_is_reusable_and_deterministic(adapter, image, region):
    cascade = RandomizationCascade(adapter, seed=1)
    first = cascade.run(image, region, TARGET, ["hirescam"])
    again = cascade.run(image, region, TARGET, ["hirescam"])
    np.testing.assert_array_equal(first.maps["hirescam"], again.maps["hirescam"])
    other = RandomizationCascade(adapter, seed=1).run(image, region, TARGET, ["hirescam"])
    np.testing.assert_array_equal(first.maps["hirescam"], other.maps["hirescam"])


def test_unchanged_maps_are_flagged_and_scrambled_ones_are_not():
    rng = np.random.default_rng(0)
    trained = rng.normal(size=(16, 16))
    steps = [["logits"], ["conv"]]
    result = compare_maps(
        {
            "blind": [trained, 2 * trained, trained + 0.01],
            "faithful": [trained, rng.normal(size=(16, 16)), rng.normal(size=(16, 16))],
            "dead": [trained, np.zeros((16, 16)), np.zeros((16, 16))],
        },
        steps,
        threshold=0.5,
    )
    assert result.flagged == {"blind": True, "faithful": False, "dead": False}
    np.testing.assert_allclose(result.spearman["blind"], [1.0, 1.0], atol=1e-6)
    assert abs(result.spearman["faithful"][-1]) < 0.3 and np.isnan(result.spearman["dead"][-1])
    assert result.ssim["blind"][0] == pytest.approx(1.0)
    assert abs(result.ssim["faithful"][-1]) < 0.3
    assert map_ssim(trained, trained) == pytest.approx(1.0) and map_ssim(trained, 5 * trained) == pytest.approx(1.0)


def test_a_server_reuses_one_cascade_per_adapter_and_seed_with_the_same_result(adapter, image, region, monkeypatch):
    """`reuse=True` (what the app's trust job passes) builds the clone once per adapter and seed, and gives exactly
    what a fresh cascade gives."""
    params = {"gradcam": {"layer": "dec1"}}
    fresh = cascading_randomization(adapter, image, region, TARGET, ["gradcam"], params=params, seed=3)
    built = []
    original = RandomizationCascade.__init__

    def counting(self, *args, **kwargs):
        built.append(kwargs.get("seed"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(RandomizationCascade, "__init__", counting)
    first = cascading_randomization(adapter, image, region, TARGET, ["gradcam"], params=params, seed=3, reuse=True)
    again = cascading_randomization(adapter, image, region, TARGET, ["gradcam"], params=params, seed=3, reuse=True)
    other = shared_cascade(adapter, seed=4)
    assert built == [3, 4] and shared_cascade(adapter, seed=3) is not other
    for result in (first, again):
        np.testing.assert_array_equal(result.maps["gradcam"], fresh.maps["gradcam"])
        np.testing.assert_array_equal(result.spearman["gradcam"], fresh.spearman["gradcam"])
