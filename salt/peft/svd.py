"""S-SAM's SVD adaptation (paper.md §1, the "S-SAM" baseline).

For ``W = U diag(s) V^T`` (k = min(out, in)) with trainable ``scale`` (a, k) and ``shift`` (b, k)::

    W' = U diag(ReLU(a * s + b)) V^T          a = 1, b = 0 at init (W' = W)
    R  = || 1 - a ||_2 + || b ||_2            (regularization())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from salt.peft.base import Method, check_choice, flat_shape
from salt.peft.registry import register
from salt.peft.spectral import EXECUTION_FORMS, SpectralLayer, decompose


class SvdLayer(SpectralLayer):
    """S-SAM on one Linear or Conv2d: every singular value scaled and shifted, then ReLU.

    Args:
        base_layer: the frozen layer.
        execution: ``auto``, ``basis`` or ``weight`` (see ``salt.peft.spectral``).
        decomposition: ``(U, S, Vh)`` of the base weight (:func:`~salt.peft.spectral.decompose`); None computes it.
    """

    adapter_method = "svd"

    def __init__(
        self,
        base_layer: nn.Linear | nn.Conv2d,
        execution: str = "auto",
        decomposition: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(base_layer, min(flat_shape(base_layer)), execution, decomposition)
        like = {"dtype": base_layer.weight.dtype, "device": base_layer.weight.device}
        self.scale = nn.Parameter(torch.ones(self.k, **like))
        self.shift = nn.Parameter(torch.zeros(self.k, **like))

    def core_rows(self, m: torch.Tensor, transposed: bool) -> torch.Tensor:
        """Rows of ``m (..., k)`` times the diagonal core ``diag(ReLU(a * s + b))``."""
        dtype = m.dtype
        return m * torch.relu(self.scale.to(dtype) * self.S.to(dtype) + self.shift.to(dtype))

    def regularization(self) -> torch.Tensor:
        """``||1 - a||_2 + ||b||_2`` (0-dim)."""
        return torch.linalg.vector_norm(1 - self.scale) + torch.linalg.vector_norm(self.shift)


@register("svd")
@dataclass(frozen=True)
class Svd(Method):
    """Options of S-SAM's SVD adaptation (all k singular values, so no rank)."""

    execution: str = "auto"

    def __post_init__(self) -> None:
        check_choice("execution", self.execution, EXECUTION_FORMS)

    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> SvdLayer:
        """Wrap ``module`` in an :class:`SvdLayer` (its SVD reused from ``cache`` when there)."""
        return SvdLayer(module, self.execution, decompose(module.weight, cache))

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """``"S-SAM"``, the name Table 1 gives this method."""
        return "S-SAM"
