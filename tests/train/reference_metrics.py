"""Dice and HD95 written out from their definitions with numpy and scipy, and the files to apply them to."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from tests.train.conftest import run_script


def _boundary(mask: np.ndarray) -> np.ndarray:
    # Pixels removed by one 4-connected erosion (pixels outside the image count as background).
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1))


def _directed_p95(source: np.ndarray, target: np.ndarray) -> float:
    distance_to_target = ndimage.distance_transform_edt(~_boundary(target))  # (H, W)
    return float(np.percentile(distance_to_target[_boundary(source)], 95))


def reference_metrics(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray) -> tuple[float, float]:
    """``(dice, hd95)`` of bool masks ``(H, W)`` inside ``fov``, with the README's empty-mask policy."""
    pred, gt = pred & fov, gt & fov
    if not pred.any() and not gt.any():
        return 1.0, 0.0
    if not pred.any() or not gt.any():
        return 0.0, math.hypot(*pred.shape)
    dice = 2.0 * float((pred & gt).sum()) / float(pred.sum() + gt.sum())
    return dice, max(_directed_p95(pred, gt), _directed_p95(gt, pred))


def predicted_masks(run: Path, images: list[Path], tmp_path: Path, *options: str) -> dict[str, np.ndarray]:
    """``predict.py`` on ``images`` (copied to one folder): stem -> written mask ``(H, W)`` bool."""
    src, out = tmp_path / "images", tmp_path / "masks"
    src.mkdir()
    for image in images:
        shutil.copy(image, src / image.name)
    proc = run_script(
        "predict.py",
        f"ckpt={run}",
        f"input={src}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
        *options,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {p.name[: -len("_mask.png")]: np.asarray(Image.open(p)) > 0 for p in out.glob("*_mask.png")}


def split_cases(data: Path, split: str = "test") -> list[tuple[str, Path, np.ndarray, np.ndarray]]:
    """``(stem, image, mask, fov)`` of every case of ``split`` in a canonical-layout data set with FOV masks."""
    with open(data / "data_split.csv", newline="") as f:
        names = [row["imgs"] for row in csv.DictReader(f) if row["split"] == split]
    cases = []
    for name in names:
        stem = Path(name).stem
        mask = np.asarray(Image.open(data / "masks" / f"{stem}_mask.png")) > 0
        fov = np.asarray(Image.open(data / "fov" / f"{stem}_fov.png")) > 0
        cases.append((stem, data / "images" / name, mask, fov))
    return cases
