"""Writing a data set in the canonical layout, atomically, and the split rules shared by all writers.

Split rule: a release's own splits are kept. A missing test split takes ``n_test`` images (or
``test_fraction`` of them) drawn with a fixed seed; a missing validation split takes
``max(1, round(val_fraction * n_train))`` training images (none when fewer than 2), drawn with the same
seed. Draws are over the sorted stems, so they depend only on the names and the seed.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from salt.data.layout import (
    FOV_DIR,
    FOV_SUFFIX,
    IMAGES_DIR,
    MASK_SUFFIX,
    MASKS_DIR,
    SPLITS,
    DatasetError,
    file_suffix,
    write_split_csv,
)

log = logging.getLogger(__name__)


def _draw(stems: list[str], count: int, seed: int) -> tuple[list[str], list[str]]:
    """Split ``stems`` into (kept, drawn) with ``count`` drawn by a seeded permutation of the sorted names."""
    ordered = sorted(stems)
    picked = set(np.random.default_rng(seed).permutation(len(ordered))[:count].tolist())
    kept = [s for i, s in enumerate(ordered) if i not in picked]
    drawn = [s for i, s in enumerate(ordered) if i in picked]
    return kept, drawn


def assign_splits(
    train: list[str],
    val: list[str] | None = None,
    test: list[str] | None = None,
    n_test: int | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Stems per split following the module's rule; ``val``/``test`` ``None`` = not defined by the release.

    Raises:
        DatasetError: too few images for the requested test size.
    """
    if test is None:
        count = n_test if n_test is not None else round(test_fraction * len(train))
        if not 0 <= count < len(train):
            raise DatasetError(f"cannot take {count} test images out of {len(train)}")
        train, test = _draw(train, count, seed)
    if val is None:
        count = max(1, round(val_fraction * len(train))) if len(train) >= 2 and val_fraction > 0 else 0
        train, val = _draw(train, count, seed)
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def _save_png(array: np.ndarray, path: Path) -> None:
    # Light compression: several times faster to write than the default level, files barely larger.
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def _label_array(labels: np.ndarray) -> np.ndarray:
    """Labels ``(H, W)`` as a PNG-writable array: bool -> 0/255, integers kept (8 or 16 bit)."""
    if labels.dtype == np.bool_:
        return labels.astype(np.uint8) * 255
    if labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max or not np.all(labels == np.rint(labels)):
        raise DatasetError(
            f"mask values must be integers in 0..65535, got range [{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.uint8 if labels.max() <= 255 else np.uint16)


class DatasetWriter:
    """Build a data set in a hidden sibling folder of ``dst``; move it into place only when complete.

    Use as a context manager: an exception removes the partial folder and leaves ``dst`` untouched.

    Raises:
        DatasetError: ``dst`` is not empty and ``overwrite`` is false, or a stem is added twice.
    """

    def __init__(self, dst: str | Path, overwrite: bool = False) -> None:
        self.dst = Path(dst)
        if self.dst.exists() and any(self.dst.iterdir()) and not overwrite:
            raise DatasetError(f"{self.dst}: destination is not empty (pass --overwrite to replace it)")
        self.overwrite = overwrite
        self.tmp = self.dst.parent / f".{self.dst.name}.tmp-{uuid.uuid4().hex[:8]}"
        self.rows: list[tuple[str, str]] = []
        self.stems: set[str] = set()
        self.counts = {"masks": 0, "fov": 0}
        self.class_names: list[str] | None = None  # set by converters that write class indices 1..K

    def __enter__(self) -> DatasetWriter:
        for name in (IMAGES_DIR, MASKS_DIR):
            (self.tmp / name).mkdir(parents=True)
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if error is None:
            self._commit()
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def add(
        self,
        stem: str,
        split: str,
        image: Path | np.ndarray,
        mask: Path | np.ndarray,
        fov: np.ndarray | None = None,
    ) -> None:
        """Add one sample.

        Args:
            stem: file stem in the new data set.
            split: ``train``, ``val`` or ``test``.
            image: a readable file (copied as is) or an ``(H, W[, 3])`` uint8 array (written as PNG).
            mask: labels ``(H, W)`` (bool -> 0/255, integers kept) written as PNG, or a file copied as is
                (volumes).
            fov: optional ``(H, W)`` bool field of view, written as ``fov/<stem>_fov.png``.
        """
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r} for {stem}")
        if stem in self.stems:
            raise DatasetError(f"two samples are named {stem!r}")
        self.stems.add(stem)
        if isinstance(image, Path):
            name = stem + file_suffix(image)
            shutil.copyfile(image, self.tmp / IMAGES_DIR / name)
        else:
            name = stem + ".png"
            _save_png(image, self.tmp / IMAGES_DIR / name)
        if isinstance(mask, Path):
            shutil.copyfile(mask, self.tmp / MASKS_DIR / (stem + MASK_SUFFIX + file_suffix(mask)))
        else:
            _save_png(_label_array(mask), self.tmp / MASKS_DIR / f"{stem}{MASK_SUFFIX}.png")
        self.counts["masks"] += 1
        if fov is not None:
            (self.tmp / FOV_DIR).mkdir(exist_ok=True)
            _save_png(fov.astype(np.uint8) * 255, self.tmp / FOV_DIR / f"{stem}{FOV_SUFFIX}.png")
            self.counts["fov"] += 1
        self.rows.append((name, split))

    def summary(self) -> str:
        """One line: destination, images per split, files written (and class values when set)."""
        per_split = ", ".join(f"{s} {sum(1 for _, x in self.rows if x == s)}" for s in SPLITS)
        line = (
            f"wrote {self.dst}: {per_split} ({len(self.rows)} images, {self.counts['masks']} masks, "
            f"{self.counts['fov']} FOV masks)"
        )
        if self.class_names:
            line += "; mask values: " + ", ".join(f"{i}={n}" for i, n in enumerate(self.class_names, start=1))
        return line

    def _commit(self) -> None:
        self.rows.sort()
        write_split_csv(self.tmp, self.rows)
        old = None
        if self.dst.exists() and any(self.dst.iterdir()) and not self.overwrite:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise DatasetError(f"{self.dst}: filled by another process while this one was writing")
        if self.dst.exists():
            old = self.dst.parent / f".{self.dst.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.dst, old)
        os.replace(self.tmp, self.dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log.info(self.summary())
