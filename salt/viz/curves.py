"""Training curves from Lightning's ``CSVLogger`` ``metrics.csv`` (or rows of the same shape)."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Panel title -> which columns it plots and against what. Losses are logged per step (and per epoch
# by Lightning's ``_epoch`` suffix); validation metrics once per epoch.
PANELS: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("loss", "step", lambda key: "loss" in key),
    ("Dice", "epoch", lambda key: key.endswith("dice")),
    ("HD95", "epoch", lambda key: key.endswith("hd95")),
)


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_metrics(metrics: str | Path | Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` path (or of given mappings) with blank and non-numeric cells dropped.

    Raises:
        FileNotFoundError: when a path is given and does not exist.
    """
    if isinstance(metrics, (str, Path)):
        path = Path(metrics)
        if not path.is_file():
            raise FileNotFoundError(f"metrics file not found: {path}")
        with path.open(newline="") as f:
            metrics = list(csv.DictReader(f))
    rows = []
    for row in metrics:
        numbers = {key: _number(value) for key, value in row.items()}
        rows.append({key: value for key, value in numbers.items() if value is not None})
    return rows


def _series(rows: list[dict[str, float]], key: str, x_key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for index, row in enumerate(rows):
        if key in row and math.isfinite(row[key]):
            xs.append(row.get(x_key, row.get("step", float(index))))
            ys.append(row[key])
    return xs, ys


def plot_curves(metrics: str | Path | Iterable[Mapping[str, Any]], out_png: str | Path) -> Path:
    """Plot losses against step and Dice / HD95 columns against epoch, one panel each, into a PNG.

    Args:
        metrics: a ``metrics.csv`` path written by Lightning's ``CSVLogger`` (columns such as ``epoch``,
            ``step``, ``train/loss``, ``val/dice``, ``val/hd95``; blank where not logged at that row),
            or an iterable of row mappings in the same format.
        out_png: where to write the figure (parent folders are created).

    Raises:
        ValueError: when no loss, Dice or HD95 column holds any value.
    """
    rows = read_metrics(metrics)
    keys = sorted({key for row in rows for key in row})
    panels = []
    for title, x_key, wanted in PANELS:
        series = {key: _series(rows, key, x_key) for key in keys if wanted(key)}
        series = {key: xy for key, xy in series.items() if xy[0]}
        if series:
            panels.append((title, x_key, series))
    if not panels:
        source = metrics if isinstance(metrics, (str, Path)) else "the given rows"
        raise ValueError(f"no loss, dice or hd95 values to plot in {source}")
    fig = Figure(figsize=(4.5 * len(panels), 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (title, x_key, series) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for key, (xs, ys) in series.items():
            # A single point (one validation epoch) is invisible as a line.
            ax.plot(xs, ys, label=key, marker="o" if len(xs) < 20 else None, markersize=3)
        ax.set(title=title, xlabel=x_key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png
