"""Box and point prompts drawn from masks small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salt.data.layout import DatasetError
from salt.data.prompts import (
    PromptSettings,
    box_from_mask,
    ground_truth_prompts,
    jitter_box,
    prompt_kinds,
    sample_points,
)


def _mask(shape=(8, 10), rows=slice(2, 5), cols=slice(3, 8)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def test_box_is_the_extreme_foreground_pixels() -> None:
    mask = _mask()
    mask[6, 1] = True  # one stray pixel widens the box down and to the left
    np.testing.assert_array_equal(box_from_mask(mask), [1, 2, 7, 6])  # x0 = col, y0 = row, x1, y1
    assert box_from_mask(np.zeros((4, 4), bool)) is None


def test_jitter_only_enlarges_within_bounds() -> None:
    box = np.array([10, 20, 30, 40], np.float32)
    rng = np.random.default_rng(0)
    for _ in range(200):
        out = jitter_box(box, 5, 48, rng)
        assert out[0] <= 10 and out[1] <= 20 and out[2] >= 30 and out[3] >= 40
        assert 10 - out[0] <= 5 and 20 - out[1] <= 5 and out[2] - 30 <= 5 and out[3] - 40 <= 5
        assert out.min() >= 0 and out.max() <= 47
    np.testing.assert_array_equal(jitter_box(box, 0, 48, rng), box)


def test_points_fall_inside_and_outside_the_mask_within_the_valid_region() -> None:
    mask = _mask()
    valid = np.ones_like(mask)
    valid[:, 9] = False  # a column of padding: never a negative point
    for seed in range(20):
        points, labels = sample_points(mask, valid, 3, np.random.default_rng(seed))
        assert labels.tolist() == [1, 1, 1, 0, 0, 0]
        for (x, y), label in zip(points.astype(int), labels):
            assert valid[y, x] and mask[y, x] == bool(label)
    # fewer foreground pixels than k: the remaining positive slots are "not a point"
    tiny = np.zeros((8, 10), bool)
    tiny[4, 4] = True
    points, labels = sample_points(tiny, valid, 3, np.random.default_rng(0))
    assert labels.tolist() == [1, -1, -1, 0, 0, 0] and points[0].tolist() == [4, 4]
    # an absent class gets no point at all
    assert (sample_points(np.zeros_like(mask), valid, 2, np.random.default_rng(0))[1] == -1).all()


def test_ground_truth_prompts_per_class() -> None:
    masks = torch.zeros(2, 16, 16)
    masks[0, 3:6, 4:9] = 1  # class 1 present, class 2 absent
    valid = torch.ones(16, 16, dtype=torch.bool)
    boxes = ground_truth_prompts(
        masks, valid, PromptSettings(mode="box", box_jitter=3), np.random.default_rng(0), False
    )
    assert boxes["box"][0].tolist() == [4, 3, 8, 5] and boxes["box_valid"].tolist() == [True, False]
    jittered = ground_truth_prompts(
        masks, valid, PromptSettings(mode="box", box_jitter=3), np.random.default_rng(0), True
    )
    assert not torch.equal(jittered["box"][0], boxes["box"][0])
    points = ground_truth_prompts(
        masks, valid, PromptSettings(mode="class+point", points=2), np.random.default_rng(0), True
    )
    assert points["points"].shape == (2, 4, 2) and points["point_labels"][1].tolist() == [-1] * 4
    assert (
        ground_truth_prompts(masks, valid, PromptSettings(mode="class"), np.random.default_rng(0), True) == {}
    )


def test_settings_are_checked() -> None:
    assert prompt_kinds("class+box") == (True, "box") and prompt_kinds("point") == (False, "point")
    with pytest.raises(DatasetError, match=r"prompt.mode: unknown mode 'boxes'"):
        PromptSettings(mode="boxes")
    with pytest.raises(DatasetError, match=r"prompt.points: must be >= 1"):
        PromptSettings(mode="point", points=0)
    with pytest.raises(DatasetError, match=r"prompt.box_jitter"):
        PromptSettings(mode="box", box_jitter=-1)
