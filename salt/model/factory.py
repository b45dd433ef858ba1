"""Builds the network a configuration describes: the model config's ``_target_`` with its arguments, then, for a
SAM-family segmenter, its trainable groups and the PEFT method its ``peft`` config names by ``_target_``.

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

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from salt import CONFIG_DIR
from salt.classic.nets import dropped_arguments
from salt.errors import ConfigError, UserError
from salt.model import BackboneError, SamSegmenter, backbone, set_trainable
from salt.peft import adapter_ranks, inject_from_config, injections
from salt.peft.none import NoAdapter
from salt.peft.registry import method_class
from salt.recorded import upgrade_run_config

log = logging.getLogger(__name__)

PEFT_CONFIGS = CONFIG_DIR / "peft"
# Keys of a model config that describe the model to the project (its weights file, trainable groups, adapter
# targets, table tag and title, the paper's parameter convention) rather than arguments of its ``_target_``.
PROJECT_KEYS = (
    "_target_",
    "default_file",
    "trainable",
    "adapters",
    "tag",
    "title",
    "paper_param_denominator",
)


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
        ConfigError: ``peft._target_`` is missing or names no method, or a key the method needs resolved to null
            because the model config declares no value for it (``model.adapters``).
    """
    peft = dict(_plain(cfg["peft"]))
    if not peft.get("_target_"):
        choices = "|".join(sorted(p.stem for p in PEFT_CONFIGS.glob("*.yaml")))
        raise ConfigError(f"peft._target_ is not set (choose a config: peft={choices})")
    method = method_class(peft)
    for key in method.model_supplied if method.matches_targets else ():
        if key in peft and peft[key] is None:
            raise ConfigError(
                f"peft.{key} is null: model {cfg['model'].get('variant')} declares no "
                f"adapters.{key if key == 'target_modules' else f'{method.name}.{key}'}; give peft.{key}=..."
            )
    return peft


def _instantiate(model_cfg: Mapping, checkpoint: str | None) -> nn.Module:
    # The model's _target_ with every key of its config but the project's (PROJECT_KEYS), the weights resolved.
    args = {k: v for k, v in model_cfg.items() if k not in PROJECT_KEYS}
    if "checkpoint" in args:
        args["checkpoint"] = checkpoint
    net = args.get("net")
    if isinstance(net, Mapping) and (dropped := dropped_arguments(net)):
        raise ConfigError(
            f"model.net: {net['_target_']} takes no argument {', '.join(dropped)} (with encoder "
            f"{net.get('encoder_name')!r} it would be ignored)"
        )
    try:
        return instantiate({"_target_": model_cfg["_target_"], **args}, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, BackboneError):
            raise ConfigError(
                f"model.{cause}" if str(cause).startswith("img_size=") else f"model: {cause}"
            ) from None
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, TypeError):  # an argument the _target_ does not take, or one it lacks
            raise ConfigError(f"model._target_={model_cfg['_target_']!r}: {cause}") from None
        raise (
            cause if cause is not None else exc
        ) from None  # a bug in the builder: its own error and traceback


def build_network(cfg: Mapping) -> tuple[nn.Module, dict]:
    """Build the segmentation network of ``cfg`` with its trainable policy and PEFT adapters.

    The model config's ``_target_`` (``salt.model.build_sam``, ``salt.classic.ClassicSegmenter``) is
    instantiated with the config's keys other than :data:`PROJECT_KEYS`, ``checkpoint`` resolved by
    :func:`resolve_checkpoint`. A SAM-family segmenter then gets its prompt mode, trainable groups and the
    PEFT method of ``cfg.peft``; any other network (a classic baseline) trains every parameter.
    A configuration recorded in an earlier form is read in today's (:func:`salt.recorded.upgrade_run_config`).

    Returns:
        ``(model, info)``: the model maps images ``(B, 3, S, S)`` in [0, 255] to logits
        ``(B, num_classes, S, S)``; ``info`` records the weights, the PEFT options (with ``method``, the
        method's registry name), the replaced module names and the ranks per target group.

    Raises:
        ConfigError: a builder, input size, variant or trainable group the backbone does not have (the
            message names the ``model.*`` key).
    """
    checkpoint_dir = cfg["paths"]["checkpoint_dir"]
    cfg = upgrade_run_config(
        {
            "model": _plain(cfg["model"]),
            "peft": _plain(cfg.get("peft")),
            "dataset": {"num_classes": cfg["dataset"]["num_classes"]},
            "prompt": _plain(cfg.get("prompt")),
        }
    )
    model_cfg = dict(cfg["model"])
    if not model_cfg.get("_target_"):
        raise ConfigError(
            "model._target_ is not set: a model config names its builder (salt.model.build_sam)"
        )
    checkpoint = resolve_checkpoint(model_cfg, checkpoint_dir) if "checkpoint" in model_cfg else None
    model = _instantiate(model_cfg, checkpoint)
    if not isinstance(model, SamSegmenter):
        return _from_scratch(cfg, model)
    try:
        model.set_prompt_mode(str((cfg.get("prompt") or {}).get("mode", "class")))
    except UserError as exc:
        raise ConfigError(str(exc)) from None
    try:
        set_trainable(model, model_cfg.get("trainable") or [])
    except BackboneError as exc:
        raise ConfigError(f"model.trainable: {exc}") from None
    options = peft_options(cfg)
    method = method_class(options).name
    targets = inject_from_config(model, options)
    log.info(
        "PEFT %s",
        ", ".join(f"{r['method']}: adapted {len(r['targets'])} modules" for r in injections(model))
        or f"{method}: no module adapted",
    )
    return model, {
        "checkpoint": backbone(model.backbone).weights_file(checkpoint) if checkpoint else None,
        "peft": {"method": method, **options},
        "targets": targets,
        "ranks": adapter_ranks(model),
    }


def _from_scratch(cfg: Mapping, model: nn.Module) -> tuple[nn.Module, dict]:
    # A network without pretrained weights or adapters (a classic baseline): every parameter trains.
    model.requires_grad_(True)
    title = cfg["model"].get("title") or type(model).__name__
    mode = (cfg.get("prompt") or {}).get("mode", "class")
    if mode != "class":
        raise ConfigError(f"prompt.mode={mode}: {title} takes no prompts (use prompt=class)")
    peft = cfg.get("peft") or {}
    if peft.get("_target_"):
        method = method_class(peft)
        if method.matches_targets:
            log.info(
                "%s is trained from scratch with every parameter; peft=%s does not apply", title, method.name
            )
    return model, {"checkpoint": None, "peft": {"method": NoAdapter.name}, "targets": [], "ranks": {}}
