"""What training alone leaves behind: the per-epoch history.csv and curves.png drawn from it."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


def write_history(out_dir: Path, history: list[dict]) -> None:
    """Write the per-epoch training history to ``history.csv`` and draw ``curves.png`` from it."""
    from salt.viz import plot_curves

    out_dir.mkdir(parents=True, exist_ok=True)
    fields = sorted({k for row in history for k in row}, key=lambda k: (k not in ("epoch", "step"), k))
    path = out_dir / "history.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in history:
            writer.writerow(
                {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            )
    try:
        plot_curves(path, out_dir / "curves.png")
    except (ValueError, KeyError) as exc:
        log.warning("could not draw training curves: %s", exc)
