"""Side-by-side comparison of several methods' predictions on the same images: the one grid figure of the
project (:func:`save_grid`), drawn from arrays here and from runs' overlay PNGs by ``salt.results.qualitative``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from salt.metrics.segmentation import dice_score
from salt.viz.overlay import as_rgb, overlay

PANEL_INCHES = 2.5


def grid_panels(
    images: Sequence[Any], predictions: Mapping[str, Sequence[Any]], gts: Sequence[Any] | None
) -> list[list[tuple[str, np.ndarray]]]:
    """The panels of :func:`qualitative_grid`: per image ``(title, picture (H, W, 3) uint8)`` for the
    input, its ground truth (white on the dimmed image) and each method's :func:`overlay` against it."""
    rows = []
    for i, image in enumerate(images):
        gt = None if gts is None else gts[i]
        panels = [("image", as_rgb(image))]
        if gt is not None:
            panels.append(("ground truth", overlay(image, gt)))
        for name, preds in predictions.items():
            title = name if gt is None else f"{name}  Dice {dice_score(preds[i], gt):.3f}"
            panels.append((title, overlay(image, preds[i], gt)))
        rows.append(panels)
    return rows


def qualitative_grid(
    images: Sequence[Any],
    predictions: Mapping[str, Sequence[Any]],
    gts: Sequence[Any] | None,
    out_png: str | Path,
    row_titles: Sequence[str] | None = None,
) -> Path:
    """One row per image: the input, its ground truth, then each method's :func:`overlay`.

    With ground truth, method panels use the overlay colours (white hit, red missed, cyan false
    positive) and carry the image's Dice in their title; without it, predictions are shown in white.

    Args:
        images: ``N`` images, each ``(H, W, 3)`` uint8 (sizes may differ between images).
        predictions: method name -> ``N`` masks ``(H, W)``, in the order of ``images``.
        gts: ``N`` ground-truth masks ``(H, W)``, or None.
        out_png: where to write the figure (parent folders are created).
        row_titles: optional ``N`` labels (e.g. case names) shown left of each row.
    """
    n = len(images)
    if n == 0 or not predictions:
        raise ValueError("qualitative_grid needs at least one image and one method")
    lengths = {name: len(preds) for name, preds in predictions.items()}
    lengths.update(
        {key: len(seq) for key, seq in (("gts", gts), ("row_titles", row_titles)) if seq is not None}
    )
    wrong = {key: length for key, length in lengths.items() if length != n}
    if wrong:
        raise ValueError(f"expected {n} entries (one per image), got {wrong}")
    rows = grid_panels(images, predictions, gts)
    return save_grid(rows, out_png, row_titles=row_titles)


def save_grid(
    rows: Sequence[Sequence[tuple[str, np.ndarray | None]]],
    out_png: str | Path,
    row_titles: Sequence[str] | None = None,
    title: str | None = None,
    panel_inches: float = PANEL_INCHES,
) -> Path:
    """Write a grid of pictures: ``rows[i][j] = (title, picture (H, W, 3) uint8)``, one row per case.

    A panel whose picture is None shows "no overlay" (a method without that case); an empty title is not
    drawn. ``row_titles`` label the rows on their left, ``title`` the figure (one line above the grid).
    """
    n, columns = len(rows), max(len(panels) for panels in rows)
    extra = 0.4 if title else 0.0
    fig = Figure(figsize=(panel_inches * columns, panel_inches * n + extra), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, columns, squeeze=False)
    for i, panels in enumerate(rows):
        for ax, (name, picture) in zip(axes[i], panels):
            if picture is None:
                ax.text(0.5, 0.5, "no overlay", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.imshow(picture)
            if name:
                ax.set_title(name, fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
        if row_titles is not None:
            axes[i][0].set_ylabel(row_titles[i], fontsize="small")
    if title:
        fig.suptitle(title, fontsize="small")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png
