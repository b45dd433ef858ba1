"""Sliding-window inference over whole images in patch mode (MONAI's ``sliding_window_inference``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.inferers import sliding_window_inference
from torch import nn

from salt.data.patches import TTA_FLIPS
from salt.model.normalize import MinMaxNormalize


def sliding_window_logits(
    predictor: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    window: int,
    overlap: float,
    blend: str,
    sw_batch_size: int,
    tta: str = "none",
) -> torch.Tensor:
    """Logits ``(B, C, H, W)`` of whole images ``(B, 3, H, W)`` from a network of input side ``window``.

    Windows ``window x window`` step by ``window * (1 - overlap)``, ``sw_batch_size`` of them go through
    ``predictor`` at once, and overlapping logits are averaged with ``blend`` weights (``gaussian``:
    centre-weighted, ``constant``: plain mean). An image smaller than a window is padded with zeros and the
    padding cropped off again. An image of exactly one window gives ``predictor``'s output unchanged.

    ``tta`` (a key of :data:`salt.data.patches.TTA_FLIPS`) runs the whole sliding window once per flip of the
    image and averages the logits, each flipped back; ``none`` is one pass.

    Raises:
        ValueError: an unknown ``tta``.
    """
    if tta not in TTA_FLIPS:
        raise ValueError(f"patch.tta={tta!r} must be one of {', '.join(TTA_FLIPS)}")
    total = None
    for dims in TTA_FLIPS[tta]:
        logits = sliding_window_inference(
            images.flip(dims) if dims else images,
            roi_size=(window, window),
            sw_batch_size=sw_batch_size,
            predictor=predictor,
            overlap=overlap,
            mode=blend,
            padding_mode="constant",
            cval=0.0,
        )
        logits = logits.flip(dims) if dims else logits
        total = logits if total is None else total + logits
    return total / len(TTA_FLIPS[tta]) if len(TTA_FLIPS[tta]) > 1 else total


class ImageRangeScale(nn.Module):
    """Inputs already stretched to [0, 255] by their whole image's range (``patch.normalize: image``), mapped
    to [0, 1] as a min-max backbone expects: ``x / 255`` (no per-window statistics)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, H, W)``."""
        return images / 255.0

    def spec(self) -> dict:
        """The normalisation as data (for an exported model's description)."""
        return {"kind": "image_min_max_then_divide", "divisor": 255.0}


def use_image_range(model: nn.Module, patch: Mapping[str, Any] | None) -> None:
    """With ``patch.normalize: image``, replace a min-max backbone's per-input normaliser by
    :class:`ImageRangeScale` (the data pipeline has stretched each whole image to [0, 255]).

    A network that normalises by constants (SAM's and SAM2's mean/std, the classic networks) is left as it
    is: a constant normalisation is the same for a window and for its image, so for such a network
    ``image`` only means the whole-image stretch the data pipeline applies.
    """
    if not patch or patch.get("normalize", "window") != "image":
        return
    found = [name for name, module in model.named_modules() if isinstance(module, MinMaxNormalize)]
    for name in found:
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, ImageRangeScale())
