"""Builders for SAM variants, made from the ``segment_anything`` package's own classes.

Variants follow ``segment_anything.build_sam``: one private builder plus named one-liners. ``tiny`` uses
the same classes and module names (``image_encoder.blocks.0.attn.qkv`` ...) at toy sizes, for tests and
smoke runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

from salt.model.checkpoint import load_sam_checkpoint
from salt.model.segmenter import SamSegmenter

log = logging.getLogger(__name__)

PATCH_SIZE = 16
CHECKPOINT_IMG_SIZE = 1024


@dataclass(frozen=True)
class SamArch:
    """Architecture hyper-parameters of one SAM variant."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    prompt_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_hidden_dim: int = 256


VARIANTS: dict[str, SamArch] = {
    "vit_b": SamArch(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "vit_l": SamArch(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": SamArch(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
    "tiny": SamArch(
        embed_dim=32,
        depth=2,
        num_heads=2,
        global_attn_indexes=(1,),
        window_size=4,
        prompt_dim=32,
        decoder_mlp_dim=64,
        decoder_heads=2,
        iou_hidden_dim=32,
    ),
}


def _build(arch: SamArch, img_size: int, num_classes: int) -> SamSegmenter:
    embed_size = img_size // PATCH_SIZE
    image_encoder = ImageEncoderViT(
        depth=arch.depth,
        embed_dim=arch.embed_dim,
        img_size=img_size,
        mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=arch.num_heads,
        patch_size=PATCH_SIZE,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=arch.global_attn_indexes,
        window_size=arch.window_size,
        out_chans=arch.prompt_dim,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=arch.prompt_dim,
        image_embedding_size=(embed_size, embed_size),
        input_image_size=(img_size, img_size),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(
            depth=2,
            embedding_dim=arch.prompt_dim,
            mlp_dim=arch.decoder_mlp_dim,
            num_heads=arch.decoder_heads,
        ),
        transformer_dim=arch.prompt_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=arch.iou_hidden_dim,
    )
    return SamSegmenter(image_encoder, prompt_encoder, mask_decoder, num_classes=num_classes)


def build_sam(
    variant: str, checkpoint: str | None = None, img_size: int = 1024, num_classes: int = 1
) -> SamSegmenter:
    """Build a SAM segmenter with ``num_classes`` learned class prompts.

    Args:
        variant: one of ``vit_b``, ``vit_l``, ``vit_h`` (official architectures) or ``tiny``.
        checkpoint: path of an official SAM/MedSAM state dict (``sam_vit_b_01ec64.pth`` format), or None
            for random weights. Position embeddings are resized when ``img_size != 1024``.
        img_size: square input side in pixels; a multiple of 16.
        num_classes: number of foreground classes, one prompt token and one output channel each.

    Returns:
        A :class:`SamSegmenter` mapping images ``(B, 3, img_size, img_size)`` to logits
        ``(B, num_classes, img_size, img_size)``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown SAM variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    if img_size <= 0 or img_size % PATCH_SIZE:
        raise ValueError(f"img_size must be a positive multiple of {PATCH_SIZE}, got {img_size}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    model = _build(VARIANTS[variant], img_size, num_classes)
    if checkpoint is not None:
        load_sam_checkpoint(model, checkpoint, variant)
    return model
