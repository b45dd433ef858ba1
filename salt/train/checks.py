"""Checks of a training configuration that refuse a run in one line before anything is built or written."""

from __future__ import annotations

from collections.abc import Mapping

from salt.checks import make_folder, pixel_spacing, positive_int, probability_threshold, training_splits
from salt.data.prompts import check_prompt_options
from salt.errors import ConfigError


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
    training_splits(cfg["data"].get("train_splits", ["train"]))
    check_patch(cfg)
    workers = cfg["data"].get("num_workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"data.num_workers={workers!r} must be an int >= 0")
    probability_threshold("eval.threshold", cfg["eval"]["threshold"])
    pixel_spacing(cfg["dataset"].get("spacing"))
    check_prompt_options(cfg.get("prompt") or {})


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
