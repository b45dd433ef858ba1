"""Discs, ellipses and rectangles on noise: a small data set with obvious objects, for prompts and many classes.

``python -m salt.data.shapes --out DIR [--n 24] [--size 256] [--classes 1|2|3] [--seed 0]`` writes the canonical
layout plus ``shapes.json`` holding the parameters. With one class every image holds one disc or ellipse
(mask value 1); with ``classes = K`` the mask values are 1 = disc, 2 = ellipse, 3 = rectangle (the first K),
each present in an image with probability ``PRESENT`` (at least one per image), so some images lack a class.
Objects do not overlap. Sample ``i`` depends only on ``(seed, i)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from salt.data.layout import SPLIT_CSV, DatasetError
from salt.data.writer import DatasetWriter, assign_splits

log = logging.getLogger(__name__)

PARAMS_FILE = "shapes.json"
CLASS_NAMES = ("disc", "ellipse", "rectangle")
PRESENT = 0.7
_PLACEMENT_TRIES = 50


def _draw(kind: str, canvas: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """Draw one filled object of ``kind`` (value 1) into the uint8 ``canvas (S, S)``."""
    centre = tuple(int(v) for v in rng.uniform(0.2, 0.8, 2) * size)
    radius = int(rng.uniform(0.08, 0.16) * size)
    if kind == "disc":
        cv2.circle(canvas, centre, radius, 1, thickness=-1)
    elif kind == "ellipse":
        axes = (radius, max(3, int(radius * rng.uniform(0.35, 0.6))))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    else:
        half = np.array([radius, int(radius * rng.uniform(0.5, 0.9))])
        corners = cv2.boxPoints((centre, tuple(2.0 * half), float(rng.uniform(0, 90))))
        cv2.fillPoly(canvas, [np.round(corners).astype(np.int32)], 1)


def render(rng: np.random.Generator, size: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One sample: image ``(S, S, 3)`` uint8 and labels ``(S, S)`` uint8 (0 background, 1..K)."""
    if classes == 1:
        kinds = [(1, str(rng.choice(CLASS_NAMES[:2])))]
    else:
        present = rng.random(classes) < PRESENT
        present[rng.integers(classes)] = True
        kinds = [(c + 1, CLASS_NAMES[c]) for c in range(classes) if present[c]]
    labels = np.zeros((size, size), np.uint8)
    for value, kind in kinds:
        for _ in range(_PLACEMENT_TRIES):
            shape = np.zeros_like(labels)
            _draw(kind, shape, rng, size)
            grown = cv2.dilate(shape, np.ones((5, 5), np.uint8))  # keep a gap to the other objects
            if not (grown.astype(bool) & (labels > 0)).any():
                labels[shape > 0] = value
                break
    coarse = rng.normal(0.0, 1.0, (6, 6)).astype(np.float32)
    background = 0.45 + 0.08 * cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    shades = rng.uniform(0.15, 0.3, classes + 1) * rng.choice([-1.0, 1.0], classes + 1)
    image = background + np.where(labels > 0, shades[labels], 0.0)
    image = image + rng.normal(0.0, 0.06, image.shape)
    grey = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2), labels


def _params(n: int, size: int, classes: int, seed: int) -> dict:
    return {"n": n, "size": size, "classes": classes, "seed": seed}


def ensure_shapes(root: str | Path, n: int = 24, size: int = 256, classes: int = 1, seed: int = 0) -> Path:
    """Write the shapes data set to ``root`` (atomically) unless it is there with these parameters; return ``root``.

    Splits: 20% test, then 20% of the rest val.

    Raises:
        DatasetError: invalid parameters, or ``root`` holds something else.
    """
    root = Path(root)
    if n < 3 or size < 32 or not 1 <= classes <= len(CLASS_NAMES):
        raise DatasetError(
            f"shapes: need n >= 3, size >= 32, classes in 1..3; got n={n}, size={size}, classes={classes}"
        )
    wanted = _params(n, size, classes, seed)
    marker = root / PARAMS_FILE
    if (root / SPLIT_CSV).is_file() and marker.is_file() and json.loads(marker.read_text()) == wanted:
        return root
    if root.exists() and any(root.iterdir()) and not marker.is_file():
        raise DatasetError(f"{root}: exists and holds no shapes data set; empty it or pick another root")
    stems = [f"shape_{i:04d}" for i in range(n)]
    splits = assign_splits(stems, test_fraction=0.2, val_fraction=0.2, seed=seed)
    split_of = {stem: split for split, members in splits.items() for stem in members}
    root.parent.mkdir(parents=True, exist_ok=True)
    with DatasetWriter(root, overwrite=root.exists()) as writer:
        if classes > 1:
            writer.class_names = list(CLASS_NAMES[:classes])
        for i, stem in enumerate(stems):
            image, labels = render(np.random.default_rng([seed, i]), size, classes)
            writer.add(stem, split_of[stem], image, labels)
        (writer.tmp / PARAMS_FILE).write_text(json.dumps(wanted, indent=2))
    return root


def main(argv: list[str] | None = None) -> int:
    """Command line entry: generate, print a summary; 1 on a user error."""
    parser = argparse.ArgumentParser(prog="python -m salt.data.shapes", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="destination folder")
    parser.add_argument("--n", type=int, default=24, help="number of images (default 24)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--classes", type=int, default=1, help="1 (one object), 2 or 3 classes (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    try:
        ensure_shapes(args.out, args.n, args.size, args.classes, args.seed)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
