"""Tiny data sets written in the official release layouts (correct names, formats and sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

DRIVE_SIZE = (584, 565)  # (H, W) of every DRIVE image
ARCADE_SIZE = (512, 512)


def vessel_labels(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A few random thick lines as a bool ``(H, W)`` vessel mask."""
    rng = np.random.default_rng(seed)
    height, width = shape
    canvas = np.zeros(shape, dtype=np.uint8)
    for _ in range(4):
        p, q = rng.integers(0, [width, height], size=(2, 2))
        cv2.line(canvas, tuple(map(int, p)), tuple(map(int, q)), 1, thickness=int(rng.integers(3, 9)))
    return canvas.astype(bool)


def fundus_like(labels: np.ndarray, seed: int) -> np.ndarray:
    """RGB uint8 image with dark vessels where ``labels`` is set."""
    rng = np.random.default_rng(seed)
    base = np.array([200, 90, 40], dtype=np.float32) * rng.uniform(0.8, 1.0)
    image = np.broadcast_to(base, (*labels.shape, 3)).copy()
    image[labels] *= 0.5
    return np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)


def circle(shape: tuple[int, int], fraction: float = 0.45) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    radius = fraction * min(shape)
    return (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 <= radius**2


def write_drive(src: Path, n_train: int = 3, n_test: int = 2, test_manual: bool = True) -> Path:
    """DRIVE release layout with ``NN_training.tif`` / ``NN_manual1.gif`` / ``NN_training_mask.gif``."""
    parts = [("training", "training", range(21, 21 + n_train)), ("test", "test", range(1, 1 + n_test))]
    for folder, tag, numbers in parts:
        for sub in ("images", "1st_manual", "mask"):
            if sub != "1st_manual" or folder == "training" or test_manual:
                (src / folder / sub).mkdir(parents=True, exist_ok=True)
        for number in numbers:
            labels = vessel_labels(DRIVE_SIZE, number) & circle(DRIVE_SIZE)
            Image.fromarray(fundus_like(labels, number)).save(
                src / folder / "images" / f"{number:02d}_{tag}.tif"
            )
            fov = Image.fromarray(circle(DRIVE_SIZE).astype(np.uint8) * 255)
            fov.save(src / folder / "mask" / f"{number:02d}_{tag}_mask.gif")
            if folder == "training" or test_manual:
                manual = Image.fromarray(labels.astype(np.uint8) * 255)
                manual.save(src / folder / "1st_manual" / f"{number:02d}_manual1.gif")
    return src


def write_arcade(
    src: Path, per_split: dict[str, int] | None = None, size: tuple[int, int] = ARCADE_SIZE
) -> Path:
    """ARCADE release layout ``arcade/syntax/<split>/images/<n>.png`` + ``annotations/<split>.json``.

    ``size`` is the images' ``(H, W)``: the release's are square, so a converter that confuses height and
    width is seen only with another size.
    """
    per_split = per_split or {"train": 3, "val": 2, "test": 2}
    height, width = size
    categories = [
        {"id": i + 1, "name": name} for i, name in enumerate(["1", "2", "3", "4", "5", "6", "7", "8"])
    ]
    for split, count in per_split.items():
        folder = src / "arcade" / "syntax" / split
        (folder / "images").mkdir(parents=True)
        (folder / "annotations").mkdir()
        images, annotations = [], []
        for n in range(1, count + 1):
            grey = np.full(size, 150, np.uint8) + np.uint8(n)
            Image.fromarray(grey).save(folder / "images" / f"{n}.png")
            images.append({"id": n, "file_name": f"{n}.png", "height": height, "width": width})
            for k, category in enumerate((1, 3)):  # two vessel segments per image, as polygons
                x0, y0 = 60 + 150 * k + n, 80 + 10 * n
                poly = [x0, y0, x0 + 120, y0 + 20, x0 + 120, y0 + 40, x0, y0 + 20]
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": n,
                        "category_id": category,
                        "segmentation": [poly],
                    }
                )
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (folder / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    return src / "arcade"


DIAS_SIZE = (800, 800)


def write_dias(
    src: Path,
    sequences: dict[str, dict[int, int]] | None = None,
    size: tuple[int, int] = DIAS_SIZE,
) -> Path:
    """DIAS release layout ``DIAS/<split>/images/image_s<N>_i<K>.png`` + ``labels/label_s<N>.png``.

    ``sequences`` maps a release split folder to ``{sequence number: frame count}``. Frames are 8-bit grey with
    dark contrast that fills a different part of the sequence's vessels in each frame (the later frames reach
    further), and the label (0/255) covers every vessel of the sequence, as in the release.
    """
    sequences = sequences or {"training": {0: 5, 1: 4, 10: 7}, "validation": {30: 6}}
    root = src / "DIAS"
    for folder, counts in sequences.items():
        (root / folder / "images").mkdir(parents=True, exist_ok=True)
        (root / folder / "labels").mkdir(parents=True, exist_ok=True)
        for number, count in counts.items():
            labels = vessel_labels(size, number)
            Image.fromarray(labels.astype(np.uint8) * 255).save(
                root / folder / "labels" / f"label_s{number}.png"
            )
            rng = np.random.default_rng(number)
            reach = np.linspace(0.3, 1.0, count) * size[1]  # how far right the contrast has flowed
            columns = np.arange(size[1])[None, :]
            for k in range(count):
                frame = np.clip(rng.normal(175, 4, size), 0, 255)
                frame[labels & (columns < reach[k])] -= 40 + 3 * k
                Image.fromarray(frame.astype(np.uint8)).save(
                    root / folder / "images" / f"image_s{number}_i{k}.png"
                )
    return root
