"""Token layers as CAM layers (explainers.backends.tokens): a transformer's (N, L, C) activation is found, listed and
reshaped to its patch grid, in both gradient backends.

The reference reshaping is written independently, one token at a time: patch (i, j) of an h x w grid is token
`leading + i * w + j` (row-major, after the class token), which is how the models below build their sequences."""

from __future__ import annotations

import numpy as np
import pytest

from explainers import SegmentationAdapter
from explainers.adapter import resample_region
from explainers.backends.tokens import token_grid
from explainers.layer_choice import default_cam_layer


@pytest.mark.parametrize(
    ("tokens", "size", "expected"),
    [
        (64, (64, 64), (8, 8, 0)),  # a square grid
        (65, (64, 64), (8, 8, 1)),  # with a class token
        (12 * 16 + 1, (96, 128), (12, 16, 1)),  # non-square: the grid has the image's aspect ratio
        (6 * 8, (100, 130), (6, 8, 0)),  # patches of 16-17 x 16-17 pixels (a size that patches do not divide)
        (50, (64, 64), (7, 7, 1)),  # 50 tokens are no 1:1 grid; a class token and 7 x 7 patches are
        (47, (64, 64), None),  # neither 47 nor 46
        (None, (64, 64), None),
    ],
)
def test_token_grid(tokens, size, expected):
    assert token_grid(tokens, size) == expected


def by_token(sequence: np.ndarray, h: int, w: int, leading: int) -> np.ndarray:
    """(L, C) tokens -> (h, w, C) grid, one token at a time."""
    grid = np.zeros((h, w, sequence.shape[-1]), dtype=sequence.dtype)
    for i in range(h):
        for j in range(w):
            grid[i, j] = sequence[leading + i * w + j]
    return grid


def test_torch_token_layers_are_listed_and_reshaped_to_their_grid():
    import torch

    from tests.zoo.torch_models import vit_segmenter

    torch.set_num_threads(1)
    model = vit_segmenter()
    adapter = SegmentationAdapter(model)
    tokens = [layer for layer in adapter.layers if layer.tokens]
    assert [layer.name for layer in tokens] == ["blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1",
                                                "blocks.1.norm2", "norm"]  # fmt: skip
    assert all(layer.kind == "LayerNorm" and layer.kernel is None and layer.channels == 48 for layer in tokens)
    assert adapter.conv_layers == ["patch_embed", *[layer.name for layer in tokens], "decoder"]  # forward order
    assert default_cam_layer(adapter.layers, adapter.num_classes) == adapter.default_layer == "norm"

    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)  # a 5 x 7 patch grid
    region = np.zeros((40, 56), dtype=bool)
    region[8:24, 16:40] = True
    _, pairs = adapter.layer_gradients(image, region, 1)

    # Independent: the module's own output sequence and its gradient, with a hook of our own.
    captured = {}
    handle = model.norm.register_forward_hook(lambda m, i, o: captured.setdefault("norm", o))
    try:
        x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None].copy() / 255.0)
        z = model(x)[0, 1]
        cells = torch.from_numpy(resample_region(region, (5, 7)).astype(np.float32))
        score = (z * cells).sum() / cells.sum()
        (grad,) = torch.autograd.grad(score, captured["norm"])
    finally:
        handle.remove()
    activation, gradient = pairs["norm"]
    assert activation.shape == gradient.shape == (5, 7, 48)
    np.testing.assert_allclose(activation, by_token(captured["norm"][0].detach().numpy(), 5, 7, 1), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(gradient, by_token(grad[0].numpy(), 5, 7, 1), rtol=1e-4, atol=1e-8)


def test_keras_token_layers_are_listed_and_reshaped_to_their_grid():
    import keras
    import tensorflow as tf

    from tests.zoo.keras_models import segformer_like

    model = segformer_like(size=(64, 64))
    adapter = SegmentationAdapter(model)
    by_name = {layer.name: layer for layer in adapter.layers}
    assert by_name["stage2_block1_norm2"].tokens and by_name["stage2_block1_norm2"].shape == (8, 8, 64)
    assert by_name["stage1_block1_norm_kv"].shape == (4, 4, 32)  # the reduced keys: a coarser grid of the image
    assert not by_name["patch_embed1"].tokens
    assert adapter.default_layer == "stage2_block1_norm2"  # the last token layer; the decoder after it is 1x1

    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    region = np.zeros((64, 64), dtype=bool)
    region[16:40, 8:48] = True
    _, pairs = adapter.layer_gradients(image, region, 2)

    probe = keras.Model(model.inputs, [model.get_layer("stage2_block1_norm2").output,
                                       model.get_layer("segformer_logits").input])  # fmt: skip
    final = model.get_layer("segformer_logits")
    cells = tf.constant(resample_region(region, (16, 16)).astype(np.float32))
    with tf.GradientTape() as tape:
        sequence, before = probe(tf.constant(image[None].astype(np.float32) / 255.0), training=False)
        z = keras.ops.conv(before, final.kernel, padding="same") + final.bias
        score = tf.reduce_sum(z[0, :, :, 2] * cells) / tf.reduce_sum(cells)
    grad = tape.gradient(score, sequence)
    activation, gradient = pairs["stage2_block1_norm2"]
    np.testing.assert_allclose(activation, by_token(sequence[0].numpy(), 8, 8, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradient, by_token(grad[0].numpy(), 8, 8, 1), rtol=1e-4, atol=1e-8)
