"""Builds the network a configuration describes: a SAM-family backbone + class prompts + a PEFT method.

Precedence, highest first: the command line, an experiment file, the model config (its ``adapters`` block
gives each method's targets and ranks, which ``configs/peft/*.yaml`` read by interpolation), the method's
defaults. Nothing is replaced afterwards: the options that reach the PEFT method are those of the
resolved configuration, and the ranks each target group got are recorded (``info["ranks"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf
from torch import nn

from salt.errors import ConfigError, UserError
from salt.model import BackboneError, backbone, set_trainable
from salt.peft import adapter_ranks, inject_from_config, injections

log = logging.getLogger(__name__)

# PEFT keys whose value the model config supplies; null means the model declares none.
MODEL_SUPPLIED = ("target_modules", "rank")


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def resolve_checkpoint(model_cfg: Mapping, checkpoint_dir: str | Path) -> str | None:
    """The weights to load: a file path, a name the backbone resolves (``bundled``), or None for random weights.

    ``checkpoint: auto`` takes ``<checkpoint_dir>/<default_file>`` when it exists and otherwise falls back to
    random weights with a warning; an explicit path is used as given (a missing file is an error then).
    """
    ckpt = model_cfg.get("checkpoint")
    if ckpt != "auto":
        return None if ckpt in (None, "", "none", "null") else str(ckpt)
    default = Path(checkpoint_dir) / str(model_cfg.get("default_file", ""))
    if default.is_file():
        return str(default)
    log.warning(
        "no pretrained weights at %s: training from RANDOM weights, so results are meaningless for the "
        "paper's comparison. Download %s (see checkpoints/README.md) and put it there.",
        default,
        default.name,
    )
    return None


def peft_options(cfg: Mapping) -> dict:
    """The resolved PEFT configuration, checked for the keys the model config must supply.

    Raises:
        ConfigError: ``peft.method`` is missing, or a key the method needs resolved to null because the model
            config declares no value for it (``model.adapters``).
    """
    peft = dict(_plain(cfg["peft"]))
    method = peft.get("method")
    if method is None:
        raise ConfigError(
            "peft.method is not set (choose a config: peft=salt|lora|svd|full|none|hf|dora|pissa|adalora|vera|osf)"
        )
    if method != "none":
        from salt.peft.registry import METHODS

        supplied = METHODS[method].model_supplied if method in METHODS else MODEL_SUPPLIED
        for key in supplied:
            if key in peft and peft[key] is None:
                raise ConfigError(
                    f"peft.{key} is null: model {cfg['model'].get('variant')} declares no "
                    f"adapters.{key if key == 'target_modules' else f'{method}.{key}'}; give peft.{key}=..."
                )
    return peft


def build_network(cfg: Mapping) -> tuple[nn.Module, dict]:
    """Build the segmentation network of ``cfg`` with its trainable policy and PEFT adapters.

    The model config's ``_target_`` names the builder (``salt.model.build_sam``); it is called with the
    config's ``variant``, ``checkpoint`` (resolved), ``img_size`` and the data set's ``num_classes``.

    Returns:
        ``(model, info)``: the model maps images ``(B, 3, S, S)`` in [0, 255] to logits
        ``(B, num_classes, S, S)``; ``info`` records the weights, the PEFT options, the replaced module
        names and the ranks per target group.

    Raises:
        ConfigError: a builder, input size, variant or trainable group the backbone does not have (the
            message names the ``model.*`` key).
    """
    model_cfg = _plain(cfg["model"])
    if model_cfg.get("family") == "classic":
        return _build_classic(cfg, model_cfg)
    target = model_cfg.get("_target_")
    if not target:
        raise ConfigError(
            "model._target_ is not set: a model config names its builder (salt.model.build_sam)"
        )
    try:
        builder = get_method(target)
    except Exception:  # Hydra wraps import failures in several types; all mean a wrong name here
        raise ConfigError(f"model._target_={target!r} is not an importable function") from None
    checkpoint = resolve_checkpoint(model_cfg, cfg["paths"]["checkpoint_dir"])
    try:
        model = builder(
            variant=model_cfg["variant"],
            checkpoint=checkpoint,
            img_size=int(model_cfg["img_size"]),
            num_classes=int(cfg["dataset"]["num_classes"]),
        )
    except BackboneError as exc:
        raise ConfigError(f"model.{exc}" if str(exc).startswith("img_size=") else f"model: {exc}") from None
    try:
        model.set_prompt_mode(str((cfg.get("prompt") or {}).get("mode", "class")))
    except UserError as exc:
        raise ConfigError(str(exc)) from None
    try:
        set_trainable(model, model_cfg.get("trainable") or [])
    except BackboneError as exc:
        raise ConfigError(f"model.trainable: {exc}") from None
    options = peft_options(cfg)
    targets = inject_from_config(model, options)
    log.info(
        "PEFT %s",
        ", ".join(f"{r['method']}: adapted {len(r['targets'])} modules" for r in injections(model))
        or f"{options['method']}: no module adapted",
    )
    return model, {
        "checkpoint": backbone(model.backbone).weights_file(checkpoint) if checkpoint else None,
        "peft": options,
        "targets": targets,
        "ranks": adapter_ranks(model),
    }


def _build_classic(cfg: Mapping, model_cfg: dict) -> tuple[nn.Module, dict]:
    from salt.classic import build_classic

    model = build_classic(
        model_cfg["name"],
        num_classes=int(cfg["dataset"]["num_classes"]),
        img_size=int(model_cfg["img_size"]),
        **(model_cfg.get("kwargs") or {}),
    )
    model.requires_grad_(True)
    mode = (cfg.get("prompt") or {}).get("mode", "class")
    if mode != "class":
        raise ConfigError(f"prompt.mode={mode}: {model_cfg['name']} takes no prompts (use prompt=class)")
    method = _plain(cfg["peft"]).get("method")
    if method not in (None, "none", "full"):
        log.info(
            "%s is trained from scratch with every parameter; peft.method=%s does not apply",
            model_cfg["name"],
            method,
        )
    return model, {"checkpoint": None, "peft": {"method": "none"}, "targets": [], "ranks": {}}
