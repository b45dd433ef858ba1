"""The canonical on-disk layout of a data set, and how its files are found.

::

    <root>/images/<stem>.<ext>          any readable 2D format, or a volume (.nii/.nii.gz/.mha/.mhd/.nrrd)
    <root>/masks/<stem>_mask.png        label image; ``<stem>_mask.<ext>`` and ``<stem>.<ext>`` are accepted
    <root>/fov/<stem>_fov.png           optional field-of-view mask (> 0 inside); absent = whole image
    <root>/data_split.csv               columns ``imgs,split``: image file name (or stem), train|val|test
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from salt.errors import UserError

IMAGES_DIR = "images"
MASKS_DIR = "masks"
FOV_DIR = "fov"
SPLIT_CSV = "data_split.csv"
SPLIT_COLUMNS = ("imgs", "split")
SPLITS = ("train", "val", "test")
MASK_SUFFIX = "_mask"
FOV_SUFFIX = "_fov"

PLANAR_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".pgm", ".ppm")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")
SUPPORTED_SUFFIXES = PLANAR_SUFFIXES + VOLUME_SUFFIXES


class DatasetError(UserError, ValueError):
    """A data set folder, file or setting that cannot be used; the message names the file and problem."""


class FileError(DatasetError):
    """A problem with one file; ``path`` and ``problem`` are kept apart so reports can shorten the path."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def file_suffix(path: Path) -> str:
    """Lower-case suffix of ``path``, keeping the double suffix ``.nii.gz``."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def file_stem(path: Path) -> str:
    """File name without its (possibly double) suffix: ``case1.nii.gz`` -> ``case1``."""
    return path.name[: len(path.name) - len(file_suffix(path))]


def is_supported(path: Path) -> bool:
    """Whether ``path`` has a suffix the readers know (case-insensitive)."""
    return file_suffix(path) in SUPPORTED_SUFFIXES


def is_volume(path: Path) -> bool:
    """Whether ``path`` is a volume format, read as a stack of 2D slices."""
    return file_suffix(path) in VOLUME_SUFFIXES


def list_supported(folder: Path) -> list[Path]:
    """Readable files directly inside ``folder``, sorted by name; ``[]`` if the folder is absent."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if e.is_file() and is_supported(Path(e.name)))


class FolderIndex:
    """The readable files of one folder grouped by stem, so per-image look-ups do not rescan it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = list_supported(folder)
        self.by_name = {p.name: p for p in self.files}
        self.by_stem: dict[str, list[Path]] = {}
        for path in self.files:
            self.by_stem.setdefault(file_stem(path), []).append(path)

    def lookup(self, *stems: str) -> list[Path]:
        """Files whose stem is one of ``stems``, in the order of ``stems``."""
        return [p for stem in stems for p in self.by_stem.get(stem, [])]


@dataclass(frozen=True)
class SplitRow:
    """One data row of ``data_split.csv``; ``line`` is its 1-based line number in the file."""

    imgs: str
    split: str
    line: int


def read_split_csv(root: Path) -> list[SplitRow]:
    """Rows of ``<root>/data_split.csv``.

    Raises:
        DatasetError: the file is missing, unreadable, or lacks the ``imgs`` and ``split`` columns.
    """
    path = root / SPLIT_CSV
    if not path.is_file():
        raise DatasetError(f"{path}: missing (a data set needs {SPLIT_CSV} with columns imgs,split)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            if not set(SPLIT_COLUMNS) <= set(columns):
                raise DatasetError(f"{path}: columns are {columns}, expected {','.join(SPLIT_COLUMNS)}")
            return [
                SplitRow(
                    imgs=(row.get("imgs") or "").strip(),
                    split=(row.get("split") or "").strip(),
                    line=reader.line_num,
                )
                for row in ({k.strip(): v for k, v in r.items() if k} for r in reader)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: cannot be read ({err})") from err


def write_split_csv(root: Path, rows: list[tuple[str, str]]) -> Path:
    """Write ``(image file name, split)`` rows to ``<root>/data_split.csv`` and return its path."""
    path = root / SPLIT_CSV
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SPLIT_COLUMNS)
        writer.writerows(rows)
    return path


def resolve_image(images: FolderIndex, value: str) -> Path | None:
    """The image a ``data_split.csv`` ``imgs`` value names: a file name in ``images/``, or a unique stem."""
    if value in images.by_name:
        return images.by_name[value]
    matches = images.lookup(value)
    return matches[0] if len(matches) == 1 else None


def find_mask(masks: FolderIndex, stem: str) -> list[Path]:
    """Mask files for image ``stem``: ``<stem>_mask.*`` first, then ``<stem>.*``."""
    return masks.lookup(stem + MASK_SUFFIX, stem)


def find_fov(fov: FolderIndex, stem: str) -> list[Path]:
    """Field-of-view files for image ``stem``: ``<stem>_fov.*`` first, then ``<stem>.*``."""
    return fov.lookup(stem + FOV_SUFFIX, stem)


def owner_stem(path: Path, stems: set[str], suffix: str) -> str | None:
    """The image stem a mask or FOV file belongs to (``<stem><suffix>.*`` or ``<stem>.*``); ``None``: orphan."""
    stem = file_stem(path)
    if stem.endswith(suffix) and stem[: -len(suffix)] in stems:
        return stem[: -len(suffix)]
    return stem if stem in stems else None
