"""Which vessels a prediction finds, by vessel width: recall on the annotation's centreline.

The centreline is the annotation's skeleton (scikit-image ``skeletonize``). The width of the vessel at a
centreline pixel is ``2 d - 1`` pixels, ``d`` being the pixel's Euclidean distance to the nearest background pixel
(``scipy.ndimage.distance_transform_edt``): a one-pixel line has width 1, a disc of radius 2 around the pixel
width 3. A centreline pixel is *found* when the predicted mask covers it. Thin vessels are those of width at most
``max_width``; their recall is what resizing an image loses first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt
from skimage.morphology import skeletonize


@dataclass(frozen=True)
class WidthRecall:
    """Centreline pixels of one image, split at ``max_width``: how many there are and how many were found."""

    thin_total: int
    thin_found: int
    thick_total: int
    thick_found: int

    @property
    def thin_recall(self) -> float:
        """Share of thin centreline pixels found (NaN without any)."""
        return self.thin_found / self.thin_total if self.thin_total else float("nan")

    @property
    def thick_recall(self) -> float:
        """Share of the other centreline pixels found (NaN without any)."""
        return self.thick_found / self.thick_total if self.thick_total else float("nan")


def centreline_widths(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centreline of a binary mask and the vessel width at each of its pixels.

    Args:
        mask: ``(H, W)`` bool annotation.

    Returns:
        ``(centre, width)``: ``centre (H, W)`` bool, the skeleton of ``mask``; ``width (H, W)`` float, ``2 d - 1``
        on the skeleton (``d``: distance to the nearest background pixel, outside the image counting as
        background) and 0 elsewhere.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    centre = skeletonize(mask)
    distance = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return centre, np.where(centre, 2.0 * distance - 1.0, 0.0)


def width_recall(
    pred: np.ndarray, mask: np.ndarray, fov: np.ndarray | None = None, max_width: float = 2.0
) -> WidthRecall:
    """Centreline recall of ``pred`` on thin (width <= ``max_width`` px) and thicker vessels of ``mask``.

    Args:
        pred: ``(H, W)`` bool prediction.
        mask: ``(H, W)`` bool annotation.
        fov: ``(H, W)`` bool field of view: centreline pixels outside it are not counted (None: all count).
        max_width: the widest vessel, in pixels, counted as thin.
    """
    pred, mask = np.asarray(pred, dtype=bool), np.asarray(mask, dtype=bool)
    if pred.shape != mask.shape:
        raise ValueError(f"prediction {pred.shape} and annotation {mask.shape} differ in shape")
    centre, width = centreline_widths(mask)
    if fov is not None:
        centre &= np.asarray(fov, dtype=bool)
    thin = centre & (width <= max_width)
    thick = centre & ~thin
    return WidthRecall(
        thin_total=int(thin.sum()),
        thin_found=int((thin & pred).sum()),
        thick_total=int(thick.sum()),
        thick_found=int((thick & pred).sum()),
    )
