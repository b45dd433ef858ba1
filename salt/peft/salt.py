"""SALT: Singular Value Adaptation with Low-Rank Transformation (paper.md §1).

For ``W = U diag(s) V^T`` (k = min(out, in)), with trainable ``scale`` (alpha, r), ``shift`` (beta, r),
``lora_x`` (X, (k-r) x l) and ``lora_y`` (Y, l x (k-r))::

    s'_top = alpha * s[:r] + beta
    C_tail = diag(s[r:]) + X Y
    C      = blockdiag(diag(s'_top), C_tail)                      (k x k)
    W'     = U ReLU(C) V^T
    R      = || s'_top - s[:r] ||_2 + || X Y ||_F                 (regularization())

``relu="full"`` (the authors' code) clamps every entry of C, so the ``(k-r) x (k-r)`` tail is formed.
``relu="diagonal"`` clamps only the diagonal entries of C (the adapted singular values), leaving the
off-diagonal entries of X Y as they are: the tail is then ``diag(ReLU(d) - dxy) + X Y`` with
``dxy = diag(X Y)`` and ``d = s[r:] + dxy``, applied in rank-l form without ever forming X Y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from salt.peft.base import Method, check_choice, check_rank_value
from salt.peft.registry import register
from salt.peft.spectral import EXECUTION_FORMS, SpectralLayer

RELU_MODES = ("full", "diagonal")
INITS = ("zero", "paper")
PAPER_INIT_STD = 0.01


def frobenius_of_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x @ y||_F`` for ``x (c, l)``, ``y (l, c)`` from two ``(l, l)`` Gram matrices, never the ``(c, c)`` product.

    ``||XY||_F^2 = trace(X^T X Y Y^T)``; the gradient at ``XY = 0`` is taken as 0 (as for a norm).
    """
    squared = ((x.mT @ x) * (y @ y.mT)).sum()
    positive = squared > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, squared, 1.0)), 0.0)


class SaltLayer(SpectralLayer):
    """SALT on one Linear or Conv2d (a Conv2d weight is used as ``(out, in * kh * kw)``).

    Args:
        base_layer: the frozen layer.
        rank: r, 1 <= r <= k; lora_rank: l >= 1.
        relu: ``full`` or ``diagonal`` (module docstring). init: ``zero`` (X kaiming-uniform, Y = 0: the
            layer equals the base layer at step 0) or ``paper`` (X, Y ~ N(0, 0.01^2)).
        execution: ``auto``, ``basis`` or ``weight`` (see ``salt.peft.spectral``).
    """

    adapter_method = "salt"

    def __init__(
        self,
        base_layer: nn.Linear | nn.Conv2d,
        rank: int,
        lora_rank: int,
        relu: str = "full",
        init: str = "zero",
        execution: str = "auto",
    ) -> None:
        super().__init__(base_layer, rank, execution)
        self.lora_rank, self.relu = lora_rank, relu
        like = {"dtype": base_layer.weight.dtype, "device": base_layer.weight.device}
        tail = self.k - rank
        self.scale = nn.Parameter(torch.ones(rank, **like))
        self.shift = nn.Parameter(torch.zeros(rank, **like))
        self.lora_x = nn.Parameter(torch.empty(tail, lora_rank, **like))
        self.lora_y = nn.Parameter(torch.empty(lora_rank, tail, **like))
        if init == "paper":
            nn.init.normal_(self.lora_x, std=PAPER_INIT_STD)
            nn.init.normal_(self.lora_y, std=PAPER_INIT_STD)
        else:
            nn.init.kaiming_uniform_(self.lora_x, a=math.sqrt(5))
            nn.init.zeros_(self.lora_y)

    def core_rows(self, m: torch.Tensor, transposed: bool) -> torch.Tensor:
        """Rows of ``m (..., k)`` times ``ReLU(C)^T`` (``transposed``) or ``ReLU(C)``."""
        r, dtype = self.rank, m.dtype
        s = self.S.to(dtype)
        top = torch.relu(self.scale.to(dtype) * s[:r] + self.shift.to(dtype))  # (r,)
        if r == self.k:
            return m * top
        # split (not two slices): its backward concatenates instead of zero-filling two (..., k) buffers
        head, tail = m.split([r, self.k - r], dim=-1)  # (..., r), (..., k-r)
        head = head * top
        x, y = self.lora_x.to(dtype), self.lora_y.to(dtype)
        if self.relu == "full":
            core = torch.relu(torch.addmm(torch.diag(s[r:]), x, y))  # (k-r, k-r): ReLU needs every entry
            tail = tail @ (core.mT if transposed else core)
        else:
            xy_diag = (x * y.mT).sum(-1)  # (k-r,) diagonal of X Y
            gain = torch.relu(s[r:] + xy_diag) - xy_diag
            low = (tail @ y.mT) @ x.mT if transposed else (tail @ x) @ y  # (..., k-r) through rank l
            tail = tail * gain + low
        return torch.cat([head, tail], dim=-1)  # (..., k)

    def core_multiply_adds(self, form: str, tokens: int, input_grad: bool) -> int:
        """Tail-block multiply-adds, forward + backward (see :meth:`SpectralLayer.multiply_adds`)."""
        c, low, o, g = self.k - self.rank, self.lora_rank, self.out_features, int(input_grad)
        if self.relu == "full":
            # X Y and its two gradients, then the dense tail against N rows (basis) or the out rows of U.
            return 3 * c * c * low + (tokens * c * c * (2 + g) if form == "basis" else 2 * o * c * c)
        return tokens * c * low * (5 + g) if form == "basis" else 5 * o * c * low

    def regularization(self) -> torch.Tensor:
        """``||s'_top - s[:r]||_2 + ||X Y||_F`` (0-dim)."""
        s = self.S[: self.rank]
        top_change = torch.linalg.vector_norm(self.scale * s + self.shift - s)
        return top_change + frobenius_of_product(self.lora_x, self.lora_y)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, lora_rank={self.lora_rank}, relu={self.relu}"


@register("salt")
@dataclass(frozen=True)
class Salt(Method):
    """Options of SALT; ``rank`` (r) may be overridden per target by ``rank_pattern``."""

    rank: int | float = 0.1
    lora_rank: int = 4
    relu: str = "full"
    init: str = "zero"
    execution: str = "auto"
    rank_pattern: dict[str, int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_rank_value("rank", self.rank)
        for pattern, value in self.rank_pattern.items():
            check_rank_value(f"rank_pattern[{pattern!r}]", value)
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 1:
            raise ValueError(f"option lora_rank={self.lora_rank!r} must be an int >= 1")
        check_choice("relu", self.relu, RELU_MODES)
        check_choice("init", self.init, INITS)
        check_choice("execution", self.execution, EXECUTION_FORMS)

    def check(self, name: str, module: nn.Module) -> None:
        """Supported module type and a rank that fits it."""
        super().check(name, module)
        self.resolve_rank(name, module)

    def adapt(self, name: str, module: nn.Module) -> SaltLayer:
        """Wrap ``module`` in a :class:`SaltLayer`."""
        rank = self.resolve_rank(name, module)
        return SaltLayer(module, rank, self.lora_rank, self.relu, self.init, self.execution)
