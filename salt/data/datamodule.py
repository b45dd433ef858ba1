"""LightningDataModule over the canonical vessel data-set layout."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from salt.checks import training_splits
from salt.data import DatasetError, VesselDataset, ensure_synthetic
from salt.data.layout import SPLIT_CSV, read_split_csv
from salt.data.patches import PatchSettings, PatchTrainDataset, WholeImageDataset
from salt.data.prompts import PromptSettings
from salt.data.shapes import ensure_shapes

log = logging.getLogger(__name__)


class VesselDataModule(L.LightningDataModule):
    """Train/val/test loaders of one data set (``configs/dataset/<name>.yaml``).

    The synthetic data sets (vessels, shapes) are generated on first use when its folder is absent; any other missing folder is
    an error that says how to prepare it. The data set checks run when the splits are built, so a broken
    folder stops the run before training with the problems listed.

    Args:
        dataset: the ``dataset`` config (name, root, img_size, resize, num_classes, label_map, augment, ...).
        batch_size, num_workers, pin_memory: DataLoader settings.
        test_split: the split :meth:`test_dataloader` serves (``test`` normally; ``val``/``train`` for eval.py).
        train_splits: the splits trained on: ``("train",)`` normally; ``("train", "val")`` for a final fit on
            every image not held out for testing, once the settings are chosen. With ``val`` among them nothing
            is left to validate on: :attr:`validates` is false and the training job turns validation off.
        prompt: the ``prompt`` config (``configs/prompt``); box and point modes add their prompts to every item.
        patch: the ``patch`` config (``configs/patch``) for patch mode: training windows drawn from the images
            at ``patch.scale`` (:class:`~salt.data.patches.PatchTrainDataset`), whole images one per batch at
            validation and test (:class:`~salt.data.patches.WholeImageDataset`); None: resized mode.
    """

    def __init__(
        self,
        dataset: dict,
        batch_size: int = 2,
        num_workers: int = 0,
        pin_memory: bool = True,
        test_split: str = "test",
        prompt: dict | None = None,
        patch: dict | None = None,
        train_splits: Sequence[str] = ("train",),
    ) -> None:
        super().__init__()
        self.train_splits = training_splits(train_splits)
        self.prompts = PromptSettings(**prompt) if prompt else None
        self.patch = PatchSettings.from_config(patch) if patch else None
        self.cfg = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.test_split = test_split
        self.datasets: dict[str, VesselDataset | PatchTrainDataset | WholeImageDataset] = {}

    @property
    def root(self) -> Path:
        return Path(self.cfg["root"])

    def prepare_data(self) -> None:
        synthetic = self.cfg.get("synthetic")
        if synthetic is not None and not self.root.exists():
            log.info("generating the synthetic data set in %s", self.root)
            ensure_synthetic(self.root, **synthetic)
        shapes = self.cfg.get("shapes")
        if shapes is not None and not self.root.exists():
            log.info("generating the shapes data set in %s", self.root)
            ensure_shapes(self.root, **shapes)
        if not self.root.exists():
            raise DatasetError(
                f"data folder {self.root} not found: convert the official release with "
                f"`python -m salt.data.prepare {self.cfg['name']} --src <release folder> --dst {self.root}` "
                "(see datasets/README.md) or set dataset.root"
            )

    @property
    def validates(self) -> bool:
        """Whether a validation split is held out (``val`` is not among :attr:`train_splits`)."""
        return "val" not in self.train_splits

    def _dataset(self, split: str, augment: bool) -> VesselDataset | PatchTrainDataset | WholeImageDataset:
        if split in self.datasets:
            return self.datasets[split]
        if self.patch is None:
            self.datasets[split] = self._split(split, augment)
        elif augment:
            size = int(self.cfg["img_size"])
            base = self._split(split, augment=False)
            self.datasets[split] = PatchTrainDataset(base, size, self.patch, self.cfg.get("augment"))
        else:
            self.datasets[split] = WholeImageDataset(self._split(split, augment=False), self.patch)
        return self.datasets[split]

    def _split(self, split: str, augment: bool) -> VesselDataset:
        return VesselDataset(
            self.root,
            self.train_splits if split == "train" else split,
            img_size=int(self.cfg["img_size"]),
            resize=self.cfg.get("resize", "longest_pad"),
            augment=self.cfg.get("augment") if augment else None,
            label_map=self.cfg.get("label_map"),
            num_classes=int(self.cfg["num_classes"]),
            cache=bool(self.cfg.get("cache", True)),
            prompts=self.prompts,
            **({"slice_axis": self.cfg["slice_axis"]} if "slice_axis" in self.cfg else {}),
        )

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self._dataset("train", augment=True)
            if self.validates:
                if not any(row.split == "val" for row in read_split_csv(self.root)):
                    raise DatasetError(
                        f"{self.root / SPLIT_CSV}: no rows with split 'val' to validate on "
                        "(data.train_splits=[train,val] trains without validation and tests the last epoch)"
                    )
                self._dataset("val", augment=False)
        if stage in (None, "test", "validate"):
            self._dataset(self.test_split, augment=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        # Whole images of a split may differ in size: in patch mode they go one per batch.
        whole = isinstance(self.datasets[split], WholeImageDataset)
        return DataLoader(
            self.datasets[split],
            batch_size=1 if whole else self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, shuffle=False)
