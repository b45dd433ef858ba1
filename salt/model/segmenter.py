"""SAM as a promptless semantic segmenter: one learned prompt token per foreground class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder
from torch import nn

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class SamSegmenter(nn.Module):
    """SAM image encoder + mask decoder driven by learned class prompts instead of clicks or boxes.

    The paper feeds the class name through CLIP's text encoder and a projection into one sparse prompt
    token; the text never changes, so that token is one learned vector per class (``class_tokens``). The
    dense prompt is SAM's "no mask" embedding and the decoder runs in single-mask mode.

    Forward::

        images (B, 3, H, W) in [0, 255] RGB, H = W = img_size
        x      = (images - pixel_mean) / pixel_std
        emb    = image_encoder(x)                                    (B, D, H/16, W/16)
        low[b] = mask_decoder(emb[b], pe, class_tokens, no_mask)     (C, 1, H/4, W/4) for every image b
        logits = bilinear_upsample(low, (H, W))                      (B, C, H, W)

    Attributes:
        image_encoder, prompt_encoder, mask_decoder: the ``segment_anything`` modules.
        class_tokens: ``(num_classes, D)`` learned sparse prompt tokens.
    """

    def __init__(
        self,
        image_encoder: ImageEncoderViT,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        num_classes: int = 1,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.num_classes = num_classes
        self.img_size = image_encoder.img_size
        dim = prompt_encoder.embed_dim
        # Small random init: distinct classes start apart, and a near-zero token starts SAM near its
        # "no prompt" behaviour.
        self.class_tokens = nn.Parameter(torch.randn(num_classes, dim) * 0.02)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def extra_state_keys(self) -> list[str]:
        """State-dict keys this class adds to ``segment_anything.Sam`` (absent from official checkpoints)."""
        return ["class_tokens"]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise and encode ``images (B, 3, S, S)`` in [0, 255] to embeddings ``(B, D, S/16, S/16)``."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"expected images of shape (B, 3, {self.img_size}, {self.img_size}), got {tuple(images.shape)}"
            )
        x = (images - self.pixel_mean) / self.pixel_std
        return self.image_encoder(x)

    def decode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Low-resolution logits ``(B, C, S/4, S/4)`` from image embeddings ``(B, D, S/16, S/16)``."""
        num_classes, dim = self.class_tokens.shape
        sparse = self.class_tokens.unsqueeze(1)  # (C, 1, D)
        dense = self.prompt_encoder.no_mask_embed.weight.reshape(1, dim, 1, 1)
        dense = dense.expand(num_classes, dim, *embeddings.shape[-2:])  # (C, D, h, w)
        image_pe = self.prompt_encoder.get_dense_pe()  # (1, D, h, w)
        masks = []
        # SAM's decoder pairs one image with a batch of prompts, so the classes form the prompt batch.
        for emb in embeddings:
            low, _ = self.mask_decoder(
                image_embeddings=emb.unsqueeze(0),  # (1, D, h, w)
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )  # (C, 1, 4h, 4w)
            masks.append(low[:, 0])  # (C, 4h, 4w)
        return torch.stack(masks)  # (B, C, 4h, 4w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Segment ``images (B, 3, S, S)`` float in [0, 255] RGB into logits ``(B, num_classes, S, S)``."""
        low = self.decode(self.encode(images))
        return F.interpolate(low, size=images.shape[-2:], mode="bilinear", align_corners=False)
