"""Results as data: collecting finished runs, tables beside the paper's Table 1 (``salt.paper``), and the comparison figures.

The names below are imported from their modules on first use, so that a script needing only a table
does not load the image readers and plotting the figures need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from salt.results.aggregate import Row, Stat, Table, build_table
    from salt.results.collect import Run, RunError, find_runs, load_run, row_label
    from salt.results.plots import plot_dice_vs_params, plot_training_curves
    from salt.results.qualitative import overlay_grid
    from salt.results.table import to_csv, to_latex, to_markdown

_MODULES = {
    "aggregate": ("Row", "Stat", "Table", "build_table"),
    "collect": ("Run", "RunError", "find_runs", "load_run", "row_label"),
    "plots": ("plot_dice_vs_params", "plot_training_curves"),
    "qualitative": ("overlay_grid",),
    "table": ("to_csv", "to_latex", "to_markdown"),
}
_SOURCE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
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


def __getattr__(name: str) -> Any:
    if name not in _SOURCE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
