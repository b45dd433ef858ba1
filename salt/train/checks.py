"""Checks of a job's configuration that refuse a run in one line before anything is built or written."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from salt.data.layout import file_suffix, is_supported
from salt.data.prompts import check_prompt_options
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


def check_train_config(cfg: Mapping) -> None:
    """Refuse a training configuration that cannot give a result: no epoch to train, an empty batch, ...

    Args:
        cfg: the resolved ``configs/train.yaml`` as a plain dict.
    """
    trainer = cfg["trainer"]
    if cfg.get("fit", True) and 0 in (trainer.get("max_epochs"), trainer.get("max_steps")):
        key = "trainer.max_epochs" if trainer.get("max_epochs") == 0 else "trainer.max_steps"
        raise ConfigError(f"{key}=0 with fit=true trains nothing; use fit=false to test the model as built")
    positive_int("data.batch_size", cfg["data"]["batch_size"])
    check_patch(cfg)
    workers = cfg["data"].get("num_workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"data.num_workers={workers!r} must be an int >= 0")
    probability_threshold("eval.threshold", cfg["eval"]["threshold"])
    pixel_spacing(cfg["dataset"].get("spacing"))
    check_prompt_options(cfg.get("prompt") or {})


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


def make_output_folders(cfg: Mapping) -> None:
    """Create every folder the run writes to: the run folder, each logger's ``save_dir`` and, when it trains,
    each callback's ``dirpath`` (checkpoints), so a path that cannot be created is refused before training."""
    make_folder("paths.output_dir", cfg["paths"]["output_dir"])
    writers = [("logger", "save_dir")] + ([("callbacks", "dirpath")] if cfg.get("fit", True) else [])
    for group, field in writers:
        for name, entry in (cfg.get(group) or {}).items():
            if isinstance(entry, Mapping) and entry.get(field):
                make_folder(f"{group}.{name}.{field}", entry[field])


def check_patch(cfg: Mapping) -> None:
    """Refuse a patch-mode configuration that cannot run: invalid ``patch`` settings, or box/point prompts
    (windows take class prompts only; an image-level box or point set is not cut per window).

    Args:
        cfg: a resolved run configuration as a plain dict (``patch`` absent or null: resized mode).
    """
    patch = cfg.get("patch")
    if not patch:
        return
    from salt.data.patches import PatchSettings

    try:
        PatchSettings.from_config(patch)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    mode = (cfg.get("prompt") or {}).get("mode", "class")
    if mode != "class":
        raise ConfigError(
            f"prompt={mode}: patch mode takes class prompts only (a box or points given for the whole image "
            "are not cut per window); use prompt=class or patch=none"
        )


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
