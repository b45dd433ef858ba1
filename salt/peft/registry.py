"""The method registry and injection: find target modules by name and swap in adapter layers.

Target matching follows HF PEFT: a list entry matches a module whose name equals it or ends with
``"." + entry``; a plain string is a regex that must match the whole module name. Modules inside an
adapter layer (its ``base_layer``) are never targets.

Every injection is recorded on the model (attribute ``peft_injections``: a list of
``{"method", "target_modules", "options", "targets"}`` dicts, JSON-ready), so adapter checkpoints can name
what to re-inject and a second injection into the same module is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from salt.errors import ConfigError
from salt.peft.base import Method
from salt.peft.layer import AdapterLayer, adapter_layers

log = logging.getLogger(__name__)

METHODS: dict[str, type[Method]] = {}
INJECTIONS_ATTR = "peft_injections"
CONFIG_KEYS = ("method", "target_modules", "reg_weight")


def register(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator adding a :class:`Method` subclass to :data:`METHODS` under ``name``."""

    def add(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"PEFT method {name!r} is registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return add


def injections(model: nn.Module) -> list[dict[str, Any]]:
    """The injection records of ``model`` (empty when nothing was injected)."""
    return getattr(model, INJECTIONS_ATTR, [])


def is_target(name: str, target_modules: str | Sequence[str]) -> bool:
    """Whether module ``name`` matches ``target_modules`` (regex string, or list of name suffixes)."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == t or name.endswith(f".{t}") for t in target_modules)


def match_targets(model: nn.Module, target_modules: str | Sequence[str]) -> list[str]:
    """Names of the modules of ``model`` matching ``target_modules``, outside any adapter layer."""
    names, wrapped = [], []
    for name, module in model.named_modules():
        if any(name.startswith(f"{prefix}.") for prefix in wrapped):
            continue
        if isinstance(module, AdapterLayer):
            wrapped.append(name)
        if name and is_target(name, target_modules):
            names.append(name)
    return names


def _check_targets(target_modules: Any) -> str | list[str]:
    if isinstance(target_modules, str):
        try:
            re.compile(target_modules)
        except re.error as exc:
            raise ConfigError(f"target_modules={target_modules!r} is not a valid regex ({exc})") from None
        return target_modules
    if isinstance(target_modules, Sequence) and all(isinstance(t, str) for t in target_modules):
        return list(target_modules)
    raise ConfigError(
        f"target_modules={target_modules!r} must be a regex string or a list of module-name suffixes"
    )


def inject(model: nn.Module, method: str, target_modules: str | Sequence[str], **options: Any) -> list[str]:
    """Adapt the modules of ``model`` matching ``target_modules`` with ``method``, in place.

    Only the wrapped base layers' own parameters are frozen and the new adapter tensors made trainable
    (``full`` makes the targets' weight and bias trainable); every other parameter keeps its
    ``requires_grad``. All targets are checked before anything changes, so a failed call leaves the
    model as it was.

    Args:
        model: any module; a SamSegmenter in this project.
        method: a key of :data:`METHODS` (``salt``, ``svd``, ``lora``, ``full``, ``none``).
        target_modules: regex string, or list of module-name suffixes (ignored by ``none``).
        **options: the method's options (its dataclass fields), e.g. ``rank``, ``lora_rank``, ``relu``.

    Returns:
        The names of the adapted modules, in model order (``[]`` for ``none``).

    Raises:
        ValueError: unknown method or option, invalid option value, nothing matched, an unsupported
            module type, a rank that does not fit a module, or a module that is already adapted.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown PEFT method {method!r}; valid methods: {', '.join(sorted(METHODS))}")
    spec = METHODS[method].from_options(options)
    target_modules = _check_targets(target_modules)
    names = match_targets(model, target_modules) if spec.matches_targets else []
    if spec.matches_targets and not names:
        raise ConfigError(
            f"target_modules={target_modules!r} matched no module of {type(model).__name__} "
            f"(method {method!r}); give name suffixes such as 'attn.qkv' or a regex for the full name"
        )
    taken = {name: record["method"] for record in injections(model) for name in record["targets"]}
    for name in names:
        module = model.get_submodule(name)
        if name in taken or isinstance(module, AdapterLayer):
            already = taken.get(name) or module.adapter_method
            raise ValueError(f"module {name} already has a {already!r} adapter; injecting twice is refused")
        spec.check(name, module)
    for name in names:
        module = model.get_submodule(name)
        adapted = spec.adapt(name, module)
        if adapted is not module:
            adapted.train(module.training)  # an adapter injected into a model in eval mode stays in eval mode
            model.set_submodule(name, adapted)
    record = {
        "method": method,
        "target_modules": target_modules,
        "options": dataclasses.asdict(spec),
        "targets": names,
    }
    setattr(model, INJECTIONS_ATTR, [*injections(model), record])
    log.info("PEFT %s: adapted %d modules", method, len(names))
    return names


def _plain(value: Any) -> Any:
    # Config objects (OmegaConf DictConfig/ListConfig) -> plain dicts and lists, JSON-ready.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def inject_from_config(model: nn.Module, cfg: Mapping[str, Any]) -> list[str]:
    """:func:`inject` from a ``configs/peft/<method>.yaml`` mapping.

    Keys: ``method``, ``target_modules``, the method's options, and ``reg_weight`` (the loss weight of
    :func:`regularization`, used by the training loop and ignored here).
    """
    options = _plain(cfg)
    if "method" not in options:
        raise ConfigError(f"PEFT config has no 'method' key (keys: {', '.join(options) or 'none'})")
    method = options.pop("method")
    target_modules = options.pop("target_modules", [])
    options.pop("reg_weight", None)
    return inject(model, method, target_modules, **options)


def regularization(model: nn.Module) -> torch.Tensor:
    """Sum of :meth:`AdapterLayer.regularization` over all adapter layers (a 0-dim tensor, 0 if none)."""
    terms = [layer.regularization() for _, layer in adapter_layers(model)]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()
