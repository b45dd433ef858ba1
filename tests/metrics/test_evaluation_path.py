"""The rows evaluation and validation record equal Dice and HD95 computed independently (numpy, MONAI, medpy)."""

from __future__ import annotations

import medpy.metric.binary as medpy_binary
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.metrics import compute_hausdorff_distance
from scipy import ndimage

from salt.inference.evaluation import evaluate_batch
from salt.metrics import MetricAccumulator
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


def _hd95_with_spacing(
    pred: np.ndarray, gt: np.ndarray, fov: np.ndarray, spacing: tuple[float, float]
) -> float:
    """HD95 in the units of ``spacing`` from scipy's Euclidean distance transform with anisotropic sampling."""
    pred, gt = pred & fov, gt & fov
    if not pred.any() and not gt.any():
        return 0.0
    if not pred.any() or not gt.any():
        return float(np.hypot(pred.shape[0] * spacing[0], pred.shape[1] * spacing[1]))
    cross = ndimage.generate_binary_structure(2, 1)
    edges = [m & ~ndimage.binary_erosion(m, structure=cross) for m in (pred, gt)]
    directed = [
        np.percentile(ndimage.distance_transform_edt(~target, sampling=spacing)[source], 95)
        for source, target in (edges, edges[::-1])
    ]
    return float(max(directed))


def test_spacing_gives_hd95_in_mm_at_the_original_resolution_only() -> None:
    # dataset.spacing is the size of an original pixel: the original-resolution rows are in mm, the model's
    # (the paper's protocol) stay in pixels; each row says which.
    rng = np.random.default_rng(1)
    n, classes, spacing = 3, 2, (0.5, 0.25)
    logits = torch.from_numpy(rng.normal(0, 2, (n, classes, S, S))).float()
    masks = torch.from_numpy(rng.random((n, classes, S, S)) < 0.3).float()
    fov = torch.ones(n, 1, S, S)
    batch = {"mask": masks, "fov": fov, "name": ["a", "b", "c"], "index": torch.arange(n)}
    dataset = _Upsampled(rng, n, classes)

    accumulator = MetricAccumulator(key=("name", "class", "resolution"))
    evaluate_batch(logits, batch, THRESHOLD, accumulator, dataset=dataset, spacing=spacing)
    plain = MetricAccumulator(key=("name", "class", "resolution"))
    evaluate_batch(logits, batch, THRESHOLD, plain, dataset=dataset)

    rows = {(r["name"], r["class"], r["resolution"]): r for r in accumulator.rows}
    probs = torch.sigmoid(logits)
    for i, name in enumerate(batch["name"]):
        up = dataset.to_original(probs[i], i).numpy() > THRESHOLD  # (C, H, W)
        for c in range(classes):
            model, original = rows[(name, c, "model")], rows[(name, c, "original")]
            expected_px = _expected(
                probs[i, c].numpy() > THRESHOLD, masks[i, c].numpy() > 0, np.ones((S, S), bool)
            )
            assert model["hd95"] == pytest.approx(expected_px[1], abs=1e-5) and model["hd95_unit"] == "px"
            expected_mm = _hd95_with_spacing(up[c], dataset.masks[i, c], dataset.fov, spacing)
            assert original["hd95"] == pytest.approx(expected_mm, abs=1e-5) and original["hd95_unit"] == "mm"
    assert rows[("a", 1, "original")]["case"] == "gt_empty"  # the diagonal, in mm
    assert {r["hd95_unit"] for r in plain.rows} == {"px"}  # no spacing: pixels everywhere
