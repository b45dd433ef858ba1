"""The synthetic vessel data set: generated on first use, deterministic per seed.

``python -m salt.data.synthetic --out DIR --n N --size S --seed K [--look fundus|angio|octa] [--no-fov]``
writes the canonical layout (``images/``, ``masks/``, ``fov/`` when the FOV is on, ``data_split.csv``) plus
``synthetic.json`` holding the parameters. Sample ``i`` depends only on ``(seed, i)`` and the style.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from salt.data.layout import SPLIT_CSV, DatasetError
from salt.data.vessels import LOOKS, VesselStyle, render
from salt.data.writer import DatasetWriter, assign_splits

log = logging.getLogger(__name__)

PARAMS_FILE = "synthetic.json"
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2


def make_style(**style: Any) -> VesselStyle:
    """``VesselStyle`` from config values (lists for tuples allowed).

    Raises:
        DatasetError: an unknown key or an invalid value.
    """
    valid = [f.name for f in fields(VesselStyle)]
    unknown = sorted(set(style) - set(valid))
    if unknown:
        raise DatasetError(f"synthetic: unknown style keys {unknown} (valid: {', '.join(valid)})")
    if "roots" in style:
        style["roots"] = tuple(int(v) for v in style["roots"])
    return VesselStyle(**style)


def _params(n: int, size: int, seed: int, style: VesselStyle) -> dict[str, Any]:
    # Through JSON so that tuples compare equal to the lists read back from the file.
    return json.loads(json.dumps({"n": n, "size": size, "seed": seed, "style": asdict(style)}))


def generate(
    root: str | Path, n: int, size: int, seed: int, style: VesselStyle, overwrite: bool = False
) -> DatasetWriter:
    """Write ``n`` synthetic ``size x size`` samples to ``root`` atomically; returns the finished writer.

    Splits: ``TEST_FRACTION`` of the samples for test, then ``VAL_FRACTION`` of the rest for val.
    """
    if n < 3 or size < 16:
        raise DatasetError(f"synthetic: need n >= 3 and size >= 16, got n={n}, size={size}")
    stems = [f"synth_{i:04d}" for i in range(n)]
    splits = assign_splits(stems, test_fraction=TEST_FRACTION, val_fraction=VAL_FRACTION, seed=seed)
    split_of = {stem: split for split, members in splits.items() for stem in members}
    with DatasetWriter(root, overwrite=overwrite) as writer:
        for i, stem in enumerate(stems):
            image, mask, fov = render(np.random.default_rng([seed, i]), size, style)
            writer.add(stem, split_of[stem], image, mask, fov)
        (writer.tmp / PARAMS_FILE).write_text(json.dumps(_params(n, size, seed, style), indent=2))
    return writer


def ensure_synthetic(root: str | Path, n: int = 40, size: int = 256, seed: int = 0, **style: Any) -> Path:
    """Generate the synthetic data set at ``root`` unless it is already there; return ``root``.

    A folder written by this function with other parameters is regenerated (atomically replaced); a
    folder holding another data set is returned untouched.

    Raises:
        DatasetError: ``root`` exists, is not empty and holds no data set; or an invalid parameter.
    """
    root = Path(root)
    wanted = _params(n, size, seed, make_style(**style))
    marker = root / PARAMS_FILE
    overwrite = False
    if (root / SPLIT_CSV).is_file():
        if not marker.is_file() or json.loads(marker.read_text()) == wanted:
            return root
        log.info("%s: synthetic parameters changed, regenerating", root)
        overwrite = True
    elif root.exists() and any(root.iterdir()):
        raise DatasetError(
            f"{root}: exists but holds no data set ({SPLIT_CSV} missing); empty it or pick another root"
        )
    log.info("generating %d synthetic %dx%d images in %s", n, size, size, root)
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        generate(root, n, size, seed, make_style(**style), overwrite=overwrite)
    except DatasetError:
        # Another process (e.g. a second rank) finished the same data set first: use it.
        if overwrite or not (root / SPLIT_CSV).is_file():
            raise
    return root


def main(argv: list[str] | None = None) -> int:
    """Command line entry: generate, print a summary; 1 on a user error."""
    parser = argparse.ArgumentParser(prog="python -m salt.data.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="destination folder")
    parser.add_argument("--n", type=int, default=40, help="number of images (default 40)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--look", choices=LOOKS, default="fundus", help="appearance (default fundus)")
    parser.add_argument("--no-fov", action="store_true", help="no circular field of view")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty destination")
    args = parser.parse_args(argv)
    try:
        style = make_style(look=args.look, fov=not args.no_fov)
        writer = generate(args.out, args.n, args.size, args.seed, style, overwrite=args.overwrite)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(writer.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
