"""Checks of a config value shared by every job (training, evaluation, prediction, export): each refuses a
wrong value in one line naming its config key, before anything is built or written."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from salt.data.layout import file_suffix, is_supported
from salt.errors import ConfigError


def positive_int(key: str, value: Any) -> int:
    """``value`` as an int >= 1, or a :class:`ConfigError` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} must be an int >= 1")
    return value


def _number(value: Any) -> float | None:
    """``value`` as a float, or None for a bool or anything ``float`` does not take."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def probability_threshold(key: str, value: Any) -> float:
    """``value`` as a float strictly between 0 and 1, or a :class:`ConfigError` naming ``key``.

    At 0 or below every pixel is foreground, at 1 or above none is: no threshold outside (0, 1) segments.
    """
    number = _number(value)
    if number is None or not 0.0 < number < 1.0:
        raise ConfigError(f"{key}={value!r}: a probability threshold lies strictly between 0 and 1")
    return number


def pixel_spacing(value: Any, key: str = "dataset.spacing") -> tuple[float, float] | None:
    """The pixel size ``(row, col)`` in mm given by config ``key``, or None (``null``: distances in pixels).

    Raises:
        ConfigError: anything but null or two finite numbers > 0, in one line naming ``key``.
    """
    if value is None:
        return None
    pair = isinstance(value, (list, tuple)) and len(value) == 2
    numbers = [_number(v) for v in value] if pair else [None]
    if any(v is None or not math.isfinite(v) or v <= 0 for v in numbers):
        raise ConfigError(
            f"{key}={value!r}: expected the pixel size [row, col] in mm, two numbers > 0, "
            "or null (distances in pixels)"
        )
    return numbers[0], numbers[1]


def make_folder(key: str, path: str | Path) -> Path:
    """Create the folder ``path`` given by config ``key``; one line naming both when it cannot be made."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in folder.parents if p.exists()), None)
        reason = (
            f"{blocker} is not a folder" if blocker is not None and not blocker.is_dir() else exc.strerror
        )
        raise ConfigError(f"{key}: the folder {folder} cannot be created ({reason})") from None
    return folder


def check_output(key: str, path: str | Path, kind: str = "file", example: str = "") -> Path:
    """Refuse, in one line naming ``key``, an output ``path`` that cannot be written as a ``kind``.

    Nothing is created: a ``file`` must not be a folder, and its folder must exist or be creatable and be
    writable; a ``folder`` must not be a file or have an image file's name (``mask.png``), and must exist or be
    creatable in a writable folder.

    Args:
        key: the config key that gave ``path``, for the message.
        path: the output file or folder.
        kind: ``file`` or ``folder``.
        example: a name to suggest in the message (a file name for a folder given as ``file``, a folder name for
            an image file name given as ``folder``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{key}={path}: is a folder; give a file name (e.g. {path / (example or 'out')})")
    if kind == "folder":
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{key}={path}: is a file; give a folder (new or existing) to write into")
        if not path.exists() and is_supported(path):
            raise ConfigError(
                f"{key}={path}: names an image file ({file_suffix(path)}), but {key} is the folder the files are "
                f"written into; give a folder (e.g. {key}={path.parent / (example or 'out')})"
            )
    folder = path.parent if kind == "file" else path
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    if existing.exists() and not existing.is_dir():
        raise ConfigError(f"{key}={path}: the folder {folder} cannot be created ({existing} is not a folder)")
    try:  # a file made and removed at once: the folder's permissions, ACLs and mount all agree
        with tempfile.NamedTemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"{key}={path}: cannot write to {existing} ({exc.strerror})") from None
    return path


def training_splits(splits: Any) -> tuple[str, ...]:
    """``data.train_splits`` as a tuple, refused in one line unless it is ``[train]`` or ``[train, val]``.

    Raises:
        ConfigError: a split other than train/val (the test split is never trained on), or no ``train``.
    """
    names = (
        (splits,) if isinstance(splits, str) else tuple(splits) if isinstance(splits, (list, tuple)) else ()
    )
    if "train" not in names or not set(names) <= {"train", "val"}:
        raise ConfigError(
            f"data.train_splits={splits!r} must be [train] or [train, val] (the test split is never trained on)"
        )
    return tuple(dict.fromkeys(names))
