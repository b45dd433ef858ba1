"""No adaptation: the image encoder gets nothing to train (only the caller's trainable groups learn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from salt.peft.base import Method
from salt.peft.registry import register


@register("none")
@dataclass(frozen=True)
class NoAdapter(Method):
    """The ``none`` method: ``target_modules`` is ignored and nothing is matched or changed."""

    matches_targets: ClassVar[bool] = False

    def adapt(self, name: str, module: nn.Module) -> nn.Module:
        """Leave ``module`` as it is."""
        return module
