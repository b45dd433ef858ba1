"""DIAS (intracranial digital subtraction angiography sequences, 800 x 800) from its official release.

Release layout (``--src`` is the folder holding the split folders, or its parent with ``DIAS/``)::

    {training,validation,test}/images/image_s<N>_i<K>.png    frame K of sequence N (8-bit grey)
    {training,validation,test}/labels/label_s<N>.png         one 0/255 annotation of sequence N

A sequence's frames show the contrast agent moving through the arteries, so each frame shows only part of the
tree the annotation covers. Each sequence becomes one item ``s<N>`` of the canonical layout, its frames reduced
to one 2D input by a rule (``frames``):

- ``three`` (the default): the first, the middle (``K = (n - 1) // 2``) and the last frame as the red, green
  and blue channels, so that an RGB encoder sees time;
- ``minip``: the minimum-intensity projection over the frames (contrast is dark in DSA, so every artery the
  sequence fills appears: the usual 2D input for DSA-sequence annotations), grey;
- ``last``: the last frame, grey, as released.

The default was chosen on the release's validation split (LiteMedSAM + SALT l=4, 3 seeds, docs/real_data.md):
``three`` and ``minip`` tie on Dice, ``three`` has the lower HD95 and the smaller spread over seeds.

The release's splits are kept (``training`` -> train, ``validation`` -> val, ``test`` -> test); without a test
folder the paper's test size is drawn from training, without a validation folder a validation share is. What
is read is checked, and the first problem found is one error naming its file; the staged output is removed.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salt.data.layout import DatasetError
from salt.data.prepare.base import Converter, Item, write_release_splits
from salt.data.reading import load_array, read_labels
from salt.data.writer import DatasetWriter

PAPER_TEST_SIZE = 10
# The release's split folders and the canonical split each one becomes.
RELEASE_SPLITS = {"training": "train", "validation": "val", "test": "test"}
# Frames per sequence in the release; another count is a damaged or foreign copy.
FRAME_COUNTS = range(4, 8)
FRAME_RULES = ("three", "minip", "last")
_FRAME = re.compile(r"image_s(\d+)_i(\d+)\.png")
_LABEL = re.compile(r"label_s(\d+)\.png")


@dataclass
class SequenceFiles:
    """The files of one sequence: its frames by index and its label."""

    number: int
    frames: dict[int, Path] = field(default_factory=dict)
    label: Path | None = None

    @property
    def stem(self) -> str:
        """Name of the sequence's item in the converted data set."""
        return f"s{self.number}"


def _release_root(src: Path) -> Path:
    for candidate in (src, src / "DIAS"):
        if (candidate / "training" / "images").is_dir():
            return candidate
    raise DatasetError(f"{src}: not a DIAS release (expected training/images/image_s<N>_i<K>.png)")


def _entries(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: missing (a DIAS split folder holds images/ and labels/)")
    return sorted(folder.iterdir())


def read_split(folder: Path) -> dict[int, SequenceFiles]:
    """The sequences of one release split folder, checked for completeness.

    Raises:
        DatasetError: a file that is not a frame or label of the release (``Thumbs.db`` included), a sequence
            without label, a label without frames, a frame count outside :data:`FRAME_COUNTS`, or a missing
            frame index; the message names the file.
    """
    sequences: dict[int, SequenceFiles] = {}
    for path in _entries(folder / "images"):
        match = _FRAME.fullmatch(path.name)
        if match is None or not path.is_file():
            raise DatasetError(f"{path}: not a DIAS frame (image_s<N>_i<K>.png); move it out of the release")
        number, index = int(match[1]), int(match[2])
        sequences.setdefault(number, SequenceFiles(number)).frames[index] = path
    for path in _entries(folder / "labels"):
        match = _LABEL.fullmatch(path.name)
        if match is None or not path.is_file():
            raise DatasetError(f"{path}: not a DIAS label (label_s<N>.png); move it out of the release")
        number = int(match[1])
        if number not in sequences:
            raise DatasetError(f"{path}: a label without frames (no images/image_s{number}_i<K>.png)")
        sequences[number].label = path
    for number, sequence in sorted(sequences.items()):
        first = sequence.frames[min(sequence.frames)]
        if sequence.label is None:
            raise DatasetError(f"{first}: sequence {number} has no label (labels/label_s{number}.png)")
        count = len(sequence.frames)
        if count not in FRAME_COUNTS:
            raise DatasetError(
                f"{first}: sequence {number} has {count} frames; the release has "
                f"{FRAME_COUNTS.start}-{FRAME_COUNTS.stop - 1} per sequence"
            )
        missing = sorted(set(range(count)) - set(sequence.frames))
        if missing:
            raise DatasetError(
                f"{folder / 'images' / f'image_s{number}_i{missing[0]}.png'}: missing from sequence {number} "
                f"(its frames are numbered up to {max(sequence.frames)})"
            )
    return sequences


def _frame(path: Path, shape: tuple[int, ...] | None) -> np.ndarray:
    array = load_array(path)
    if array.ndim != 2 or array.dtype != np.uint8:
        raise DatasetError(f"{path}: expected an 8-bit grey frame, got {array.dtype} of shape {array.shape}")
    if shape is not None and array.shape != shape:
        raise DatasetError(f"{path}: frame of size {array.shape}, its sequence's first frame is {shape}")
    return array


def read_frames(sequence: SequenceFiles) -> np.ndarray:
    """The sequence's frames in order, ``(K, H, W)`` uint8, all of one size (checked)."""
    first = _frame(sequence.frames[0], None)
    return np.stack(
        [first] + [_frame(sequence.frames[k], first.shape) for k in range(1, len(sequence.frames))]
    )


def reduce_frames(frames: np.ndarray, rule: str) -> np.ndarray:
    """One 2D input from a sequence's frames ``(K, H, W)``: ``(H, W)`` for ``minip``/``last``, ``(H, W, 3)``
    for ``three`` (see the module docstring)."""
    if rule == "minip":
        return frames.min(axis=0)
    if rule == "last":
        return frames[-1]
    if rule == "three":
        return np.stack([frames[0], frames[(len(frames) - 1) // 2], frames[-1]], axis=-1)  # (H, W, 3)
    raise DatasetError(f"--frames: unknown rule {rule!r} (valid: {', '.join(FRAME_RULES)})")


def convert_dias(
    src: str | Path,
    dst: str | Path,
    frames: str = "three",
    val_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetWriter:
    """Convert the DIAS release at ``src`` into the canonical layout at ``dst``, one item per sequence.

    Raises:
        DatasetError: not a DIAS release, a malformed release (see :func:`read_split`), frames of different
            sizes, a label of another size than its frames, a sequence in two splits, or a non-empty ``dst``.
    """
    if frames not in FRAME_RULES:
        raise DatasetError(f"--frames: unknown rule {frames!r} (valid: {', '.join(FRAME_RULES)})")
    root = _release_root(Path(src))
    members: dict[str, list[str] | None] = {"train": None, "val": None, "test": None}
    sequences: dict[str, SequenceFiles] = {}
    for folder, split in RELEASE_SPLITS.items():
        if not (root / folder).is_dir():
            continue
        found = read_split(root / folder)
        for sequence in found.values():
            if sequence.stem in sequences:
                other = sequences[sequence.stem].label
                raise DatasetError(f"{sequence.label}: sequence {sequence.number} is also in {other}")
            sequences[sequence.stem] = sequence
        members[split] = [s.stem for s in found.values()]
    if not members["train"]:
        raise DatasetError(f"{root / 'training'}: no annotated sequences")
    writer = DatasetWriter(dst, overwrite=overwrite)

    def item(stem: str) -> Item:
        sequence = sequences[stem]
        stack = read_frames(sequence)  # (K, H, W)
        label = read_labels(sequence.label)[0]
        if label.shape != stack.shape[1:]:
            raise DatasetError(
                f"{sequence.label}: label of size {label.shape}, its frames are {stack.shape[1:]}"
            )
        return reduce_frames(stack, frames), label > 0, None

    return write_release_splits(writer, members, PAPER_TEST_SIZE, val_fraction, seed, item)


class DiasConverter(Converter):
    """``python -m salt.data.prepare dias [--frames three|minip|last]``."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--frames",
            choices=FRAME_RULES,
            default="three",
            help="a sequence's frames to one input: first/middle/last frame as RGB, minimum-intensity "
            "projection, or last frame (three)",
        )

    def convert(
        self, args: argparse.Namespace, src: Path, dst: Path, val_fraction: float, seed: int, overwrite: bool
    ) -> DatasetWriter:
        return convert_dias(src, dst, args.frames, val_fraction=val_fraction, seed=seed, overwrite=overwrite)
