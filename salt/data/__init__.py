"""Vessel data sets: canonical layout, reading, checks, converters, a synthetic default and transforms.

Names are imported on first use (PEP 562): MONAI and albumentations take seconds to import, and the
synthetic-data command needs neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from salt.data.check import CheckReport, check_dataset
    from salt.data.dataset import VesselDataset
    from salt.data.layout import DatasetError
    from salt.data.synthetic import ensure_synthetic
    from salt.data.transforms import augment_settings, build_augmentation, to_original

_EXPORTS = {
    "CheckReport": "salt.data.check",
    "DatasetError": "salt.data.layout",
    "VesselDataset": "salt.data.dataset",
    "augment_settings": "salt.data.transforms",
    "build_augmentation": "salt.data.transforms",
    "check_dataset": "salt.data.check",
    "ensure_synthetic": "salt.data.synthetic",
    "to_original": "salt.data.transforms",
}

__all__ = [
    "CheckReport",
    "DatasetError",
    "VesselDataset",
    "augment_settings",
    "build_augmentation",
    "check_dataset",
    "ensure_synthetic",
    "to_original",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'salt.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
