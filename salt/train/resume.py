"""Resuming a training run: which checkpoint ``ckpt_path`` names, and the settings a resumed run may not change."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from salt.errors import ConfigError
from salt.inference.loading import WEIGHT_SOURCE_KEYS, check_same_network, read_run_config

RESUME_HINT = "a resumed run keeps its network: resume with the run's settings or start a new run"


# Settings a resumed run may change: where files go, how much is printed, how data is read and what the final
# test writes. Everything else (optimiser, schedule, epochs, batch, loss, data set, network, prompts, seed,
# trainer) is fixed by the checkpoint's state and would be recorded for a run it did not describe.
RESUME_FREE = (
    "ckpt_path",
    "task_name",
    "test",
    "zero_shot_test",
    "paths",
    "logger",
    "callbacks",
    "data.num_workers",
    "data.pin_memory",
    "dataset.root",
    "dataset.cache",
    "eval.overlays",
    "eval.original_resolution",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.num_sanity_val_steps",
    "trainer.limit_test_batches",
    *(f"model.{key}" for key in sorted(WEIGHT_SOURCE_KEYS)),  # the base fingerprint checks the weights
)


def changed_settings(cfg: Mapping, run_cfg: Mapping, free: tuple[str, ...] = RESUME_FREE) -> list[str]:
    """``"key: recorded -> given"`` for every setting of ``cfg`` that differs from ``run_cfg``, by dotted key.

    Keys under ``free`` are not compared, nor keys only one side has (a setting added or dropped by another
    version of the code); a group replaced by a value (``dataset.augment=null``) is one change.
    """
    changes: list[str] = []

    def walk(given: Any, recorded: Any, key: str) -> None:
        if key and any(key == f or key.startswith(f + ".") for f in free):
            return
        if isinstance(given, Mapping) and isinstance(recorded, Mapping):
            for name in [k for k in given if k in recorded]:
                walk(given[name], recorded[name], f"{key}.{name}" if key else str(name))
        elif given != recorded:
            changes.append(f"{key}: {recorded!r} -> {given!r}")

    walk(cfg, run_cfg, "")
    return changes


def resume_checkpoint(path: str | Path) -> Path:
    """The file ``ckpt_path`` names: itself, or in a run folder its ``checkpoints/last.ckpt``."""
    path = Path(path)
    if path.is_dir():
        last = path / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise ConfigError(f"ckpt_path={path}: the folder holds no checkpoints/last.ckpt to resume from")
        return last
    if path.suffix != ".ckpt" or not path.is_file():
        raise ConfigError(
            f"ckpt_path={path}: no such training checkpoint (a run folder or its checkpoints/last.ckpt)"
        )
    return path


def check_resume(cfg: Mapping) -> Path:
    """Refuse ``ckpt_path`` (a checkpoint or run folder to resume) when it holds no training checkpoint, was
    trained with another network than ``cfg`` (the resolved training configuration) describes, or with
    other settings than ``cfg`` gives for what the checkpoint's state fixes (:data:`RESUME_FREE` lists what
    may change).

    Returns:
        The checkpoint file to resume from.
    """
    path = resume_checkpoint(cfg["ckpt_path"])
    run_cfg = read_run_config(path, "ckpt_path")[1]
    source = f"ckpt_path={path}"
    check_same_network(cfg, run_cfg, source, RESUME_HINT)
    changes = changed_settings(cfg, run_cfg)
    if changes:
        raise ConfigError(
            f"{source}: a resumed run continues with the settings it was trained with; changed: "
            f"{'; '.join(changes)}. Resume with the run's values or start a new run"
        )
    return path
