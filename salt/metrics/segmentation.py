"""Per-image Dice and HD95 of binary masks, with an explicit policy for empty masks.

Policy (the same for every caller: training-time validation, evaluation, prediction reports):

- **Dice** is computed per image (and per class), ``2 |P ∩ G| / (|P| + |G|)``; means are taken over
  images afterwards, never over pixels pooled across images.
- **HD95** is the larger of the two *directed* 95th percentiles of boundary distances: the boundary of
  a mask is its pixels removed by one binary erosion (4-connected), the distances are Euclidean
  between pixel centres in units of ``spacing``, and the percentile is linearly interpolated. This is
  MONAI's ``compute_hausdorff_distance(..., percentile=95)`` (and the paper's authors' convention);
  medpy's ``hd95`` pools both distance sets before taking one percentile and differs in general.
- **Empty masks** (after restricting to the field of view), one rule per case, each case counted:

  ==================  =====  ==================================================
  case                Dice   HD95
  ==================  =====  ==================================================
  ``both_nonempty``   P, G   as above
  ``both_empty``      1      0
  ``pred_empty``      0      image diagonal ``sqrt((H*sy)^2 + (W*sx)^2)``
  ``gt_empty``        0      image diagonal
  ==================  =====  ==================================================

  The diagonal bounds every boundary distance inside the image, so a missed (or hallucinated)
  structure costs at least as much as the worst prediction that found something; MONAI would return
  NaN there, which silently drops the case from a mean.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

CASES = ("both_nonempty", "both_empty", "pred_empty", "gt_empty")


def as_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """Convert a binary mask (numpy array or torch tensor, bool or 0/1 values) to a numpy bool array.

    Raises:
        ValueError: when ``mask`` holds values other than 0 and 1 (e.g. probabilities to threshold).
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{name} must be a binary mask (bool or 0/1 values); threshold probabilities first")
    return mask.astype(bool)


def image_diagonal(shape: Sequence[int], spacing: Sequence[float] = (1.0, 1.0)) -> float:
    """Length of the diagonal of an image of ``shape (H, W)`` with pixel ``spacing (sy, sx)``."""
    return math.hypot(shape[0] * spacing[0], shape[1] * spacing[1])


def empty_case(pred: np.ndarray, gt: np.ndarray) -> str:
    """Which of :data:`CASES` the pair of bool masks ``pred``, ``gt`` falls into."""
    has_pred, has_gt = bool(pred.any()), bool(gt.any())
    if has_pred and has_gt:
        return "both_nonempty"
    if not has_pred and not has_gt:
        return "both_empty"
    return "pred_empty" if has_gt else "gt_empty"


def dice_score(pred: Any, gt: Any) -> float:
    """Dice of two binary masks of equal shape, 1 when both are empty and 0 when exactly one is."""
    pred_t = torch.from_numpy(as_mask(pred, "pred"))[None, None]  # (1, 1, H, W)
    gt_t = torch.from_numpy(as_mask(gt, "gt"))[None, None]  # (1, 1, H, W)
    # ignore_empty=False makes MONAI apply this module's empty-mask policy (1 / 0) instead of NaN.
    return float(compute_dice(pred_t, gt_t, include_background=True, ignore_empty=False))


def segmentation_metrics(
    pred: Any,
    gt: Any,
    spacing: Sequence[float] = (1.0, 1.0),
    fov: Any | None = None,
) -> dict[str, Any]:
    """Dice and HD95 of one binary prediction against its ground truth, under the module's policy.

    Args:
        pred: predicted mask ``(H, W)``, bool or 0/1 (numpy array or torch tensor).
        gt: ground-truth mask ``(H, W)``, same format.
        spacing: pixel size ``(sy, sx)`` along rows and columns; HD95 is in these units.
        fov: optional field-of-view mask ``(H, W)``; both masks are set to False outside it first.

    Returns:
        ``{"dice": float, "hd95": float, "case": str}`` with ``case`` one of :data:`CASES`.
    """
    pred_np, gt_np = as_mask(pred, "pred"), as_mask(gt, "gt")
    if pred_np.ndim != 2 or pred_np.shape != gt_np.shape:
        raise ValueError(f"pred and gt must be 2-D masks of one shape, got {pred_np.shape} and {gt_np.shape}")
    if len(spacing) != 2:
        raise ValueError(f"spacing must have 2 values (sy, sx), got {tuple(spacing)}")
    if fov is not None:
        fov_np = as_mask(fov, "fov")
        if fov_np.shape != pred_np.shape:
            raise ValueError(f"fov shape {fov_np.shape} differs from the mask shape {pred_np.shape}")
        pred_np, gt_np = pred_np & fov_np, gt_np & fov_np
    case = empty_case(pred_np, gt_np)
    dice = dice_score(pred_np, gt_np)
    if case == "both_nonempty":
        with warnings.catch_warnings():
            # MONAI 1.5-1.6 warns about an argument it passes to itself; nothing to act on here.
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
            hd = compute_hausdorff_distance(
                pred_np[None, None],  # (1, 1, H, W)
                gt_np[None, None],
                include_background=True,
                percentile=95,
                spacing=[float(s) for s in spacing],
            )
        hd95 = float(hd)
    elif case == "both_empty":
        hd95 = 0.0
    else:
        hd95 = image_diagonal(pred_np.shape, spacing)
    return {"dice": dice, "hd95": hd95, "case": case}


def multiclass_metrics(
    pred: Any,
    gt: Any,
    spacing: Sequence[float] = (1.0, 1.0),
    fov: Any | None = None,
) -> list[dict[str, Any]]:
    """:func:`segmentation_metrics` for every channel of ``pred``, ``gt`` ``(C, H, W)``.

    Each class is a separate binary problem (the model's classes are independent sigmoids, so they may
    overlap). ``fov`` ``(H, W)`` applies to every class.

    Returns:
        One dict per class, in channel order, each with an added ``"class"`` index.
    """
    pred_np, gt_np = as_mask(pred, "pred"), as_mask(gt, "gt")
    if pred_np.ndim != 3 or pred_np.shape != gt_np.shape:
        raise ValueError(
            f"pred and gt must be (C, H, W) masks of one shape, got {pred_np.shape} and {gt_np.shape}"
        )
    return [
        {"class": c, **segmentation_metrics(pred_np[c], gt_np[c], spacing=spacing, fov=fov)}
        for c in range(pred_np.shape[0])
    ]
