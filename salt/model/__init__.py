"""SAM-family backbones with learned class prompts, checkpoint loading and trainable-parameter policies."""

from salt.model.backbones import BACKBONES, VARIANTS, Backbone, BackboneError, backbone, backbone_of
from salt.model.build import build_sam
from salt.model.checkpoint import CheckpointError
from salt.model.segmenter import SamSegmenter
from salt.model.trainable import PAPER_POLICY, group_parameter_names, parameter_summary, set_trainable

__all__ = [
    "BACKBONES",
    "PAPER_POLICY",
    "VARIANTS",
    "Backbone",
    "BackboneError",
    "CheckpointError",
    "SamSegmenter",
    "backbone",
    "backbone_of",
    "build_sam",
    "group_parameter_names",
    "parameter_summary",
    "set_trainable",
]
