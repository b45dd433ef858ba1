"""A grid of the same test cases across methods, tiled from the runs' overlay PNGs (drawn by
:func:`salt.viz.grid.save_grid`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from salt.data.layout import FolderIndex, find_mask
from salt.data.reading import labels_to_masks, normalise_label_map, read_image, read_labels
from salt.paper import dataset_title
from salt.results.collect import Run
from salt.viz.grid import save_grid
from salt.viz.overlay import as_rgb, overlay

log = logging.getLogger(__name__)
PANEL_INCHES = 2.4
LEGEND = "white (with several classes, the class's colour): found, red: missed, cyan: false positive"


def _overlays(run: Run) -> dict[str, Path]:
    folder = run.path / "overlays"
    return {p.stem: p for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}


def _dataset_config(run: Run) -> dict:
    """The run's recorded ``config.dataset`` (empty when unreadable)."""
    try:
        dataset = json.loads((run.path / "metrics.json").read_text())["config"]["dataset"]
    except (OSError, KeyError, TypeError, ValueError):
        return {}
    return dataset if isinstance(dataset, dict) else {}


def _case_sources(run: Run, cases: Sequence[str]) -> dict[str, tuple[Path, Path]] | None:
    """``case -> (image file, mask file)`` in the run's data-set folder (canonical layout), or None unless
    every case is found there (volume slices are not)."""
    try:
        root = Path(_dataset_config(run)["root"])
        images, masks = FolderIndex(root / "images"), FolderIndex(root / "masks")
    except (OSError, KeyError, TypeError, ValueError):
        return None
    sources = {}
    for case in cases:
        image, mask = images.lookup(case), find_mask(masks, case)
        if len(image) != 1 or not mask:
            return None
        sources[case] = (image[0], mask[0])
    return sources


def _source_panels(image_path: Path, mask_path: Path, dataset: dict) -> list[tuple[str, np.ndarray]]:
    """The image and its ground truth, each class in its overlay colour (``dataset``: the run's config)."""
    picture = as_rgb(read_image(image_path)[0])  # (H, W, 3) uint8
    num_classes = int(dataset.get("num_classes") or 1)
    label_map = normalise_label_map(dataset.get("label_map"), num_classes)
    truth = labels_to_masks(read_labels(mask_path)[0], label_map, num_classes)  # (C, H, W)
    return [("image", picture), ("ground truth", overlay(picture, truth))]


def overlay_grid(
    runs: Sequence[Run], dataset: str, out_png: Path, order: Sequence[str] = (), max_cases: int = 4
) -> Path:
    """Tile ``<run>/overlays/<case>.png`` of one data set: rows = cases, columns = the image and its ground
    truth (read from the data-set folder the runs recorded, when it still holds every case), then the methods.

    Each method shows its lowest-seed run that has overlays. The cases are those most methods share
    (ties broken by name), at most ``max_cases``; a method without a case shows an empty, labelled panel.

    Args:
        runs: runs of any data sets; those of ``dataset`` are used.
        dataset: the data set to show.
        out_png: where to write the figure.
        order: row labels in column order (others follow alphabetically).
        max_cases: the number of grid rows at most.

    Raises:
        ValueError: when no run of ``dataset`` has overlays.
    """
    chosen: dict[str, dict[str, Path]] = {}
    for run in sorted(runs, key=lambda r: -1 if r.seed is None else r.seed):
        if run.dataset == dataset and run.row not in chosen:
            overlays = _overlays(run)
            if overlays:
                chosen[run.row] = overlays
    if not chosen:
        raise ValueError(f"no run of {dataset!r} has overlay PNGs")
    methods = [label for label in order if label in chosen] + sorted(set(chosen) - set(order))
    names = {name for overlays in chosen.values() for name in overlays}
    cases = sorted(names, key=lambda n: (-sum(n in chosen[m] for m in methods), n))[:max_cases]
    source_run = next(r for r in runs if r.dataset == dataset and r.row == methods[0])
    sources = _case_sources(source_run, cases)
    rows = []
    for i, case in enumerate(cases):
        panels = _source_panels(*sources[case], _dataset_config(source_run)) if sources else []
        panels = [(title if i == 0 else "", picture) for title, picture in panels]
        for method in methods:
            path = chosen[method].get(case)
            panels.append((method if i == 0 else "", None if path is None else _read_rgb(path)))
        rows.append(panels)
    title = f"{dataset_title(dataset)} test cases ({LEGEND})"
    return save_grid(rows, out_png, row_titles=cases, title=title, panel_inches=PANEL_INCHES)


def _read_rgb(path: Path) -> np.ndarray:
    """An overlay PNG as ``(H, W, 3)`` uint8."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
