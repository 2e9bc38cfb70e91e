"""Which zoo models the conformance suite runs, and the failures it has found and not yet fixed.

By default the suite runs the models that fit a CI run on two CPU cores (`FAST_MODELS`); `SEGX_ZOO_ALL=1` runs every
architecture of `tests/zoo/keras_models.py` and `tests/zoo/torch_models.py`. Measured on 2 shared cores: the default
set without the two Keras encoders took 45 s; MobileNetV2 + LR-ASPP adds 32 s and EfficientNetB0 + FPN 84 s (load
average ~4; their IG paths refine to 512 and 1024 intervals before completeness holds to 5%). Kept out of the
default set: DeepLabV3+ on ResNet50 at 512x512 and the torch LR-ASPP and FCN-ResNet50 (minutes each). A known
failure is a strict xfail: it is reported on every run, and the day it passes the suite fails until the entry is
removed here."""

from __future__ import annotations

import os

import pytest

# The shared checks live in a plain module: have pytest rewrite its asserts so failures show their values.
pytest.register_assert_rewrite("tests.zoo.conformance")

FAST_MODELS = (
    "pets_unet", "nested_shared", "segformer_like", "mobilenetv2_lraspp", "efficientnetb0_fpn",
    "unet_upsample", "vit_segmenter", "deeplabv3_mobilenet",
)  # fmt: skip

# (test name, model) -> the reason; none open now (the nested_shared predict check and the token model's HiResCAM are
# fixed: see the git history of this file).
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def zoo_models(all_models: list[str]) -> list[str]:
    """The models this run checks."""
    return all_models if os.environ.get("SEGX_ZOO_ALL") == "1" else [m for m in all_models if m in FAST_MODELS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        model = getattr(item, "callspec", None) and item.callspec.params.get("zoo")
        reason = KNOWN_FAILURES.get((getattr(item, "originalname", item.name), model))
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
