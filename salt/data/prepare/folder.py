"""The generic ``folder`` converter, and the releases described by a preset of it (``rose``, ``xray_angio``).

An image folder, a mask folder and a mask-name pattern describe a release; a preset is those settings in the
release's ``configs/prepare/<name>.yaml`` (``preset:``), each one still open to its command-line option. A folder path containing
``{split}`` is looked up once per split (``train``/``training``, ``val``/``validation``, ``test``/``testing``),
which keeps the release's own splits; otherwise split lists or the rule of ``salt.data.writer`` decide.
Images (and volume masks) are copied unchanged; 2D masks are rewritten as PNG keeping their label values.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from salt.data.layout import SPLITS, DatasetError, file_stem, is_supported, is_volume
from salt.data.prepare.base import Converter, Item, write_items
from salt.data.reading import read_labels
from salt.data.writer import DatasetWriter, assign_splits

SPLIT_ALIASES = {"train": ("train", "training"), "val": ("val", "validation"), "test": ("test", "testing")}


@dataclass(frozen=True)
class FolderSpec:
    """Where a release keeps its files, relative to ``--src``; ``{stem}`` is the image's stem."""

    images: str | None = "images"  # image folder; may contain {split}; None = must be given
    masks: str | None = "masks"  # mask folder; may contain {split}
    mask_pattern: str = "{stem}.*"  # glob of an image's mask inside the mask folder
    fov: str | None = None  # optional FOV folder; may contain {split}
    fov_pattern: str = "{stem}.*"
    image_glob: str = "*"  # which files of the image folder are images
    exclude: str | None = None  # glob of files in the image folder that are not images
    n_test: int | None = None  # test size when the release has no test split (the paper's)
    root_names: tuple[str, ...] = ()  # release folder names accepted one level below --src


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: split list not found")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return {file_stem(Path(name)) for name in names}


def _match(folder: Path, pattern: str, stem: str, what: str) -> Path:
    query = Path(glob.escape(str(folder))) / pattern.format(stem=glob.escape(stem))
    matches = [Path(p) for p in glob.glob(str(query))]
    matches = [p for p in matches if p.is_file() and is_supported(p)]
    if len(matches) != 1:
        found = "none" if not matches else ", ".join(sorted(p.name for p in matches))
        raise DatasetError(
            f"{folder}: expected one {what} matching {pattern.format(stem=stem)!r}, found {found}"
        )
    return matches[0]


def _split_folders(src: Path, spec: FolderSpec) -> dict[str, str]:
    """``{split: name used in the release}`` for ``{split}`` folders; ``{"train": ""}`` without them."""
    if "{split}" not in spec.images:
        return {"train": ""}
    found = {}
    for split, aliases in SPLIT_ALIASES.items():
        name = next((a for a in aliases if (src / spec.images.format(split=a)).is_dir()), None)
        if name is not None:
            found[split] = name
    if "train" not in found:
        expected = src / spec.images.format(split="train")
        raise DatasetError(f"{expected}: not found (no training images for this release layout)")
    return found


def _collect(src: Path, spec: FolderSpec) -> dict[str, tuple[Path, str, str]]:
    """``{stem: (image, release split, folder name of that split)}`` for every image of the release."""
    sources: dict[str, tuple[Path, str, str]] = {}
    for split, name in _split_folders(src, spec).items():
        folder = src / spec.images.format(split=name)
        if not folder.is_dir():
            raise DatasetError(f"{folder}: image folder not found")
        for path in sorted(folder.glob(spec.image_glob)):
            if not path.is_file() or not is_supported(path) or (spec.exclude and path.match(spec.exclude)):
                continue
            if file_stem(path) in sources:
                raise DatasetError(f"{path}: a second image with the stem {file_stem(path)!r}")
            sources[file_stem(path)] = (path, split, name)
    if not sources:
        raise DatasetError(f"{src}: no images in {spec.images!r} matching {spec.image_glob!r}")
    return sources


def convert_folder(
    src: str | Path,
    dst: str | Path,
    spec: FolderSpec,
    split_lists: dict[str, Path] | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetWriter:
    """Convert a release described by ``spec`` into the canonical layout at ``dst``.

    ``split_lists`` maps split names to text files of image names or stems (one per line); images on no
    list are left out. Without lists or ``{split}`` folders, the test split takes ``spec.n_test`` images
    (or ``test_fraction``) and validation ``val_fraction`` of the rest.

    Raises:
        DatasetError: missing folders or files, ambiguous masks, or a non-empty ``dst``.
    """
    if spec.images is None or spec.masks is None:
        raise DatasetError("this release needs --images and --masks (folders relative to --src)")
    src = Path(src)
    src = next((src / n for n in spec.root_names if (src / n).is_dir()), src)
    writer = DatasetWriter(dst, overwrite=overwrite)
    sources = _collect(src, spec)
    if split_lists:
        listed = {split: sorted(set(sources) & _read_list(Path(p))) for split, p in split_lists.items()}
        train, val, test = listed.get("train", []), listed.get("val"), listed.get("test")
        splits = assign_splits(train, val, test, val_fraction=val_fraction, seed=seed)
    else:
        members = {s: [k for k, (_, split, _) in sources.items() if split == s] or None for s in SPLITS}
        splits = assign_splits(
            members["train"] or [],
            members["val"],
            members["test"],
            spec.n_test,
            test_fraction,
            val_fraction,
            seed,
        )

    def item(stem: str) -> Item:
        image, _, name = sources[stem]
        mask = _match(src / spec.masks.format(split=name), spec.mask_pattern, stem, "mask")
        fov = None
        if spec.fov is not None:
            fov_path = _match(src / spec.fov.format(split=name), spec.fov_pattern, stem, "FOV mask")
            fov = read_labels(fov_path)[0] > 0
        return image, mask if is_volume(mask) else read_labels(mask)[0], fov

    return write_items(writer, splits, item)


class FolderConverter(Converter):
    """``python -m salt.data.prepare folder|rose|xray_angio --images ... --masks ... --mask-pattern ...``.

    Args:
        summary: the sub-command's help.
        preset: :class:`FolderSpec` fields of a known release (its config's ``preset:``); an option given on
            the command line replaces its field. ``None``: the generic ``folder`` defaults.
    """

    def __init__(self, summary: str, preset: Mapping[str, Any] | None = None) -> None:
        super().__init__(summary)
        settings = dict(preset or {})
        unknown = set(settings) - {f.name for f in fields(FolderSpec)}
        if unknown:
            valid = ", ".join(f.name for f in fields(FolderSpec))
            raise DatasetError(f"preset: unknown keys {sorted(unknown)} (valid: {valid})")
        if "root_names" in settings:
            settings["root_names"] = tuple(settings["root_names"])
        self.preset = preset is not None
        self.spec = FolderSpec(**settings)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        def hint(field: str) -> str:
            return f" (preset: {getattr(self.spec, field)})" if self.preset else ""

        parser.add_argument(
            "--images", help="image folder relative to --src; may contain {split}" + hint("images")
        )
        parser.add_argument(
            "--masks", help="mask folder relative to --src; may contain {split}" + hint("masks")
        )
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
        parser.add_argument(
            "--test-fraction", type=float, default=0.2, help="test share if no --n-test (0.2)"
        )
        for split in SPLITS:
            parser.add_argument(
                f"--{split}-list", type=Path, help=f"text file of {split} image names or stems"
            )

    def convert(
        self, args: argparse.Namespace, src: Path, dst: Path, val_fraction: float, seed: int, overwrite: bool
    ) -> DatasetWriter:
        options = ("images", "masks", "mask_pattern", "fov", "fov_pattern", "image_glob", "exclude", "n_test")
        given = {k: getattr(args, k) for k in options if getattr(args, k) is not None}
        spec = replace(self.spec, **given)
        lists = {s: getattr(args, f"{s}_list") for s in SPLITS if getattr(args, f"{s}_list") is not None}
        return convert_folder(
            src, dst, spec, lists or None, args.test_fraction, val_fraction, seed, overwrite=overwrite
        )
