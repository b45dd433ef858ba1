"""Input normalisations of the backbone families: images arrive as RGB floats in [0, 255]."""

from __future__ import annotations

import torch
from torch import nn

# SAM's pixel statistics (RGB, [0, 255]), from segment_anything.build_sam.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


class MeanStdNormalize(nn.Module):
    """``(x - mean) / std`` per channel, for images ``(B, 3, H, W)`` in [0, 255] (SAM's pixel mean/std)."""

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        super().__init__()
        self.values = {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, H, W)``."""
        return (images - self.mean) / self.std

    def spec(self) -> dict:
        """The normalisation as data (for an exported model's description)."""
        return {"kind": "mean_std", **self.values}

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class MinMaxNormalize(nn.Module):
    """Each image scaled to [0, 1] by its own minimum and maximum over all channels and pixels (LiteMedSAM).

    ``(x - min) / max(max - min, eps)`` with ``min``/``max`` taken per image over ``(3, H, W)``; a constant
    image maps to zeros.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, H, W)`` in [0, 1]."""
        low = images.amin(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        high = images.amax(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        return (images - low) / (high - low).clamp_min(self.eps)

    def spec(self) -> dict:
        """The normalisation as data (for an exported model's description)."""
        return {"kind": "per_image_min_max", "eps": self.eps}

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"
