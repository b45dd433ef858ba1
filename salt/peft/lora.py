"""LoRA as the SALT authors ran it as a baseline (paper.md §1).

With trainable ``lora_a`` (A, r x in_f) and ``lora_b`` (B, out x r), ``in_f = in * kh * kw`` for a Conv2d::

    y  = base(x) + (alpha / r) * B A dropout(x)        A ~ N(0, 1/r^2), B = 0 at init
    W' = W + (alpha / r) * B A                         (merged, or cached without autograd)

The default ``alpha = r`` gives the authors' unscaled update. On a Conv2d, A is applied as a convolution
with the base layer's kernel size, stride, padding and dilation, and B as a 1 x 1 convolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from salt.errors import ConfigError
from salt.peft.base import RankedMethod
from salt.peft.layer import AdapterLayer
from salt.peft.registry import register


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class LoraLayer(AdapterLayer):
    """LoRA on one Linear or Conv2d.

    Args:
        base_layer: the frozen layer.
        rank: r >= 1. alpha: scaling numerator (scaling = alpha / r). dropout: probability on the branch input.
    """

    adapter_method = "lora"

    def __init__(self, base_layer: nn.Linear | nn.Conv2d, rank: int, alpha: float, dropout: float) -> None:
        super().__init__(base_layer)
        self.rank, self.scaling = rank, alpha / rank
        like = {"dtype": base_layer.weight.dtype, "device": base_layer.weight.device}
        self.lora_a = nn.Parameter(torch.randn(rank, self.in_features, **like) / rank)
        self.lora_b = nn.Parameter(torch.zeros(self.out_features, rank, **like))
        self.dropout = nn.Dropout(dropout)

    def is_deterministic(self) -> bool:
        """Dropout makes training-mode outputs random, so only then is the cached ``W'`` not used."""
        return not (self.training and self.dropout.p > 0)

    def adapted_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``W + (alpha / r) B A`` as ``(out, in_f)`` in ``dtype``."""
        weight = self.base_layer.weight
        dtype = dtype or weight.dtype
        flat = weight.reshape(self.out_features, -1).to(dtype)  # (out, in_f)
        return flat + self.scaling * (self.lora_b.to(dtype) @ self.lora_a.to(dtype))

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``base(x) + (alpha / r) B A dropout(x)`` through the two thin factors, never ``B A`` itself."""
        h = self.dropout(x)
        if self.is_conv:
            kernel = self.lora_a.view(self.rank, *self.base_layer.weight.shape[1:])  # (r, in, kh, kw)
            low = self.base_layer._conv_forward(h, kernel, None)  # (B, r, H', W')
            delta = F.conv2d(low, self.lora_b[:, :, None, None])  # (B, out, H', W')
        else:
            delta = F.linear(F.linear(h, self.lora_a), self.lora_b)  # (..., out)
        return self.base_layer(x) + self.scaling * delta

    def multiply_adds(self, tokens: int, input_grad: bool = True) -> int:
        """The frozen layer, ``N in out (1 + g)``, plus ``N r (2 in + 3 out + g in)``: ``A x``, ``B (A x)``;
        ``dB``, ``d(A x)``, ``dA``, and to x (``g = 1`` when ``input_grad``)."""
        n, i, o, g = tokens, self.in_features, self.out_features, int(input_grad)
        return n * i * o * (1 + g) + n * self.rank * (2 * i + 3 * o + g * i)

    def hyper_parameters(self) -> dict[str, int | float]:
        """``k = min(out, in_f)``, the rank ``r`` and the scaling ``alpha / r``."""
        return {"k": min(self.out_features, self.in_features), "r": self.rank, "scaling": self.scaling}

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scaling={self.scaling:g}"


@register("lora")
@dataclass(frozen=True)
class Lora(RankedMethod):
    """Options of LoRA; ``rank`` may be overridden per target by ``rank_pattern``; ``alpha=None`` means r."""

    rank: int | float = 4
    alpha: float | None = None
    dropout: float = 0.1
    rank_pattern: dict[str, int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha is not None and not (_is_number(self.alpha) and self.alpha > 0):
            raise ConfigError(f"option alpha={self.alpha!r} must be a number > 0 (or null for alpha = rank)")
        if not (_is_number(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"option dropout={self.dropout!r} must lie in [0, 1)")

    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> LoraLayer:
        """Wrap ``module`` in a :class:`LoraLayer`."""
        rank = self.resolve_rank(name, module)
        return LoraLayer(module, rank, rank if self.alpha is None else self.alpha, self.dropout)

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """``"LoRA (rank r)"`` with r = ``config.peft.rank``."""
        if "rank" not in peft:
            raise KeyError("config.peft.rank")
        return f"LoRA (rank {peft['rank']})"
