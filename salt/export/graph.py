"""The network an export holds: images in, mask logits and probabilities out, for any batch size.

:class:`SamSegmenter` decodes image by image in a Python loop (SAM's decoder pairs one image with a batch of
prompts), which a tracer unrolls to the batch size it saw. :func:`class_prompt_logits` runs the same decoder
on every (image, class) pair at once, so the exported graph keeps a free batch dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from salt.model.segmenter import SamSegmenter

INPUT_NAMES = ("images",)
OUTPUT_NAMES = ("logits", "probabilities")


def class_prompt_logits(model: SamSegmenter, embeddings: torch.Tensor) -> torch.Tensor:
    """Low-resolution logits ``(B, C, 4h, 4w)`` of the class prompts, every image and class in one batch.

    The same arithmetic as ``SamSegmenter.decode`` in ``class`` prompt mode (SAM's ``MaskDecoder`` in
    single-mask mode, whose output is the first mask token's)::

        tokens = [iou_token, mask_tokens, class_token_c]                 (B*C, 2+M, D), image-major
        src    = embeddings[b] + no_mask                                 (B*C, D, h, w)
        hs, src = two_way_transformer(src, dense_pe, tokens)
        mask   = mlp_0(hs[:, 1]) @ upscale(src)                          (B*C, 4h*4w)

    Args:
        model: a segmenter in ``class`` prompt mode.
        embeddings: image embeddings ``(B, D, h, w)``.
    """
    decoder = model.mask_decoder
    num_classes, dim = model.class_tokens.shape
    batch, _, height, width = embeddings.shape
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)  # (1+M, D)
    tokens = torch.cat(
        [output_tokens.unsqueeze(0).expand(num_classes, -1, -1), model.class_tokens.unsqueeze(1)], dim=1
    )  # (C, 2+M, D)
    tokens = tokens.repeat(batch, 1, 1)  # (B*C, 2+M, D)
    no_mask = model.prompt_encoder.no_mask_embed.weight.reshape(1, dim, 1, 1)
    src = embeddings.repeat_interleave(num_classes, dim=0) + no_mask  # (B*C, D, h, w)
    pos = model.prompt_encoder.get_dense_pe().expand(src.shape[0], -1, -1, -1)  # (B*C, D, h, w)
    hs, src = decoder.transformer(src, pos, tokens)  # (B*C, 2+M, D), (B*C, h*w, D)
    src = src.transpose(1, 2).reshape(-1, dim, height, width)  # (B*C, D, h, w)
    upscaled = decoder.output_upscaling(src)  # (B*C, D/8, 4h, 4w)
    hyper = decoder.output_hypernetworks_mlps[0](hs[:, 1])  # (B*C, D/8)
    masks = hyper.unsqueeze(1) @ upscaled.flatten(2)  # (B*C, 1, 16*h*w)
    return masks.reshape(batch, num_classes, 4 * height, 4 * width)  # (B, C, 4h, 4w)


class ExportedSegmenter(nn.Module):
    """A trained SAM-family segmenter (adapters merged, class prompts) as one function of the image batch.

    Forward::

        images        (B, 3, S, S) float32 RGB in [0, 255], resized and padded to S = img_size
        logits        (B, C, S, S) float32
        probabilities (B, C, S, S) float32 = sigmoid(logits)

    The backbone's normalisation (SAM's pixel mean/std, LiteMedSAM's per-image min-max) is part of the graph.
    """

    def __init__(self, model: SamSegmenter) -> None:
        super().__init__()
        self.model = model
        self.img_size = int(model.img_size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, S, S)`` -> ``(logits, probabilities)``, each ``(B, C, S, S)``."""
        low = class_prompt_logits(self.model, self.model.encode(images))  # (B, C, 4h, 4w)
        logits = F.interpolate(low, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        return logits, torch.sigmoid(logits)
