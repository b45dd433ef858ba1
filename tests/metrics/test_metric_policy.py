"""Dice/HD95 policy of salt.metrics: hand-checked tiny masks, MONAI agreement, medpy's differing HD95."""

from __future__ import annotations

import math

import medpy.metric.binary as medpy_binary
import numpy as np
import pytest
import torch
from monai.metrics import compute_hausdorff_distance

from salt.metrics import multiclass_metrics, segmentation_metrics


def _mask(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for r0, r1, c0, c1 in boxes:
        mask[r0:r1, c0:c1] = True
    return mask


def _blobs(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A few random rectangles and discs: irregular, non-empty, sometimes touching the border."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for _ in range(rng.integers(1, 4)):
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        if rng.random() < 0.5:
            mask |= (rows - r) ** 2 + (cols - c) ** 2 <= rng.integers(1, 8) ** 2
        else:
            mask[r : r + rng.integers(1, 10), c : c + rng.integers(1, 10)] = True
    return mask


def _directed_medpy(a: np.ndarray, b: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    # medpy's own distance-transform implementation of the boundary-to-boundary distances.
    return getattr(medpy_binary, "__surface_distances")(a, b, spacing, 1)


def test_hand_checked_5x5_both_nonempty() -> None:
    # gt: a 2x2 square; pred: the same square widened by one column (2x3).
    gt = _mask((5, 5), (1, 3, 1, 3))
    pred = _mask((5, 5), (1, 3, 1, 4))
    out = segmentation_metrics(pred, gt)
    # |P ∩ G| = 4, |P| = 6, |G| = 4 -> 2*4/10.
    assert out["dice"] == pytest.approx(0.8)
    # Every pixel of these thin masks is a boundary pixel. pred -> gt: four pixels at 0 and the added
    # column (two pixels) at 1; gt -> pred: all at 0. The 95th percentile of [0, 0, 0, 0, 1, 1] is 1.
    assert out["hd95"] == pytest.approx(1.0)
    assert out["case"] == "both_nonempty"


def test_hand_checked_5x5_with_spacing() -> None:
    # A single pixel against one shifted by one row and one column: distance hypot(sy, sx).
    pred, gt = _mask((5, 5), (2, 3, 2, 3)), _mask((5, 5), (3, 4, 3, 4))
    out = segmentation_metrics(pred, gt, spacing=(2.0, 0.5))
    assert out["dice"] == 0.0
    assert out["hd95"] == pytest.approx(math.hypot(2.0, 0.5), rel=1e-6)
    assert out["case"] == "both_nonempty"


@pytest.mark.parametrize(
    ("pred_box", "gt_box", "case", "dice", "hd95"),
    [
        (None, None, "both_empty", 1.0, 0.0),
        (None, (1, 3, 1, 3), "pred_empty", 0.0, math.sqrt(5**2 + 5**2)),
        ((1, 3, 1, 3), None, "gt_empty", 0.0, math.sqrt(5**2 + 5**2)),
    ],
)
def test_empty_case_policy_5x5(pred_box, gt_box, case, dice, hd95) -> None:
    pred = _mask((5, 5), *([pred_box] if pred_box else []))
    gt = _mask((5, 5), *([gt_box] if gt_box else []))
    out = segmentation_metrics(pred, gt)
    assert out == {"dice": pytest.approx(dice), "hd95": pytest.approx(hd95), "case": case}


def test_empty_case_diagonal_uses_spacing_and_shape() -> None:
    out = segmentation_metrics(np.zeros((4, 6), bool), _mask((4, 6), (0, 1, 0, 1)), spacing=(0.5, 2.0))
    assert out["hd95"] == pytest.approx(math.hypot(4 * 0.5, 6 * 2.0))


def test_fov_restricts_both_masks() -> None:
    gt = _mask((5, 5), (1, 3, 1, 3))
    pred = _mask((5, 5), (1, 3, 1, 3), (4, 5, 4, 5))  # a false positive in the corner
    fov = _mask((5, 5), (0, 4, 0, 4))  # excludes the last row and column
    assert segmentation_metrics(pred, gt)["dice"] < 1.0
    assert segmentation_metrics(pred, gt, fov=fov) == {"dice": 1.0, "hd95": 0.0, "case": "both_nonempty"}
    # Outside the FOV the vessel does not exist: both masks become empty.
    only_outside = _mask((5, 5), (4, 5, 0, 5))
    assert segmentation_metrics(only_outside, only_outside, fov=fov)["case"] == "both_empty"


def test_accepts_torch_and_01_arrays_rejects_probabilities() -> None:
    gt = _mask((5, 5), (1, 3, 1, 3))
    pred = _mask((5, 5), (1, 3, 1, 4))
    ref = segmentation_metrics(pred, gt)
    assert segmentation_metrics(torch.from_numpy(pred), torch.from_numpy(gt).float()) == ref
    assert segmentation_metrics(pred.astype(np.uint8), gt.astype(np.int64)) == ref
    with pytest.raises(ValueError, match="binary mask"):
        segmentation_metrics(pred * 0.7, gt)
    with pytest.raises(ValueError, match="one shape"):
        segmentation_metrics(pred, gt[:4])
    with pytest.raises(ValueError, match="spacing"):
        segmentation_metrics(pred, gt, spacing=(1.0, 1.0, 1.0))


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.9)])
def test_hd95_equals_monai_and_max_of_directed_percentiles(spacing: tuple[float, float]) -> None:
    rng = np.random.default_rng(7)
    for _ in range(12):
        shape = (int(rng.integers(8, 40)), int(rng.integers(8, 40)))
        pred, gt = _blobs(rng, shape), _blobs(rng, shape)
        out = segmentation_metrics(pred, gt, spacing=spacing)
        monai = compute_hausdorff_distance(
            torch.from_numpy(pred)[None, None],  # (1, 1, H, W)
            torch.from_numpy(gt)[None, None],
            include_background=True,
            percentile=95,
            spacing=list(spacing),
        )
        assert out["hd95"] == pytest.approx(float(monai), rel=1e-5, abs=1e-5)
        # Independent implementation of the same definition: medpy's directed distance sets.
        directed = [
            np.percentile(_directed_medpy(pred, gt, spacing), 95),
            np.percentile(_directed_medpy(gt, pred, spacing), 95),
        ]
        assert out["hd95"] == pytest.approx(max(directed), rel=1e-5, abs=1e-5)


def test_medpy_pooled_hd95_differs() -> None:
    # A large correct square plus a small far-away false positive: the outlier dominates the directed
    # pred -> gt distances (more than 5% of pred's boundary) but is under 5% of the pooled distances.
    gt = _mask((64, 64), (4, 40, 4, 40))
    pred = _mask((64, 64), (4, 40, 4, 40), (58, 62, 58, 62))
    ours = segmentation_metrics(pred, gt)["hd95"]
    pooled = medpy_binary.hd95(pred, gt, connectivity=1)
    d_pg, d_gp = _directed_medpy(pred, gt, (1.0, 1.0)), _directed_medpy(gt, pred, (1.0, 1.0))
    assert pooled == pytest.approx(np.percentile(np.hstack([d_pg, d_gp]), 95))
    assert ours == pytest.approx(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)), rel=1e-5)
    assert ours > pooled + 10.0


def test_multiclass_per_channel() -> None:
    gt = np.stack([_mask((5, 5), (1, 3, 1, 3)), np.zeros((5, 5), bool)])  # (2, 5, 5)
    pred = np.stack([_mask((5, 5), (1, 3, 1, 4)), np.zeros((5, 5), bool)])
    rows = multiclass_metrics(pred, gt)
    assert [r["class"] for r in rows] == [0, 1]
    assert rows[0] == {"class": 0, **segmentation_metrics(pred[0], gt[0])}
    assert rows[1]["case"] == "both_empty"
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        multiclass_metrics(pred[0], gt[0])
