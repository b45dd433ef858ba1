"""Resizing into the model input, mapping predictions back, and the joint image/mask augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salt.data.layout import DatasetError
from salt.data.transforms import (
    augment,
    augment_settings,
    build_augmentation,
    fit_to_square,
    square_pad,
    to_original,
)

SIZES = [(584, 565), (300, 300), (300, 400), (100, 700), (701, 99), (1, 5), (64, 64)]


def _blobs(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Bool ``(H, W)`` mask of a few discs whose radius scales with the image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(3):
        cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
        mask |= ((yy - cy) / height) ** 2 + ((xx - cx) / width) ** 2 <= 0.15**2
    return mask


@pytest.mark.parametrize("mode", ["longest_pad", "plain"])
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_prediction_maps_back_to_the_exact_original_shape(height: int, width: int, mode: str) -> None:
    size = 64
    mask = _blobs(height, width)
    image = np.repeat(mask[..., None].astype(np.uint8) * 200, 3, axis=-1)
    square, labels, pad = fit_to_square(image, mask[..., None].astype(np.uint8), size, mode)
    assert square.shape == (size, size, 3) and labels.shape == (size, size, 1)
    assert np.array_equal(pad, square_pad(height, width, size, mode))
    logits = torch.from_numpy(labels).permute(2, 0, 1).float() * 8 - 4  # (1, S, S) logits of the mask
    back = to_original(logits, (height, width), torch.from_numpy(pad))
    back_bool = to_original(torch.from_numpy(labels).permute(2, 0, 1).bool(), (height, width), pad)
    assert back.shape == (1, height, width) and back.dtype == torch.float32
    assert back_bool.shape == (1, height, width) and back_bool.dtype == torch.bool
    if (height, width) == (size, size):  # nothing resized: the mapping is the identity
        assert torch.equal(back_bool[0], torch.from_numpy(mask))
    content = (size - pad[0] - pad[1], size - pad[2] - pad[3])
    if min(height, width) >= 64 and min(content) >= 32:  # blobs large enough to survive the round trip
        agree = ((back[0] > 0).numpy() == mask).mean()
        assert agree > 0.97, agree
    # Nothing of the padding comes back: a prediction that is foreground only there maps to all background.
    padding = torch.ones(1, size, size, dtype=torch.bool)
    padding[:, pad[0] : size - pad[1], pad[2] : size - pad[3]] = False
    assert not to_original(padding, (height, width), pad).any()
    assert (to_original(padding.float() * 20 - 10, (height, width), pad) < 0).all()


def test_longest_side_padding_is_bottom_right_and_masks_stay_labels() -> None:
    height, width, size = 584, 565, 512
    labels = np.zeros((height, width, 2), dtype=np.uint8)
    labels[..., 0] = _blobs(height, width)
    labels[..., 1] = 1  # a field of view covering the whole image
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    square, out, pad = fit_to_square(image, labels, size, "longest_pad")
    content_w = int(width * size / height + 0.5)
    assert pad.tolist() == [0, 0, 0, size - content_w]
    assert set(np.unique(out).tolist()) <= {0, 1}  # nearest neighbour: no soft label
    assert out[:, :content_w, 1].all() and not out[:, content_w:].any()  # padding is outside the FOV
    assert (square[:, content_w:] == 0).all() and (square[:, :content_w] == 90).all()


def test_augmentation_keeps_masks_binary_and_aligned_with_the_image() -> None:
    pipeline = build_augmentation(augment_settings())
    mask = _blobs(96, 96, seed=1).astype(np.uint8)
    labels = np.dstack([mask, np.ones_like(mask)])  # (S, S, 2): vessel + FOV
    image = np.dstack([mask * 255, mask * 255, np.full_like(mask, 0)])  # the image draws the mask
    changed = 0
    for seed in range(12):
        out_image, out_labels = augment(pipeline, image, labels, seed)
        assert out_image.shape == image.shape and out_image.dtype == np.uint8
        assert out_labels.shape == labels.shape and set(np.unique(out_labels).tolist()) <= {0, 1}
        drawn = out_image[..., 0] > 40  # brightness multiplies, so the background stays 0
        assert (drawn == out_labels[..., 0].astype(bool)).mean() > 0.97
        changed += not np.array_equal(out_labels, labels)
    assert changed >= 6  # the augmentation does act
    again = augment(pipeline, image, labels, 5)
    first = augment(pipeline, image, labels, 5)
    assert all(np.array_equal(a, b) for a, b in zip(again, first))  # one seed, one result


@pytest.mark.parametrize("factor", [0.5, 1.7])
def test_contrast_moves_pixels_around_the_mean_grey(factor: float) -> None:
    """``contrast_p`` alone: torchvision's contrast, ``m + f (x - m)`` with ``m`` the window's mean luma (ITU-R
    601 weights), clipped to [0, 255]; labels untouched."""
    settings = {"hflip_p": 0.0, "rotate_p": 0.0, "scale_p": 0.0, "brightness_p": 0.0}
    pipeline = build_augmentation({**settings, "contrast_p": 1.0, "contrast_range": [factor, factor]})
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
    labels = rng.integers(0, 2, (40, 48, 2)).astype(np.uint8)
    out_image, out_labels = augment(pipeline, image, labels, seed=0)
    mean = (image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).mean()
    expected = np.clip(mean + factor * (image - mean), 0, 255)
    assert np.abs(out_image - expected).max() <= 1.0  # uint8 rounding
    assert np.array_equal(out_labels, labels)


@pytest.mark.parametrize("key, flip", [("hflip_p", np.fliplr), ("vflip_p", np.flipud)])
def test_a_flip_alone_mirrors_image_and_labels_together(key: str, flip) -> None:
    """``hflip_p`` / ``vflip_p`` at 1 with every other step off: the window and its labels mirrored left-right /
    upside down, exactly (no resampling)."""
    settings = {**augment_settings("none"), key: 1.0}
    pipeline = build_augmentation(settings)
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
    labels = rng.integers(0, 2, (40, 48, 2)).astype(np.uint8)
    out_image, out_labels = augment(pipeline, image, labels, seed=1)
    assert np.array_equal(out_image, flip(image))
    assert np.array_equal(out_labels, flip(labels))


def test_augmentation_settings_are_validated() -> None:
    assert build_augmentation(None) is None
    assert build_augmentation(dict.fromkeys(("hflip_p", "rotate_p", "brightness_p", "scale_p"), 0.0)) is None
    assert len(build_augmentation({"rotate_p": 0.0}).transforms) == 3
    with pytest.raises(DatasetError, match="unknown keys"):
        build_augmentation({"flip_p": 0.5})
    with pytest.raises(DatasetError, match=r"augment\.hflip_p"):
        build_augmentation({"hflip_p": 1.5})
    with pytest.raises(DatasetError, match=r"augment\.scale_range"):
        build_augmentation({"scale_range": [1.2, 0.8]})
    with pytest.raises(DatasetError, match=r"augment\.contrast_range"):
        build_augmentation({"contrast_range": [0.0, 2.0]})
    with pytest.raises(DatasetError, match=r"augment\.contrast_p"):
        build_augmentation({"contrast_p": -0.1})
    with pytest.raises(DatasetError, match=r"augment\.vflip_p"):
        build_augmentation({"vflip_p": 2.0})
    assert len(build_augmentation({"vflip_p": 0.5}).transforms) == 5
    assert len(build_augmentation({"contrast_p": 0.3}).transforms) == 5
    with pytest.raises(DatasetError, match="resize: unknown mode"):
        fit_to_square(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 1), np.uint8), 8, "crop")
