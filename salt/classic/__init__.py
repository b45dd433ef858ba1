"""Traditional segmentation baselines of the paper's Table 1, trained from scratch at full size."""

from salt.classic.registry import CLASSIC_MODELS, build_classic
from salt.classic.segmenter import ClassicSegmenter
from salt.classic.segnet import SegNet

__all__ = ["CLASSIC_MODELS", "ClassicSegmenter", "SegNet", "build_classic"]
