"""ARCADE (coronary X-ray angiography, 512 x 512 PNG) from its official release.

Release layout: ``arcade/{syntax,stenosis}/{train,val,test}/images/<n>.png`` with COCO annotations in
``arcade/<task>/<split>/annotations/<split>.json`` (polygons in ``segmentation``). ``--src`` is the ``arcade``
folder (the task is chosen with ``--task``) or a task folder itself. The binary mask is the union of all
polygons of an image (the paper's task); ``per_category`` writes class indices 1..K instead, in the order
of the JSON's categories sorted by id. Stems are ``<split>_<n>``, since every split numbers from 1.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from salt.data.layout import SPLITS, DatasetError
from salt.data.prepare.base import Converter, Item, write_release_splits
from salt.data.writer import DatasetWriter

log = logging.getLogger(__name__)

TASKS = ("syntax", "stenosis")
PAPER_TEST_SIZE = 300


def _task_root(src: Path, task: str) -> Path:
    if task not in TASKS:
        raise DatasetError(f"--task: unknown ARCADE task {task!r} (valid: {', '.join(TASKS)})")
    for candidate in (src, src / task, src / "arcade" / task):
        if any((candidate / split / "images").is_dir() for split in SPLITS):
            return candidate
    raise DatasetError(f"{src}: not an ARCADE release (expected {task}/train/images/*.png)")


def rasterise_polygons(
    annotations: list[dict], height: int, width: int, class_of: dict[int, int], where: str
) -> np.ndarray:
    """Fill COCO polygon annotations into a label image ``(H, W)`` uint8 (value = class index).

    Rasterised by ``pycocotools``, the COCO reference: a pixel is inside when its centre is, so a polygon's
    pixel count equals its area (a 200 x 4 px box covers 800 px; ``cv2.fillPoly`` would give 1,005). Later
    annotations paint over earlier ones where they overlap.
    """
    labels = np.zeros((height, width), dtype=np.uint8)
    for ann in annotations:
        segmentation = ann.get("segmentation")
        if not isinstance(segmentation, list):
            raise DatasetError(
                f"{where}: annotation {ann.get('id')} is not a polygon list (RLE is not supported)"
            )
        if any(len(polygon) % 2 for polygon in segmentation):
            raise DatasetError(
                f"{where}: annotation {ann.get('id')} has a polygon with an odd coordinate count"
            )
        polygons = [[float(v) for v in polygon] for polygon in segmentation if len(polygon) >= 6]
        if not polygons:  # fewer than 3 points enclose nothing
            continue
        filled = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(polygons, height, width)))  # (H, W)
        labels[filled > 0] = int(class_of[ann["category_id"]])
    return labels


def _read_split(folder: Path, split: str) -> tuple[dict, Path] | None:
    path = folder / "annotations" / f"{split}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()), path
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: cannot be read as JSON ({err})") from err


def convert_arcade(
    src: str | Path,
    dst: str | Path,
    task: str = "syntax",
    per_category: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetWriter:
    """Convert the ARCADE release at ``src`` into the canonical layout at ``dst`` (images copied).

    A split folder without its annotation file is skipped; without a test split the paper's test size is
    drawn from train, and without a val split one is drawn from train.

    Raises:
        DatasetError: not an ARCADE release, no annotated train split, an unreadable or inconsistent JSON,
            or a non-empty ``dst``.
    """
    root = _task_root(Path(src), task)
    writer = DatasetWriter(dst, overwrite=overwrite)
    samples: dict[str, tuple[Path, list[dict], dict[int, int], Path]] = {}  # stem -> what draws its mask
    members: dict[str, list[str] | None] = dict.fromkeys(SPLITS)
    for split in SPLITS:
        loaded = _read_split(root / split, split)
        if loaded is None:
            if (root / split).is_dir():
                log.warning("%s: no annotations/%s.json, split skipped", root / split, split)
            continue
        coco, json_path = loaded
        categories = sorted(coco.get("categories", []), key=lambda c: c["id"])
        class_of = {c["id"]: (i + 1 if per_category else 1) for i, c in enumerate(categories)}
        if per_category:
            writer.class_names = [str(c.get("name", c["id"])) for c in categories]
        by_image: dict[int, list[dict]] = {}
        for ann in coco.get("annotations", []):
            if ann.get("category_id") not in class_of:
                raise DatasetError(f"{json_path}: annotation {ann.get('id')} has an unknown category_id")
            by_image.setdefault(ann["image_id"], []).append(ann)
        members[split] = []
        for info in coco.get("images", []):
            image = root / split / "images" / info["file_name"]
            if not image.is_file():
                raise DatasetError(f"{json_path}: image {info['file_name']!r} is not in {image.parent}")
            stem = f"{split}_{Path(info['file_name']).stem}"
            samples[stem] = (image, by_image.get(info["id"], []), class_of, json_path)
            members[split].append(stem)
    if not members["train"]:
        raise DatasetError(f"{root / 'train'}: no annotated training images (annotations/train.json)")

    def item(stem: str) -> Item:
        image, annotations, class_of, json_path = samples[stem]
        with Image.open(image) as handle:
            width, height = handle.size
        labels = rasterise_polygons(annotations, height, width, class_of, str(json_path))
        return image, labels if per_category else labels > 0, None

    return write_release_splits(writer, members, PAPER_TEST_SIZE, val_fraction, seed, item)


class ArcadeConverter(Converter):
    """``python -m salt.data.prepare arcade [--task syntax|stenosis] [--per-category]``."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--task", choices=TASKS, default="syntax", help="ARCADE task folder (syntax)")
        parser.add_argument("--per-category", action="store_true", help="class indices instead of union")

    def convert(
        self, args: argparse.Namespace, src: Path, dst: Path, val_fraction: float, seed: int, overwrite: bool
    ) -> DatasetWriter:
        return convert_arcade(
            src, dst, args.task, args.per_category, val_fraction=val_fraction, seed=seed, overwrite=overwrite
        )
