"""Colour-coded overlays of a predicted mask (and its ground truth) on the input image, with the prompts that
were given and a legend.

One class: found (true positive) white, missed (false negative) red, false positive cyan. Several classes:
each class's found pixels in its own colour (:func:`class_colours`), missed and false positives still red and
cyan. Boxes are outlined (yellow, or the class's colour with several classes); positive points are green
dots, negative points magenta, both ringed in black. :func:`save_overlay` writes the picture with a legend
strip below it: the top-left ``H x W`` of the PNG is the overlay itself (a picture narrower than its legend
gets a dark margin on the right).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from salt.metrics.segmentation import as_mask

TRUE_POSITIVE = (255, 255, 255)  # white: vessel found
FALSE_NEGATIVE = (255, 0, 0)  # red: vessel missed
FALSE_POSITIVE = (0, 255, 255)  # cyan: predicted where there is no vessel
BOX = (255, 255, 0)  # yellow: the box prompt of a single class
POSITIVE_POINT = (0, 255, 0)  # green: a point on the object
NEGATIVE_POINT = (255, 0, 255)  # magenta: a point off the object
RING = (0, 0, 0)
LEGEND_BACKGROUND = (32, 32, 32)
LEGEND_TEXT = (255, 255, 255)
BACKGROUND_DIM = 0.5
# Hues (degrees) a class colour keeps away from: red (missed) and cyan (false positive).
_RESERVED_HUES = (0.0, 180.0)
_HUE_MARGIN = 25.0

Colour = tuple[int, int, int]


@dataclass
class ShownPrompts:
    """The prompts given for one image, per class index, in the overlay's pixel coordinates.

    Attributes:
        boxes: class -> ``(4,)`` box ``x0, y0, x1, y1``.
        points: class -> ``(P, 2)`` points ``x, y``.
        labels: class -> ``(P,)`` labels, 1 on the object, 0 off it (others are not drawn).
    """

    boxes: dict[int, np.ndarray] = field(default_factory=dict)
    points: dict[int, np.ndarray] = field(default_factory=dict)
    labels: dict[int, np.ndarray] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.boxes) or any(len(p) for p in self.points.values())


def class_colours(count: int) -> list[Colour]:
    """The colour of each class's found pixels: white for a single class, else distinct saturated hues
    (golden-angle steps) that keep away from red and cyan."""
    if count <= 1:
        return [TRUE_POSITIVE] * max(count, 1)
    colours: list[Colour] = []
    hue = 50.0
    while len(colours) < count:
        if all(min(abs(hue - h), 360 - abs(hue - h)) > _HUE_MARGIN for h in _RESERVED_HUES):
            value = 1.0 if len(colours) % 2 == 0 else 0.8
            r, g, b = colorsys.hsv_to_rgb(hue / 360, 0.85, value)
            colours.append((round(r * 255), round(g * 255), round(b * 255)))
        hue = (hue + 137.508) % 360
    return colours


def as_rgb(image: Any) -> np.ndarray:
    """Check that ``image`` is ``(H, W, 3)`` uint8 (or ``(H, W)`` grey, expanded to RGB) and return it."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)  # (H, W) -> (H, W, 3)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) or (H, W), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    return image


def _class_masks(mask: Any, name: str, size: tuple[int, int]) -> np.ndarray:
    """``(C, H, W)`` bool from an ``(H, W)`` or ``(C, H, W)`` mask of the image's size."""
    array = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    masks = array[None] if array.ndim == 2 else array
    if masks.ndim != 3:
        raise ValueError(f"{name} must be (H, W) or (C, H, W), got shape {array.shape}")
    if masks.shape[1:] != size:
        raise ValueError(f"{name} shape {masks.shape[1:]} differs from the image size {size}")
    return np.stack([as_mask(m, name) for m in masks])


def overlay(
    image: Any, pred: Any, gt: Any | None = None, dim: float = BACKGROUND_DIM, fov: Any | None = None
) -> np.ndarray:
    """Paint ``pred`` against ``gt`` on a darkened copy of ``image``.

    Colours: found pixels white (with several classes, each class's colour from :func:`class_colours`),
    missed ones red, false positives cyan; every other pixel is the image scaled by ``dim``. Without ``gt``
    the prediction is painted as found.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (``(H, W)`` grey is accepted too).
        pred: predicted mask ``(H, W)`` or one per class ``(C, H, W)``, bool or 0/1.
        gt: ground truth of ``pred``'s shape, or None.
        dim: brightness factor of the background, in [0, 1].
        fov: ``(H, W)`` the field of view, where the metrics are scored, or None (everywhere). Outside it
            nothing is painted: the pixels there are the darkened image, as they count for no metric.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    rgb = as_rgb(image)
    preds = _class_masks(pred, "pred", rgb.shape[:2])  # (C, H, W)
    gts = None if gt is None else _class_masks(gt, "gt", rgb.shape[:2])
    if gts is not None and gts.shape[0] != preds.shape[0]:
        raise ValueError(f"gt has {gts.shape[0]} classes, pred {preds.shape[0]}")
    if fov is not None:
        inside = _class_masks(fov, "fov", rgb.shape[:2]).any(0)  # (H, W)
        preds = preds & inside
        gts = None if gts is None else gts & inside
    out = (rgb.astype(np.float32) * dim).round().astype(np.uint8)
    colours = class_colours(len(preds))
    if gts is None:
        for c, p in enumerate(preds):
            out[p] = colours[c]
        return out
    for p, g in zip(preds, gts):
        out[~p & g] = FALSE_NEGATIVE
        out[p & ~g] = FALSE_POSITIVE
    for c, (p, g) in enumerate(zip(preds, gts)):  # found pixels over any other class's error
        out[p & g] = colours[c]
    return out


def _scale(width: int, height: int) -> int:
    """A line width / marker unit for a picture of this size (1 px at 256 px and below)."""
    return max(1, round(max(width, height) / 256))


def draw_prompts(picture: np.ndarray, prompts: ShownPrompts, classes: int) -> np.ndarray:
    """``picture (H, W, 3)`` uint8 with ``prompts`` drawn on a copy: boxes outlined, points as ringed dots."""
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    unit = _scale(canvas.width, canvas.height)
    colours = class_colours(classes)
    for c, box in sorted(prompts.boxes.items()):
        x0, y0, x1, y1 = (float(v) for v in box)
        # A dark line just outside keeps the outline visible on pixels of its own colour.
        draw.rectangle([x0 - unit, y0 - unit, x1 + unit, y1 + unit], outline=RING, width=unit)
        draw.rectangle([x0, y0, x1, y1], outline=BOX if classes == 1 else colours[c], width=unit)
    radius = 2 * unit + 1
    for c, points in sorted(prompts.points.items()):
        labels = prompts.labels.get(c, np.ones(len(points)))
        for (x, y), label in zip(np.asarray(points, dtype=float), np.asarray(labels)):
            if label not in (0, 1):
                continue
            fill = POSITIVE_POINT if label == 1 else NEGATIVE_POINT
            draw.ellipse(
                [x - radius, y - radius, x + radius, y + radius], fill=fill, outline=RING, width=unit
            )
    return np.asarray(canvas)


def legend_entries(
    classes: int,
    class_names: Sequence[str] | None = None,
    with_truth: bool = True,
    prompts: ShownPrompts | None = None,
) -> list[tuple[str, Colour, str]]:
    """What an overlay's legend lists: ``(text, colour, swatch)`` with swatch ``fill``, ``outline`` or ``dot``."""
    names = list(class_names or [])
    names += [str(c) for c in range(len(names), classes)]
    colours = class_colours(classes)
    entries: list[tuple[str, Colour, str]] = []
    if classes == 1:
        entries.append(("found" if with_truth else "predicted", TRUE_POSITIVE, "fill"))
    else:
        found = " found" if with_truth else ""
        entries += [(f"{names[c]}{found}", colours[c], "fill") for c in range(classes)]
    if with_truth:
        entries += [("missed", FALSE_NEGATIVE, "fill"), ("false positive", FALSE_POSITIVE, "fill")]
    if prompts is None:
        return entries
    if prompts.boxes:
        entries.append(
            ("box", BOX, "outline") if classes == 1 else ("box (class colour)", TRUE_POSITIVE, "outline")
        )
    given = {
        int(label)
        for c, points in prompts.points.items()
        for label in np.asarray(prompts.labels.get(c, np.ones(len(points))))
    }
    if 1 in given:
        entries.append(("positive point", POSITIVE_POINT, "dot"))
    if 0 in given:
        entries.append(("negative point", NEGATIVE_POINT, "dot"))
    return entries


def legend_strip(width: int, entries: Sequence[tuple[str, Colour, str]], unit: int = 1) -> np.ndarray:
    """A ``(h, w, 3)`` uint8 band holding ``entries`` (see :func:`legend_entries`), wrapped into lines of
    ``width`` pixels; ``w`` is ``width``, or the widest entry where that is wider (a small picture)."""
    font = ImageFont.load_default(size=max(10, 10 * unit))
    ascent, descent = font.getmetrics()
    line = ascent + descent
    pad = max(2, line // 4)
    swatch = line - 2
    items = [(text, colour, kind, swatch + pad + int(font.getlength(text))) for text, colour, kind in entries]
    width = max([width, *(item[3] + 2 * pad for item in items)])
    lines: list[list[tuple[str, Colour, str, int]]] = [[]]
    used = pad
    for item in items:
        if lines[-1] and used + item[3] + pad > width:
            lines.append([])
            used = pad
        lines[-1].append(item)
        used += item[3] + 2 * pad
    canvas = Image.new("RGB", (width, pad + len(lines) * (line + pad)), LEGEND_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for row, items_in_line in enumerate(lines):
        x, y = pad, pad + row * (line + pad)
        for text, colour, kind, item_width in items_in_line:
            box = [x, y + 1, x + swatch - 1, y + swatch]
            if kind == "fill":
                draw.rectangle(box, fill=colour)
            elif kind == "outline":
                draw.rectangle(box, outline=colour, width=max(1, swatch // 6))
            else:
                draw.ellipse(box, fill=colour, outline=RING)
            draw.text((x + swatch + pad, y), text, fill=LEGEND_TEXT, font=font)
            x += item_width + 2 * pad
    return np.asarray(canvas)


def save_overlay(
    path: str | Path,
    image: Any,
    pred: Any,
    gt: Any | None = None,
    dim: float = BACKGROUND_DIM,
    class_names: Sequence[str] | None = None,
    prompts: ShownPrompts | None = None,
    fov: Any | None = None,
) -> Path:
    """Write :func:`overlay` of the arguments, the ``prompts`` drawn on it, as a PNG at ``path`` with a
    legend strip below the picture (parent folders are created).

    Args:
        class_names: the names of ``pred``'s classes, for the legend (their indices without).
        prompts: the boxes and points given for the image, in its pixel coordinates.
        fov: ``(H, W)`` the field of view (see :func:`overlay`), or None.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = overlay(image, pred, gt, dim=dim, fov=fov)
    classes = _class_masks(pred, "pred", picture.shape[:2]).shape[0]
    if prompts:
        picture = draw_prompts(picture, prompts, classes)
    entries = legend_entries(classes, class_names, gt is not None, prompts)
    height, width = picture.shape[:2]
    strip = legend_strip(width, entries, _scale(width, height))
    canvas = np.zeros((height + strip.shape[0], strip.shape[1], 3), np.uint8)
    canvas[:] = LEGEND_BACKGROUND  # beside a picture narrower than its legend
    canvas[:height, :width] = picture
    canvas[height:] = strip
    Image.fromarray(canvas).save(path)
    return path
