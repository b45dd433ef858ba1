"""Validation of a data set folder in the canonical layout, as a function and as a command.

``python -m salt.data.check ROOT [--num-classes C] [--label-map 255:1,128:0] [--slice-axis 2]`` prints a
report and exits with status 1 when there are errors. Errors: missing folders or CSV, images without masks,
masks without images, unreadable or zero-byte files, image/mask size mismatches, unexpected mask values, CSV
rows naming missing files, duplicate rows, unknown split names, several masks for one image. Warnings: empty
masks, images not listed in the CSV, unsupported files, FOV files without an image.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salt.data.layout import (
    FOV_DIR,
    FOV_SUFFIX,
    IMAGES_DIR,
    MASK_SUFFIX,
    MASKS_DIR,
    SPLIT_CSV,
    SPLITS,
    DatasetError,
    FileError,
    FolderIndex,
    file_stem,
    find_fov,
    find_mask,
    owner_stem,
    read_split_csv,
    resolve_image,
)
from salt.data.reading import label_problem, labels_to_masks, normalise_label_map, read_image, read_labels


@dataclass
class CheckReport:
    """Outcome of ``check_dataset``: messages are ``"<path relative to root>: <problem>"``.

    ``counts`` holds ``images``, ``masks``, ``fov``, one entry per split (CSV rows) and ``unlisted``.
    """

    root: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def format(self) -> str:
        """Readable multi-line report."""
        c = self.counts
        splits = ", ".join(f"{s} {c.get(s, 0)}" for s in SPLITS)
        lines = [
            f"Data set check: {self.root}",
            f"  files: {c.get('images', 0)} images, {c.get('masks', 0)} masks, {c.get('fov', 0)} FOV masks",
            f"  {SPLIT_CSV}: {splits} (images not listed: {c.get('unlisted', 0)})",
        ]
        for title, items in (("Errors", self.errors), ("Warnings", self.warnings)):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines.extend(f"  - {item}" for item in items)
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"Result: {verdict} ({len(self.errors)} errors, {len(self.warnings)} warnings)")
        return "\n".join(lines)


class _Checker:
    def __init__(self, root: Path, label_map: Mapping[float, int] | None, num_classes: int, slice_axis: int):
        self.root = root
        self.label_map = label_map
        self.num_classes = num_classes
        self.slice_axis = slice_axis
        self.report = CheckReport(root)

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def error(self, path: Path, problem: str) -> None:
        self.report.errors.append(f"{self._rel(path)}: {problem}")

    def warn(self, path: Path, problem: str) -> None:
        self.report.warnings.append(f"{self._rel(path)}: {problem}")

    def run(self) -> CheckReport:
        if not self.root.is_dir():
            self.error(self.root, "data set folder does not exist")
            return self.report
        indexes = {name: FolderIndex(self.root / name) for name in (IMAGES_DIR, MASKS_DIR, FOV_DIR)}
        images, masks, fov = indexes[IMAGES_DIR], indexes[MASKS_DIR], indexes[FOV_DIR]
        for name in (IMAGES_DIR, MASKS_DIR):
            if not (self.root / name).is_dir():
                self.error(self.root / name, "missing folder")
        for index in indexes.values():
            self._unsupported(index)
        self.report.counts.update(images=len(images.files), masks=len(masks.files), fov=len(fov.files))
        listed = self._split_rows(images)
        for stem, paths in images.by_stem.items():
            if len(paths) > 1:
                self.error(
                    paths[0], f"{len(paths)} images share the stem {stem!r}: {[p.name for p in paths]}"
                )
        for image in images.files:
            if image not in listed:
                self.warn(image, f"not listed in {SPLIT_CSV} (not used)")
            self._check_image(image, masks, fov)
        stems = set(images.by_stem)
        for path in masks.files:
            if owner_stem(path, stems, MASK_SUFFIX) is None:
                self.error(path, "mask without an image")
        for path in fov.files:
            if owner_stem(path, stems, FOV_SUFFIX) is None:
                self.warn(path, "FOV mask without an image")
        self.report.counts["unlisted"] = len(set(images.files) - listed)
        return self.report

    def _unsupported(self, index: FolderIndex) -> None:
        if not index.folder.is_dir():
            return
        for path in sorted(index.folder.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.name not in index.by_name:
                self.warn(path, "not a supported image format (ignored)")

    def _split_rows(self, images: FolderIndex) -> set[Path]:
        csv_path = self.root / SPLIT_CSV
        try:
            rows = read_split_csv(self.root)
        except DatasetError as err:
            self.error(csv_path, str(err).removeprefix(f"{csv_path}: "))
            return set()
        seen: dict[Path, int] = {}
        for row in rows:
            where = f"line {row.line}"
            if row.split not in SPLITS:
                self.error(csv_path, f"{where}: unknown split {row.split!r} (valid: {', '.join(SPLITS)})")
            image = resolve_image(images, row.imgs)
            if image is None:
                self.error(csv_path, f"{where}: {row.imgs!r} names no file in {IMAGES_DIR}/")
                continue
            if image in seen:
                self.error(csv_path, f"{where}: duplicate of line {seen[image]} ({row.imgs!r})")
                continue
            seen[image] = row.line
            if row.split in SPLITS:
                self.report.counts[row.split] = self.report.counts.get(row.split, 0) + 1
        return set(seen)

    def _check_image(self, image: Path, masks: FolderIndex, fov: FolderIndex) -> None:
        stem = file_stem(image)
        try:
            shapes = [plane.shape[:2] for plane in read_image(image, self.slice_axis)]
        except FileError as err:
            self.error(err.path, err.problem)
            shapes = None
        found = find_mask(masks, stem)
        if not found:
            self.error(
                image, f"no mask (expected {MASKS_DIR}/{stem}{MASK_SUFFIX}.png or {MASKS_DIR}/{stem}.png)"
            )
        elif len(found) > 1:
            self.error(image, f"several masks: {[p.name for p in found]}")
        else:
            self._check_labels(found[0], shapes, is_fov=False)
        if fov.folder.is_dir():
            found = find_fov(fov, stem)
            if not found:
                self.error(
                    image,
                    f"no FOV mask although {FOV_DIR}/ exists (expected {FOV_DIR}/{stem}{FOV_SUFFIX}.png)",
                )
            else:
                self._check_labels(found[0], shapes, is_fov=True)

    def _check_labels(self, path: Path, shapes: list[tuple[int, ...]] | None, is_fov: bool) -> None:
        try:
            planes = read_labels(path, self.slice_axis)
        except FileError as err:
            self.error(err.path, err.problem)
            return
        if shapes is not None:
            if len(planes) != len(shapes):
                self.error(path, f"{len(planes)} slices, its image has {len(shapes)}")
                return
            for plane, shape in zip(planes, shapes):
                if plane.shape != shape:
                    self.error(
                        path, f"size {plane.shape[1]}x{plane.shape[0]} (WxH) != image {shape[1]}x{shape[0]}"
                    )
                    return
        if is_fov:
            if not any(np.any(plane > 0) for plane in planes):
                self.error(path, "FOV mask is empty (would exclude every pixel)")
            return
        problem = next(
            (p for p in (label_problem(x, self.label_map, self.num_classes) for x in planes) if p), None
        )
        if problem:
            self.error(path, problem)
        elif not any(labels_to_masks(x, self.label_map, self.num_classes).any() for x in planes):
            self.warn(path, "empty mask (no foreground pixel)")


def check_dataset(
    root: str | Path,
    label_map: Mapping[int, int] | None = None,
    num_classes: int = 1,
    slice_axis: int = 2,
) -> CheckReport:
    """Validate the data set at ``root`` (canonical layout, see ``salt.data.layout``); never raises for data.

    ``label_map``/``num_classes`` say which mask values are expected (as ``VesselDataset`` reads them).
    """
    return _Checker(Path(root), normalise_label_map(label_map, num_classes), num_classes, slice_axis).run()


def _parse_label_map(text: str) -> dict[int, int]:
    try:
        return {int(k): int(v) for k, v in (item.split(":") for item in text.split(",") if item.strip())}
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected VALUE:CLASS[,VALUE:CLASS...], got {text!r}") from err


def main(argv: list[str] | None = None) -> int:
    """Command line entry: print the report, return 1 on errors (2 on bad arguments)."""
    parser = argparse.ArgumentParser(prog="python -m salt.data.check", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="data set folder in the canonical layout")
    parser.add_argument("--num-classes", type=int, default=1, help="foreground classes (default 1)")
    parser.add_argument("--label-map", type=_parse_label_map, default=None, help="e.g. 255:1 or 1:1,2:2")
    parser.add_argument("--slice-axis", type=int, default=2, help="axis along which volumes are sliced")
    args = parser.parse_args(argv)
    try:
        report = check_dataset(args.root, args.label_map, args.num_classes, args.slice_axis)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
