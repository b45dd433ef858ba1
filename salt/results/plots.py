"""Figures from a set of runs: Dice against trainable parameters, and validation curves across methods."""

from __future__ import annotations

import csv
import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from salt.paper import dataset_title
from salt.results.aggregate import Table
from salt.results.collect import Run

log = logging.getLogger(__name__)

# Marker areas (points^2): the largest model gets MAX_AREA, none gets less than MIN_AREA.
MAX_AREA = 2500.0
MIN_AREA = 40.0
LABEL_LIMIT = 12  # more rows than this: name only some of them
LABELLED_BEST = 5


def _save(fig: Figure, out_png: Path) -> Path:
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png


def plot_dice_vs_params(table: Table, out_png: Path) -> Path:
    """Bubble chart in the style of the paper's Fig. 4: average Dice against trainable parameters.

    x: trainable parameters (log scale; the largest count of a row whose runs differ), y: the row's
    average Dice (the table's Avg column), bubble area proportional to the parameter count, one label per
    row (with more than ``LABEL_LIMIT`` rows, as for the rank grid, only the ``LABELLED_BEST`` best rows and
    those with a paper point are named). When the table's columns are the paper's five data sets, the paper's rows are drawn as hollow
    dashed bubbles of the same colour for comparison. Rows without an average or without trainable parameters (zero-shot)
    cannot be placed and are left out.

    Raises:
        ValueError: when no row can be placed.
    """
    points = []
    for row in table.rows:
        dice = row.average.get("dice")
        count = row.trainable[-1] if row.trainable else 0
        if dice is None or count <= 0:
            log.info("bubble chart: %s left out (no average Dice or no trainable parameters)", row.label)
            continue
        paper = row.paper if table.paper_average else None
        paper_point = (paper.count, paper.avg_dice) if paper is not None and paper.count else None
        points.append((row.label, count, dice.mean, paper_point))
    if not points:
        raise ValueError(
            "no method has both an average Dice (a value for every data-set column) and trainable parameters"
        )
    largest = max(max(count, paper[0] if paper else 0) for _, count, _, paper in points)

    def area(count: float) -> float:
        return max(MIN_AREA, MAX_AREA * count / largest)

    fig = Figure(figsize=(7, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(points))]
    labelled = {label for label, *_ in points}
    if len(points) > LABEL_LIMIT:  # a grid (Fig. 4a: 48 cells): name the best cells and the paper's rows
        best = sorted(points, key=lambda point: point[2], reverse=True)[:LABELLED_BEST]
        labelled = {p[0] for p in best} | {label for label, *_, paper in points if paper is not None}
    for (label, count, dice, paper), color in zip(points, colors):
        ax.scatter(count, dice, s=area(count), color=color, alpha=0.6, edgecolors="black", linewidths=0.5)
        if label in labelled:
            ax.annotate(label, (count, dice), textcoords="offset points", xytext=(6, 6), fontsize="small")
        if paper is not None:
            ax.scatter(*paper, s=area(paper[0]), facecolors="none", edgecolors=color, linestyles="--")
    if any(paper for *_, paper in points):
        ax.scatter([], [], s=MIN_AREA, facecolors="none", edgecolors="grey", linestyles="--", label="paper")
        ax.legend(loc="lower right", fontsize="small")
    ax.set_xscale("log")
    ax.set(xlabel="trainable parameters", ylabel="average Dice", title="Dice against trainable parameters")
    ax.grid(alpha=0.3, which="both")
    ax.margins(x=0.15, y=0.15)
    return _save(fig, Path(out_png))


def _val_dice(run: Run) -> dict[float, float]:
    """Epoch -> validation Dice of one run (the last value logged for an epoch), {} without history.csv.

    Read with the csv module rather than :mod:`salt.viz`, which would pull in torch and MONAI: building
    the table and figures needs neither.
    """
    path = run.path / "history.csv"
    if not path.is_file():
        return {}
    curve = {}
    with path.open(newline="") as f:
        for line in csv.DictReader(f):
            try:
                epoch, dice = float(line["epoch"]), float(line["val/dice"])
            except (KeyError, TypeError, ValueError):
                continue  # blank cells: a row logged without validation (or an older file without the column)
            if math.isfinite(dice):
                curve[epoch] = dice
    return curve


def plot_training_curves(runs: Sequence[Run], out_png: Path, order: Sequence[str] = ()) -> Path:
    """Validation Dice against epoch from each run's ``history.csv``: one panel per data set, one line per method.

    A method's line is the mean over its seeds at each epoch, with a band of ± one standard deviation
    where more than one seed logged that epoch.

    Args:
        runs: the runs to draw (those without ``history.csv`` or validation values are skipped).
        out_png: where to write the figure.
        order: row labels in the order their lines are drawn (others follow alphabetically).

    Raises:
        ValueError: when no run has a validation Dice.
    """
    curves: dict[str, dict[str, dict[float, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for run in runs:
        for epoch, dice in _val_dice(run).items():
            curves[run.dataset][run.row][epoch].append(dice)
    if not curves:
        raise ValueError("no run has a history.csv with val/dice values")
    datasets = sorted(curves)
    labels = sorted({label for by_row in curves.values() for label in by_row})
    labels = [label for label in order if label in labels] + [label for label in labels if label not in order]
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    fig = Figure(figsize=(4.5 * len(datasets), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, dataset in zip(fig.subplots(1, len(datasets), squeeze=False)[0], datasets):
        for label in (label for label in labels if label in curves[dataset]):
            epochs = sorted(curves[dataset][label])
            values = [curves[dataset][label][e] for e in epochs]
            mean = [statistics.fmean(v) for v in values]
            std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            ax.plot(epochs, mean, label=label, color=colors[label], marker="o" if len(epochs) < 20 else None)
            if any(std):
                low = [m - s for m, s in zip(mean, std)]
                high = [m + s for m, s in zip(mean, std)]
                ax.fill_between(epochs, low, high, color=colors[label], alpha=0.2)
        ax.set(title=dataset_title(dataset), xlabel="epoch", ylabel="validation Dice")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, Path(out_png))
