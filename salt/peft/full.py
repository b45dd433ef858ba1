"""Full fine-tuning of the target layers: no adapter, the targets' own weight and bias train.

The matched Linear/Conv2d modules stay in place (state-dict names unchanged); ``inject`` sets
``requires_grad`` on their weight and bias, so the trainable count per layer is ``out * in_f + out``.
Biases train too here (unlike the adapters, which keep the base bias frozen), which is what "fine-tune
these layers" means; everything outside the targets keeps its ``requires_grad``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from salt.peft.base import Method
from salt.peft.registry import register


@register("full")
@dataclass(frozen=True)
class Full(Method):
    """Full fine-tuning of the targets (no options)."""

    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> nn.Module:
        """Make every parameter of ``module`` (weight and bias) trainable, in place."""
        for param in module.parameters():
            param.requires_grad_(True)
        return module

    @classmethod
    def trained_names(cls, module: nn.Module) -> list[str]:
        """Every parameter of the target itself: its weight and bias train in place."""
        return [name for name, _ in module.named_parameters()]

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """``"Full fine-tuning"``."""
        return "Full fine-tuning"
