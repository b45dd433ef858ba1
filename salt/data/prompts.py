"""Box and point prompts derived from a ground-truth mask, as SAM-style tools train and evaluate with them.

Per image and class, in model-input pixel coordinates (x = column, y = row, SAM's convention):

- box: ``(x0, y0, x1, y1)``, the extreme foreground pixels (MedSAM's and LiteMedSAM's box), moved outward
  by up to ``jitter`` pixels per side while training (MedSAM's ``bbox_shift``), kept inside the image.
- points: ``k`` positive points drawn uniformly from the foreground and ``k`` negative points from the
  background inside the valid region (field of view, not padding); label 1 positive, 0 negative, -1 for
  the slots left empty when the mask has too few pixels (SAM's "not a point").

A class absent from the image has no box (``box_valid`` False) and no points (all labels -1). The prompts
are computed from the mask after augmentation, so they follow the image exactly; evaluation draws them
with a generator seeded by (seed, image index, class), so every run scores the same prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from salt.data.layout import DatasetError
from salt.errors import ConfigError

PROMPT_MODES = ("class", "box", "point", "class+box", "class+point")
# The value of each option where its mode does not read it: what configs/prompt/<mode>.yaml writes there.
UNUSED_VALUES: dict[str, Any] = {"box_jitter": 0, "eval_box_jitter": 0, "points": 1, "seed": 0}
# Which prompt kind (salt.data.prompts.prompt_kinds) reads each option.
_READ_BY = {
    "box_jitter": ("box",),
    "eval_box_jitter": ("box",),
    "points": ("point",),
    "seed": ("box", "point"),
}


def prompt_kinds(mode: str) -> tuple[bool, str | None]:
    """``(uses the class token, "box" | "point" | None)`` for a prompt ``mode``."""
    if mode not in PROMPT_MODES:
        raise DatasetError(f"prompt.mode: unknown mode {mode!r} (valid: {', '.join(PROMPT_MODES)})")
    kind = mode.removeprefix("class").lstrip("+") or None
    return mode.startswith("class"), kind


def check_prompt_options(prompt: Mapping[str, Any]) -> None:
    """Refuse an option of ``prompt`` (the ``prompt`` config) that its mode does not read, in one line.

    ``prompt=class prompt.box_jitter=5`` would otherwise train exactly as ``prompt=class`` while the run's
    configuration records a jitter. An option at its unused value (:data:`UNUSED_VALUES`) or null passes.

    Raises:
        ConfigError: naming the option, its value, the mode and the modes that read it.
    """
    mode = str(prompt.get("mode") or "class")
    kind = prompt_kinds(mode)[1]
    for option, unused in UNUSED_VALUES.items():
        value = prompt.get(option)
        if kind in _READ_BY[option] or value is None or value == unused:
            continue
        readers = [m for m in PROMPT_MODES if prompt_kinds(m)[1] in _READ_BY[option]]
        raise ConfigError(
            f"prompt.{option}={value!r} does nothing with prompt.mode={mode}: only {', '.join(readers)} "
            f"read it; drop the setting or choose one of those modes"
        )


@dataclass(frozen=True)
class PromptSettings:
    """How prompts are drawn from the ground truth (``configs/prompt/<mode>.yaml``).

    Attributes:
        mode: one of :data:`PROMPT_MODES`.
        box_jitter: training: each box side moves outward by a uniform integer in ``[0, box_jitter]`` px.
        eval_box_jitter: the same at evaluation (0: the exact box).
        points: ``k``, the number of positive and of negative points per class.
        seed: base seed of the evaluation prompts.
    """

    mode: str = "class"
    box_jitter: int = 5
    eval_box_jitter: int = 0
    points: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        prompt_kinds(self.mode)
        for key in ("box_jitter", "eval_box_jitter"):
            if int(getattr(self, key)) < 0:
                raise DatasetError(f"prompt.{key}: must be >= 0, got {getattr(self, key)}")
        if int(self.points) < 1:
            raise DatasetError(f"prompt.points: must be >= 1, got {self.points}")

    @property
    def kind(self) -> str | None:
        """``"box"``, ``"point"`` or None (class token only)."""
        return prompt_kinds(self.mode)[1]


def box_from_mask(mask: np.ndarray) -> np.ndarray | None:
    """``(x0, y0, x1, y1)`` float32 of the extreme foreground pixels of ``mask (H, W)``, or None if empty."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32)


def jitter_box(box: np.ndarray, jitter: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``box`` with each side moved outward by a uniform integer in ``[0, jitter]``, clipped to ``[0, size-1]``."""
    if jitter <= 0:
        return box
    shift = rng.integers(0, jitter + 1, 4).astype(np.float32) * np.array([-1, -1, 1, 1], dtype=np.float32)
    return np.clip(box + shift, 0, size - 1).astype(np.float32)


def sample_points(
    mask: np.ndarray, valid: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` positive and ``k`` negative points of ``mask (H, W)`` inside ``valid (H, W)``.

    Returns:
        points ``(2k, 2)`` float32 (x, y) and labels ``(2k,)`` int64: positives first (1), then negatives
        (0); slots without a pixel to draw (fewer than k in the mask or the background) are ``-1`` at (0, 0).
        An empty mask gets no points at all (every label -1).
    """
    points = np.zeros((2 * k, 2), dtype=np.float32)
    labels = np.full(2 * k, -1, dtype=np.int64)
    foreground = mask & valid
    if not foreground.any():
        return points, labels
    for offset, region, label in ((0, foreground, 1), (k, valid & ~mask, 0)):
        rows, cols = np.nonzero(region)
        take = min(k, rows.size)
        chosen = rng.choice(rows.size, size=take, replace=False)
        points[offset : offset + take] = np.stack([cols[chosen], rows[chosen]], axis=1)
        labels[offset : offset + take] = label
    return points, labels


def ground_truth_prompts(
    masks: torch.Tensor, valid: torch.Tensor, settings: PromptSettings, rng: np.random.Generator, train: bool
) -> dict[str, torch.Tensor]:
    """The prompts of one image from its masks.

    Args:
        masks: ``(C, S, S)`` 0/1 ground truth at model resolution.
        valid: ``(S, S)`` bool region points may fall in (field of view and image content).
        settings: the prompt settings; ``train`` picks ``box_jitter`` or ``eval_box_jitter``.
        rng: the generator of this image's draws.

    Returns:
        ``box (C, 4)`` float32, ``box_valid (C,)`` bool, ``points (C, 2k, 2)`` float32 and
        ``point_labels (C, 2k)`` int64; only the keys of ``settings.kind``.
    """
    if settings.kind is None:
        return {}
    masks_np, valid_np = masks.numpy() > 0.5, valid.numpy()
    size = masks_np.shape[-1]
    if settings.kind == "box":
        jitter = settings.box_jitter if train else settings.eval_box_jitter
        boxes, present = [], []
        for mask in masks_np:
            box = box_from_mask(mask)
            present.append(box is not None)
            boxes.append(np.zeros(4, np.float32) if box is None else jitter_box(box, jitter, size, rng))
        return {"box": torch.from_numpy(np.stack(boxes)), "box_valid": torch.tensor(present)}
    drawn = [sample_points(mask, valid_np, settings.points, rng) for mask in masks_np]
    return {
        "points": torch.from_numpy(np.stack([p for p, _ in drawn])),
        "point_labels": torch.from_numpy(np.stack([lab for _, lab in drawn])),
    }
