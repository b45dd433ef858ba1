"""Backbone families as plug-ins: each module holds one :class:`Backbone`, registered here by name.

``BACKBONES`` maps a family name to its backbone; ``VARIANTS`` maps every buildable variant name
(``vit_b``, ``tiny``, ``medsam_lite``, ``hiera_t`` ...) to its family. Adding a family means adding its module and one
entry below.
"""

from salt.model.backbones.base import Backbone, BackboneError
from salt.model.backbones.medsam_lite import MedSamLite
from salt.model.backbones.sam import SamViT
from salt.model.backbones.sam2 import Sam2

BACKBONES: dict[str, Backbone] = {family.name: family for family in (SamViT(), MedSamLite(), Sam2())}
VARIANTS: dict[str, str] = {variant: b.name for b in BACKBONES.values() for variant in b.variants}


def backbone_of(variant: str) -> Backbone:
    """The family that builds ``variant``.

    Raises:
        BackboneError: unknown variant (the message lists the valid ones).
    """
    if variant not in VARIANTS:
        raise BackboneError(f"unknown SAM variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    return BACKBONES[VARIANTS[variant]]


def backbone(name: str) -> Backbone:
    """The family registered as ``name``."""
    if name not in BACKBONES:
        raise BackboneError(f"unknown backbone family {name!r}; valid: {', '.join(BACKBONES)}")
    return BACKBONES[name]


__all__ = ["BACKBONES", "VARIANTS", "Backbone", "BackboneError", "backbone", "backbone_of"]
