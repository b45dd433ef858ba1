"""Files a run leaves behind: metrics.json, per_case.csv, history.csv, curves.png."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import salt
from salt.metrics import MetricAccumulator

log = logging.getLogger(__name__)


def code_version() -> dict:
    """The package version and, inside a git checkout, the commit and whether the tree had changes."""
    info: dict[str, Any] = {"salt": salt.__version__}
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        info.update(commit=commit, dirty=bool(dirty))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def summarize(
    accumulator: MetricAccumulator, resolution: str, class_names: list[str] | None = None
) -> dict | None:
    """Mean/std Dice and HD95 over the cases at ``resolution`` and the count under each empty-mask rule.

    ``hd95_unit`` says what HD95 is in: ``"mm"`` (the original resolution of a data set with
    ``dataset.spacing``) or ``"px"``. With several classes, ``per_class`` holds the same statistics per class,
    keyed by ``class_names`` (the mean over every (image, class) pair is the overall ``dice``/``hd95``).
    """
    summary = accumulator.summary(resolution=resolution)
    if not summary["n_cases"]:
        return None
    renamed = {"dice_mean": "dice", "hd95_mean": "hd95"}
    out = {renamed.get(k, k): v for k, v in summary.items()}
    units = {r.get("hd95_unit", "px") for r in accumulator.rows if r.get("resolution") == resolution}
    if len(units) > 1:
        raise ValueError(f"HD95 rows at {resolution} resolution mix the units {sorted(units)}")
    out["hd95_unit"] = units.pop()
    if "per_class" in out:
        names = class_names if class_names and len(class_names) > max(out["per_class"]) else None
        out["per_class"] = {
            (names[c] if names else str(c)): {renamed.get(k, k): v for k, v in stats.items()}
            for c, stats in out["per_class"].items()
        }
    return out


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(out_dir: Path, rows: list[dict], info: dict) -> dict:
    """Write ``metrics.json`` and ``per_case.csv`` for evaluation ``rows`` into ``out_dir``.

    ``metrics.json`` holds ``mean`` (model resolution, the paper's protocol), ``mean_original`` (mapped back
    to each image's own size, when computed), ``per_case`` and everything in ``info`` (parameters, config,
    checkpoint, code version ...).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    accumulator = MetricAccumulator(key=("name", "class", "resolution"))
    accumulator.merge(rows)
    names = ((info.get("config") or {}).get("dataset") or {}).get("class_names")
    result = {
        **info,
        "mean": summarize(accumulator, "model", names) or {"n_cases": 0},
        "mean_original": summarize(accumulator, "original", names),
        "per_case": rows,
        "code_version": code_version(),
    }
    text = json.dumps(result, indent=2, default=_json_default, allow_nan=True)
    atomic_write_text(out_dir / "metrics.json", text)
    accumulator.to_csv(out_dir / "per_case.csv")
    return result


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


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
