"""Rebuilding a trained model from a run folder, a Lightning checkpoint or an adapter file."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from salt.model.checkpoint import CheckpointError
from salt.recorded import upgrade_run_config
from salt.train.errors import ConfigError
from salt.train.module import SegmentationModule

log = logging.getLogger(__name__)


def find_checkpoint(path: str | Path) -> Path:
    """The file to load for ``path``: itself, or in a run folder ``checkpoints/best.ckpt``, then
    ``checkpoints/last.ckpt``, then ``adapter.safetensors``."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "adapter.safetensors"):
            if (path / candidate).is_file():
                return path / candidate
        raise ConfigError(
            f"ckpt={path}: folder holds no checkpoints/best.ckpt, last.ckpt or adapter.safetensors"
        )
    if not path.is_file():
        raise ConfigError(f"ckpt={path}: file not found")
    if path.suffix not in (".ckpt", ".safetensors"):
        raise ConfigError(f"ckpt={path}: expected a run folder, a .ckpt or an adapter .safetensors file")
    return path


# Where the frozen base weights come from: the base fingerprint in every checkpoint checks the weights.
_WEIGHT_SOURCE_KEYS = {"checkpoint", "default_file", "paper_param_denominator"}
# Compared first, so a different network is named by what defines it rather than by a side option.
_IDENTITY_KEYS = ("_target_", "variant")
_DERIVED = object()
EVAL_HINT = "the network comes from the checkpoint: drop the setting"
RESUME_HINT = "a resumed run keeps its network: resume with the run's settings or start a new run"


def read_run_config(path: Path, key: str = "ckpt") -> tuple[dict | None, dict]:
    """``(state, run_cfg)`` of a ``.ckpt`` (state = the loaded checkpoint) or an adapter file (state = None).

    ``run_cfg`` is in today's form, whatever version recorded it (:func:`salt.recorded.upgrade_run_config`).

    ``key`` is the config key that named ``path``, for the error messages.
    """
    if path.suffix == ".ckpt":
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            run_cfg = state["hyper_parameters"]["cfg"]
        except Exception as exc:  # any unreadable file means the same to the user
            raise ConfigError(
                f"{key}={path}: not a readable training checkpoint ({type(exc).__name__})"
            ) from None
        return state, upgrade_run_config(run_cfg)
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise ConfigError(f"{key}={path}: its metadata file {sidecar.name} is missing")
    run_cfg = json.loads(sidecar.read_text()).get("metadata", {}).get("config")
    if run_cfg is None:
        raise ConfigError(f"{key}={path}: {sidecar.name} records no run configuration")
    return None, upgrade_run_config(run_cfg)


def _value(group: Any, key: str) -> Any:
    # A value interpolated in the job's own config (img_size: ${dataset.img_size}) was not set by the user and
    # follows the job's data set, which may differ from the run's: it cannot contradict anything.
    if isinstance(group, DictConfig):
        if OmegaConf.is_interpolation(group, key):
            return _DERIVED
        try:
            value = group[key]
        except OmegaConfBaseException:
            return _DERIVED
        return (
            OmegaConf.to_container(value, resolve=True)
            if isinstance(value, (DictConfig, ListConfig))
            else value
        )
    return group.get(key)


def check_same_network(cfg: Mapping, run_cfg: Mapping, source: str, hint: str = EVAL_HINT) -> None:
    """Refuse ``model``, ``peft``, ``prompt.mode`` or ``dataset.num_classes`` settings of ``cfg`` that contradict the run
    recorded in ``run_cfg``, in one line naming both values.

    Args:
        cfg: the job's configuration (a DictConfig or a plain dict); groups it lacks are not compared.
        run_cfg: the configuration the checkpoint was trained with.
        source: how the user named the checkpoint (``ckpt=...`` or ``ckpt_path=...``), for the message.
        hint: what to do instead, ending the message.
    """
    for group in ("model", "peft"):
        given, recorded = cfg.get(group), run_cfg.get(group) or {}
        if given is None:
            continue
        rest = sorted((set(given) | set(recorded)) - set(_IDENTITY_KEYS) - _WEIGHT_SOURCE_KEYS)
        for key in [k for k in _IDENTITY_KEYS if k in given or k in recorded] + rest:
            value = _value(given, key)
            if value is not _DERIVED and value != recorded.get(key):
                raise ConfigError(
                    f"{group}.{key}={value!r} contradicts {source}, trained with {group}.{key}="
                    f"{recorded.get(key)!r}; {hint}"
                )
    mode = (cfg.get("prompt") or {}).get("mode")
    recorded_mode = (run_cfg.get("prompt") or {}).get("mode", "class")
    if mode is not None and mode != recorded_mode:
        raise ConfigError(
            f"prompt.mode={mode} contradicts {source}, trained with prompt.mode={recorded_mode}; {hint}"
        )
    dataset = cfg.get("dataset")
    if dataset is not None and int(dataset["num_classes"]) != int(run_cfg["dataset"]["num_classes"]):
        raise ConfigError(
            f"dataset.num_classes={dataset['num_classes']} contradicts {source}, trained with "
            f"dataset.num_classes={run_cfg['dataset']['num_classes']}; {hint}"
        )


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
    *(f"model.{key}" for key in sorted(_WEIGHT_SOURCE_KEYS)),  # the base fingerprint checks the weights
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


def load_trained(
    ckpt: str | Path,
    base_checkpoint: str | None = None,
    dataset: dict | None = None,
    given: Mapping | None = None,
) -> tuple[SegmentationModule, dict]:
    """Rebuild the trained module recorded in ``ckpt``.

    Args:
        ckpt: a run folder, a ``.ckpt`` written by training, or an ``adapter.safetensors``.
        base_checkpoint: a SAM weights file replacing the one recorded at training time.
        dataset: a data-set config replacing the recorded one (its ``num_classes`` must match). Its images are
            resized to the network's input size, recorded by the run: an ``img_size`` it gives must be that size;
            without one it gets it.
        given: the job's configuration; its ``model``/``peft`` groups and ``prompt.mode``, when present, must agree
            with the run.

    Returns:
        ``(module, run_cfg)`` with the module in eval mode on the CPU.
    """
    path = find_checkpoint(ckpt)
    state, run_cfg = read_run_config(path)
    groups = {key: (given or {}).get(key) for key in ("model", "peft", "prompt")}
    check_same_network({**groups, "dataset": dataset}, run_cfg, f"ckpt={path}")
    if base_checkpoint is not None:
        run_cfg["model"]["checkpoint"] = base_checkpoint
    if dataset is not None:
        size = int(run_cfg["model"].get("img_size") or run_cfg["dataset"]["img_size"])
        if dataset.get("img_size") is not None and int(dataset["img_size"]) != size:
            raise ConfigError(
                f"dataset.img_size={dataset['img_size']} contradicts ckpt={path}, whose network takes {size} x "
                f"{size} images; drop the setting (the data set's images are resized to {size} x {size})"
            )
        run_cfg["dataset"] = {**dataset, "img_size": size}
    try:
        module = SegmentationModule(run_cfg)
    except CheckpointError as exc:
        if base_checkpoint is None:
            raise
        # The only weights file read while the network is built is the base checkpoint: name its key.
        text = str(exc)
        named = text if text.startswith(f"{Path(base_checkpoint)}:") else f"{base_checkpoint}: {text}"
        raise ConfigError(f"base_checkpoint={named}") from None
    if state is not None:
        module.on_load_checkpoint(state)
        module.load_state_dict(state["state_dict"], strict=False)
    else:
        from salt.peft import load_adapter

        load_adapter(module.model, path)
    log.info("loaded %s", path)
    return module.eval(), run_cfg
