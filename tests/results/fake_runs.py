"""Run folders written by hand in the format the training code leaves behind, with known numbers."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

SAM_TOTAL = 93_735_472  # total of the fake SAM runs, of SAM ViT-B's size
PAPER_DENOMINATOR = 2.41e8


def write_run(
    folder: Path,
    *,
    dataset: str,
    seed: int,
    dice: float | None,
    hd95: float | None,
    method: str = "salt",
    task: str = "train",
    peft: dict | None = None,
    model: dict | None = None,
    trainable: int = 1_100_000,
    dice_original: float | None = None,
    mtime: float | None = None,
    ablation: dict | None = None,
    config: dict | None = None,
) -> Path:
    """Write ``folder/metrics.json`` following the run schema and return ``folder``.

    ``config`` adds top-level keys to the recorded configuration (``{"optim": {"lr": 1e-3}}``).
    """
    model = model or {"family": "sam", "variant": "vit_b", "trainable": ["norm", "pos_embed", "prompt"]}
    peft = {"method": method, **(peft or {})}
    classic = model.get("family") == "classic"
    total = trainable if classic else SAM_TOTAL
    params = {
        "trainable": trainable,
        "total": total,
        "total_base": total,
        "trainable_percent": 100.0 * trainable / total,
        "groups": {},
        "adapters": {},
    }
    if not classic:
        params["trainable_percent_paper"] = 100.0 * trainable / PAPER_DENOMINATOR

    def mean(value: float | None) -> dict | None:
        if value is None:
            return None
        cases = {"both_nonempty": 3, "both_empty": 0, "pred_empty": 0, "gt_empty": 0}
        return {"n_cases": 3, "dice": value, "dice_std": 0.1, "hd95": hd95, "hd95_std": 1.0, "cases": cases}

    metrics = {
        "task": task,
        "dataset": dataset,
        "split": "test",
        "method": "none" if classic else method,
        "model": model.get("name", model.get("variant")),
        "seed": seed,
        "params": params,
        "mean": mean(dice) or {"n_cases": 0},
        "mean_original": mean(dice_original),
        "per_case": [],
        "config": {"model": model, "peft": peft, "dataset": {"name": dataset}, "seed": seed},
        "best_val": None,
        "epochs": 2,
        "global_step": 10,
        "code_version": {"salt": "0.1.0"},
        "checkpoint": None,
        "pretrained": None,
    }
    metrics["config"].update(config or {})
    if ablation is not None:  # the rank-grid experiments' own config key
        metrics["config"]["ablation"] = ablation
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.json"
    path.write_text(json.dumps(metrics))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return folder


def write_history(folder: Path, val_dice: list[float]) -> None:
    """``history.csv`` with a training-loss row and a validation row per epoch (blank cells elsewhere)."""
    with (folder / "history.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "step", "train/loss", "val/dice", "val/hd95", "val/cases"])
        for epoch, dice in enumerate(val_dice):
            writer.writerow([epoch, 5 * epoch + 4, 1.0 / (epoch + 1), "", "", ""])
            writer.writerow([epoch, 5 * epoch + 4, "", dice, 20.0 - epoch, 3])


def write_overlays(folder: Path, names: list[str], size: int = 16) -> None:
    """Small RGB overlay PNGs (white hits, red misses, cyan false positives) under ``folder/overlays``."""
    (folder / "overlays").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        picture = np.zeros((size, size, 3), np.uint8)  # (H, W, 3)
        picture[i % size, :] = (255, 255, 255)
        picture[:, i % size] = (255, 0, 0)
        picture[-1, -1] = (0, 255, 255)
        Image.fromarray(picture).save(folder / "overlays" / f"{name}.png")
