"""SegNet (Badrinarayanan et al., TPAMI 2017): a VGG16-bn encoder and a mirrored decoder that upsamples
with the encoder's max-pooling indices instead of learned deconvolutions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# VGG16's 13 convolutions in five stages of (output channels, convolutions); each stage ends in a 2x2 pool.
VGG16_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        # The bias would be cancelled by the batch norm that follows.
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SegNet(nn.Module):
    """VGG16-bn encoder-decoder with max-unpooling.

    Encoder stage ``i`` is ``n_i`` conv-BN-ReLU layers then a 2x2 max pool that keeps its argmax indices.
    Decoder stage ``i`` (deepest first) max-unpools with those indices, back to the stage's input size, then
    runs ``n_i`` conv-BN-ReLU layers whose last one narrows to the channels of the stage above. The
    shallowest decoder stage ends in a plain 3x3 convolution to the class logits, as in the original
    SegNet where the classifier is the last decoder layer.

    Forward::

        x        (B, in_channels, H, W), H and W divisible by 2 ** n, n = len(stages)
        encoder  (B, C_n, H / 2 ** n, W / 2 ** n) plus one index map per pool   (VGG16: C_n = 512, n = 5)
        logits   (B, num_classes, H, W) after the n decoder stages

    Args:
        in_channels: input image channels.
        num_classes: output channels (one logit map per class).
        stages: ``(channels, convolutions)`` per encoder stage; VGG16 by default (29.4M parameters).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        stages: Sequence[Sequence[int]] = VGG16_STAGES,
    ) -> None:
        super().__init__()
        self.downsample = 2 ** len(stages)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(kernel_size=2, stride=2)
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        widths = [in_channels] + [width for width, _ in stages]
        for i, (width, depth) in enumerate(stages):
            self.encoder.append(
                nn.Sequential(*[_conv_bn_relu(widths[i] if j == 0 else width, width) for j in range(depth)])
            )
            if i == 0:
                last: nn.Module = nn.Conv2d(width, num_classes, kernel_size=3, padding=1)
            else:
                last = _conv_bn_relu(width, widths[i])
            self.decoder.append(nn.Sequential(*[_conv_bn_relu(width, width) for _ in range(depth - 1)], last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes, H, W)`` for a normalised batch ``x (B, in_channels, H, W)``."""
        if x.shape[-2] % self.downsample or x.shape[-1] % self.downsample:
            raise ValueError(
                f"SegNet needs height and width divisible by {self.downsample}, got {tuple(x.shape[-2:])}"
            )
        indices = []
        for stage in self.encoder:
            x, idx = self.pool(stage(x))  # (B, C_i, H_i / 2, W_i / 2)
            indices.append(idx)
        for stage, idx in zip(reversed(self.decoder), reversed(indices)):
            x = stage(self.unpool(x, idx))  # unpool: (B, C_i, H_i, W_i)
        return x
