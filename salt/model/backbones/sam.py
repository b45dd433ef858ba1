"""SAM's ViT family (ViT-B/L/H, MedSAM ViT-B, and a tiny test size), from ``segment_anything``'s own classes.

Variants follow ``segment_anything.build_sam``: one private builder plus named one-liners. ``tiny`` uses the
same classes and module names (``image_encoder.blocks.0.attn.qkv`` ...) at toy sizes, for tests and smoke runs.

Official checkpoints (``sam_vit_b_01ec64.pth``, ``medsam_vit_b.pth``, ...) are plain state dicts of
``segment_anything.Sam`` at 1024 px. At another input size the absolute position embedding
``(1, 64, 64, C)`` is resized bicubically to ``(1, S/16, S/16, C)`` and the relative position tables of the
global-attention blocks ``(2*64-1, head_dim)`` linearly to ``(2*S/16-1, head_dim)``; window blocks keep
their ``(2*14-1, head_dim)`` tables.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer
from segment_anything.modeling.common import LayerNorm2d
from torch import nn

from salt.model.backbones.base import Backbone, BackboneError, GroupFn
from salt.model.checkpoint import CheckpointError
from salt.model.normalize import SAM_PIXEL_MEAN, SAM_PIXEL_STD, MeanStdNormalize
from salt.model.segmenter import SamSegmenter

log = logging.getLogger(__name__)

PATCH_SIZE = 16
CHECKPOINT_IMG_SIZE = 1024
_REL_POS = re.compile(r"image_encoder\.blocks\.\d+\.attn\.rel_pos_[hw]$")
_BLOCK = re.compile(r"image_encoder\.blocks\.(\d+)\.")


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


ARCHS: dict[str, SamArch] = {
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


def sam_decoder(prompt_dim: int, mlp_dim: int, heads: int, iou_hidden_dim: int) -> MaskDecoder:
    """SAM's mask decoder (3 multimask outputs, two-way transformer of depth 2) at width ``prompt_dim``."""
    return MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=mlp_dim, num_heads=heads),
        transformer_dim=prompt_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=iou_hidden_dim,
    )


def sam_prompt_encoder(prompt_dim: int, img_size: int, embed_size: int) -> PromptEncoder:
    """SAM's prompt encoder for inputs of side ``img_size`` and an embedding grid of side ``embed_size``."""
    return PromptEncoder(
        embed_dim=prompt_dim,
        image_embedding_size=(embed_size, embed_size),
        input_image_size=(img_size, img_size),
        mask_in_chans=16,
    )


def detect_variant(state_dict: dict[str, torch.Tensor]) -> str | None:
    """Name of the variant in :data:`ARCHS` whose encoder width and depth match ``state_dict``, or None."""
    weight = state_dict.get("image_encoder.patch_embed.proj.weight")
    if weight is None:
        return None
    depth = len({int(m.group(1)) for k in state_dict if (m := _BLOCK.match(k))})
    for name, arch in ARCHS.items():
        if arch.embed_dim == weight.shape[0] and arch.depth == depth:
            return name
    return None


def _resize_pos_embed(pos: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    x = pos.permute(0, 3, 1, 2).float()  # (1, C, H0, W0)
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)  # (1, C, H, W)
    return x.permute(0, 2, 3, 1).to(pos.dtype)  # (1, H, W, C)


def _resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    x = table.t().unsqueeze(0).float()  # (1, head_dim, L0)
    x = F.interpolate(x, size=length, mode="linear", align_corners=False)  # (1, head_dim, L)
    return x.squeeze(0).t().to(table.dtype)  # (L, head_dim)


def adapt_state_dict(
    state_dict: dict[str, torch.Tensor], target: dict[str, torch.Tensor], path: str | Path
) -> dict[str, torch.Tensor]:
    """Resize the size-dependent tensors of ``state_dict`` to the shapes in ``target``.

    Only ``image_encoder.pos_embed`` and the ``rel_pos_h``/``rel_pos_w`` tables may differ; any other
    shape mismatch raises :class:`CheckpointError` naming the key.
    """
    out = dict(state_dict)
    for key, value in state_dict.items():
        want = target.get(key)
        if want is None or want.shape == value.shape:
            continue
        if key == "image_encoder.pos_embed":
            out[key] = _resize_pos_embed(value, (want.shape[1], want.shape[2]))
        elif _REL_POS.match(key):
            out[key] = _resize_rel_pos(value, want.shape[0])
        else:
            raise CheckpointError(
                f"{path}: tensor {key} has shape {tuple(value.shape)}, the model expects {tuple(want.shape)}"
            )
        log.info("resized %s from %s to %s", key, tuple(value.shape), tuple(want.shape))
    return out


class SamViT(Backbone):
    """SAM ViT-B/L/H (official or MedSAM weights) and ``tiny``: any multiple of 16 px, SAM's mean/std."""

    name = "sam"
    variants = tuple(ARCHS)
    norm_types = (nn.LayerNorm, LayerNorm2d)

    def default_img_size(self, variant: str) -> int:
        return CHECKPOINT_IMG_SIZE

    def check_img_size(self, img_size: int) -> None:
        if img_size <= 0 or img_size % PATCH_SIZE:
            raise BackboneError(f"img_size={img_size}: SAM ViT takes a positive multiple of {PATCH_SIZE} px")

    def build(self, variant: str, img_size: int, num_classes: int) -> SamSegmenter:
        arch = ARCHS[variant]
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
        return SamSegmenter(
            image_encoder,
            sam_prompt_encoder(arch.prompt_dim, img_size, img_size // PATCH_SIZE),
            sam_decoder(arch.prompt_dim, arch.decoder_mlp_dim, arch.decoder_heads, arch.iou_hidden_dim),
            img_size=img_size,
            normalizer=MeanStdNormalize(SAM_PIXEL_MEAN, SAM_PIXEL_STD),
            backbone=self.name,
            num_classes=num_classes,
        )

    def groups(self) -> dict[str, GroupFn]:
        return {**super().groups(), "pos_embed": lambda model: ["image_encoder.pos_embed"]}

    def load(self, model: SamSegmenter, checkpoint: str | Path, variant: str) -> None:
        state_dict = self.read(checkpoint)
        found = detect_variant(state_dict)
        if found is None:
            raise CheckpointError(
                f"{checkpoint}: not a SAM checkpoint (no SAM ViT image encoder of a known size inside)"
            )
        if found != variant:
            raise CheckpointError(
                f"{checkpoint}: this is a {found} checkpoint, but variant {variant!r} was requested"
            )
        state_dict = adapt_state_dict(state_dict, model.state_dict(), checkpoint)
        self.load_exact(model, state_dict, checkpoint)
        log.info("loaded %s checkpoint %s", variant, checkpoint)
