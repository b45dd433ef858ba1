"""The rows evaluation and validation record equal Dice and HD95 computed independently (numpy, MONAI, medpy)."""

from __future__ import annotations

import medpy.metric.binary as medpy_binary
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.metrics import compute_hausdorff_distance

from salt.metrics import MetricAccumulator
from salt.train.evaluation import evaluate_batch
from tests.train.reference_metrics import reference_metrics

S, SCALE, THRESHOLD = 24, 2, 0.5


def _expected(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray) -> tuple[float, float]:
    """Dice and HD95 of one class by the policy, from numpy/scipy, checked against MONAI and medpy."""
    dice, hd95 = reference_metrics(pred, gt, fov)
    pred, gt = pred & fov, gt & fov
    if pred.any() and gt.any():
        monai = float(compute_hausdorff_distance(pred[None, None], gt[None, None], percentile=95))
        directed = [
            np.percentile(getattr(medpy_binary, "__surface_distances")(a, b, (1.0, 1.0), 1), 95)
            for a, b in ((pred, gt), (gt, pred))
        ]
        assert hd95 == pytest.approx(monai, abs=1e-5) and hd95 == pytest.approx(max(directed), abs=1e-5)
    return dice, hd95


class _Upsampled:
    """A data set stub whose original images are the model's inputs at twice the side, with their own masks."""

    def __init__(self, rng: np.random.Generator, n: int, classes: int) -> None:
        side = S * SCALE
        self.masks = rng.random((n, classes, side, side)) < 0.3  # (N, C, H, W)
        self.masks[0, 1] = False  # one class absent from one image: an empty-mask case
        rows, cols = np.mgrid[:side, :side]
        self.fov = (rows - side / 2) ** 2 + (cols - side / 2) ** 2 <= (0.45 * side) ** 2  # (H, W)

    def original(self, index: int) -> dict:
        side = S * SCALE
        return {"image": np.zeros((side, side, 3), np.uint8), "mask": self.masks[index], "fov": self.fov}

    def to_original(self, probs: torch.Tensor, index: int) -> torch.Tensor:
        return F.interpolate(probs[None], scale_factor=SCALE, mode="bilinear", align_corners=False)[0]


def test_evaluate_batch_rows_equal_an_independent_computation() -> None:
    rng = np.random.default_rng(0)
    n, classes = 3, 2
    logits = torch.from_numpy(rng.normal(0, 2, (n, classes, S, S))).float()  # (B, C, S, S)
    masks = torch.from_numpy(rng.random((n, classes, S, S)) < 0.3).float()
    masks[1, 0] = 0  # an absent class at the model's resolution
    fov = torch.ones(n, 1, S, S)
    fov[:, :, :4] = 0  # the first rows are outside the field of view
    batch = {"mask": masks, "fov": fov, "name": ["a", "b", "c"], "index": torch.arange(n)}
    dataset = _Upsampled(rng, n, classes)

    accumulator = MetricAccumulator(key=("name", "class", "resolution"))
    evaluate_batch(logits, batch, THRESHOLD, accumulator, dataset=dataset, class_names=["artery", "vein"])

    rows = {(r["name"], r["class"], r["resolution"]): r for r in accumulator.rows}
    assert len(rows) == n * classes * 2
    probs = torch.sigmoid(logits)
    for i, name in enumerate(batch["name"]):
        up = dataset.to_original(probs[i], i).numpy() > THRESHOLD  # (C, H, W)
        for c in range(classes):
            cases = {
                "model": (probs[i, c].numpy() > THRESHOLD, masks[i, c].numpy() > 0, fov[i, 0].numpy() > 0),
                "original": (up[c], dataset.masks[i, c], dataset.fov),
            }
            for resolution, (pred, gt, region) in cases.items():
                row = rows[(name, c, resolution)]
                dice, hd95 = _expected(pred, gt, region)
                assert row["dice"] == pytest.approx(dice, abs=1e-6), (name, c, resolution)
                assert row["hd95"] == pytest.approx(hd95, abs=1e-5), (name, c, resolution)
                assert row["class_name"] == ["artery", "vein"][c] and row["index"] == i
    # the absent classes fall under the empty-mask rule, counted as such
    assert rows[("b", 0, "model")]["case"] == rows[("a", 1, "original")]["case"] == "gt_empty"
