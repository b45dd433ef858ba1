"""A picture of the thin vessels each prediction finds and misses (see :mod:`salt.metrics.thin`).

For each case, a crop around the annotation's densest patch of thin centreline: the photograph, then one panel per
prediction with the thin centreline drawn white where the prediction covers it and red where it does not, over the
prediction's pixels in blue. A legend runs below the grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from salt.metrics.thin import centreline_widths, width_recall
from salt.viz.grid import save_grid
from salt.viz.overlay import (
    BACKGROUND_DIM,
    FALSE_NEGATIVE,
    LEGEND_BACKGROUND,
    TRUE_POSITIVE,
    as_rgb,
    legend_strip,
)

PREDICTED = (40, 90, 200)  # blue: the prediction's pixels


@dataclass
class ThinCase:
    """One image: ``image (H, W, 3)`` uint8, ``mask (H, W)`` bool annotation, ``fov (H, W)`` bool, and
    ``preds`` (label -> ``(H, W)`` bool prediction)."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    fov: np.ndarray
    preds: Mapping[str, np.ndarray]


def thin_centre(mask: np.ndarray, fov: np.ndarray, max_width: float) -> np.ndarray:
    """``(H, W)`` bool: the annotation's centreline pixels inside ``fov`` on vessels at most ``max_width`` wide."""
    centre, width = centreline_widths(mask)
    return centre & (width <= max_width) & np.asarray(fov, dtype=bool)


def densest_crop(points: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left ``(row, col)`` of the ``side`` x ``side`` window of ``points (H, W)`` holding the most of them
    (the first such window in row-major order; a side larger than the image is cut to it)."""
    height, width = points.shape
    side_h, side_w = min(side, height), min(side, width)
    table = np.zeros((height + 1, width + 1), np.int64)  # table[r, c] = points[:r, :c].sum()
    table[1:, 1:] = np.asarray(points, dtype=np.int64).cumsum(0).cumsum(1)
    sums = (
        table[side_h:, side_w:]
        - table[:-side_h, side_w:]
        - table[side_h:, :-side_w]
        + table[:-side_h, :-side_w]
    )
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(row), int(col)


def thin_panel(image: np.ndarray, pred: np.ndarray, thin: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8: ``image`` dimmed, ``pred`` in blue, thin centreline pixels white (found) or red."""
    picture = (as_rgb(image).astype(np.float32) * BACKGROUND_DIM).astype(np.uint8)
    picture[pred] = PREDICTED
    picture[thin & pred] = TRUE_POSITIVE
    picture[thin & ~pred] = FALSE_NEGATIVE
    return picture


def thin_vessel_figure(
    cases: Sequence[ThinCase], out_png: str | Path, max_width: float = 2.0, crop: int = 128
) -> Path:
    """Write the thin-vessel figure of ``cases`` (one row each) to ``out_png``.

    Each panel title gives the prediction's thin-centreline recall over the whole image (not just the crop).

    Args:
        cases: the images, all with the same prediction labels.
        max_width: the widest vessel, in pixels, counted as thin.
        crop: side of the crop shown, in original pixels.
    """
    if not cases:
        raise ValueError("thin_vessel_figure needs at least one case")
    rows = []
    for case in cases:
        thin = thin_centre(case.mask, case.fov, max_width)
        top, left = densest_crop(thin, crop)
        window = (slice(top, top + crop), slice(left, left + crop))
        panels = [(f"{case.name} (crop at {top}, {left})", as_rgb(case.image)[window])]
        for label, pred in case.preds.items():
            pred = np.asarray(pred, dtype=bool)
            recall = width_recall(pred, case.mask, case.fov, max_width).thin_recall
            panels.append(
                (
                    f"{label}\nthin recall {recall:.2f}",
                    thin_panel(case.image[window], pred[window], thin[window]),
                )
            )
        rows.append(panels)
    out_png = save_grid(
        rows, out_png, title=f"thin vessels (width <= {max_width:g} px): centreline found or missed"
    )
    grid = np.asarray(Image.open(out_png).convert("RGB"))
    entries = [
        ("thin vessel found", TRUE_POSITIVE, "fill"),
        ("thin vessel missed", FALSE_NEGATIVE, "fill"),
        ("predicted vessel", PREDICTED, "fill"),
    ]
    strip = legend_strip(grid.shape[1], entries, unit=2)
    canvas = np.zeros((grid.shape[0] + strip.shape[0], max(grid.shape[1], strip.shape[1]), 3), np.uint8)
    canvas[:] = LEGEND_BACKGROUND
    canvas[: grid.shape[0], : grid.shape[1]] = grid
    canvas[grid.shape[0] :, : strip.shape[1]] = strip
    Image.fromarray(canvas).save(out_png)
    return out_png
