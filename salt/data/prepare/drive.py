"""DRIVE (retinal colour fundus, 565 x 584) from its official release.

Release layout (``--src`` is the folder holding ``training/`` and ``test/``, or its parent with ``DRIVE/``)::

    training/images/NN_training.tif   training/1st_manual/NN_manual1.gif   training/mask/NN_training_mask.gif
    test/images/NN_test.tif           test/1st_manual/NN_manual1.gif       test/mask/NN_test_mask.gif

The field-of-view masks (``mask/``) are kept as ``fov/<stem>_fov.png``. Splits: the release's
training/test split when the test manual annotations are present; otherwise only the 20 training images
are labelled and the paper's split applies (14 train / 6 test, drawn with the seed). Validation images
are drawn from train.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from salt.data.layout import DatasetError
from salt.data.prepare.base import Converter, Item, write_items
from salt.data.reading import read_labels
from salt.data.writer import DatasetWriter, assign_splits

PAPER_TEST_SIZE = 6
# (release folder, file-name tag) of the two release splits.
_PARTS = (("training", "training"), ("test", "test"))


def _release_root(src: Path) -> Path:
    for candidate in (src, src / "DRIVE"):
        if (candidate / "training" / "images").is_dir():
            return candidate
    raise DatasetError(f"{src}: not a DRIVE release (expected training/images/NN_training.tif)")


def _labelled(root: Path, folder: str, tag: str) -> dict[str, tuple[Path, Path, Path]]:
    """``{stem: (image, manual, fov)}`` of one release split; ``{}`` when it has no manual annotations."""
    images = sorted((root / folder / "images").glob(f"*_{tag}.tif"))
    if not (root / folder / "1st_manual").is_dir():
        return {}
    samples = {}
    for image in images:
        number = image.stem.split("_")[0]
        manual = root / folder / "1st_manual" / f"{number}_manual1.gif"
        fov = root / folder / "mask" / f"{number}_{tag}_mask.gif"
        for path in (manual, fov):
            if not path.is_file():
                raise DatasetError(f"{path}: missing (needed for {image.name})")
        samples[image.stem] = (image, manual, fov)
    return samples


def convert_drive(
    src: str | Path, dst: str | Path, val_fraction: float = 0.1, seed: int = 0, overwrite: bool = False
) -> DatasetWriter:
    """Convert the DRIVE release at ``src`` into the canonical layout at ``dst`` (images copied as TIFF).

    Raises:
        DatasetError: not a DRIVE release, a missing annotation or FOV file, or a non-empty ``dst``.
    """
    root = _release_root(Path(src))
    writer = DatasetWriter(dst, overwrite=overwrite)
    train, test = (_labelled(root, folder, tag) for folder, tag in _PARTS)
    if not train:
        raise DatasetError(f"{root / 'training'}: no labelled images (NN_training.tif with 1st_manual/)")
    samples = {**train, **test}
    if test:
        splits = assign_splits(list(train), None, list(test), val_fraction=val_fraction, seed=seed)
    else:
        splits = assign_splits(list(train), n_test=PAPER_TEST_SIZE, val_fraction=val_fraction, seed=seed)

    def item(stem: str) -> Item:
        image, manual, fov = samples[stem]
        return image, read_labels(manual)[0] > 0, read_labels(fov)[0] > 0

    return write_items(writer, splits, item)


class DriveConverter(Converter):
    """``python -m salt.data.prepare drive``: no options of its own."""

    def convert(
        self, args: argparse.Namespace, src: Path, dst: Path, val_fraction: float, seed: int, overwrite: bool
    ) -> DatasetWriter:
        return convert_drive(src, dst, val_fraction=val_fraction, seed=seed, overwrite=overwrite)
