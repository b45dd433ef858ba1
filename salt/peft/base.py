"""What every adapter method shares: its options object, target validation and rank resolution.

A method is a frozen dataclass of its options (the keys of ``configs/peft/<method>.yaml`` other than
``method``, ``target_modules`` and ``reg_weight``) whose :meth:`Method.adapt` turns one matched module
into its adapted replacement. The registry (``salt.peft.registry``) finds the modules and swaps them.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from torch import nn

from salt.errors import ConfigError


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
    """

    name: ClassVar[str] = ""
    matches_targets: ClassVar[bool] = True

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

    def check(self, name: str, module: nn.Module) -> None:
        """Raise ``ValueError`` if ``module`` cannot be adapted; called for every target before any change."""
        check_supported(name, module)

    @abstractmethod
    def adapt(self, name: str, module: nn.Module) -> nn.Module:
        """Return the adapted ``module`` (the target called ``name``): a new layer, or the module changed in place."""

    def resolve_rank(self, name: str, module: nn.Module) -> int:
        """Absolute rank for module ``name``: option ``rank``, overridden by the first matching ``rank_pattern``.

        For methods with ``rank`` and ``rank_pattern`` options (SALT, LoRA).
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
