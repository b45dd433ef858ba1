"""Data-set items carry box and point prompts that follow the (augmented) mask; evaluation prompts are fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from salt.data import VesselDataset
from salt.data.prompts import PromptSettings, box_from_mask
from salt.data.shapes import ensure_shapes

AUGMENT = {"hflip_p": 1.0, "rotate_limit": 10.0, "rotate_p": 1.0, "scale_p": 1.0, "brightness_p": 0.0}


@pytest.fixture(scope="module")
def shapes3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_shapes(tmp_path_factory.mktemp("prompts") / "shapes3", n=10, size=64, classes=3)


def _dataset(root: Path, split: str, settings: PromptSettings, augment: dict | None = None) -> VesselDataset:
    return VesselDataset(
        root, split, 64, label_map={1: 1, 2: 2, 3: 3}, num_classes=3, prompts=settings, augment=augment
    )


def test_boxes_follow_the_augmented_mask(shapes3: Path) -> None:
    data = _dataset(shapes3, "train", PromptSettings(mode="box", box_jitter=0), AUGMENT)
    torch.manual_seed(0)
    for index in range(len(data)):
        item = data[index]
        for c in range(3):
            box = box_from_mask(item["mask"][c].numpy() > 0.5)
            assert bool(item["box_valid"][c]) == (box is not None)
            if box is not None:
                np.testing.assert_array_equal(item["box"][c].numpy(), box)


def test_evaluation_prompts_are_the_same_every_time_and_training_prompts_are_not(shapes3: Path) -> None:
    settings = PromptSettings(mode="point", points=2, seed=3)
    first, second = _dataset(shapes3, "test", settings), _dataset(shapes3, "test", settings)
    for index in range(len(first)):
        assert torch.equal(first[index]["points"], second[index]["points"])
    other_seed = _dataset(shapes3, "test", PromptSettings(mode="point", points=2, seed=4))
    assert any(not torch.equal(first[i]["points"], other_seed[i]["points"]) for i in range(len(first)))
    train = _dataset(shapes3, "train", settings)
    assert not torch.equal(train[0]["points"], train[0]["points"])


def test_points_are_inside_and_outside_their_class(shapes3: Path) -> None:
    data = _dataset(shapes3, "train", PromptSettings(mode="point", points=3))
    for index in range(len(data)):
        item = data[index]
        for c in range(3):
            mask = item["mask"][c].numpy() > 0.5
            for (x, y), label in zip(item["points"][c].numpy().astype(int), item["point_labels"][c].tolist()):
                if label >= 0:
                    assert mask[y, x] == bool(label)
            assert (item["point_labels"][c] >= 0).any() == mask.any()


def test_batches_collate_with_absent_classes(shapes3: Path) -> None:
    data = _dataset(shapes3, "train", PromptSettings(mode="class+box"))
    batch = next(iter(DataLoader(data, batch_size=4)))
    assert batch["box"].shape == (4, 3, 4) and batch["box_valid"].shape == (4, 3)
    assert batch["box_valid"].dtype == torch.bool and not batch["box_valid"].all()  # some image lacks a class
    plain = _dataset(shapes3, "train", PromptSettings(mode="class"))[0]
    assert "box" not in plain and "points" not in plain
