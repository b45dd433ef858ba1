"""Colour-coded overlays of a predicted mask (and its ground truth) on the input image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from salt.metrics.segmentation import as_mask

TRUE_POSITIVE = (255, 255, 255)  # white: vessel found
FALSE_NEGATIVE = (255, 0, 0)  # red: vessel missed
FALSE_POSITIVE = (0, 255, 255)  # cyan: predicted where there is no vessel
BACKGROUND_DIM = 0.5


def as_rgb(image: Any) -> np.ndarray:
    """Check that ``image`` is ``(H, W, 3)`` uint8 (or ``(H, W)`` grey, expanded to RGB) and return it."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)  # (H, W) -> (H, W, 3)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) or (H, W), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    return image


def overlay(image: Any, pred: Any, gt: Any | None = None, dim: float = BACKGROUND_DIM) -> np.ndarray:
    """Paint ``pred`` against ``gt`` on a darkened copy of ``image``.

    Colours: true positive white, false negative (missed vessel) red, false positive cyan; every other
    pixel is the image scaled by ``dim``. Without ``gt`` the prediction is painted white.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (``(H, W)`` grey is accepted too).
        pred: predicted mask ``(H, W)``, bool or 0/1.
        gt: ground-truth mask ``(H, W)`` or None.
        dim: brightness factor of the background, in [0, 1].

    Returns:
        ``(H, W, 3)`` uint8.
    """
    rgb = as_rgb(image)
    pred_np = as_mask(pred, "pred")
    if pred_np.shape != rgb.shape[:2]:
        raise ValueError(f"pred shape {pred_np.shape} differs from the image size {rgb.shape[:2]}")
    out = (rgb.astype(np.float32) * dim).round().astype(np.uint8)
    if gt is None:
        out[pred_np] = TRUE_POSITIVE
        return out
    gt_np = as_mask(gt, "gt")
    if gt_np.shape != pred_np.shape:
        raise ValueError(f"gt shape {gt_np.shape} differs from the image size {rgb.shape[:2]}")
    out[pred_np & gt_np] = TRUE_POSITIVE
    out[~pred_np & gt_np] = FALSE_NEGATIVE
    out[pred_np & ~gt_np] = FALSE_POSITIVE
    return out


def save_overlay(
    path: str | Path, image: Any, pred: Any, gt: Any | None = None, dim: float = BACKGROUND_DIM
) -> Path:
    """Write :func:`overlay` of the arguments as a PNG at ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(overlay(image, pred, gt, dim=dim)).save(path)
    return path
