"""Pictures of results: prediction overlays, training curves, method comparison grids."""

from salt.viz.curves import plot_curves, read_metrics
from salt.viz.grid import grid_panels, qualitative_grid, save_grid
from salt.viz.overlay import (
    BACKGROUND_DIM,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    TRUE_POSITIVE,
    ShownPrompts,
    class_colours,
    overlay,
    save_overlay,
)

__all__ = [
    "BACKGROUND_DIM",
    "FALSE_NEGATIVE",
    "FALSE_POSITIVE",
    "TRUE_POSITIVE",
    "ShownPrompts",
    "class_colours",
    "grid_panels",
    "overlay",
    "plot_curves",
    "qualitative_grid",
    "read_metrics",
    "save_grid",
    "save_overlay",
]
