"""Rendering a :class:`~salt.results.aggregate.Table` as Markdown, LaTeX or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from salt.paper import dataset_title
from salt.results.aggregate import METRICS, Row, Stat, Table

MISSING = "—"
LATEX_MISSING = "--"
AVERAGE = "avg"
# Digits of our numbers; the differences use the paper's two decimals.
DIGITS = {"dice": 3, "hd95": 2}
METRIC_TITLES = {"dice": "Dice", "hd95": "HD95"}


def _paper_dice(value: float) -> str:
    # The paper prints Dice without the leading zero: .72
    return f"{value:.2f}".lstrip("0")


def _count(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}K"
    return f"{value:.0f}"


def _stat_text(cell: Stat, digits: int, pm: str) -> str:
    text = f"{cell.mean:.{digits}f}"
    text = text if cell.std is None else f"{text}{pm}{cell.std:.{digits}f}"
    # Pixels are the table's unit (notes); a cell in mm says so.
    return text if cell.unit in ("", "px") else f"{text} {cell.unit}"


def _with_paper(
    ours: str, ours_value: float | None, paper: float | None, paper_text: str, unit: str = ""
) -> str:
    if paper is None or ours_value is None:
        return ours
    return f"{ours} (paper {paper_text}, {ours_value - paper:+.2f}{unit})"


def _cell(row: Row, dataset: str, metric: str) -> Stat | None:
    return row.average.get(metric) if dataset == AVERAGE else row.cells.get((dataset, metric))


def _paper_value(row: Row, dataset: str, metric: str, paper_average: bool) -> float | None:
    if row.paper is None:
        return None
    if dataset == AVERAGE:
        # The paper's average is over its five data sets; beside any other set of columns it would mislead.
        if not paper_average:
            return None
        return row.paper.avg_dice if metric == "dice" else row.paper.avg_hd95
    return (row.paper.dice if metric == "dice" else row.paper.hd95).get(dataset)


def _metric_cell(row: Row, dataset: str, metric: str, paper_average: bool, pm: str, missing: str) -> str:
    cell = _cell(row, dataset, metric)
    if cell is None:
        return missing
    ours = _stat_text(cell, DIGITS[metric], pm)
    paper = _paper_value(row, dataset, metric, paper_average)
    if paper is None or cell.unit not in ("", "px"):  # the paper's HD95 is in pixels
        return ours
    paper_text = _paper_dice(paper) if metric == "dice" else f"{paper:.2f}"
    return _with_paper(ours, cell.mean, paper, paper_text)


def _values(values: list[float], fmt: Callable[[float], str], missing: str) -> str:
    if not values:
        return missing
    return fmt(values[0]) if len(values) == 1 else f"{fmt(values[0])}–{fmt(values[-1])}"


def _param_cells(row: Row, missing: str) -> list[str]:
    paper = row.paper
    percent = _values(row.percent, lambda v: f"{v:.3g}%", missing)
    percent_paper = _values(row.percent_paper, lambda v: f"{v:.3g}%", missing)
    count = _values(row.trainable, _count, missing)
    if paper is not None and paper.percent is not None and len(row.percent_paper) == 1:
        percent_paper = _with_paper(percent_paper, row.percent_paper[0], paper.percent, f"{paper.percent:g}%")
    if paper is not None and paper.count is not None and len(row.trainable) == 1:
        count = f"{count} (paper {paper.count / 1e6:g}M, {(row.trainable[0] - paper.count) / 1e6:+.2f}M)"
    return [percent, percent_paper, count]


def _columns(table: Table) -> list[tuple[str, str]]:
    # each data set, then its classes when it has several (per-class Dice and HD95), then the average
    keys = [k for d in table.datasets for k in [d, *(f"{d}/{c}" for c in table.classes.get(d, []))]]
    return [(d, m) for d in [*keys, AVERAGE] for m in METRICS]


def _title(key: str) -> str:
    if key == AVERAGE:
        return "Avg"
    dataset, _, name = key.partition("/")
    return f"{dataset_title(dataset)} {name}" if name else dataset_title(dataset)


def _header(table: Table) -> list[str]:
    metric_heads = [f"{_title(d)} {METRIC_TITLES[m]}" for d, m in _columns(table)]
    return [
        "Method",
        "Seeds",
        "Trainable % (base model)",
        "Trainable % (paper: /241M)",
        "Trainable",
        *metric_heads,
    ]


def _body(table: Table, pm: str, missing: str) -> list[list[str]]:
    return [
        [
            row.label,
            str(len(row.seeds)),
            *_param_cells(row, missing),
            *(_metric_cell(row, d, m, table.paper_average, pm, missing) for d, m in _columns(table)),
        ]
        for row in table.rows
    ]


def notes(table: Table, resolution: str, missing: str = MISSING) -> list[str]:
    """The lines that explain the table's conventions (printed under it); ``missing`` marks a missing cell."""
    lines = [
        f"Test metrics at {resolution} resolution: mean±std over seeds (sample std; a single seed shows no ±), "
        "Dice per image then averaged over images, HD95 in pixels (a cell marked mm: at the original "
        "resolution of a data set with a pixel spacing, in millimetres, with no paper number beside it).",
        "(paper x, d): the number in Table 1 of the paper (arXiv 2503.16055) and d = ours − paper; "
        f"{missing}: no run.",
        f"Avg: per seed, the mean over the {len(table.datasets)} data-set columns of this table, then mean±std "
        f"over the seeds that have all of them; {missing} when no seed has every column (for HD95 also when the "
        "columns mix pixels and mm).",
        "Trainable % (base model): against SAM alone (a network trained from scratch: against itself). "
        "Trainable % (paper): the paper's convention, SAM rows divided by 241M (SAM plus the frozen CLIP model).",
    ]
    if not table.paper_average:
        lines.append("The paper's Avg (over its five data sets) is left out: this table's columns differ.")
    if table.classes:
        lines.append(
            "<data set> <class>: the metrics of one class (an image without it scores by the empty-mask rule); "
            "the data set's own columns are the mean over its classes, and only those enter Avg."
        )
    return lines


def to_markdown(table: Table, resolution: str = "model") -> str:
    """Markdown table with a header row, one line per method, and the notes below it."""
    header = _header(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _body(table, "±", MISSING)]
    return "\n".join([*lines, "", *notes(table, resolution)]) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
    ):
        text = text.replace(char, escaped)
    return text.replace("±", r"$\pm$").replace("−", "-").replace("–", "--")


def to_latex(table: Table, resolution: str = "model") -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), the notes as leading ``%`` comments."""
    header = _header(table)
    rows = _body(table, "±", LATEX_MISSING)
    lines = [f"% {line}" for line in notes(table, resolution, LATEX_MISSING)]
    lines += [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule"]
    lines.append(" & ".join(_latex_escape(h) for h in header) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(_latex_escape(c) for c in cells) + r" \\" for cells in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def to_csv(table: Table) -> str:
    """One line per method with plain numbers; empty fields where missing.

    Columns: ``method, seeds``, the parameter ranges (``trainable_min/max``, ``trainable_percent_min/max``,
    ``trainable_percent_paper_min/max``), the paper's ``paper_trainable`` and ``paper_trainable_percent``,
    then for each data set and ``avg``, for Dice and HD95: ``<dataset>_<metric>_{mean,std,n,paper}``, and
    for HD95 its unit, ``<dataset>_hd95_unit`` (``px`` or ``mm``; empty where missing).
    """
    header = ["method", "seeds"]
    for name in ("trainable", "trainable_percent", "trainable_percent_paper"):
        header += [f"{name}_min", f"{name}_max"]
    header += ["paper_trainable", "paper_trainable_percent"]
    for d, m in _columns(table):
        header += [f"{d}_{m}_{part}" for part in ("mean", "std", "n", "paper")]
        header += [f"{d}_{m}_unit"] if m == "hd95" else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = [row.label, len(row.seeds)]
        for values in (row.trainable, row.percent, row.percent_paper):
            line += [_number(values[0]), _number(values[-1])] if values else ["", ""]
        paper = row.paper
        line += [_number(paper.count if paper else None), _number(paper.percent if paper else None)]
        for d, m in _columns(table):
            cell = _cell(row, d, m)
            line += [_number(cell.mean if cell else None), _number(cell.std if cell else None)]
            in_mm = cell is not None and cell.unit not in ("", "px")  # the paper's HD95 is in pixels
            paper = None if in_mm else _paper_value(row, d, m, table.paper_average)
            line += [cell.n if cell else "", _number(paper)]
            line += [cell.unit if cell else ""] if m == "hd95" else []
        writer.writerow(line)
    return out.getvalue()
