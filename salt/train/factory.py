"""Builds the network a configuration describes: SAM + class prompts + a PEFT method."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from salt.model import build_sam, set_trainable
from salt.peft import inject_from_config
from salt.train.errors import ConfigError

log = logging.getLogger(__name__)


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def resolve_checkpoint(model_cfg: Mapping, checkpoint_dir: str | Path) -> str | None:
    """The SAM weights file to load, or None for random weights.

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
    """The PEFT configuration with the model's per-method overrides applied (``model.peft_overrides``)."""
    peft = dict(_plain(cfg["peft"]))
    overrides = (_plain(cfg["model"]).get("peft_overrides") or {}).get(peft["method"], {})
    if overrides:
        changes = ", ".join(
            f"{k}: {peft.get(k)!r} -> {v!r}" for k, v in overrides.items() if peft.get(k) != v
        )
        log.warning("model.peft_overrides of %s replace peft options: %s", cfg["model"]["variant"], changes)
    return {**peft, **overrides}


def build_network(cfg: Mapping) -> tuple[nn.Module, dict]:
    """Build the segmentation network of ``cfg`` with its trainable policy and PEFT adapters.

    Returns:
        ``(model, info)``: the model maps images ``(B, 3, S, S)`` in [0, 255] to logits
        ``(B, num_classes, S, S)``; ``info`` records the weights file, the PEFT options and the replaced
        module names.
    """
    model_cfg = _plain(cfg["model"])
    family = model_cfg.get("family", "sam")
    if family == "classic":
        return _build_classic(cfg, model_cfg)
    if family != "sam":
        raise ConfigError(f"model.family={family!r} is not supported; valid: sam, classic")
    checkpoint = resolve_checkpoint(model_cfg, cfg["paths"]["checkpoint_dir"])
    model = build_sam(
        model_cfg["variant"],
        checkpoint,
        img_size=int(model_cfg["img_size"]),
        num_classes=int(cfg["dataset"]["num_classes"]),
    )
    set_trainable(model, model_cfg.get("trainable") or [])
    options = peft_options(cfg)
    targets = inject_from_config(model, options)
    log.info("PEFT %s on %d layers", options["method"], len(targets))
    return model, {"checkpoint": checkpoint, "peft": options, "targets": targets}


def _build_classic(cfg: Mapping, model_cfg: dict) -> tuple[nn.Module, dict]:
    from salt.classic import build_classic

    model = build_classic(
        model_cfg["name"],
        num_classes=int(cfg["dataset"]["num_classes"]),
        img_size=int(model_cfg["img_size"]),
        **(model_cfg.get("kwargs") or {}),
    )
    model.requires_grad_(True)
    method = _plain(cfg["peft"]).get("method")
    if method not in (None, "none", "full"):
        log.info(
            "%s is trained from scratch with every parameter; peft.method=%s does not apply",
            model_cfg["name"],
            method,
        )
    return model, {"checkpoint": None, "peft": {"method": "none"}, "targets": []}
