"""Command line of the converters: one sub-command per release, then a check of the result.

``python -m salt.data.prepare NAME --src RAW --dst ROOT [--overwrite] [--val-fraction F] [--seed K] ...``
with NAME in ``drive``, ``arcade``, ``folder``, ``rose``, ``xray_angio``, ``dias``. It prints what it
wrote (images per split) and the check report; the exit status is 1 when the conversion fails or the result
has check errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from salt.data.check import check_dataset
from salt.data.layout import SPLITS, DatasetError
from salt.data.prepare.arcade import TASKS, convert_arcade
from salt.data.prepare.dias import FRAME_RULES, convert_dias
from salt.data.prepare.drive import convert_drive
from salt.data.prepare.folder import PRESETS, convert_folder, preset_spec
from salt.data.writer import DatasetWriter

_HELP = {
    "drive": "DRIVE release (training/, test/ with images, 1st_manual, mask)",
    "arcade": "ARCADE release (arcade/{syntax,stenosis}/{train,val,test} with COCO JSON)",
    "folder": "any release: an image folder, a mask folder and a mask-name pattern",
    "rose": "ROSE-1 release (ROSE-1/SVC/{train,test}/{img,gt})",
    "xray_angio": "XRay-Angio / DCA1 release (Database_134_Angiograms/<i>.pgm, <i>_gt.pgm)",
    "dias": "DIAS release ({training,validation,test}/images/image_s<N>_i<K>.png, labels/label_s<N>.png)",
}


def _folder_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    defaults = PRESETS.get(name)

    def hint(field: str) -> str:
        return f" (preset: {getattr(defaults, field)})" if defaults else ""

    parser.add_argument(
        "--images", help="image folder relative to --src; may contain {split}" + hint("images")
    )
    parser.add_argument("--masks", help="mask folder relative to --src; may contain {split}" + hint("masks"))
    parser.add_argument(
        "--mask-pattern", help="glob of an image's mask, {stem} = image stem" + hint("mask_pattern")
    )
    parser.add_argument("--fov", help="optional field-of-view folder relative to --src")
    parser.add_argument("--fov-pattern", help="glob of an image's FOV mask, {stem} = image stem")
    parser.add_argument(
        "--image-glob", help="which files of the image folder are images" + hint("image_glob")
    )
    parser.add_argument(
        "--exclude", help="glob of files in the image folder that are not images" + hint("exclude")
    )
    parser.add_argument(
        "--n-test", type=int, help="test images when the release has no split" + hint("n_test")
    )
    parser.add_argument("--test-fraction", type=float, default=0.2, help="test share if no --n-test (0.2)")
    for split in SPLITS:
        parser.add_argument(f"--{split}-list", type=Path, help=f"text file of {split} image names or stems")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per converter."""
    parser = argparse.ArgumentParser(prog="python -m salt.data.prepare", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--src", type=Path, required=True, help="release folder as unpacked")
    common.add_argument("--dst", type=Path, required=True, help="new data set folder (canonical layout)")
    common.add_argument("--overwrite", action="store_true", help="replace a non-empty --dst")
    common.add_argument("--val-fraction", type=float, default=0.1, help="share of train drawn for val (0.1)")
    common.add_argument("--seed", type=int, default=0, help="seed of the split draws (0)")
    sub = parser.add_subparsers(dest="name", required=True, metavar="NAME")
    for name, text in _HELP.items():
        command = sub.add_parser(name, parents=[common], help=text, description=text)
        if name == "arcade":
            command.add_argument(
                "--task", choices=TASKS, default="syntax", help="ARCADE task folder (syntax)"
            )
            command.add_argument("--per-category", action="store_true", help="class indices instead of union")
        elif name == "dias":
            command.add_argument(
                "--frames",
                choices=FRAME_RULES,
                default="three",
                help="a sequence's frames to one input: first/middle/last frame as RGB, minimum-intensity "
                "projection, or last frame (three)",
            )
        elif name != "drive":
            _folder_arguments(command, name)
    return parser


def convert(args: argparse.Namespace) -> DatasetWriter:
    """Run the converter the parsed ``args`` name; returns its finished writer."""
    common = {"val_fraction": args.val_fraction, "seed": args.seed, "overwrite": args.overwrite}
    if args.name == "drive":
        return convert_drive(args.src, args.dst, **common)
    if args.name == "arcade":
        return convert_arcade(args.src, args.dst, task=args.task, per_category=args.per_category, **common)
    if args.name == "dias":
        return convert_dias(args.src, args.dst, frames=args.frames, **common)
    spec = preset_spec(
        args.name,
        images=args.images,
        masks=args.masks,
        mask_pattern=args.mask_pattern,
        fov=args.fov,
        fov_pattern=args.fov_pattern,
        image_glob=args.image_glob,
        exclude=args.exclude,
        n_test=args.n_test,
    )
    lists = {s: getattr(args, f"{s}_list") for s in SPLITS if getattr(args, f"{s}_list") is not None}
    return convert_folder(args.src, args.dst, spec, lists or None, args.test_fraction, **common)


def main(argv: list[str] | None = None) -> int:
    """Command line entry; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        writer = convert(args)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(writer.summary())
    num_classes = len(writer.class_names) if writer.class_names else 1
    report = check_dataset(args.dst, num_classes=num_classes)
    print(report.format())
    return 0 if report.ok else 1
