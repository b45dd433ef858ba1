"""Per-image evaluation of a batch: metrics at the model's resolution and at the original one, overlays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from salt.metrics import MetricAccumulator
from salt.viz import save_overlay


def evaluate_batch(
    logits: torch.Tensor,
    batch: dict,
    threshold: float,
    accumulator: MetricAccumulator,
    dataset: Any | None = None,
    overlay_dir: Path | None = None,
    overlays: int = 0,
    class_names: list[str] | None = None,
    spacing: Sequence[float] | None = None,
) -> None:
    """Score every image and class of a batch into ``accumulator`` (through :meth:`MetricAccumulator.add`).

    Args:
        logits: ``(B, C, S, S)`` network output.
        batch: a collated batch of :class:`salt.data.VesselDataset` items (``mask (B, C, S, S)``,
            ``fov (B, 1, S, S)``, ``name``, ``index``).
        threshold: probability above which a pixel is foreground.
        accumulator: receives one row per (image, class, resolution): ``name, class, dice, hd95, case,
            class_name, index, resolution``; its key must include ``resolution``.
        dataset: the batch's dataset; when given, predictions are also mapped back to each image's original
            size and scored against the original mask and field of view (``resolution="original"`` rows).
        overlay_dir: where overlay PNGs go (original resolution when ``dataset`` is given).
        overlays: overlays are written for cases whose dataset index is below this number.
        class_names: names of the classes, recorded in each row as ``class_name`` (the index as text without).
        spacing: the data set's pixel size ``(row, col)`` in mm (``dataset.spacing``), or None. It is the size
            of an original pixel, so it applies to the original-resolution rows, whose HD95 is then in mm;
            HD95 at the model's resolution stays in model pixels (the paper's protocol). Every row records
            its unit in ``hd95_unit`` (``"mm"`` or ``"px"``).
    """
    names = list(class_names or [])
    probs = torch.sigmoid(logits).cpu()  # (B, C, S, S)
    masks = batch["mask"].cpu() > 0.5  # (B, C, S, S)
    fovs = batch["fov"].cpu()[:, 0].bool()  # (B, S, S)
    for i in range(len(probs)):
        name, index = str(batch["name"][i]), int(batch["index"][i])
        pred = probs[i] > threshold  # (C, S, S)
        accumulator.add(
            name,
            pred,
            masks[i],
            fov=fovs[i],
            class_names=names,
            index=index,
            resolution="model",
            hd95_unit="px",
        )
        image, pred_show, gt_show = None, pred.any(0).numpy(), masks[i].any(0).numpy()
        if dataset is not None:
            original = dataset.original(index)
            pred_o = (dataset.to_original(probs[i], index) > threshold).numpy()  # (C, H, W)
            accumulator.add(
                name,
                pred_o,
                original["mask"],
                fov=original["fov"],
                spacing=(1.0, 1.0) if spacing is None else tuple(spacing),
                class_names=names,
                index=index,
                resolution="original",
                hd95_unit="px" if spacing is None else "mm",
            )
            image, pred_show, gt_show = original["image"], pred_o.any(0), original["mask"].any(0)
        if overlay_dir is not None and index < overlays:
            if image is None:
                image = batch["image"][i].permute(1, 2, 0).clamp(0, 255).byte().cpu().numpy()  # (S, S, 3)
            save_overlay(overlay_dir / f"{name}.png", image, pred_show, gt_show)
