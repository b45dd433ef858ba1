"""Per-image evaluation of a batch: the network's logits of whole images, metrics at the model's resolution and
at the original one, overlays (each class in its colour, the box or point prompts drawn, a legend below).

Training's validation and test steps and ``eval.py`` share these functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from salt.data.transforms import to_image_coords
from salt.metrics import MetricAccumulator
from salt.model.sliding import sliding_window_logits
from salt.viz import ShownPrompts, save_overlay

# A row of evaluation results is one (image, class, resolution).
ROW_KEY = ("name", "class", "resolution")
# The batch entries that are prompts (salt.data.prompts), passed to the network beside the images.
PROMPT_KEYS = ("box", "box_valid", "points", "point_labels")


def batch_logits(model: nn.Module, batch: Mapping) -> torch.Tensor:
    """Logits ``(B, C, S, S)`` of ``batch["image"] (B, 3, S, S)`` in [0, 255], with the box or point prompts the
    batch carries (``salt.data.prompts``)."""
    prompts = {k: batch[k] for k in PROMPT_KEYS if k in batch}
    return model(batch["image"], prompts) if prompts else model(batch["image"])


def whole_image_logits(model: nn.Module, batch: Mapping, patch: Mapping | None, window: int) -> torch.Tensor:
    """Logits ``(B, C, H, W)`` of a batch of whole images ``(B, 3, H, W)``.

    Args:
        model: the network.
        batch: a collated batch (``image`` and any prompts).
        patch: the run's ``patch`` config: a sliding window of side ``window`` over each image, blended as it
            says (``overlap``, ``blend``, ``sw_batch_size``, test-time flips ``tta``: none when absent); None:
            one forward pass of the ``(B, 3, S, S)`` input (resized mode).
        window: the network's input side ``S``.
    """
    if patch is None:
        return batch_logits(model, batch)
    return sliding_window_logits(
        model,
        batch["image"],
        window=int(window),
        overlap=float(patch["overlap"]),
        blend=str(patch["blend"]),
        sw_batch_size=int(patch["sw_batch_size"]),
        tta=str(patch.get("tta", "none")),
    )


def label_image(prob: torch.Tensor, threshold: float) -> np.ndarray:
    """``(H, W)`` uint8 mask from probabilities ``(C, H, W)``: 0/255 for one class, else 0..C."""
    fg = prob > threshold  # (C, H, W)
    if prob.shape[0] == 1:
        return fg[0].numpy().astype(np.uint8) * 255
    labels = prob.argmax(0).numpy().astype(np.uint8) + 1  # (H, W)
    labels[~fg.any(0).numpy()] = 0
    return labels


def shown_prompts(
    batch: dict, i: int, to_image: Callable[[np.ndarray], np.ndarray] | None = None
) -> ShownPrompts:
    """The box or point prompts item ``i`` of ``batch`` was given, for its overlay.

    Args:
        batch: a collated batch; ``box (B, C, 4)`` with ``box_valid (B, C)``, or ``points (B, C, K, 2)``
            with ``point_labels (B, C, K)`` (-1: no point), in model-input pixels.
        to_image: maps ``(..., 2)`` model-input ``x, y`` onto the picture drawn (None: the model input).
    """
    move = to_image or (lambda xy: xy)
    shown = ShownPrompts()
    if "box" in batch:
        boxes, valid = batch["box"][i].cpu().numpy(), batch["box_valid"][i].cpu().numpy()  # (C, 4), (C,)
        shown.boxes = {c: move(boxes[c].reshape(2, 2)).reshape(4) for c in range(len(boxes)) if valid[c]}
    if "points" in batch:
        points, labels = batch["points"][i].cpu().numpy(), batch["point_labels"][i].cpu().numpy()
        for c in range(len(points)):  # (K, 2), (K,)
            keep = labels[c] >= 0
            if keep.any():
                shown.points[c], shown.labels[c] = move(points[c][keep]), labels[c][keep]
    return shown


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
    mask_dir: Path | None = None,
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
        mask_dir: where each case's predicted mask goes as ``<name>.png`` (:func:`label_image`: 0/255 for one
            class, 0..C for several), at the original size when ``dataset`` is given, else at the model's.
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
        image, pred_show, gt_show = None, pred.numpy(), masks[i].numpy()  # (C, S, S) each
        fov_show = fovs[i].numpy()  # (S, S)
        to_image, prob_written = None, probs[i]
        if dataset is not None:
            original = dataset.original(index)
            prob_written = dataset.to_original(probs[i], index)  # (C, H, W)
            pred_o = (prob_written > threshold).numpy()
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
            image, pred_show, gt_show = original["image"], pred_o, original["mask"]  # (C, H, W) masks
            fov_show = original["fov"]  # (H, W)
            if "box" in batch or "points" in batch:  # prompts are in model-input pixels (resized mode)
                to_image = partial(
                    to_image_coords, orig_size=image.shape[:2], size=dataset.img_size, mode=dataset.resize
                )
        if mask_dir is not None:
            mask_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(label_image(prob_written, threshold)).save(mask_dir / f"{name}.png")
        if overlay_dir is not None and index < overlays:
            if image is None:
                image = batch["image"][i].permute(1, 2, 0).clamp(0, 255).byte().cpu().numpy()  # (S, S, 3)
            prompts = shown_prompts(batch, i, to_image)
            save_overlay(
                overlay_dir / f"{name}.png",
                image,
                pred_show,
                gt_show,
                class_names=names,
                prompts=prompts,
                fov=fov_show,
            )
