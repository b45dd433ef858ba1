"""No adaptation: the image encoder gets nothing to train (only the caller's trainable groups learn)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from salt.peft.base import Method
from salt.peft.registry import register


@register("none")
@dataclass(frozen=True)
class NoAdapter(Method):
    """The ``none`` method: ``target_modules`` is ignored and nothing is matched or changed.

    Attributes:
        trained_groups: the groups that train instead of an adapter (``configs/peft/none.yaml`` takes the model
            config's ``trainable``); they name the method's table row and change nothing in the model.
    """

    matches_targets: ClassVar[bool] = False

    trained_groups: list[str] = field(default_factory=list)

    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> nn.Module:
        """Leave ``module`` as it is."""
        return module

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """Named by what trains instead (``peft.trained_groups``): ``"Decoder-only"``, or ``"No adapter (norm+prompt)"``."""
        if "trained_groups" not in peft:
            raise KeyError("config.peft.trained_groups")
        groups = list(peft["trained_groups"] or [])
        return "Decoder-only" if groups == ["decoder"] else f"No adapter ({'+'.join(groups) or 'frozen'})"
