"""Segmentation metrics (Dice, HD95) with an explicit empty-mask policy, and a per-case accumulator."""

from salt.metrics.accumulator import MetricAccumulator
from salt.metrics.segmentation import (
    CASES,
    dice_score,
    empty_case,
    image_diagonal,
    multiclass_metrics,
    segmentation_metrics,
)

__all__ = [
    "CASES",
    "MetricAccumulator",
    "dice_score",
    "empty_case",
    "image_diagonal",
    "multiclass_metrics",
    "segmentation_metrics",
]
