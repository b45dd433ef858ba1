"""What a release converter is, and the writing loop every converter shares.

A converter is a :class:`Converter` subclass in its own module of this package, built by Hydra from
``configs/prepare/<name>.yaml`` (``_target_`` names the class; the file's other keys are its constructor's
arguments, ``summary`` at least). The command line (``salt.data.prepare.cli``) offers one sub-command per
file of that folder, so adding a converter is that module plus its YAML file.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from salt.data.writer import DatasetWriter, assign_splits

# What one item of the converted set is made of: the image (a file copied as is, or pixels), its mask (a
# file or a label image (H, W)) and its optional field-of-view mask (H, W) bool.
Item = tuple[Path | np.ndarray, Path | np.ndarray, np.ndarray | None]


class Converter(ABC):
    """One release layout to the canonical layout, with the command-line options it needs.

    Args:
        summary: one line naming the release and its layout; the sub-command's help.
    """

    def __init__(self, summary: str) -> None:
        self.summary = summary

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:  # noqa: B027 - most need none
        """Add this converter's options to its sub-command; ``--src``, ``--dst``, ``--overwrite``,
        ``--val-fraction`` and ``--seed`` are every converter's already."""

    @abstractmethod
    def convert(
        self, args: argparse.Namespace, src: Path, dst: Path, val_fraction: float, seed: int, overwrite: bool
    ) -> DatasetWriter:
        """Convert the release at ``src`` into ``dst``; ``args`` holds the options :meth:`add_arguments` added.

        Returns the finished writer (what it wrote, for the summary). Raises ``DatasetError`` on a release
        that is not as expected, naming the file.
        """


def write_items(
    writer: DatasetWriter, splits: Mapping[str, Sequence[str]], item: Callable[[str], Item]
) -> DatasetWriter:
    """Write ``item(stem)`` of every stem of ``splits`` (``{split: stems}``) into ``writer``; returns it.

    The writer stages into a temporary folder and moves it into place only when every item was written, so a
    ``DatasetError`` raised by ``item`` leaves nothing behind.
    """
    with writer:
        for split, stems in splits.items():
            for stem in stems:
                writer.add(stem, split, *item(stem))
    return writer


def write_release_splits(
    writer: DatasetWriter,
    members: Mapping[str, list[str] | None],
    paper_test_size: int,
    val_fraction: float,
    seed: int,
    item: Callable[[str], Item],
) -> DatasetWriter:
    """Keep the release's own splits (``members``: ``{split: stems}``, ``None`` where the release has none) and
    write every item: a missing test split takes ``paper_test_size`` stems of train, a missing val split
    ``val_fraction`` of the rest (``salt.data.writer.assign_splits``, drawn with ``seed``)."""
    splits = assign_splits(
        members["train"] or [],
        members["val"],
        members["test"],
        paper_test_size,
        val_fraction=val_fraction,
        seed=seed,
    )
    return write_items(writer, splits, item)
