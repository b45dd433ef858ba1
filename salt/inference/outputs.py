"""What an evaluation leaves behind: metrics.json and per_case.csv, and the log lines of its mean scores."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

import salt
from salt.inference.evaluation import ROW_KEY
from salt.metrics import MetricAccumulator
from salt.model import parameter_summary
from salt.peft import count_adapter_parameters

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


def parameter_report(model: nn.Module, cfg: Mapping) -> dict:
    """Trainable/total counts of ``model`` against SAM alone and in the paper's convention
    (``model.paper_param_denominator`` of the run configuration ``cfg``), with the adapter breakdown."""
    summary = parameter_summary(model, paper_denominator=cfg["model"].get("paper_param_denominator"))
    summary["adapters"] = count_adapter_parameters(model)
    return summary


def run_info(
    task: str,
    config: Mapping,
    split: str,
    checkpoint: str | None,
    build_info: Mapping,
    params: dict,
    prompt: dict | None,
    **extra: Any,
) -> dict:
    """What ``metrics.json`` records about an evaluated network beside its scores (see :func:`write_results`).

    Args:
        task: ``train`` (tested after training) or ``eval`` (tested as built, or by eval.py).
        config: the run configuration the network was built from (recorded last, under ``config``).
        split: the data split scored.
        checkpoint: the checkpoint scored (None: the network as built).
        build_info: what building the network recorded (``peft``, ``checkpoint``, ``ranks``).
        params: the parameter counts (:func:`parameter_report`).
        prompt: the prompt settings the images were scored with.
        extra: further entries, recorded after ``prompt`` (training's ``zero_shot``, ``best_val``, ...).
    """
    return {
        "task": task,
        "dataset": config["dataset"]["name"],
        "split": split,
        "method": build_info["peft"]["method"],
        "model": config["model"]["variant"],
        "seed": config.get("seed"),
        "checkpoint": checkpoint,
        "pretrained": build_info["checkpoint"],
        "params": params,
        "adapters": build_info["ranks"],
        "prompt": prompt,
        **extra,
        "config": config,
    }


def write_results(out_dir: Path, rows: list[dict], info: dict) -> dict:
    """Write ``metrics.json`` and ``per_case.csv`` for evaluation ``rows`` into ``out_dir``.

    ``metrics.json`` holds ``mean`` (model resolution, the paper's protocol), ``mean_original`` (mapped back
    to each image's own size, when computed), ``per_case`` and everything in ``info`` (parameters, config,
    checkpoint ...). ``code_version`` is ``info["code_version"]`` (:func:`code_version` read when the job
    started) when given, else read now.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    accumulator = MetricAccumulator(key=ROW_KEY)
    accumulator.merge(rows)
    names = ((info.get("config") or {}).get("dataset") or {}).get("class_names")
    result = {
        **info,
        "mean": summarize(accumulator, "model", names) or {"n_cases": 0},
        "mean_original": summarize(accumulator, "original", names),
        "per_case": rows,
    }
    # A job reads the version when it starts (the checkout may change while it trains); otherwise it is now.
    result["code_version"] = info.get("code_version") or code_version()
    text = json.dumps(result, indent=2, default=_json_default, allow_nan=True)
    atomic_write_text(out_dir / "metrics.json", text)
    accumulator.to_csv(out_dir / "per_case.csv")
    return result


def report(result: dict, out_dir: Path, split: str = "test") -> None:
    """Log the mean scores on ``split`` at each resolution (with several classes, a line per class too), with
    HD95's unit, and where outputs went."""
    for key, where in (("mean", "model resolution"), ("mean_original", "original resolution")):
        mean = result.get(key) or {}
        if "dice" not in mean:
            continue
        unit = mean.get("hd95_unit", "px")
        log.info(
            "%s: Dice %.4f  HD95 %.2f %s over %d cases (%s)",
            split,
            mean["dice"],
            mean["hd95"],
            unit,
            mean["n_cases"],
            where,
        )
        for name, stats in (mean.get("per_class") or {}).items():
            log.info(
                "%s, class %s: Dice %.4f  HD95 %.2f %s (%s)",
                split,
                name,
                stats["dice"],
                stats["hd95"],
                unit,
                where,
            )
    dataset = (result.get("config") or {}).get("dataset") or {}
    if result.get("mean") and not result.get("mean_original") and dataset.get("spacing") is not None:
        log.info(
            "dataset.spacing gives mm at the original resolution, which eval.original_resolution=false leaves "
            "out: HD95 is in model pixels"
        )
    log.info("outputs in %s", out_dir)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
