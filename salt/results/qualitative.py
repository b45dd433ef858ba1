"""A grid of the same test cases across methods, tiled from the runs' overlay PNGs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from salt.results.collect import Run
from salt.results.paper import dataset_title

log = logging.getLogger(__name__)
PANEL_INCHES = 2.4
LEGEND = "white: vessel found, red: vessel missed, cyan: false vessel"


def _overlays(run: Run) -> dict[str, Path]:
    folder = run.path / "overlays"
    return {p.stem: p for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}


def overlay_grid(
    runs: Sequence[Run], dataset: str, out_png: Path, order: Sequence[str] = (), max_cases: int = 4
) -> Path:
    """Tile ``<run>/overlays/<case>.png`` of one data set: rows = cases, columns = methods.

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
    fig = Figure(figsize=(PANEL_INCHES * len(methods), PANEL_INCHES * len(cases) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(cases), len(methods), squeeze=False)
    for i, case in enumerate(cases):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            path = chosen[method].get(case)
            if path is None:
                ax.text(0.5, 0.5, "no overlay", ha="center", va="center", transform=ax.transAxes)
            else:
                with Image.open(path) as image:
                    ax.imshow(np.asarray(image.convert("RGB")))  # (H, W, 3)
            if i == 0:
                ax.set_title(method, fontsize="small")
            if j == 0:
                ax.set_ylabel(case, fontsize="small")
    fig.suptitle(f"{dataset_title(dataset)} test cases ({LEGEND})", fontsize="small")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png
