"""The Question value object: validation, identity, class weights, the settings.json round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explainers.keys import content_key
from explainers.question import Question, rle_decode, rle_encode, runner_up_class


def _mask(shape=(4, 5), cells=((1, 1), (1, 2), (2, 2))) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for cell in cells:
        mask[cell] = True
    return mask


def test_contrast_equal_to_target_is_a_value_error_with_a_sentence():
    with pytest.raises(ValueError, match="must differ from the target"):
        Question(_mask(), 2, contrast=2)


@pytest.mark.parametrize(
    ("region", "target", "contrast", "message"),
    [
        (np.zeros((3, 3), bool), 1, None, "region is empty"),
        (np.ones((2, 2, 3), bool), 1, None, "2-D"),
        (np.full((2, 2), 3), 1, None, "boolean"),
        (_mask(), 1.0, None, "integer"),
        (_mask(), True, None, "integer"),
        (_mask(), -1, None, "0 or more"),
        (_mask(), 1, "2", "integer"),
    ],
)
def test_bad_questions_are_value_errors(region, target, contrast, message):
    with pytest.raises(ValueError, match=message):
        Question(region, target, contrast)


def test_region_is_a_read_only_copy():
    source = _mask()
    question = Question(source.astype(np.uint8), 1)
    assert question.region.dtype == bool and not question.region.flags.writeable
    source[0, 0] = True
    assert not question.region[0, 0]


def test_key_is_the_content_hash_of_region_target_and_contrast_and_ignores_the_label():
    region = _mask()
    question = Question(region, 1, 3, label="box")
    assert question.key == content_key("question", region, 1, 3)
    assert Question(region.astype(np.uint8), np.int64(1), np.int32(3), label="lasso").key == question.key
    assert Question(region, 1, 3) == Question(region, 1, 3, label="class")
    assert len({Question(region, 1, 3), Question(region, 1, 3, "x")}) == 1
    elsewhere = _mask(cells=((0, 0),))
    others = [Question(region, 1), Question(region, 2, 3), Question(region, 1, 0), Question(elsewhere, 1, 3)]
    assert len({q.key for q in others} | {question.key}) == 5


def test_weights_are_onehot_or_the_onehot_difference():
    np.testing.assert_array_equal(Question(_mask(), 2).weights(4), [0, 0, 1, 0])
    weights = Question(_mask(), 2, 0).weights(4)
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, [-1, 0, 1, 0])


def test_check_rejects_classes_out_of_range_and_another_image_size():
    with pytest.raises(ValueError, match="Contrast class 4 is out of range"):
        Question(_mask(), 1, 4).weights(4)
    with pytest.raises(ValueError, match="Target class 5 is out of range"):
        Question(_mask(), 5).check(4)
    with pytest.raises(ValueError, match="must match"):
        Question(_mask(), 1).check(4, size=(5, 4))
    assert Question(_mask(), 1).check(4, size=(4, 5)).target == 1


def test_rle_by_hand():
    mask = np.array([[1, 1, 0], [0, 0, 1]], dtype=bool)
    assert rle_encode(mask) == [0, 2, 3, 1]
    assert rle_encode(~mask) == [2, 3, 1]
    np.testing.assert_array_equal(rle_decode([0, 2, 3, 1], (2, 3)), mask)
    with pytest.raises(ValueError, match="cover 5 pixels"):
        rle_decode([0, 2, 3], (2, 3))


def test_dict_round_trip_through_json_is_exact():
    rng = np.random.default_rng(0)
    region = rng.random((17, 23)) > 0.6
    question = Question(region, 2, 1, label="border-inner(3)")
    data = json.loads(json.dumps(question.to_dict(class_names=["bg", "cap", "gills"])))
    assert (data["target_name"], data["contrast_name"]) == ("gills", "cap")
    assert data["region"]["pixels"] == region.sum()
    back = Question.from_dict(data)
    np.testing.assert_array_equal(back.region, region)
    assert (back.target, back.contrast, back.label, back.key) == (2, 1, "border-inner(3)", question.key)
    assert Question.from_dict(Question(region, 0).to_dict()).contrast is None


def test_from_dict_refuses_an_altered_or_incomplete_record():
    data = Question(_mask(), 1, 2).to_dict()
    with pytest.raises(ValueError, match="does not match its key"):
        Question.from_dict({**data, "target": 3})
    with pytest.raises(ValueError, match="incomplete"):
        Question.from_dict({"target": 1})
    with pytest.raises(ValueError, match="must differ"):
        Question.from_dict({k: v for k, v in data.items() if k != "key"} | {"contrast": 1})


def test_describe_names_the_classes():
    question = Question(_mask(), 1, 2, label="box")
    assert question.describe(["bg", "cap", "gills"]) == "why is this box “cap” rather than “gills”?"
    assert Question(_mask(), 1, label="component").describe() == "why is this component class 1?"


def test_runner_up_is_the_other_class_with_the_highest_mean_probability_in_the_region():
    probabilities = np.zeros((2, 2, 3))
    probabilities[..., 0] = [[0.7, 0.1], [0.1, 0.1]]
    probabilities[..., 1] = [[0.2, 0.5], [0.5, 0.5]]
    probabilities[..., 2] = [[0.1, 0.4], [0.4, 0.4]]
    top_row = np.array([[1, 1], [0, 0]], dtype=bool)  # means: 0.4, 0.35, 0.25
    assert runner_up_class(probabilities, top_row, target=0) == 1
    assert runner_up_class(probabilities, top_row, target=1) == 0
    assert runner_up_class(probabilities, np.ones((2, 2), bool), target=1) == 2  # means: 0.25, 0.425, 0.325
    with pytest.raises(ValueError, match="out of range"):
        runner_up_class(probabilities, top_row, target=3)
