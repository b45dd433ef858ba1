"""No adaptation: the image encoder gets nothing to train (only the caller's trainable groups learn)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from salt.peft.base import Method
from salt.peft.registry import register


@register("none")
@dataclass(frozen=True)
class NoAdapter(Method):
    """The ``none`` method: ``target_modules`` is ignored and nothing is matched or changed."""

    matches_targets: ClassVar[bool] = False

    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> nn.Module:
        """Leave ``module`` as it is."""
        return module

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """Named by what trains instead: ``"Decoder-only"``, or ``"No adapter (norm+prompt)"``."""
        groups = list((config.get("model") or {}).get("trainable") or [])
        return "Decoder-only" if groups == ["decoder"] else f"No adapter ({'+'.join(groups) or 'frozen'})"
