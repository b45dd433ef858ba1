"""Rebuilding a trained network from a run folder, a Lightning checkpoint or an adapter file.

Nothing here needs the training loop: the network is built from the configuration the run recorded, then its
trainable tensors (adapters, norms, class prompts, ...) are loaded from the checkpoint's ``state_dict`` or the
adapter file, with the exact key set and the frozen base's fingerprint checked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from salt.errors import ConfigError
from salt.model.checkpoint import CheckpointError
from salt.model.factory import build_network
from salt.model.sliding import use_image_range
from salt.peft import base_fingerprint, load_adapter
from salt.recorded import upgrade_run_config

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
WEIGHT_SOURCE_KEYS = {"checkpoint", "default_file", "paper_param_denominator"}
# Compared first, so a different network is named by what defines it rather than by a side option.
_IDENTITY_KEYS = ("_target_", "variant")
_DERIVED = object()
EVAL_HINT = "the network comes from the checkpoint: drop the setting"


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
        rest = sorted((set(given) | set(recorded)) - set(_IDENTITY_KEYS) - WEIGHT_SOURCE_KEYS)
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


# The prefix of the network's tensors in a Lightning checkpoint's ``state_dict`` (the module's ``model``).
STATE_PREFIX = "model."


@dataclass
class TrainedRun:
    """A trained network rebuilt from its run.

    Attributes:
        model: the network in eval mode on the CPU; images ``(B, 3, S, S)`` in [0, 255] (and the run's
            prompts) to logits ``(B, C, S, S)``.
        config: the run's configuration as recorded (with the job's replacements: base weights, data set).
        build_info: what building recorded: ``checkpoint`` (base weights), ``peft`` (options), ``targets``,
            ``ranks``.
        source: the file loaded (``.ckpt`` or adapter ``.safetensors``).
    """

    model: nn.Module
    config: dict
    build_info: dict
    source: Path


def build_run_network(cfg: Mapping) -> tuple[nn.Module, dict]:
    """The network of the run configuration ``cfg`` as its run built it, with the base's random weights seeded.

    A base without pretrained weights (tiny, or no checkpoint file) is random: building it under ``cfg.seed``
    (without touching the caller's random state) makes it the same network every time it is rebuilt from the
    configuration. In patch mode (``cfg.patch``) the normaliser may take its range from the whole image.

    Returns:
        ``(model, info)`` as :func:`salt.model.factory.build_network` gives.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.get("seed", 0)))
        model, info = build_network(cfg)
    use_image_range(model, cfg.get("patch") or None)
    return model, info


def trainable_names(model: nn.Module) -> set[str]:
    """Names of ``model``'s trainable tensors: what a checkpoint stores (the frozen base is rebuilt)."""
    return {name for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: Mapping, weights: str | None) -> None:
    """Load the trainable tensors of a training checkpoint into ``model``, refusing any that do not fit.

    Args:
        model: the network built from the checkpoint's run configuration.
        state: the loaded ``.ckpt``: ``state_dict`` holds exactly the trainable tensors, named
            ``model.<name>``; ``salt.base_fingerprint`` (when present) the frozen base's fingerprint.
        weights: the base weights file loaded (None: random weights), for the message.

    Raises:
        ConfigError: the key set differs from the trainable tensors of ``model`` (another method or rank), or
            the base weights differ from the ones trained on.
    """
    trainable = trainable_names(model)
    keys, expected = set(state["state_dict"]), {STATE_PREFIX + name for name in trainable}
    if keys != expected:
        missing, unexpected = sorted(expected - keys)[:3], sorted(keys - expected)[:3]
        raise ConfigError(
            "checkpoint does not fit this model and PEFT configuration "
            f"(missing {missing}, unexpected {unexpected})"
        )
    recorded = state.get("salt", {}).get("base_fingerprint")
    if recorded is not None and recorded != base_fingerprint(model, exclude=trainable):
        raise ConfigError(
            "checkpoint was trained on other base weights than the ones loaded now "
            f"({weights or 'random weights'}); give the SAM file used in training"
        )
    tensors = {key.removeprefix(STATE_PREFIX): value for key, value in state["state_dict"].items()}
    model.load_state_dict(tensors, strict=False)


def pick_device(name: str, key: str = "device") -> torch.device:
    """The torch device config ``key`` names: ``auto`` (CUDA when available, else the CPU), ``cpu`` or ``cuda``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}=cuda: no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key}={name!r}: expected auto, cpu or cuda") from None


# Mixed precision by the trainer's names: the autocast dtype of the model's forward pass (None: float32).
PRECISIONS: dict[str, torch.dtype | None] = {
    "32-true": None,
    "bf16-mixed": torch.bfloat16,
    "16-mixed": torch.float16,
}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (``32-true``, ``bf16-mixed``, ``16-mixed``) on ``device``.

    Raises:
        ConfigError: an unknown precision, or ``16-mixed`` off a CUDA device.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "16-mixed" and device.type != "cuda":
        raise ConfigError(
            f"precision={precision}: float16 autocast needs a CUDA device (got {device}); use bf16-mixed"
        )
    return PRECISIONS[precision]


def load_trained(
    ckpt: str | Path,
    base_checkpoint: str | None = None,
    dataset: dict | None = None,
    given: Mapping | None = None,
) -> TrainedRun:
    """Rebuild the trained network recorded in ``ckpt``.

    Args:
        ckpt: a run folder, a ``.ckpt`` written by training, or an ``adapter.safetensors``.
        base_checkpoint: a SAM weights file replacing the one recorded at training time.
        dataset: a data-set config replacing the recorded one (its ``num_classes`` must match). Its images are
            resized to the network's input size, recorded by the run: an ``img_size`` it gives must be that size;
            without one it gets it.
        given: the job's configuration; its ``model``/``peft`` groups and ``prompt.mode``, when present, must agree
            with the run.

    Returns:
        The network in eval mode on the CPU with the run's configuration.
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
        model, info = build_run_network(run_cfg)
    except CheckpointError as exc:
        if base_checkpoint is None:
            raise
        # The only weights file read while the network is built is the base checkpoint: name its key.
        text = str(exc)
        named = text if text.startswith(f"{Path(base_checkpoint)}:") else f"{base_checkpoint}: {text}"
        raise ConfigError(f"base_checkpoint={named}") from None
    if state is not None:
        load_trainable_state(model, state, info["checkpoint"])
    else:
        load_adapter(model, path)
    log.info("loaded %s", path)
    return TrainedRun(model.eval(), run_cfg, info, path)
