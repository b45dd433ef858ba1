"""Overlay colours at known pixels, and the written PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from salt.viz import FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_POSITIVE, overlay, save_overlay


@pytest.fixture
def case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.full((4, 5, 3), 200, dtype=np.uint8)
    image[..., 2] = 100
    gt = np.zeros((4, 5), dtype=bool)
    pred = np.zeros((4, 5), dtype=bool)
    gt[0, 0] = pred[0, 0] = True  # hit
    gt[1, 1] = True  # missed
    pred[2, 2] = True  # false alarm
    return image, pred, gt


def test_colours_at_known_pixels(case) -> None:
    image, pred, gt = case
    out = overlay(image, pred, gt)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == TRUE_POSITIVE == (255, 255, 255)
    assert tuple(out[1, 1]) == FALSE_NEGATIVE == (255, 0, 0)
    assert tuple(out[2, 2]) == FALSE_POSITIVE
    assert len({TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE}) == 3
    assert tuple(out[3, 4]) == (100, 100, 50)  # background: the image at half brightness
    assert np.array_equal(image[0, 0], [200, 200, 100])  # input untouched


def test_without_gt_prediction_is_white(case) -> None:
    image, pred, gt = case
    out = overlay(image, pred | gt, None, dim=0.25)
    assert tuple(out[1, 1]) == tuple(out[2, 2]) == TRUE_POSITIVE
    assert tuple(out[3, 4]) == (50, 50, 25)


def test_grey_image_and_torch_masks(case) -> None:
    image, pred, gt = case
    grey = image[..., 0]
    out = overlay(grey, torch.from_numpy(pred), torch.from_numpy(gt).float())
    assert tuple(out[1, 1]) == FALSE_NEGATIVE and tuple(out[3, 4]) == (100, 100, 100)


def test_bad_inputs_raise(case) -> None:
    image, pred, gt = case
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), pred, gt)
    with pytest.raises(ValueError, match="image size"):
        overlay(image, pred[:3], gt)
    with pytest.raises(ValueError, match="image size"):
        overlay(image, pred, gt[:, :4])


def test_save_overlay_writes_readable_png(case, tmp_path) -> None:
    image, pred, gt = case
    path = save_overlay(tmp_path / "nested" / "case.png", image, pred, gt)
    with Image.open(path) as written:
        assert written.format == "PNG"
        assert np.array_equal(np.asarray(written.convert("RGB")), overlay(image, pred, gt))
