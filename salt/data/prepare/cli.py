"""Command line of the converters: one sub-command per file of ``configs/prepare``, then a check of the result.

``python -m salt.data.prepare NAME --src RAW --dst ROOT [--overwrite] [--val-fraction F] [--seed K] ...``
with NAME one of ``configs/prepare/<NAME>.yaml`` (``python -m salt.data.prepare --help`` lists them). It prints
what it wrote (images per split) and the check report; the exit status is 1 when the conversion fails or the
result has check errors, 2 for an unknown NAME or option.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from salt import CONFIG_DIR as CONFIGS
from salt.data.check import check_dataset
from salt.data.layout import DatasetError
from salt.data.prepare.base import Converter

# The converters' configs: one YAML file per sub-command, named as it.
CONFIG_DIR = CONFIGS / "prepare"


def converter_names() -> list[str]:
    """The converters there are: the names of the files in :data:`CONFIG_DIR`, sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _unknown(name: str) -> str:
    valid = ", ".join(converter_names())
    return f"unknown converter {name!r} (valid: {valid}; each is a file configs/prepare/<name>.yaml)"


def load_converter(name: str) -> Converter:
    """The converter ``configs/prepare/<name>.yaml`` describes, built by Hydra from its ``_target_``.

    Raises:
        DatasetError: no such file (the message lists the converters there are), or a file that does not
            build a :class:`Converter`.
    """
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise DatasetError(_unknown(name))
    converter = instantiate(OmegaConf.load(path))
    if not isinstance(converter, Converter):
        raise DatasetError(f"{path}: _target_ builds a {type(converter).__name__}, not a Converter")
    return converter


def build_parser(converters: dict[str, Converter] | None = None) -> argparse.ArgumentParser:
    """The argument parser with one sub-command per converter (default: every one of :data:`CONFIG_DIR`)."""
    if converters is None:
        converters = {name: load_converter(name) for name in converter_names()}
    parser = argparse.ArgumentParser(prog="python -m salt.data.prepare", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--src", type=Path, required=True, help="release folder as unpacked")
    common.add_argument("--dst", type=Path, required=True, help="new data set folder (canonical layout)")
    common.add_argument("--overwrite", action="store_true", help="replace a non-empty --dst")
    common.add_argument("--val-fraction", type=float, default=0.1, help="share of train drawn for val (0.1)")
    common.add_argument("--seed", type=int, default=0, help="seed of the split draws (0)")
    sub = parser.add_subparsers(dest="name", required=True, metavar="NAME")
    for name, converter in converters.items():
        command = sub.add_parser(
            name, parents=[common], help=converter.summary, description=converter.summary
        )
        converter.add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and not argv[0].startswith("-") and argv[0] not in converter_names():
        print(f"error: {_unknown(argv[0])}", file=sys.stderr)  # one line, not argparse's usage block
        return 2
    converters = {name: load_converter(name) for name in converter_names()}
    args = build_parser(converters).parse_args(argv)
    try:
        writer = converters[args.name].convert(
            args, args.src, args.dst, val_fraction=args.val_fraction, seed=args.seed, overwrite=args.overwrite
        )
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(writer.summary())
    num_classes = len(writer.class_names) if writer.class_names else 1
    report = check_dataset(args.dst, num_classes=num_classes)
    print(report.format())
    return 0 if report.ok else 1
