"""Resizing to the model's square input, mapping predictions back, and the training augmentation.

Resize modes (``resize``):

- ``longest_pad`` (SAM's own preprocessing): scale so the longest side is ``S``, keep the aspect ratio, pad
  the bottom and right with zeros.
- ``plain``: stretch to ``S x S``.

Every sample carries ``orig_size = (H, W)`` and ``pad = (top, bottom, left, right)`` in model pixels, so
``to_original`` crops the padding and resizes back to exactly ``(H, W)``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from segment_anything.utils.transforms import ResizeLongestSide

from salt import CONFIG_DIR
from salt.data.layout import DatasetError

RESIZE_MODES = ("longest_pad", "plain")

# The augmentation's settings: configs/augment/<option>.yaml, composed into `dataset.augment` by train.yaml.
AUGMENT_CONFIGS = CONFIG_DIR / "augment"


def augment_settings(option: str = "default") -> dict[str, Any]:
    """The settings of ``configs/augment/<option>.yaml``: what ``augment=<option>`` puts in ``dataset.augment``.

    ``default`` is the paper's augmentation (section 3) and names every key :func:`build_augmentation` reads.
    """
    path = AUGMENT_CONFIGS / f"{option}.yaml"
    if not path.is_file():
        options = ", ".join(sorted(p.stem for p in AUGMENT_CONFIGS.glob("*.yaml")))
        raise DatasetError(f"augment: unknown option {option!r} (valid: {options})")
    return OmegaConf.to_container(OmegaConf.load(path))


def content_shape(height: int, width: int, size: int, mode: str) -> tuple[int, int]:
    """Size ``(h, w)`` of the resized image inside the ``size x size`` input (SAM's rounding)."""
    if mode == "plain":
        return size, size
    if mode != "longest_pad":
        raise DatasetError(f"resize: unknown mode {mode!r} (valid: {', '.join(RESIZE_MODES)})")
    h, w = ResizeLongestSide.get_preprocess_shape(height, width, size)
    return max(1, h), max(1, w)


def square_pad(height: int, width: int, size: int, mode: str) -> np.ndarray:
    """Padding ``(top, bottom, left, right)`` int64 around an ``(H, W)`` image resized into ``size x size``."""
    h, w = content_shape(height, width, size, mode)
    return np.array([0, size - h, 0, size - w], dtype=np.int64)


def _resize(array: np.ndarray, shape: tuple[int, int], nearest: bool) -> np.ndarray:
    # Not ResizeLongestSide.apply_image: its PIL resize gives other pixels (on a DRIVE image at 512, 46% of
    # them differ, by up to 18 grey levels) than the cv2 resize the reported results were trained with.
    h, w = shape
    if nearest:
        interpolation = cv2.INTER_NEAREST
    else:
        # Area averaging keeps thin vessels from aliasing away when shrinking by 2x or more; below that,
        # bilinear loses nothing visible and is several times faster (e.g. DRIVE's 584 -> 512).
        shrink = min(h / array.shape[0], w / array.shape[1])
        interpolation = cv2.INTER_AREA if shrink <= 0.5 else cv2.INTER_LINEAR
    out = cv2.resize(array, (w, h), interpolation=interpolation)
    return out.reshape(h, w, *array.shape[2:])  # cv2 drops a trailing channel axis of size 1


def fit_to_square(
    image: np.ndarray, labels: np.ndarray, size: int, mode: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize an image and its label channels to the ``size x size`` model input.

    Args:
        image: ``(H, W, 3)`` uint8.
        labels: ``(H, W, K)`` uint8 binary channels (masks and FOV), resized with nearest neighbour only.
        size: the model input side ``S``.
        mode: ``longest_pad`` or ``plain``.

    Returns:
        image ``(S, S, 3)`` uint8, labels ``(S, S, K)`` uint8, pad ``(4,)`` int64 (top, bottom, left, right).
    """
    pad = square_pad(*image.shape[:2], size, mode)
    h, w = size - pad[0] - pad[1], size - pad[2] - pad[3]
    image = _resize(image, (h, w), nearest=False)
    labels = _resize(labels, (h, w), nearest=True)
    if pad.any():
        image = np.pad(image, ((0, pad[1]), (0, pad[3]), (0, 0)))
        labels = np.pad(labels, ((0, pad[1]), (0, pad[3]), (0, 0)))
    return image, labels, pad


def to_original(pred: torch.Tensor, orig_size: Any, pad: Any) -> torch.Tensor:
    """Map a model-resolution prediction ``(C, S, S)`` back to the original pixels ``(C, H, W)``.

    The padding given by ``pad = (top, bottom, left, right)`` is cropped, then the rest is resized to
    ``orig_size = (H, W)``: bilinearly for floating-point input (logits or probabilities), by nearest
    neighbour for bool or integer input, which keeps its dtype.
    """
    height, width = (int(v) for v in orig_size)
    top, bottom, left, right = (int(v) for v in pad)
    size_h, size_w = pred.shape[-2:]
    crop = pred[..., top : size_h - bottom, left : size_w - right]
    if pred.is_floating_point():
        out = F.interpolate(crop[None], size=(height, width), mode="bilinear", align_corners=False)
        return out[0]
    out = F.interpolate(crop[None].float(), size=(height, width), mode="nearest-exact")
    return out[0].to(pred.dtype)


def _range(cfg: Mapping[str, Any], key: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in cfg[key])
    except (TypeError, ValueError) as err:
        raise DatasetError(f"augment.{key}: expected [low, high], got {cfg[key]!r}") from err
    if not 0 < low <= high:
        raise DatasetError(f"augment.{key}: expected 0 < low <= high, got [{low}, {high}]")
    return low, high


def build_augmentation(settings: Mapping[str, Any] | None) -> A.Compose | None:
    """An albumentations pipeline from ``settings`` (keys of ``configs/augment/default.yaml``, whose values fill
    the missing ones).

    ``None`` or an empty pipeline (every probability 0) gives ``None``. Image resampling is bilinear, mask
    resampling nearest-neighbour, borders are filled with 0, so label channels stay exactly binary.

    Raises:
        DatasetError: an unknown key or an invalid value.
    """
    if settings is None:
        return None
    default = augment_settings()
    unknown = set(settings) - set(default)
    if unknown:
        raise DatasetError(f"augment: unknown keys {sorted(unknown)} (valid: {', '.join(default)})")
    cfg = {**default, **settings}
    warp = {
        "interpolation": cv2.INTER_LINEAR,
        "mask_interpolation": cv2.INTER_NEAREST,
        "border_mode": cv2.BORDER_CONSTANT,
        "fill": 0,
        "fill_mask": 0,
    }
    limit = float(cfg["rotate_limit"])
    scale, brightness = _range(cfg, "scale_range"), _range(cfg, "brightness_range")
    contrast = _range(cfg, "contrast_range")
    steps = [
        ("hflip_p", lambda p: A.HorizontalFlip(p=p)),
        ("vflip_p", lambda p: A.VerticalFlip(p=p)),
        ("rotate_p", lambda p: A.Affine(rotate=(-limit, limit), p=p, **warp)),
        ("scale_p", lambda p: A.Affine(scale=scale, p=p, **warp)),
        # Multiplying by a factor is torchvision's brightness (the authors' choice), clipped to 255.
        ("brightness_p", lambda p: A.MultiplicativeNoise(multiplier=brightness, p=p)),
        # torchvision's contrast: x -> m + f (x - m) around the mean grey m of the window; the other factors of
        # ColorJitter are held at identity.
        (
            "contrast_p",
            lambda p: A.ColorJitter(brightness=(1, 1), contrast=contrast, saturation=(1, 1), hue=(0, 0), p=p),
        ),
    ]
    for key, _ in steps:
        if not 0.0 <= float(cfg[key]) <= 1.0:
            raise DatasetError(f"augment.{key}: probability {cfg[key]} is outside [0, 1]")
    transforms = [make(float(cfg[key])) for key, make in steps if float(cfg[key]) > 0]
    return A.Compose(transforms) if transforms else None


def augment(
    pipeline: A.Compose, image: np.ndarray, labels: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``pipeline`` jointly to ``image (S, S, 3)`` uint8 and ``labels (S, S, K)`` uint8.

    ``seed`` fixes this call's random draws: albumentations seeds its generators once at construction, so
    forked DataLoader workers would otherwise repeat each other's augmentations.
    """
    pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
    out = pipeline(image=image, mask=labels)
    return out["image"], out["mask"]


def to_model_coords(xy: np.ndarray, orig_size: tuple[int, int], size: int, mode: str) -> np.ndarray:
    """Map pixel coordinates ``(..., 2)`` as ``(x, y)`` of an ``(H, W)`` image into the ``size x size`` input.

    The same scaling as :func:`fit_to_square`: ``x`` times the resized width over ``W``, ``y`` times the resized
    height over ``H`` (for ``longest_pad``, SAM's ``ResizeLongestSide.apply_coords``); the padding is at the
    bottom and right, so there is no offset. Returns float32.
    """
    height, width = orig_size
    if mode == "longest_pad" and min(content_shape(height, width, size, mode)) > 0:
        return (
            ResizeLongestSide(size)
            .apply_coords(np.asarray(xy, dtype=np.float32), (height, width))
            .astype(np.float32)
        )
    h, w = content_shape(height, width, size, mode)
    scale = np.array([w / width, h / height], dtype=np.float32)
    return (np.asarray(xy, dtype=np.float32) * scale).astype(np.float32)


def to_image_coords(xy: np.ndarray, orig_size: tuple[int, int], size: int, mode: str) -> np.ndarray:
    """The inverse of :func:`to_model_coords`: pixel coordinates ``(..., 2)`` as ``(x, y)`` of the
    ``size x size`` input mapped back onto the ``(H, W)`` image."""
    height, width = orig_size
    h, w = content_shape(height, width, size, mode)
    scale = np.array([width / w, height / h], dtype=np.float32)
    return (np.asarray(xy, dtype=np.float32) * scale).astype(np.float32)
