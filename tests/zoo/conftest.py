"""Which zoo models the conformance suite runs, and the failures it has found and not yet fixed.

Every architecture of `tests/zoo/keras_models.py` and `tests/zoo/torch_models.py` is in `FAST_MODELS`, what CI runs
(`SEGX_ZOO_ALL=1` still runs every architecture, the same set now). The heavy ones run with cheaper but honest
parameters written in their entries (SHAP with 20 evaluations on DeepLabV3+ / ResNet50 at 512x512 and on FCN-ResNet50;
every check and tolerance unchanged). Measured on 2 shared cores, 2026-12-03, `time python -m pytest tests/zoo`:
82 passed in 14 min 10 s wall at load average 4-9 (other engineers' jobs), 8 min 57 s of CPU (user + sys). Each model's
setup (build, then every method once): FCN-ResNet50 237 s (its IG path refines to 256 intervals), DeepLabV3+ /
ResNet50 133 s, EfficientNetB0 + FPN 130 s, MobileNetV2 + LR-ASPP 78 s, torch DeepLabV3-MobileNetV3 58 s and
LR-ASPP 45 s, pets U-Net 42 s, the other four 2-17 s each. A known failure is a strict xfail: it is reported on every
run, and the day it passes the suite fails until the entry is removed here."""

from __future__ import annotations

import os

import pytest

# The shared checks live in a plain module: have pytest rewrite its asserts so failures show their values.
pytest.register_assert_rewrite("tests.zoo.conformance")

FAST_MODELS = (
    "pets_unet", "nested_shared", "segformer_like", "mobilenetv2_lraspp", "efficientnetb0_fpn",
    "unet_upsample", "vit_segmenter", "deeplabv3_mobilenet", "deeplabv3plus_resnet50", "lraspp_mobilenet",
    "fcn_resnet50",
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
