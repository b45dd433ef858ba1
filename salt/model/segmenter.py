"""SAM as a promptless semantic segmenter: one learned prompt token per foreground class, any SAM-family encoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder, PromptEncoder
from torch import nn


class SamSegmenter(nn.Module):
    """An image encoder + SAM's mask decoder driven by learned class prompts instead of clicks or boxes.

    The paper feeds the class name through CLIP's text encoder and a projection into one sparse prompt
    token; the text never changes, so that token is one learned vector per class (``class_tokens``). The
    dense prompt is SAM's "no mask" embedding and the decoder runs in single-mask mode.

    Any encoder that maps normalised images ``(B, 3, S, S)`` to an embedding ``(B, D, h, w)`` with ``D`` the
    prompt encoder's width and ``(h, w)`` its ``image_embedding_size`` fits (SAM's ViT, LiteMedSAM's TinyViT).
    The backbone family (``salt.model.backbones``) builds it and says how images are normalised and which
    module types keep their running statistics frozen while training (``frozen_stat_types``, BatchNorm).

    Forward::

        images (B, 3, S, S) in [0, 255] RGB, S = img_size
        x      = normalizer(images)                                  (B, 3, S, S)
        emb    = image_encoder(x)                                    (B, D, h, w)
        low[b] = mask_decoder(emb[b], pe, class_tokens, no_mask)     (C, 1, 4h, 4w) for every image b
        logits = bilinear_upsample(low, (S, S))                      (B, C, S, S)

    Attributes:
        image_encoder, prompt_encoder, mask_decoder: the encoder, and ``segment_anything``'s prompt encoder
            and mask decoder.
        normalizer: module mapping images in [0, 255] to the encoder's input range.
        class_tokens: ``(num_classes, D)`` learned sparse prompt tokens.
        backbone: name of the family in ``salt.model.backbones.BACKBONES``.
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        *,
        img_size: int,
        normalizer: nn.Module,
        backbone: str,
        num_classes: int = 1,
        frozen_stat_types: tuple[type[nn.Module], ...] = (),
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.normalizer = normalizer
        self.num_classes = num_classes
        self.img_size = img_size
        self.backbone = backbone
        self.frozen_stat_types = frozen_stat_types
        dim = prompt_encoder.embed_dim
        # Small random init: distinct classes start apart, and a near-zero token starts SAM near its
        # "no prompt" behaviour.
        self.class_tokens = nn.Parameter(torch.randn(num_classes, dim) * 0.02)

    def extra_state_keys(self) -> list[str]:
        """State-dict keys this class adds to the backbone's own (absent from official checkpoints)."""
        return ["class_tokens"]

    def train(self, mode: bool = True) -> SamSegmenter:
        """Set training mode, except for ``frozen_stat_types`` modules, which stay in eval mode.

        BatchNorm statistics learned on a large corpus would be overwritten by those of a few small batches.
        """
        super().train(mode)
        if mode and self.frozen_stat_types:
            for module in self.modules():
                if isinstance(module, self.frozen_stat_types):
                    module.eval()
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise and encode ``images (B, 3, S, S)`` in [0, 255] to embeddings ``(B, D, h, w)``."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"expected images of shape (B, 3, {self.img_size}, {self.img_size}), got {tuple(images.shape)}"
            )
        return self.image_encoder(self.normalizer(images))

    def decode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Low-resolution logits ``(B, C, 4h, 4w)`` from image embeddings ``(B, D, h, w)``."""
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
