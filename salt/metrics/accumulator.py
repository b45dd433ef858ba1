"""Collect per-case metrics over a data set, summarise them, and combine results from several processes."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist

from salt.metrics.segmentation import CASES, as_mask, multiclass_metrics

log = logging.getLogger(__name__)

RESERVED = ("name", "class", "dice", "hd95", "case")


def _stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    # Population std (ddof=0): defined for a single case, and these are all the cases there are.
    dice = np.array([r["dice"] for r in rows], dtype=float)
    hd95 = np.array([r["hd95"] for r in rows], dtype=float)
    empty = len(rows) == 0
    return {
        "dice_mean": math.nan if empty else float(dice.mean()),
        "dice_std": math.nan if empty else float(dice.std()),
        "hd95_mean": math.nan if empty else float(hd95.mean()),
        "hd95_std": math.nan if empty else float(hd95.std()),
        "cases": {case: sum(r["case"] == case for r in rows) for case in CASES},
    }


class MetricAccumulator:
    """Per-case Dice/HD95 rows (see :mod:`salt.metrics.segmentation` for the policy) and their summary.

    A row is ``{"name", "class", "dice", "hd95", "case", **extra}`` and is identified by its ``key``
    columns, ``(name, class)`` unless told otherwise: adding or merging a row whose key is already
    present keeps the first one, so a case seen twice (a distributed sampler pads the last batch by
    repeating cases) is counted once. A repeat whose metrics differ from the kept row is logged as a
    warning, since two different images then share a key. When one case is scored several ways (e.g.
    at the model's and at the original resolution), add the distinguishing extra column to ``key``
    and pick one way in :meth:`summary`.

    Usage in data-parallel evaluation: every process calls :meth:`add` for its cases, then
    :meth:`gather_distributed` (or :meth:`merge` of the other processes' :meth:`state`) before
    :meth:`summary`.

    Args:
        key: the columns that identify a row; must include ``"name"`` and ``"class"``.
    """

    def __init__(self, key: Sequence[str] = ("name", "class")) -> None:
        if "name" not in key or "class" not in key:
            raise ValueError(f"the row key must include 'name' and 'class', got {tuple(key)}")
        self.key = tuple(key)
        self._rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows in the order they were first added (copies; add rows with :meth:`add` or :meth:`merge`)."""
        return [dict(r) for r in self._rows.values()]

    def __len__(self) -> int:
        return len(self._rows)

    def _insert(self, row: dict[str, Any]) -> None:
        missing = [k for k in (*RESERVED, *self.key) if k not in row]
        if missing:
            raise ValueError(f"metric row lacks the column(s) {missing}: {row}")
        key = tuple(row[k] for k in self.key)
        kept = self._rows.get(key)
        if kept is None:
            self._rows[key] = row
        elif (kept["dice"], kept["hd95"], kept["case"]) != (row["dice"], row["hd95"], row["case"]):
            log.warning(
                "row %s was added twice with different metrics; keeping the first", dict(zip(self.key, key))
            )

    def add(
        self,
        name: str,
        pred: Any,
        gt: Any,
        fov: Any | None = None,
        spacing: Sequence[float] = (1.0, 1.0),
        class_names: Sequence[str] | None = None,
        **extra: Any,
    ) -> list[dict[str, Any]]:
        """Score one case and store one row per class.

        This is the one place where evaluation, validation and the metrics tests turn masks into rows.

        Args:
            name: unique case name (e.g. the image stem).
            pred: predicted mask ``(H, W)`` or ``(C, H, W)``, bool or 0/1 (numpy or torch).
            gt: ground-truth mask of the same shape.
            fov: optional field-of-view mask ``(H, W)``.
            spacing: pixel size ``(sy, sx)`` for HD95.
            class_names: when given, every row also gets ``class_name`` (the class index as text for a
                class past the end of the list).
            **extra: further columns stored in every row of this case (e.g. ``resolution="original"``).

        Returns:
            The rows computed for this case.
        """
        clash = sorted(set(extra) & {*RESERVED, "class_name"})
        if clash:
            raise ValueError(f"extra column names {clash} are reserved for the metric rows")
        pred_np, gt_np = as_mask(pred, "pred"), as_mask(gt, "gt")
        if pred_np.ndim == 2:
            pred_np, gt_np = pred_np[None], gt_np[None]  # (1, H, W)
        results = multiclass_metrics(pred_np, gt_np, spacing=spacing, fov=fov)
        if class_names is not None:
            for r in results:
                c = r["class"]
                r["class_name"] = str(class_names[c]) if c < len(class_names) else str(c)
        rows = [{"name": str(name), **r, **extra} for r in results]
        for row in rows:
            self._insert(row)
        return rows

    def state(self) -> list[dict[str, Any]]:
        """The rows as plain picklable data, for ``merge`` in another process."""
        return self.rows

    def merge(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add ready-made rows (another accumulator's :meth:`state`); keys already present are kept as they are."""
        for row in rows:
            self._insert(dict(row))

    def gather_distributed(self) -> None:
        """Merge the rows of every process of the default ``torch.distributed`` group into each process.

        Does nothing when no process group is initialised (single-process runs).
        """
        if not (dist.is_available() and dist.is_initialized()):
            return
        states: list[list[dict[str, Any]] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(states, self.state())
        for state in states:
            self.merge(state or [])

    def summary(self, **where: Any) -> dict[str, Any]:
        """Mean and population std of Dice and HD95 over the rows, and how many hit each empty-case rule.

        Args:
            **where: keep only rows whose columns equal these values (e.g. ``resolution="original"``).

        Returns:
            ``{"n_cases", "dice_mean", "dice_std", "hd95_mean", "hd95_std", "cases": {case: count}}``
            where ``n_cases`` counts distinct case names; means are NaN when no row is selected. With more
            than one class a ``"per_class"`` entry holds the same statistics for each class index.
        """
        rows = [r for r in self._rows.values() if all(r.get(k) == v for k, v in where.items())]
        summary = {"n_cases": len({r["name"] for r in rows}), **_stats(rows)}
        classes = sorted({r["class"] for r in rows})
        if len(classes) > 1:
            summary["per_class"] = {c: _stats([r for r in rows if r["class"] == c]) for c in classes}
        return summary

    def to_csv(self, path: str | Path) -> Path:
        """Write the rows, sorted by their key so that the file does not depend on process order.

        Columns: ``name, class, dice, hd95, case`` then the extra columns in first-seen order.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = list(RESERVED)
        for row in self._rows.values():
            columns += [k for k in row if k not in columns]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for key in sorted(self._rows):
                writer.writerow(self._rows[key])
        return path
