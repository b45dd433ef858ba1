"""``thin_vessels.py EVAL_DIR [EVAL_DIR ...]``: which vessels, by width, each evaluated run finds.

Each EVAL_DIR is the output folder of ``eval.py ... eval.masks=true`` (``metrics.json`` and ``masks/<case>.png``
at the original size); all of them must have evaluated the same split of the same data-set folder. The script
prints, per run, the recall of the annotation's centreline on thin vessels (width <= ``--max-width`` px) and on the
others (:mod:`salt.metrics.thin`), pooled over the split's images and as a mean over images, and writes
:func:`salt.viz.thin.thin_vessel_figure` of the first ``--cases`` images.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from salt.data.dataset import VesselDataset
from salt.errors import UserError
from salt.metrics.thin import WidthRecall, width_recall
from salt.viz.thin import ThinCase, thin_vessel_figure

log = logging.getLogger("thin_vessels")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thin_vessels.py", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("eval_dirs", nargs="+", type=Path, metavar="EVAL_DIR", help="eval.py output folders")
    parser.add_argument("--labels", help="comma-separated names of the runs (default: the folder names)")
    parser.add_argument("--max-width", type=float, default=2.0, help="widest vessel counted as thin, in px")
    parser.add_argument("--cases", type=int, default=2, help="images shown in the figure (default 2)")
    parser.add_argument("--crop", type=int, default=128, help="side of each image's crop shown, in px")
    parser.add_argument("--out", type=Path, default=Path("thin_vessels.png"), help="the figure's path")
    return parser


def _evaluation(folder: Path) -> tuple[dict, str]:
    """The data-set config and split an ``eval.py`` folder recorded; refuses a folder without masks."""
    metrics = folder / "metrics.json"
    if not metrics.is_file():
        raise UserError(f"{folder}: no metrics.json (give the output folder of eval.py)")
    if not (folder / "masks").is_dir():
        raise UserError(f"{folder}: no masks/ folder (evaluate with eval.py ... eval.masks=true)")
    try:
        recorded = json.loads(metrics.read_text())
        return dict(recorded["config"]["dataset"]), str(recorded["split"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{metrics}: not an eval.py metrics.json ({exc})") from None


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path}: missing (the folder's evaluation did not write this case)")
    mask = np.asarray(Image.open(path)) > 0
    if mask.shape != shape:
        raise UserError(f"{path}: {mask.shape[1]} x {mask.shape[0]}, the image is {shape[1]} x {shape[0]}")
    return mask


def pooled(recalls: Sequence[WidthRecall]) -> WidthRecall:
    """The counts of several images summed."""
    return WidthRecall(
        thin_total=sum(r.thin_total for r in recalls),
        thin_found=sum(r.thin_found for r in recalls),
        thick_total=sum(r.thick_total for r in recalls),
        thick_found=sum(r.thick_found for r in recalls),
    )


def run(args: argparse.Namespace) -> int:
    """Measure, print and draw; returns the exit status."""
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else [d.name for d in args.eval_dirs]
    if len(labels) != len(args.eval_dirs):
        raise UserError(f"--labels: {len(labels)} names for {len(args.eval_dirs)} folders")
    if args.cases < 0 or args.crop < 1 or args.max_width <= 0:
        raise UserError("--cases must be >= 0, --crop >= 1 and --max-width > 0")
    recorded = [_evaluation(folder) for folder in args.eval_dirs]
    dataset_cfg, split = recorded[0]
    for folder, (other, other_split) in zip(args.eval_dirs[1:], recorded[1:]):
        if (other["root"], other_split) != (dataset_cfg["root"], split):
            raise UserError(
                f"{folder}: evaluated {other['root']} split {other_split}, the first folder "
                f"{dataset_cfg['root']} split {split}; compare evaluations of the same images"
            )
    data = VesselDataset(
        dataset_cfg["root"],
        split,
        img_size=int(dataset_cfg["img_size"]),
        resize=dataset_cfg.get("resize", "longest_pad"),
        label_map=dataset_cfg.get("label_map"),
        num_classes=int(dataset_cfg["num_classes"]),
        cache=False,
        **({"slice_axis": dataset_cfg["slice_axis"]} if "slice_axis" in dataset_cfg else {}),
    )
    per_run: dict[str, list[WidthRecall]] = {label: [] for label in labels}
    shown: list[ThinCase] = []
    for index in range(len(data)):
        original = data.original(index)
        mask = np.asarray(original["mask"]).any(0)  # (H, W): every class is a vessel here
        preds = {
            label: _read_mask(folder / "masks" / f"{original['name']}.png", mask.shape)
            for label, folder in zip(labels, args.eval_dirs)
        }
        for label, pred in preds.items():
            per_run[label].append(width_recall(pred, mask, original["fov"], args.max_width))
        if len(shown) < args.cases:
            shown.append(ThinCase(original["name"], original["image"], mask, original["fov"], preds))
    print(
        f"{data.root} split {split}: {len(data)} images; thin: centreline on vessels <= {args.max_width:g} px wide"
    )
    print("| run | thin recall (pooled) | thin recall (mean over images) | thicker recall (pooled) |")
    print("|---|---|---|---|")
    for label, recalls in per_run.items():
        total = pooled(recalls)
        mean = float(np.nanmean([r.thin_recall for r in recalls]))
        print(f"| {label} | {total.thin_recall:.3f} | {mean:.3f} | {total.thick_recall:.3f} |")
    if shown:
        path = thin_vessel_figure(shown, args.out, max_width=args.max_width, crop=args.crop)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run; a user mistake is one line on stderr and exit status 2."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
