"""Full fine-tuning of the target layers: no adapter, the targets' own weight and bias train.

The matched Linear/Conv2d modules stay in place (state-dict names unchanged); ``inject`` sets
``requires_grad`` on their weight and bias, so the trainable count per layer is ``out * in_f + out``.
Biases train too here (unlike the adapters, which keep the base bias frozen), which is what "fine-tune
these layers" means; everything outside the targets keeps its ``requires_grad``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from salt.peft.base import Method
from salt.peft.registry import register


@register("full")
@dataclass(frozen=True)
class Full(Method):
    """Full fine-tuning of the targets (no options)."""

    def adapt(self, name: str, module: nn.Module) -> nn.Module:
        """Make every parameter of ``module`` (weight and bias) trainable, in place."""
        for param in module.parameters():
            param.requires_grad_(True)
        return module
