"""Runs -> Table 1: mean and standard deviation over seeds per (row, data set), the average column, params."""

from __future__ import annotations

import logging
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from salt.paper import PAPER_DATASETS, PAPER_TABLE1, PaperRow
from salt.results.collect import Run

log = logging.getLogger(__name__)

METRICS = ("dice", "hd95")


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n - 1; None for a single seed) over ``n`` seeds, in ``unit``
    (HD95: ``"px"`` or ``"mm"``; empty for Dice)."""

    mean: float
    std: float | None
    n: int
    unit: str = ""


def stat(values: Iterable[float], unit: str = "") -> Stat | None:
    """:class:`Stat` of ``values``, or None when there are none."""
    values = list(values)
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return Stat(mean=statistics.fmean(values), std=std, n=len(values), unit=unit)


def _unit(metric: str, runs: Sequence[Run], label: str, column: str) -> str | None:
    """The one unit of ``metric`` over ``runs`` (empty for Dice); None, with a warning, when they mix units."""
    if metric != "hd95":
        return ""
    units = sorted({r.hd95_unit for r in runs})
    if len(units) > 1:
        log.warning("%s, %s: HD95 in %s over its runs; left out", label, column, " and ".join(units))
        return None
    return units[0] if units else "px"


@dataclass
class Row:
    """One table row.

    Attributes:
        label: the row name (see :func:`salt.results.collect.row_label`).
        cells: ``(data set, metric)`` -> :class:`Stat` over seeds, metric in :data:`METRICS`; absent when
            no run has a value. A data set of several classes also has ``("<data set>/<class>", metric)``.
        average: metric -> :class:`Stat` of the per-seed average over all data-set columns, over the seeds
            that have every column; absent when no seed has them all.
        seeds: the seeds seen in the row's runs.
        trainable: the distinct trainable counts of the row's runs (one value when they agree).
        percent: the distinct trainable shares of the base model, in percent.
        percent_paper: the distinct trainable shares in the paper's convention, in percent.
        paper: the paper's row, when the paper has one of this label.
    """

    label: str
    cells: dict[tuple[str, str], Stat] = field(default_factory=dict)
    average: dict[str, Stat] = field(default_factory=dict)
    seeds: list[int | None] = field(default_factory=list)
    trainable: list[float] = field(default_factory=list)
    percent: list[float] = field(default_factory=list)
    percent_paper: list[float] = field(default_factory=list)
    paper: PaperRow | None = None


@dataclass
class Table:
    """Rows in the paper's order (then the others, sorted), one column pair per data set.

    ``paper_average`` says whether the average column is the paper's (the columns are exactly its five
    data sets), so that the paper's average can stand beside it. ``classes`` lists, for each data set of
    several classes, its class names: per-class columns follow the data set's own (the mean over classes).
    """

    datasets: list[str]
    rows: list[Row]
    paper_average: bool
    classes: dict[str, list[str]] = field(default_factory=dict)


def dataset_order(names: Iterable[str]) -> list[str]:
    """The paper's data sets first in its column order, then any others alphabetically."""
    names = set(names)
    return [d for d in PAPER_DATASETS if d in names] + sorted(names - set(PAPER_DATASETS))


def natural_key(label: str) -> list:
    """Sort key that orders the numbers inside labels by value: ``rank 4`` before ``rank 16``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", label)]


def _distinct(values: Iterable[float | None]) -> list[float]:
    return sorted({v for v in values if v is not None})


def _row(label: str, runs: Sequence[Run], datasets: Sequence[str]) -> Row:
    row = Row(label=label, paper=PAPER_TABLE1.get(label))
    row.seeds = sorted({r.seed for r in runs}, key=lambda s: -1 if s is None else s)
    row.trainable = _distinct(r.trainable for r in runs)
    row.percent = _distinct(r.percent for r in runs)
    row.percent_paper = _distinct(r.percent_paper for r in runs)
    units: dict[tuple[str, str], str | None] = {}
    for dataset in datasets:
        of_dataset = [r for r in runs if r.dataset == dataset]
        for metric in METRICS:
            units[dataset, metric] = unit = _unit(metric, of_dataset, label, dataset)
            values = [getattr(r, metric) for r in of_dataset]
            cell = None if unit is None else stat((v for v in values if v is not None), unit)
            if cell is not None:
                row.cells[dataset, metric] = cell
        for name in sorted({c for r in of_dataset for c in r.per_class}):
            for i, metric in enumerate(METRICS):
                unit = units[dataset, metric]
                values = [r.per_class[name][i] for r in of_dataset if name in r.per_class]
                cell = None if unit is None else stat((v for v in values if v is not None), unit)
                if cell is not None:
                    row.cells[f"{dataset}/{name}", metric] = cell
    for metric in METRICS:
        # An average over columns of different units (pixels and mm) means nothing: left out.
        column_units = {units[d, metric] for d in datasets}
        if len(column_units) != 1 or None in column_units:
            continue
        per_seed = []
        for seed in row.seeds:
            by_dataset = {r.dataset: getattr(r, metric) for r in runs if r.seed == seed}
            values = [by_dataset.get(d) for d in datasets]
            if datasets and all(v is not None for v in values):
                per_seed.append(sum(values) / len(values))
        average = stat(per_seed, column_units.pop())
        if average is not None:
            row.average[metric] = average
    return row


def build_table(runs: Sequence[Run], datasets: Sequence[str] | None = None) -> Table:
    """Aggregate ``runs`` into a :class:`Table`.

    Args:
        runs: one run per (row, data set, seed), as :func:`salt.results.collect.find_runs` returns.
        datasets: the data-set columns in order; default: every data set of ``runs`` (:func:`dataset_order`).
            Runs of other data sets are left out; a listed data set without runs gives missing cells.
    """
    columns = list(datasets) if datasets is not None else dataset_order(r.dataset for r in runs)
    runs = [r for r in runs if r.dataset in columns]
    labels = {r.row for r in runs}
    paper_order = [label for label in PAPER_TABLE1 if label in labels]
    order = paper_order + sorted(labels - set(paper_order), key=natural_key)
    rows = [_row(label, [r for r in runs if r.row == label], columns) for label in order]
    classes = {}
    for dataset in columns:
        names = [c for r in runs if r.dataset == dataset for c in r.per_class]
        if names:
            classes[dataset] = list(dict.fromkeys(names))  # in the runs' class order
    return Table(datasets=columns, rows=rows, paper_average=tuple(columns) == PAPER_DATASETS, classes=classes)
