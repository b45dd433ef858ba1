"""Methods of the Hugging Face ``peft`` package through this project's loop (DoRA, PiSSA, AdaLoRA, VeRA, OSF ...).

``inject(model, "hf", targets, config={"_target_": "peft.LoraConfig", "use_dora": True, "r": 4})`` builds
the peft config class named by ``_target_`` from the other keys (a null value keeps peft's default), with
``target_modules`` set to the matched module names, and lets peft's own tuner class for that config
(``peft.mapping.PEFT_TYPE_TO_TUNER_MAPPING``) replace those modules in place, as
``peft.inject_adapter_in_model`` does, without wrapping the model in a ``PeftModel``. The layers are peft's,
so a model gives the outputs and gradients of ``peft.get_peft_model`` on the same module and weights.

Around peft this method adds:

- the parameters outside the targets keep their ``requires_grad`` (peft's tuner freezes every
  non-adapter parameter of the model, the project's trainable groups included);
- a failed injection, or a target peft leaves as it was (OSF adapts no Conv2d), restores the model and
  raises a one-line :class:`ConfigError` naming the option; ``layer_types`` narrows the targets to the
  layer types a peft method supports;
- a training schedule: ``schedule`` gives integer step fields of the config (AdaLoRA's ``total_step``,
  ``tinit``, ``tfinal``) as fractions of the run's optimizer steps, resolved by :meth:`set_training_steps`;
  ``update_and_allocate`` of a tuner that has one (AdaLoRA) runs after every optimizer step;
- AdaLoRA's orthogonal regulariser as this method's :meth:`regularization` (its weight is ``reg_weight``).

peft is imported only when this method is used: importing it takes seconds.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from salt.errors import ConfigError
from salt.peft.base import Method, flat_shape
from salt.peft.layer import is_adapter_module
from salt.peft.registry import register

log = logging.getLogger(__name__)

ADAPTER = "default"  # peft's adapter name; one adapter per injection
TUNERS_ATTR = "peft_tuners"  # on the model: first target name -> _Tuned, one per hf injection
LAYER_TYPES = {"Linear": nn.Linear, "Conv2d": nn.Conv2d}
# Config fields that choose modules: this method's targets come from `target_modules` (the backbone's).
TARGETING_FIELDS = (
    "target_modules",
    "exclude_modules",
    "layers_to_transform",
    "layers_pattern",
    "modules_to_save",
)
# The field holding a peft config's rank, first match: AdaLoRA's target (it has r too, unused), LoRA-like r, OSF's.
RANK_FIELDS = ("target_r", "r", "effective_rank")
# Until the training loop gives the run's step count, `schedule` fractions resolve against this count only so
# that peft's config checks pass; a schedule acts only in training, where after_optimizer_step requires the
# real count.
UNSET_STEPS = 1000


@dataclass
class _Tuned:
    """The peft tuner object of one injection (AdaLoRA keeps its rank allocator there) and its schedule state."""

    tuner: nn.Module
    steps: int | None = None
    last_step: int = 0


def _config_class(target: Any) -> type:
    import peft

    if not isinstance(target, str) or "." not in target:
        raise ConfigError(
            f"option config._target_={target!r} must name a peft config class, e.g. peft.LoraConfig"
        )
    module_name, _, class_name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"option config._target_={target!r} cannot be imported ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, peft.PeftConfig)):
        raise ConfigError(
            f"option config._target_={target!r} is not a peft config class (a subclass of peft.PeftConfig)"
        )
    return cls


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _tuned(model: nn.Module, record: Mapping[str, Any]) -> _Tuned | None:
    return getattr(model, TUNERS_ATTR, {}).get(record["targets"][0])


@register("hf")
@dataclass(frozen=True)
class HuggingFace(Method):
    """Options of a peft method.

    Attributes:
        config: ``_target_`` (a ``peft.PeftConfig`` subclass, e.g. ``peft.LoraConfig``) and that class's
            fields; null values keep peft's defaults; fields that choose modules are refused (the targets
            are ``target_modules``).
        label: the results-table row; None derives one from the class and the given fields.
        layer_types: the matched targets' types this method adapts (``Linear``, ``Conv2d``).
        schedule: integer fields of ``config`` given as fractions in [0, 1] of the run's optimizer steps.
        rank: must stay None: a peft config's rank is one of its own fields (``config.r``, AdaLoRA's
            ``config.target_r``, OSF's ``config.effective_rank``); a value is refused naming that field, so that
            ``peft.rank=...``, the rank of this project's methods, never passes silently.
    """

    # The rank is a field of the peft config (config.r, ...); ``rank`` stays null and a value is refused.
    model_supplied: ClassVar[tuple[str, ...]] = ("target_modules",)

    config: dict[str, Any] = field(default_factory=lambda: {"_target_": "peft.LoraConfig"})
    label: str | None = None
    layer_types: list[str] = field(default_factory=lambda: list(LAYER_TYPES))
    schedule: dict[str, float] = field(default_factory=dict)
    rank: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.config, Mapping) or "_target_" not in self.config:
            raise ConfigError(
                f"option config={self.config!r} must be a mapping with a _target_ (a peft config class)"
            )
        cls = _config_class(self.config["_target_"])
        valid = {f.name for f in dataclasses.fields(cls) if f.init}
        if self.rank is not None:
            rank_field = next((k for k in RANK_FIELDS if k in valid), "r")
            raise ConfigError(
                f"option rank={self.rank!r}: a peft method ({self.config['_target_']}) takes its rank as "
                f"config.{rank_field}; give peft.config.{rank_field}={self.rank}"
            )
        given = [k for k, v in self.config.items() if k != "_target_" and v is not None]
        for key in [*given, *self.schedule]:
            if key not in valid:
                raise ConfigError(
                    f"option config.{key} is not a field of {self.config['_target_']}; "
                    f"its fields: {', '.join(sorted(valid))}"
                )
        for key in TARGETING_FIELDS:
            if self.config.get(key) is not None:
                raise ConfigError(
                    f"option config.{key}: the modules to adapt are target_modules (the backbone's, or "
                    "peft.target_modules=...), not a field of the peft config"
                )
        types = self.layer_types
        if not isinstance(types, list) or not types or any(t not in LAYER_TYPES for t in types):
            raise ConfigError(
                f"option layer_types={self.layer_types!r} must be a non-empty list of {', '.join(LAYER_TYPES)}"
            )
        for key, fraction in self.schedule.items():
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
                raise ConfigError(
                    f"option schedule.{key}={fraction!r} must be a fraction of the run's steps in [0, 1]"
                )

    # ------------------------------------------------------------------------------------------ config
    def scheduled(self, steps: int) -> dict[str, int]:
        """The ``schedule`` fields resolved for a run of ``steps`` optimizer steps."""
        return {key: round(fraction * steps) for key, fraction in self.schedule.items()}

    def peft_config(self, names: list[str], steps: int = UNSET_STEPS) -> Any:
        """The peft config object for the targets ``names``, its schedule resolved for ``steps`` steps.

        Raises:
            ConfigError: peft rejects the values; the message names the option when peft's does.
        """
        cls = _config_class(self.config["_target_"])
        given = {k: v for k, v in self.config.items() if k != "_target_" and v is not None}
        values = {**given, **self.scheduled(steps)}
        try:
            return cls(**values, target_modules=list(names))
        except (ValueError, TypeError) as exc:
            raise ConfigError(self._rejected(exc)) from None

    def _rejected(self, exc: BaseException) -> str:
        # Name the given field that peft's message mentions, when exactly one does.
        message = _first_line(exc)
        given = {
            k: v for k, v in {**self.config, **self.schedule}.items() if k != "_target_" and v is not None
        }
        named = [k for k in given if re.search(rf"\b{re.escape(k)}\b", message)]
        where = f"config.{named[0]}={given[named[0]]!r}" if len(named) == 1 else "config"
        return f"option {where} ({self.config['_target_']}) was rejected by peft: {message}"

    # --------------------------------------------------------------------------------------- injection
    def select(self, model: nn.Module, names: list[str]) -> list[str]:
        """The matched targets whose type is one of ``layer_types``.

        Raises:
            ConfigError: targets matched, but none of these types.
        """
        types = tuple(LAYER_TYPES[t] for t in self.layer_types)
        chosen = [name for name in names if isinstance(model.get_submodule(name), types)]
        if names and not chosen:
            found = sorted({type(model.get_submodule(name)).__name__ for name in names})
            raise ConfigError(
                f"option layer_types={self.layer_types!r} keeps none of the {len(names)} matched targets "
                f"(they are {', '.join(found)})"
            )
        return chosen

    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> nn.Module:
        """Not used: peft's tuner adapts all targets at once (:meth:`apply`)."""
        raise NotImplementedError("the hf method adapts a model through apply()")

    def apply(self, model: nn.Module, names: list[str], cache: dict | None = None) -> None:
        """Let peft's tuner class replace the targets ``names``, restoring ``model`` if it fails."""
        from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING

        config = self.peft_config(names)
        tuner_class = PEFT_TYPE_TO_TUNER_MAPPING.get(config.peft_type)
        if tuner_class is None or config.is_prompt_learning:
            raise ConfigError(
                f"option config._target_={self.config['_target_']!r}: peft's {type(config).__name__} does not adapt "
                "layers in place (prompt-learning methods need a PeftModel)"
            )
        flags = {id(p): p.requires_grad for p in model.parameters()}
        originals = {name: model.get_submodule(name) for name in names}
        data = [(p, p.data) for module in originals.values() for p in module.parameters()]
        try:
            tuner = tuner_class(model, config, ADAPTER)
            left = [name for name in names if not is_adapter_module(model.get_submodule(name))]
            if left:
                raise ConfigError(
                    f"option layer_types={self.layer_types!r}: peft's {type(config).__name__} left {len(left)} targets "
                    f"as they were (first: {left[0]}, a {type(originals[left[0]]).__name__}); narrow "
                    "peft.layer_types or peft.target_modules"
                )
        except (ConfigError, ValueError, TypeError, NotImplementedError, KeyError) as exc:
            for name, module in originals.items():
                model.set_submodule(name, module)
            for param, tensor in data:
                param.data = tensor
            for param in model.parameters():
                param.requires_grad_(flags.get(id(param), param.requires_grad))
            raise exc if isinstance(exc, ConfigError) else ConfigError(self._rejected(exc)) from None
        finally:
            # BaseTuner copies its configs onto the model; a later injection would take them as its own.
            model.__dict__.pop("peft_config", None)
        inside = {id(p) for name in names for p in model.get_submodule(name).parameters()}
        for param in model.parameters():
            if id(param) not in inside:
                param.requires_grad_(flags[id(param)])
        for name, module in originals.items():
            model.get_submodule(name).train(module.training)
        tuners = dict(getattr(model, TUNERS_ATTR, {}))
        tuners[names[0]] = _Tuned(tuner)
        setattr(model, TUNERS_ATTR, tuners)
        given = {k: v for k, v in self.config.items() if k != "_target_" and v is not None}
        log.info("peft %s on %d modules: %s", type(config).__name__, len(names), given)

    # ------------------------------------------------------------------------ what the project asks
    @classmethod
    def trained_names(cls, module: nn.Module) -> list[str]:
        """The parameters under the layer's ``adapter_layer_names``, peft's own list of its trainable tensors."""
        names = []
        for attr in dict.fromkeys(module.adapter_layer_names):  # DoRA appends its magnitude a second time
            sub = getattr(module, attr, None)
            if isinstance(sub, nn.Module):
                names += [f"{attr}.{name}" for name, _ in sub.named_parameters()]
        return names

    @classmethod
    def hyper_parameters(cls, module: nn.Module) -> dict[str, int | float]:
        """``k = min(out, in_f)`` of the base layer, peft's rank ``r`` and OSF's preserved rank ``r_kept``."""
        out, in_f = flat_shape(module.get_base_layer())
        params: dict[str, int | float] = {"k": min(out, in_f)}
        for attr, key in (("r", "r"), ("effective_rank", "r_kept")):
            value = getattr(module, attr, None)
            if isinstance(value, Mapping) and ADAPTER in value:
                params[key] = int(value[ADAPTER])
        return params

    @classmethod
    def regularization(cls, model: nn.Module, record: Mapping[str, Any]) -> torch.Tensor | None:
        """AdaLoRA's orthogonal regulariser, as ``AdaLoraModel.forward`` adds it: the mean over the factors
        of ``||A A^T - I||_F`` and ``||B^T B - I||_F``; None for other peft methods."""
        from peft.tuners.adalora import AdaLoraLayer

        terms = []
        for name in record["targets"]:
            layer = model.get_submodule(name)
            if isinstance(layer, AdaLoraLayer) and ADAPTER in layer.lora_A:
                a, b = layer.lora_A[ADAPTER], layer.lora_B[ADAPTER]  # (r, in_f), (out, r)
                for cov in (a @ a.T, b.T @ b):  # (r, r)
                    eye = torch.eye(*cov.shape, dtype=cov.dtype, device=cov.device)
                    terms.append(torch.linalg.matrix_norm(cov - eye))
        return torch.stack(terms).mean() if terms else None

    @classmethod
    def set_training_steps(cls, model: nn.Module, record: Mapping[str, Any], steps: int) -> None:
        """Resolve ``schedule`` for ``steps`` optimizer steps and set it on the live peft config."""
        spec, tuned = cls.from_options(record["options"]), _tuned(model, record)
        if tuned is None or not spec.schedule:
            return
        live = tuned.tuner.peft_config[ADAPTER]
        values = spec.scheduled(steps)
        try:
            dataclasses.replace(live, **values)  # peft's own checks on the resolved values
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"option schedule={spec.schedule!r} over {steps} steps: {_first_line(exc)}"
            ) from None
        for key, value in values.items():
            setattr(live, key, value)
        tuned.steps = steps
        log.info("%s schedule over %d optimizer steps: %s", type(live).__name__, steps, values)

    @classmethod
    def after_optimizer_step(cls, model: nn.Module, record: Mapping[str, Any], step: int) -> None:
        """``update_and_allocate`` of the tuner (AdaLoRA), once per optimizer step, with peft's 0-based index."""
        tuned = _tuned(model, record)
        if tuned is None or not hasattr(tuned.tuner, "update_and_allocate") or step <= tuned.last_step:
            return
        if tuned.steps is None and record["options"].get("schedule"):
            raise RuntimeError(
                "the hf schedule needs the run's step count: call set_training_steps before training"
            )
        tuned.last_step = step
        tuned.tuner.update_and_allocate(step - 1)

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """``peft.label``, or the config class and its given fields: ``"peft LoraConfig (use_dora=True)"``."""
        if peft.get("label"):
            return str(peft["label"])
        options = dict(peft.get("config") or {})
        name = "peft " + str(options.pop("_target_", "config")).rsplit(".", 1)[-1]
        given = ", ".join(f"{k}={v}" for k, v in options.items() if v is not None)
        return f"{name} ({given})" if given else name
