"""What every adapter method shares: its options object, target validation and rank resolution.

A method is a frozen dataclass of its options (the keys of ``configs/peft/<method>.yaml`` other than
``method``, ``target_modules`` and ``reg_weight``) whose :meth:`Method.adapt` turns one matched module
into its adapted replacement. The registry (``salt.peft.registry``) finds the modules and swaps them.

A method also owns what the rest of the project needs to know about it, so that tables, counts and
benchmarks ask it instead of switching on its name: its row label (:meth:`Method.row_label`), which
tensors of an adapted target it trains (:meth:`Method.trained_names`, the one definition of "adapter
parameters"), the structural settings of an adapted target (:meth:`Method.hyper_parameters`), its
regulariser and, for methods with a training schedule, the hooks the training loop calls. The cost model
of one adapted layer is the layer's :meth:`~salt.peft.layer.AdapterLayer.multiply_adds`.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn

from salt.errors import ConfigError
from salt.peft.layer import AdapterLayer


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise a one-line :class:`ConfigError` unless option ``key`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"option {key}={value!r} is not valid; valid values: {', '.join(choices)}")


def check_rank_value(key: str, value: Any) -> None:
    """Raise unless ``value`` is a rank: an int >= 1 or a float fraction in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"option {key}={value!r} must be an int >= 1 or a float fraction in (0, 1]")
    if isinstance(value, float) and not 0.0 < value <= 1.0:
        raise ConfigError(f"option {key}={value!r}: a float rank is a fraction of k and must lie in (0, 1]")
    if isinstance(value, int) and value < 1:
        raise ConfigError(f"option {key}={value!r} must be >= 1")


def flat_shape(module: nn.Module) -> tuple[int, int]:
    """``(out, in * kh * kw)`` of a Linear or Conv2d weight, the matrix every method works on."""
    weight = module.weight
    return weight.shape[0], weight[0].numel()


def check_supported(name: str, module: nn.Module) -> None:
    """Raise unless ``module`` is an ``nn.Linear`` or an ungrouped ``nn.Conv2d``."""
    if not isinstance(module, (nn.Linear, nn.Conv2d)):
        raise ConfigError(
            f"target module {name} is a {type(module).__name__}; only nn.Linear and nn.Conv2d can be adapted "
            "(narrow target_modules)"
        )
    if isinstance(module, nn.Conv2d) and module.groups != 1:
        raise ConfigError(f"target module {name} is a grouped Conv2d (groups={module.groups}); only groups=1")


@dataclass(frozen=True)
class Method(ABC):
    """Options of one adapter method; subclasses add their option fields with defaults.

    Attributes:
        name: the registry key (set by ``salt.peft.registry.register``).
        matches_targets: False for a method that adapts nothing (``none``): ``target_modules`` is ignored.
        model_supplied: option keys whose value the model config supplies (``model.adapters``); null there
            means the backbone declares none, which the method cannot run without.
    """

    name: ClassVar[str] = ""
    matches_targets: ClassVar[bool] = True
    model_supplied: ClassVar[tuple[str, ...]] = ("target_modules", "rank")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Method:
        """Build the options object, naming the offending key if one is unknown."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown option {unknown[0]!r} for method {cls.name!r}; valid options: {', '.join(valid) or 'none'}"
            )
        return cls(**options)

    def select(self, model: nn.Module, names: list[str]) -> list[str]:
        """The matched module names this method adapts (default: all of them)."""
        return names

    def check(self, name: str, module: nn.Module) -> None:
        """Raise ``ValueError`` if ``module`` cannot be adapted; called for every target before any change."""
        check_supported(name, module)

    @abstractmethod
    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> nn.Module:
        """Return the adapted ``module`` (the target called ``name``): a new layer, or the module changed in place.

        ``cache`` is a dict shared by the injections of one caller (e.g. a benchmark building many variants
        of one model): a method may keep tensors derived from a frozen weight there to reuse them.
        """

    def apply(self, model: nn.Module, names: list[str], cache: dict | None = None) -> None:
        """Adapt the checked targets ``names`` of ``model`` in place (default: :meth:`adapt` each and swap it in)."""
        for name in names:
            module = model.get_submodule(name)
            adapted = self.adapt(name, module, cache)
            if adapted is not module:
                # an adapter injected into a model in eval mode stays in eval mode
                adapted.train(module.training)
                model.set_submodule(name, adapted)

    @classmethod
    def trained_names(cls, module: nn.Module) -> list[str]:
        """Names (relative to the adapted target ``module``) of the tensors this method trains there.

        Default: the parameters an adapter layer owns itself (never its frozen ``base_layer``).
        """
        return [name for name, _ in module.named_parameters(recurse=False)]

    @classmethod
    def hyper_parameters(cls, module: nn.Module) -> dict[str, int | float]:
        """The structural settings of one adapted target (``k``, ``r``, ``l`` ...), JSON-ready."""
        return module.hyper_parameters() if isinstance(module, AdapterLayer) else {}

    @classmethod
    def regularization(cls, model: nn.Module, record: Mapping[str, Any]) -> torch.Tensor | None:
        """The regulariser of one injection ``record`` (0-dim), None when its layers have none.

        Default: the sum of :meth:`AdapterLayer.regularization` over its targets.
        """
        terms = [
            module.regularization()
            for module in (model.get_submodule(name) for name in record["targets"])
            if isinstance(module, AdapterLayer)
        ]
        return torch.stack(terms).sum() if terms else None

    @classmethod
    def set_training_steps(cls, model: nn.Module, record: Mapping[str, Any], steps: int) -> None:
        """Called once before training with the run's number of optimizer steps (default: nothing to do)."""
        return

    @classmethod
    def after_optimizer_step(cls, model: nn.Module, record: Mapping[str, Any], step: int) -> None:
        """Called after each optimizer step, gradients still in place; ``step`` counts the steps taken so far."""
        return

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """The results-table row of a run with this method, e.g. ``"LoRA (rank 4)"``.

        Args:
            peft: the run's resolved ``config.peft``; config: the whole resolved run configuration.
            paper_backbone: whether the run used the paper's backbone (SAM ViT-B, official weights).

        Raises:
            KeyError: a key the label needs is missing; its argument is the dotted key (``config.peft.rank``).
        """
        return cls.name


class RankedMethod(Method):
    """A method whose options include a ``rank`` and a per-target ``rank_pattern`` (SALT's r, LoRA's r).

    Subclasses declare the two dataclass fields (with their own default rank); this class checks them once,
    at construction and against each target, and resolves the rank of each target.

    Attributes:
        rank: an int >= 1, or a float fraction in (0, 1] of ``k = min(out, in)``.
        rank_pattern: regex on the module-name suffix -> rank of that form; the first match wins.
    """

    rank: int | float
    rank_pattern: dict[str, int | float]

    def __post_init__(self) -> None:
        check_rank_value("rank", self.rank)
        for pattern, value in self.rank_pattern.items():
            check_rank_value(f"rank_pattern[{pattern!r}]", value)

    def check(self, name: str, module: nn.Module) -> None:
        """Supported module type and a rank that fits it."""
        super().check(name, module)
        self.resolve_rank(name, module)

    def resolve_rank(self, name: str, module: nn.Module) -> int:
        """Absolute rank for module ``name``: option ``rank``, overridden by the first matching ``rank_pattern``.

        A ``rank_pattern`` key is a regex matched against a module-name suffix at a dot boundary (as in HF
        PEFT). An int is absolute, a float f in (0, 1] means ``max(1, floor(f * k))`` with ``k = min(out, in)``.

        Raises:
            ValueError: the rank falls outside ``[1, k]``; the message names the option key (or the
                ``rank_pattern`` entry), the value, the module and the valid range.
        """
        k = min(flat_shape(module))
        label, value = "rank", self.rank
        for pattern, pattern_value in self.rank_pattern.items():
            if re.match(rf"(.*\.)?({pattern})$", name):
                label, value = f"rank_pattern[{pattern!r}]", pattern_value
                break
        check_rank_value(label, value)
        rank = max(1, math.floor(value * k)) if isinstance(value, float) else value
        if rank > k:
            raise ConfigError(
                f"option {label}={value!r} does not fit module {name}: the valid range is [1, {k}] "
                f"(k = min(out, in) = {k}) or a float fraction in (0, 1]"
            )
        return rank
