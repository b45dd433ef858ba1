"""The method registry and injection: find target modules by name and swap in adapter layers.

A PEFT config (``configs/peft/<method>.yaml``) names its method class by ``_target_``
(``salt.peft.salt.Salt``); :func:`method_class` resolves it. The registry (:data:`METHODS`, filled by
:func:`register`) maps each class's short name, the one injection records and adapter checkpoints store,
back to the class.

Target matching follows HF PEFT: a list entry matches a module whose name equals it or ends with
``"." + entry``; a plain string is a regex that must match the whole module name. Modules inside an
adapter layer (its ``base_layer``) are never targets.

Every injection is recorded on the model (attribute ``peft_injections``: a list of
``{"method", "target_modules", "options", "targets"}`` dicts, JSON-ready), so adapter checkpoints can name
what to re-inject and a second injection into the same module is refused. A method whose injection
rewrites a frozen base tensor (PiSSA moves the top singular directions of W into its adapter) also records
that tensor's pre-injection samples (``"base_samples"``: base-model name -> base64 of
:func:`tensor_samples`), so the base fingerprint stays that of the pretrained weights.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from hydra.utils import get_class
from torch import nn

from salt.errors import ConfigError
from salt.peft.base import Method
from salt.peft.layer import is_adapter_module

log = logging.getLogger(__name__)

METHODS: dict[str, type[Method]] = {}
INJECTIONS_ATTR = "peft_injections"
# The keys of every PEFT config besides the method's own options (see inject_from_config).
CONFIG_KEYS = ("_target_", "target_modules", "reg_weight", "companions")
FINGERPRINT_SAMPLES = 64


def register(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator adding a :class:`Method` subclass to :data:`METHODS` under ``name``."""

    def add(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"PEFT method {name!r} is registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return add


def method_class(cfg: Mapping[str, Any], key: str = "peft") -> type[Method]:
    """The :class:`Method` subclass a PEFT config names by ``_target_`` (e.g. ``salt.peft.lora.Lora``).

    ``key`` is the config key of ``cfg`` (``peft``, ``peft.companions[0]``), for the error messages.

    Raises:
        ConfigError: no ``_target_``, one that does not import, or a class that is not a registered method.
    """
    target = cfg.get("_target_")
    if not target:
        raise ConfigError(
            f"{key}._target_ is not set: a PEFT config names its method class (e.g. salt.peft.lora.Lora)"
        )
    try:
        cls = get_class(str(target))
    except Exception:  # Hydra wraps import failures in several types; all mean a wrong name here
        raise ConfigError(f"{key}._target_={target!r} is not an importable class") from None
    if not (isinstance(cls, type) and issubclass(cls, Method) and METHODS.get(cls.name) is cls):
        valid = ", ".join(f"{c.__module__}.{c.__qualname__}" for c in METHODS.values())
        raise ConfigError(f"{key}._target_={target!r} is not a registered PEFT method; valid: {valid}")
    return cls


def injections(model: nn.Module) -> list[dict[str, Any]]:
    """The injection records of ``model`` (empty when nothing was injected)."""
    return getattr(model, INJECTIONS_ATTR, [])


def tensor_samples(tensor: torch.Tensor) -> bytes:
    """``FINGERPRINT_SAMPLES`` values of ``tensor`` at evenly spaced flat indices, as float64 bytes."""
    flat = tensor.detach().reshape(-1)  # (numel,)
    count = min(FINGERPRINT_SAMPLES, flat.numel())
    index = torch.arange(count, device=flat.device) * (flat.numel() - 1) // max(count - 1, 1)
    return flat[index].to(torch.float64).cpu().numpy().tobytes()


def canonical_name(name: str) -> str:
    """The base model's own name of a tensor, whether or not its layer is wrapped in an adapter."""
    return name.replace(".base_layer.", ".")


def _base_state(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    # The base tensors of the targets, by base-model name (meta tensors hold no values to sample).
    return {
        canonical_name(f"{name}.{key}"): tensor
        for name in names
        for key, tensor in model.get_submodule(name).state_dict().items()
        if not tensor.is_meta
    }


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
        if is_adapter_module(module):
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


def inject(
    model: nn.Module,
    method: str | type[Method],
    target_modules: str | Sequence[str],
    *,
    cache: dict | None = None,
    **options: Any,
) -> list[str]:
    """Adapt the modules of ``model`` matching ``target_modules`` with ``method``, in place.

    Only the wrapped base layers' own parameters are frozen and the new adapter tensors made trainable
    (``full`` makes the targets' weight and bias trainable); every other parameter keeps its
    ``requires_grad``. All targets are checked before anything changes, so a failed call leaves the
    model as it was.

    Args:
        model: any module; a SamSegmenter in this project.
        method: a :class:`Method` subclass, or its key in :data:`METHODS` (``salt``, ``svd``, ``lora``,
            ``full``, ``none``, ``hf``).
        target_modules: regex string, or list of module-name suffixes (ignored by ``none``).
        cache: a dict shared between injections into copies of one model; methods may keep tensors
            derived from the frozen weights there (the spectral methods: each weight's SVD).
        **options: the method's options (its dataclass fields), e.g. ``rank``, ``lora_rank``, ``relu``.

    Returns:
        The names of the adapted modules, in model order (``[]`` for ``none``).

    Raises:
        ValueError: unknown method or option, invalid option value, nothing matched, an unsupported
            module type, a rank that does not fit a module, or a module that is already adapted.
    """
    if isinstance(method, str):
        if method not in METHODS:
            raise ConfigError(f"unknown PEFT method {method!r}; valid methods: {', '.join(sorted(METHODS))}")
        method = METHODS[method]
    spec = method.from_options(options)
    method = method.name
    target_modules = _check_targets(target_modules)
    names = spec.select(model, match_targets(model, target_modules)) if spec.matches_targets else []
    if spec.matches_targets and not names:
        raise ConfigError(
            f"target_modules={target_modules!r} matched no module of {type(model).__name__} "
            f"(method {method!r}); give name suffixes such as 'attn.qkv' or a regex for the full name"
        )
    taken = {name: record["method"] for record in injections(model) for name in record["targets"]}
    for name in names:
        module = model.get_submodule(name)
        if name in taken or is_adapter_module(module):
            already = taken.get(name) or getattr(module, "adapter_method", "peft")
            raise ValueError(f"module {name} already has a {already!r} adapter; injecting twice is refused")
        spec.check(name, module)
    before = {key: tensor_samples(t) for key, t in _base_state(model, names).items()}
    spec.apply(model, names, cache)
    rewritten = {
        key: base64.b64encode(before[key]).decode()
        for key, tensor in _base_state(model, names).items()
        if key in before and tensor_samples(tensor) != before[key]
    }
    record = {
        "method": method,
        "target_modules": target_modules,
        "options": dataclasses.asdict(spec),
        "targets": names,
    }
    if rewritten:
        record["base_samples"] = rewritten
    setattr(model, INJECTIONS_ATTR, [*injections(model), record])
    log.debug("PEFT %s: adapted %d modules", method, len(names))
    return names


def _plain(value: Any) -> Any:
    # Config objects (OmegaConf DictConfig/ListConfig) -> plain dicts and lists, JSON-ready.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def inject_from_config(model: nn.Module, cfg: Mapping[str, Any], cache: dict | None = None) -> list[str]:
    """:func:`inject` from a ``configs/peft/<method>.yaml`` mapping (``cache`` as for :func:`inject`).

    Keys: ``_target_`` (the method class, :func:`method_class`), ``target_modules``, the method's options, ``reg_weight`` (the loss weight of
    :func:`regularization`, used by the training loop and ignored here) and ``companions``: a list of
    further mappings of the same form injected after it, into other modules (the SALT authors pair SALT on
    SAM2's Hiera blocks with LoRA on its FPN convs).

    Returns:
        The adapted module names of the method, then of each companion.
    """
    options = _plain(cfg)
    method = method_class(options)
    del options["_target_"]
    target_modules = options.pop("target_modules", [])
    options.pop("reg_weight", None)
    companions = options.pop("companions", None) or []
    if not isinstance(companions, list) or not all(isinstance(c, Mapping) for c in companions):
        raise ConfigError(
            f"companions={companions!r} must be a list of PEFT configs (_target_, target_modules, ...)"
        )
    names = inject(model, method, target_modules, cache=cache, **options)
    for companion in companions:
        names = [*names, *inject_from_config(model, companion, cache)]  # the record keeps its own list
    return names


def regularization(model: nn.Module) -> torch.Tensor:
    """Sum of every injection's :meth:`Method.regularization` (a 0-dim tensor, 0 if none has one)."""
    terms = [METHODS[r["method"]].regularization(model, r) for r in injections(model)]
    terms = [t for t in terms if t is not None]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def set_training_steps(model: nn.Module, steps: int) -> None:
    """Tell every injected method the run's number of optimizer steps (call once before training)."""
    for record in injections(model):
        METHODS[record["method"]].set_training_steps(model, record, steps)


def after_optimizer_step(model: nn.Module, step: int) -> None:
    """Let every injected method act after an optimizer step (``step``: optimizer steps taken so far)."""
    for record in injections(model):
        METHODS[record["method"]].after_optimizer_step(model, record, step)
