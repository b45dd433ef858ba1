"""``VesselDataset``: one split of a canonical-layout data set as model-ready tensors."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from salt.data.check import CheckReport, check_dataset
from salt.data.layout import (
    FOV_DIR,
    IMAGES_DIR,
    MASKS_DIR,
    SPLIT_CSV,
    SPLITS,
    DatasetError,
    FileError,
    FolderIndex,
    file_stem,
    find_fov,
    find_mask,
    is_volume,
    read_split_csv,
    resolve_image,
)
from salt.data.prompts import PromptSettings, ground_truth_prompts
from salt.data.reading import labels_to_masks, normalise_label_map, read_image, read_labels, volume_shape
from salt.data.transforms import (
    augment,
    build_augmentation,
    content_shape,
    fit_to_square,
    square_pad,
    to_original,
)

log = logging.getLogger(__name__)

# Reports of folders already checked in this process, keyed by the folder's file listing, so that the
# train/val/test datasets of one run decode every file for the check once, not three times.
_CHECKED: dict[tuple, CheckReport] = {}
_SHOWN_ERRORS = 5


@dataclass(frozen=True)
class _Item:
    name: str
    image: Path
    mask: Path
    fov: Path | None
    plane: int  # slice index inside a volume; 0 for a planar file


@dataclass(frozen=True)
class _Decoded:
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (C, H, W) bool
    fov: np.ndarray | None  # (H, W) bool, None without a FOV file


def _fingerprint(root: Path) -> tuple:
    entries = []
    for folder in (root / IMAGES_DIR, root / MASKS_DIR, root / FOV_DIR):
        if folder.is_dir():
            with os.scandir(folder) as it:
                entries += [(e.path, e.stat().st_size, e.stat().st_mtime_ns) for e in it]
    csv_path = root / SPLIT_CSV
    if csv_path.is_file():
        entries.append((str(csv_path), csv_path.stat().st_size, csv_path.stat().st_mtime_ns))
    return tuple(sorted(entries))


def _checked(
    root: Path, label_map: Mapping[float, int] | None, num_classes: int, slice_axis: int
) -> CheckReport:
    labels = tuple(sorted((label_map or {}).items()))
    key = (str(root.resolve()), labels, num_classes, slice_axis, _fingerprint(root))
    if key not in _CHECKED:
        _CHECKED[key] = check_dataset(root, label_map, num_classes, slice_axis)
    return _CHECKED[key]


class VesselDataset(Dataset):
    """One split (``train``/``val``/``test``) of a data set in the canonical layout, or several read as one.

    Each item is a dict: ``image`` float32 ``(3, S, S)`` RGB in [0, 255]; ``mask`` float32 ``(C, S, S)`` of
    0/1, one channel per foreground class; ``fov`` bool ``(1, S, S)`` (all True when the data set has no FOV
    masks, False in the padding otherwise); ``name`` the image stem (``<stem>_z<k>`` for volume slices);
    ``index``; ``orig_size`` int64 ``(2,)`` = (H, W); ``pad`` int64 ``(4,)`` = (top, bottom, left, right).
    With box or point ``prompts`` (``salt.data.prompts``) the item also holds ``box (C, 4)`` and
    ``box_valid (C,)``, or ``points (C, 2k, 2)`` and ``point_labels (C, 2k)``, drawn from the (augmented) mask.

    ``split`` may name several splits (``("train", "val")``: a final fit on every image not held out for
    testing); their items follow the order of ``data_split.csv``. Augmentation (``augment``,
    ``configs/augment/<option>.yaml``) applies only when ``train`` is among them.
    Decoded files are cached per index when ``cache`` is true; with DataLoader workers each worker fills
    its own copy (use ``persistent_workers=True`` so it survives epochs).

    Raises:
        DatasetError: the folder fails ``check_dataset`` (unless ``check=False``), the split is empty, or a
            setting is invalid.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | Sequence[str],
        img_size: int,
        resize: str = "longest_pad",
        augment: Mapping[str, Any] | None = None,
        label_map: Mapping[int, int] | None = None,
        num_classes: int = 1,
        cache: bool = True,
        slice_axis: int = 2,
        check: bool = True,
        prompts: PromptSettings | None = None,
    ) -> None:
        self.root = Path(root)
        splits = (split,) if isinstance(split, str) else tuple(split)
        if not splits:
            raise DatasetError(f"split: no split named (valid: {', '.join(SPLITS)})")
        for name in splits:
            if name not in SPLITS:
                raise DatasetError(f"split: unknown split {name!r} (valid: {', '.join(SPLITS)})")
        if img_size < 1:
            raise DatasetError(f"img_size must be positive, got {img_size}")
        content_shape(1, 1, img_size, resize)  # validates the resize mode
        if not -3 <= slice_axis <= 2:
            raise DatasetError(f"slice_axis must be an axis of a 3D volume (-3..2), got {slice_axis}")
        self.splits, self.split = splits, "+".join(splits)
        self.training = "train" in splits
        self.img_size, self.resize = img_size, resize
        self.num_classes, self.slice_axis = num_classes, slice_axis
        self.label_map = normalise_label_map(label_map, num_classes)
        self._volume_items: dict[Path, list[int]] = {}
        if check:
            report = _checked(self.root, self.label_map, num_classes, slice_axis)
            if not report.ok:
                shown = "; ".join(report.errors[:_SHOWN_ERRORS])
                hidden = len(report.errors) - _SHOWN_ERRORS
                more = f"; and {hidden} more" if hidden > 0 else ""
                raise DatasetError(
                    f"data set {self.root} failed its check ({len(report.errors)} errors): {shown}{more} "
                    f"(full report: python -m salt.data.check {self.root})"
                )
        self.items = self._list_items()
        if not self.items:
            named = " or ".join(repr(name) for name in splits)
            raise DatasetError(f"{self.root / SPLIT_CSV}: no rows with split {named}")
        self.augment = build_augmentation(augment) if self.training else None
        self.prompts = prompts if prompts is not None and prompts.kind is not None else None
        self.cache = cache
        self._cache: dict[int, _Decoded] = {}
        log.info("%s split %s: %d items from %s", self.root.name, self.split, len(self.items), self.root)

    def _list_items(self) -> list[_Item]:
        images, masks, fov = (FolderIndex(self.root / name) for name in (IMAGES_DIR, MASKS_DIR, FOV_DIR))
        items = []
        for row in read_split_csv(self.root):
            if row.split not in self.splits:
                continue
            image = resolve_image(images, row.imgs)
            if image is None:
                raise DatasetError(f"{self.root / SPLIT_CSV}: line {row.line}: {row.imgs!r} names no image")
            stem = file_stem(image)
            found = find_mask(masks, stem)
            if not found:
                raise FileError(image, "no mask")
            fovs = find_fov(fov, stem)
            fov_path = fovs[0] if fovs else None
            if is_volume(image):
                shape = volume_shape(image)
                depth = shape[self.slice_axis] if len(shape) == 3 else 1
                self._volume_items[image] = list(range(len(items), len(items) + depth))
                items += [_Item(f"{stem}_z{k:03d}", image, found[0], fov_path, k) for k in range(depth)]
            else:
                items.append(_Item(stem, image, found[0], fov_path, 0))
        return items

    def __len__(self) -> int:
        return len(self.items)

    def _decoded(self, index: int) -> _Decoded:
        if index in self._cache:
            return self._cache[index]
        item = self.items[index]
        images = read_image(item.image, self.slice_axis)
        labels = read_labels(item.mask, self.slice_axis)
        fovs = read_labels(item.fov, self.slice_axis) if item.fov is not None else None
        # A volume is decoded whole, so every slice of it is cached from this one read.
        siblings = self._volume_items.get(item.image, [index]) if self.cache else [index]
        for i in siblings:
            plane = self.items[i].plane
            image, label = images[plane], labels[plane]
            if label.shape != image.shape[:2]:
                raise FileError(item.mask, f"size {label.shape} differs from its image {image.shape[:2]}")
            decoded = _Decoded(
                image=image,
                mask=labels_to_masks(label, self.label_map, self.num_classes),
                fov=None if fovs is None else fovs[plane] > 0,
            )
            if self.cache:
                self._cache[i] = decoded
            if i == index:
                result = decoded
        return result

    def __getitem__(self, index: int) -> dict[str, Any]:
        decoded = self._decoded(index)
        channels = [decoded.mask.transpose(1, 2, 0)]  # (H, W, C)
        if decoded.fov is not None:
            channels.append(decoded.fov[..., None])  # (H, W, 1)
        labels = np.concatenate(channels, axis=-1).astype(np.uint8)  # (H, W, C[+1])
        image, labels, pad = fit_to_square(decoded.image, labels, self.img_size, self.resize)
        if self.augment is not None:
            seed = int(torch.randint(0, 2**62, ()).item())
            image, labels = augment(self.augment, image, labels, seed)
        labels = torch.from_numpy(np.ascontiguousarray(labels)).permute(2, 0, 1)  # (C[+1], S, S)
        c, size = self.num_classes, self.img_size
        fov = labels[c:] > 0 if decoded.fov is not None else torch.ones(1, size, size, dtype=torch.bool)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float(),  # (3, S, S)
            "mask": labels[:c].float(),
            "fov": fov,
            "name": self.items[index].name,
            "index": index,
            "orig_size": torch.tensor(decoded.image.shape[:2], dtype=torch.long),
            "pad": torch.from_numpy(pad),
        }
        if self.prompts is not None:
            item.update(self._prompts(item, pad))
        return item

    def _prompts(self, item: dict[str, Any], pad: np.ndarray) -> dict[str, torch.Tensor]:
        # Training draws anew each time (from torch's generator, which DataLoader workers seed apart);
        # evaluation draws from (seed, index), the same prompts in every run.
        train = self.training
        seed = int(torch.randint(0, 2**62, ()).item()) if train else [self.prompts.seed, item["index"]]
        valid = item["fov"][0].clone()  # (S, S): never a point in the padding
        size = self.img_size
        valid[size - int(pad[1]) :, :] = False
        valid[:, size - int(pad[3]) :] = False
        return ground_truth_prompts(item["mask"], valid, self.prompts, np.random.default_rng(seed), train)

    def original(self, index: int) -> dict[str, Any]:
        """Item ``index`` at its original resolution as numpy arrays.

        Returns: ``image`` (H, W, 3) uint8, ``mask`` (C, H, W) bool, ``fov`` (H, W) bool (all True without
        a FOV file), ``name`` str.
        """
        decoded = self._decoded(index)
        fov = decoded.fov if decoded.fov is not None else np.ones(decoded.image.shape[:2], dtype=bool)
        return {"image": decoded.image, "mask": decoded.mask, "fov": fov, "name": self.items[index].name}

    def to_original(self, pred: torch.Tensor, index: int) -> torch.Tensor:
        """Map a prediction ``(C, S, S)`` for item ``index`` back to its original pixels ``(C, H, W)``."""
        orig_size = self._decoded(index).image.shape[:2]
        return to_original(pred, orig_size, square_pad(*orig_size, self.img_size, self.resize))
