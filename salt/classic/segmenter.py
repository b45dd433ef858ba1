"""The common face of the classic networks: [0, 255] RGB in, per-class logits out, like SamSegmenter."""

from __future__ import annotations

import torch
from torch import nn

from salt.errors import ConfigError

# SAM's pixel statistics are ImageNet's on the [0, 255] scale; sharing them gives every network, classic
# or SAM, the same input normalisation.
from salt.model.normalize import SAM_PIXEL_MEAN as PIXEL_MEAN
from salt.model.normalize import SAM_PIXEL_STD as PIXEL_STD


class ClassicSegmenter(nn.Module):
    """Wraps a segmentation network that expects normalised images so it takes raw [0, 255] RGB.

    Forward::

        images (B, 3, S, S) float in [0, 255] RGB, S = img_size
        x      = (images - pixel_mean) / pixel_std
        logits = net(x)                                  (B, num_classes, S, S)

    Args:
        net: the network; its parameters are the trainable ones (``net.`` prefixes their names).
        img_size: the input side ``S`` the network was built for.
        num_classes: number of output logit maps.
        size_multiple: the network's downsampling factor; ``img_size`` must be a multiple of it (checked here,
            so a wrong ``model.img_size`` fails at build time in one line).
        variant: the name runs record for this network (``metrics.json``'s ``model``).
    """

    def __init__(
        self, net: nn.Module, img_size: int, num_classes: int, size_multiple: int = 1, variant: str = ""
    ) -> None:
        super().__init__()
        if img_size % size_multiple:
            raise ConfigError(
                f"model.img_size={img_size} must be a multiple of {size_multiple} for {type(net).__name__}"
            )
        self.net = net
        self.variant = variant
        self.img_size = img_size
        self.num_classes = num_classes
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Segment ``images (B, 3, S, S)`` float in [0, 255] RGB into logits ``(B, num_classes, S, S)``."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"expected images of shape (B, 3, {self.img_size}, {self.img_size}), got {tuple(images.shape)}"
            )
        logits = self.net((images - self.pixel_mean) / self.pixel_std)
        if logits.shape[1] != self.num_classes or logits.shape[-2:] != images.shape[-2:]:
            raise RuntimeError(
                f"{type(self.net).__name__} returned logits of shape {tuple(logits.shape)}, expected "
                f"(B, {self.num_classes}, {self.img_size}, {self.img_size})"
            )
        return logits
