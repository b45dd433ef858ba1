"""Prompts files for ``predict.py``: boxes or points per image and class, in the original image's pixels.

JSON: a list of objects, one per image and class::

    [{"image": "case01", "class": "vessel", "box": [x0, y0, x1, y1]},
     {"image": "case02.png", "class": 1, "points": [[x, y, 1], [x, y, 0]]}]

CSV, one row per box (header ``image,class,x0,y0,x1,y1``) or per point (header ``image,class,x,y,label``).

``image`` is an input's file name or stem; ``class`` a name of the run's ``dataset.class_names`` or its mask
value (1..K); ``x`` is the column and ``y`` the row, 0-based; a point's label is 1 (inside) or 0 (outside).
A box must lie inside its image with ``x0 <= x1`` and ``y0 <= y1``; every mistake is a :class:`PromptFileError`
naming the file and the row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from salt.data.layout import DatasetError

BOX_COLUMNS = ("image", "class", "x0", "y0", "x1", "y1")
POINT_COLUMNS = ("image", "class", "x", "y", "label")


class PromptFileError(DatasetError):
    """A prompts file that cannot be read or names something that does not exist (one line: file and row)."""


@dataclass
class ClassPrompt:
    """The prompt of one class in one image, in original pixels: a box ``(4,)`` and/or points ``(P, 2)``."""

    box: np.ndarray | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(row label, record)`` pairs of a JSON or CSV prompts file."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"{path}: cannot read the prompts file ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, list):
            raise PromptFileError(f"{path}: expected a JSON list of {{image, class, box | points}} objects")
        return [(f"entry {i}", row) for i, row in enumerate(data)]
    if path.suffix.lower() != ".csv":
        raise PromptFileError(f"{path}: a prompts file is .json or .csv")
    reader = csv.DictReader(text.splitlines())
    header = tuple(reader.fieldnames or ())
    if set(header) not in (set(BOX_COLUMNS), set(POINT_COLUMNS)):
        raise PromptFileError(
            f"{path}: header {','.join(header) or '(none)'}; expected {','.join(BOX_COLUMNS)} or {','.join(POINT_COLUMNS)}"
        )
    rows = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise PromptFileError(f"{path}: line {line}: expected {len(header)} fields")
        if "x0" in row:
            record = {"image": row["image"], "class": row["class"], "box": [row[k] for k in BOX_COLUMNS[2:]]}
        else:
            record = {
                "image": row["image"],
                "class": row["class"],
                "points": [[row["x"], row["y"], row["label"]]],
            }
        rows.append((f"line {line}", record))
    return rows


def _class_index(value: Any, class_names: Sequence[str], where: str) -> int:
    text = str(value).strip()
    if text in class_names:
        return list(class_names).index(text)
    if text.isdigit() and 1 <= int(text) <= len(class_names):
        return int(text) - 1
    raise PromptFileError(
        f"{where}: unknown class {text!r} (valid: {', '.join(class_names)} or 1..{len(class_names)})"
    )


def _numbers(values: Any, count: int, where: str, what: str) -> list[float]:
    if not isinstance(values, (list, tuple)) or len(values) != count:
        raise PromptFileError(f"{where}: {what} must be {count} numbers, got {values!r}")
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise PromptFileError(f"{where}: {what} must be {count} numbers, got {values!r}") from None
    if not all(np.isfinite(numbers)):
        raise PromptFileError(f"{where}: {what} must be finite numbers, got {values!r}")
    return numbers


def read_prompts(
    path: str | Path, sizes: dict[str, tuple[int, int]], class_names: Sequence[str]
) -> dict[str, dict[int, ClassPrompt]]:
    """Read and check a prompts file.

    Args:
        path: the JSON or CSV file.
        sizes: ``{stem: (H, W)}`` of the images being predicted (file names are matched by their stem).
        class_names: the run's class names, in mask-value order.

    Returns:
        ``{stem: {class index (0-based): ClassPrompt}}``.

    Raises:
        PromptFileError: unreadable or malformed file or row, a missing image, an unknown class, a box or
            point outside its image, a label other than 0/1, or two boxes for one image and class.
    """
    path = Path(path)
    prompts: dict[str, dict[int, ClassPrompt]] = {}
    for label, row in _rows(path):
        where = f"{path}: {label}"
        if not isinstance(row, dict) or "image" not in row or "class" not in row:
            raise PromptFileError(f"{where}: needs the keys image, class and box or points")
        if ("box" in row) == ("points" in row):
            raise PromptFileError(f"{where}: give either a box or points")
        stem = Path(str(row["image"])).stem if Path(str(row["image"])).stem in sizes else str(row["image"])
        if stem not in sizes:
            raise PromptFileError(f"{where}: image {row['image']!r} is not among the inputs")
        height, width = sizes[stem]
        entry = prompts.setdefault(stem, {}).setdefault(
            _class_index(row["class"], class_names, where), ClassPrompt()
        )
        if "box" in row:
            x0, y0, x1, y1 = _numbers(row["box"], 4, where, "a box")
            if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
                raise PromptFileError(
                    f"{where}: box {[x0, y0, x1, y1]} is outside the {width} x {height} image (or x0 > x1, y0 > y1)"
                )
            if entry.box is not None:
                raise PromptFileError(f"{where}: a second box for image {stem!r} and this class")
            entry.box = np.array([x0, y0, x1, y1], dtype=np.float32)
            continue
        if not isinstance(row["points"], list) or not row["points"]:
            raise PromptFileError(f"{where}: points must be a list of [x, y, label]")
        for point in row["points"]:
            x, y, point_label = _numbers(point, 3, where, "a point")
            if not (0 <= x < width and 0 <= y < height):
                raise PromptFileError(
                    f"{where}: point ({x:g}, {y:g}) is outside the {width} x {height} image"
                )
            if point_label not in (0.0, 1.0):
                raise PromptFileError(
                    f"{where}: a point's label is 1 (inside) or 0 (outside), got {point_label:g}"
                )
            entry.points.append((x, y))
            entry.labels.append(int(point_label))
    return prompts
