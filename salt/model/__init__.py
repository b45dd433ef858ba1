"""SAM backbone with learned class prompts, checkpoint loading and trainable-parameter policies."""

from salt.model.build import VARIANTS, build_sam
from salt.model.checkpoint import CheckpointError, load_sam_checkpoint
from salt.model.segmenter import SamSegmenter
from salt.model.trainable import TRAINABLE_GROUPS, parameter_summary, set_trainable

__all__ = [
    "TRAINABLE_GROUPS",
    "VARIANTS",
    "CheckpointError",
    "SamSegmenter",
    "build_sam",
    "load_sam_checkpoint",
    "parameter_summary",
    "set_trainable",
]
