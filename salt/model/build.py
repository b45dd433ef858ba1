"""``build_sam``: a segmenter of any registered SAM-family variant, randomly initialised or with its weights."""

from __future__ import annotations

from pathlib import Path

from salt.model.backbones import BackboneError, backbone_of
from salt.model.segmenter import SamSegmenter


def build_sam(
    variant: str,
    checkpoint: str | Path | None = None,
    img_size: int | None = None,
    num_classes: int = 1,
) -> SamSegmenter:
    """Build a SAM-family segmenter with ``num_classes`` learned class prompts.

    Args:
        variant: a key of ``salt.model.backbones.VARIANTS``: ``vit_b``, ``vit_l``, ``vit_h`` (official SAM
            architectures), ``tiny`` (test size) or ``medsam_lite`` (LiteMedSAM).
        checkpoint: None for random weights; a weights file (official SAM/MedSAM state dict, LiteMedSAM
            file); or ``"bundled"`` for the weights a package ships (``medsam_lite``). SAM position tables
            are resized when ``img_size`` differs from 1024.
        img_size: square input side in pixels; None for the variant's native size (SAM 1024, LiteMedSAM 256).
        num_classes: number of foreground classes, one prompt token and one output channel each.

    Returns:
        A :class:`SamSegmenter` mapping images ``(B, 3, img_size, img_size)`` in [0, 255] to logits
        ``(B, num_classes, img_size, img_size)``.

    Raises:
        BackboneError: unknown variant, an input size the encoder cannot take, ``num_classes < 1``.
        CheckpointError: a weights file that is missing, corrupted or of another family or variant.
    """
    family = backbone_of(variant)
    size = family.default_img_size(variant) if img_size is None else int(img_size)
    family.check_img_size(size)
    if num_classes < 1:
        raise BackboneError(f"num_classes must be >= 1, got {num_classes}")
    model = family.build(variant, size, num_classes)
    if checkpoint is not None:
        family.load(model, checkpoint, variant)
    return model
