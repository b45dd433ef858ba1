"""Results as data: collecting finished runs, Table 1 of the paper, and the comparison figures."""

from salt.results.aggregate import Row, Stat, Table, build_table
from salt.results.collect import Run, RunError, find_runs, load_run, row_label
from salt.results.paper import PAPER_DATASETS, PAPER_TABLE1, PaperRow
from salt.results.plots import plot_dice_vs_params, plot_training_curves
from salt.results.qualitative import overlay_grid
from salt.results.table import to_csv, to_latex, to_markdown

__all__ = [
    "PAPER_DATASETS",
    "PAPER_TABLE1",
    "PaperRow",
    "Row",
    "Run",
    "RunError",
    "Stat",
    "Table",
    "build_table",
    "find_runs",
    "load_run",
    "overlay_grid",
    "plot_dice_vs_params",
    "plot_training_curves",
    "row_label",
    "to_csv",
    "to_latex",
    "to_markdown",
]
