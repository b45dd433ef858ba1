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
``dxy = diag(X Y)`` and ``d = s[r:] + dxy``, applied in rank-l form without ever forming X Y. It also
allows the ``delta`` form: the frozen layer plus thin products through the directions whose scale changed
and through X Y (:meth:`SaltLayer.delta_forward`), much cheaper than the basis form when r is small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from salt.errors import ConfigError
from salt.peft.base import RankedMethod, check_choice
from salt.peft.registry import register
from salt.peft.spectral import EXECUTION_FORMS, SpectralLayer, decompose

RELU_MODES = ("full", "diagonal")
SALT_FORMS = (*EXECUTION_FORMS, "delta")
DELTA_NEEDS_DIAGONAL = (
    "option execution='delta' needs relu='diagonal' (the full ReLU makes the tail block dense)"
)
INITS = ("zero", "paper")
PAPER_INIT_STD = 0.01
# The authors' r on SAM ViT-B, the setting Table 1 reports: attention qkv/proj, MLP lin1/lin2, neck convs.
PAPER_RANKS: tuple[int, int, int] = (760, 50, 250)


def frobenius_of_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x @ y||_F`` for ``x (c, l)``, ``y (l, c)`` from two ``(l, l)`` Gram matrices, never the ``(c, c)`` product.

    ``||XY||_F^2 = trace(X^T X Y Y^T)``; the gradient at ``XY = 0`` is taken as 0 (as for a norm).
    """
    squared = ((x.mT @ x) * (y @ y.mT)).sum()
    positive = squared > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, squared, 1.0)), 0.0)


def _thin_rows_first(factor: torch.Tensor) -> torch.Tensor:
    """``factor (c, l)`` as a view of a copy stored ``(l, c)``: a matmul's weight gradient takes the layout of its
    operand, and CPU BLAS computes the ``(l, c)`` layout, a reduction over all tokens into l rows, several
    times faster than the ``(c, l)`` one for small l."""
    return factor.mT.contiguous().mT


class SaltLayer(SpectralLayer):
    """SALT on one Linear or Conv2d (a Conv2d weight is used as ``(out, in * kh * kw)``).

    Args:
        base_layer: the frozen layer.
        rank: r, 1 <= r <= k; lora_rank: l >= 1.
        relu: ``full`` or ``diagonal`` (module docstring). init: ``zero`` (X kaiming-uniform, Y = 0: the
            layer equals the base layer at step 0) or ``paper`` (X, Y ~ N(0, 0.01^2)).
        execution: ``auto``, ``basis``, ``weight`` (see ``salt.peft.spectral``) or, with
            ``relu="diagonal"``, ``delta`` (:meth:`delta_forward`).
        decomposition: ``(U, S, Vh)`` of the base weight, as :func:`~salt.peft.spectral.decompose` gives it;
            None computes it.
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
        decomposition: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        if execution == "delta" and relu != "diagonal":
            raise ValueError(DELTA_NEEDS_DIAGONAL)
        super().__init__(base_layer, rank, execution, decomposition)
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
        x, y = _thin_rows_first(self.lora_x.to(dtype)), self.lora_y.to(dtype)
        if self.relu == "full":
            core = torch.relu(torch.addmm(torch.diag(s[r:]), x, y))  # (k-r, k-r): ReLU needs every entry
            tail = tail @ (core.mT if transposed else core)
        else:
            xy_diag = (x * y.mT).sum(-1)  # (k-r,) diagonal of X Y
            gain = torch.relu(s[r:] + xy_diag) - xy_diag
            low = (tail @ y.mT) @ x.mT if transposed else (tail @ x) @ y  # (..., k-r) through rank l
            tail = tail * gain + low
        return torch.cat([head, tail], dim=-1)  # (..., k)

    def core_multiply_adds(self, rows: int, input_grad: bool) -> int:
        """Tail-block multiply-adds on ``rows`` rows, forward + backward (see :meth:`SpectralLayer.multiply_adds`)."""
        c, low, g = self.k - self.rank, self.lora_rank, int(input_grad)
        if self.relu == "full":
            # X Y and its two gradients, then the dense tail: forward, its gradient, the gradient to the rows.
            return 3 * c * c * low + rows * c * c * (2 + g)
        return rows * c * low * (5 + g)

    def forms(self) -> tuple[str, ...]:
        """``basis`` and ``weight``; with ``relu="diagonal"`` also ``delta``."""
        return (*super().forms(), "delta") if self.relu == "diagonal" else super().forms()

    def auto_forms(self) -> tuple[str, ...]:
        """:meth:`forms`, less ``delta`` on a CUDA device: finding its clamped tail directions reads a device
        tensor on the host (:meth:`changed_directions`), one synchronisation per layer and call, which stalls
        the GPU's queue of launched kernels and cost more than ``delta`` saves (``execution="delta"`` still
        forces it)."""
        forms = self.forms()
        return tuple(f for f in forms if f != "delta") if self.S.device.type == "cuda" else forms

    def changed_directions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices ``(m,)`` of the singular directions whose scale differs from ``s`` (relu="diagonal"),
        and the change ``(m,)`` of each, autograd-connected to the parameters.

        The r top directions change by ``ReLU(alpha s + beta) - s``. A tail diagonal entry
        ``a = s + (X Y)_jj`` changes by ``ReLU(a) - a``, which is 0 (with gradient 0) unless the ReLU clamps
        it, so only the tail directions with ``a <= 0`` are listed (on CUDA this reads ``a``: one sync).
        """
        r, s = self.rank, self.S
        top = torch.relu(self.scale * s[:r] + self.shift) - s[:r]  # (r,)
        index = torch.arange(r, device=s.device)
        if r == self.k:
            return index, top
        tail = s[r:] + (self.lora_x * self.lora_y.mT).sum(-1)  # (k-r,) diagonal of diag(s) + X Y
        clamped = torch.nonzero(tail.detach() <= 0).squeeze(1)  # (j,)
        change = (torch.relu(tail) - tail)[clamped]  # (j,)
        return torch.cat([index, r + clamped]), torch.cat([top, change])

    def delta_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = base(x) + ((x Vh_m^T) * d) U_m^T + (x (Y Vh_tail)^T) (U_tail X)^T`` (relu="diagonal").

        ``W' - W = U_m diag(d) Vh_m + U_tail X Y Vh_tail`` with the m directions of
        :meth:`changed_directions`: a frozen-layer call plus thin products of rank ``m + l``.
        """
        index, change = self.changed_directions()
        if index.numel() == self.rank:  # no clamped tail entry: slices, not gathered copies
            cols, rows = self.U[:, : self.rank], self.Vh[: self.rank]  # (out, r), (r, in_f)
        else:
            cols, rows = self.U[:, index], self.Vh[index]  # (out, m), (m, in_f)
        y = self.base_layer(x) + self.expand(self.project(x, rows) * change, cols, None)
        if self.rank == self.k:
            return y
        down = self.lora_y @ self.Vh[self.rank :]  # (l, in_f) = Y Vh_tail
        up = (
            self.lora_x.mT @ self.U[:, self.rank :].mT
        )  # (l, out) = (U_tail X)^T, rows first (see _thin_rows_first)
        low = self.project(x, down) @ up  # (..., out)
        return y + (low.movedim(-1, 1) if self.is_conv else low)

    def form_multiply_adds(self, form: str, tokens: int, input_grad: bool = True) -> int:
        """As :meth:`SpectralLayer.form_multiply_adds`, plus ``delta``: the frozen layer (``N in out``, and as much
        to x), ``N m (in + 2 out)`` for the m changed directions and ``N l (2 in + 3 out)`` for the X Y
        branch, with ``N (m + l) in`` to x, plus ``2 (k-r) l (in + out)`` for its two thin factors."""
        if form != "delta" or form not in self.forms():
            return super().form_multiply_adds(form, tokens, input_grad)
        n, i, o, g = tokens, self.in_features, self.out_features, int(input_grad)
        m, low, c = self.changed_directions()[0].numel(), self.lora_rank, self.k - self.rank
        return (
            n * i * o * (1 + g)
            + n * m * (i + 2 * o + g * i)
            + n * low * (2 * i + 3 * o + g * i)
            + 2 * c * low * (i + o)
        )

    def form_forward(self, form: str, x: torch.Tensor) -> torch.Tensor:
        """Forward in ``form``; ``delta`` is :meth:`delta_forward`."""
        if form == "delta" and form in self.forms():
            return self.delta_forward(x)
        return super().form_forward(form, x)

    def regularization(self) -> torch.Tensor:
        """``||s'_top - s[:r]||_2 + ||X Y||_F`` (0-dim)."""
        s = self.S[: self.rank]
        top_change = torch.linalg.vector_norm(self.scale * s + self.shift - s)
        return top_change + frobenius_of_product(self.lora_x, self.lora_y)

    def hyper_parameters(self) -> dict[str, int | float]:
        """``k``, ``r`` and ``l``, the rank of the tail block's update."""
        return {**super().hyper_parameters(), "l": self.lora_rank}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, lora_rank={self.lora_rank}, relu={self.relu}"


@register("salt")
@dataclass(frozen=True)
class Salt(RankedMethod):
    """Options of SALT; ``rank`` (r) may be overridden per target by ``rank_pattern``."""

    rank: int | float = 0.1
    lora_rank: int = 4
    relu: str = "full"
    init: str = "zero"
    execution: str = "auto"
    rank_pattern: dict[str, int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 1:
            raise ConfigError(f"option lora_rank={self.lora_rank!r} must be an int >= 1")
        check_choice("relu", self.relu, RELU_MODES)
        check_choice("init", self.init, INITS)
        check_choice("execution", self.execution, SALT_FORMS)
        if self.execution == "delta" and self.relu != "diagonal":
            raise ConfigError(DELTA_NEEDS_DIAGONAL)

    def adapt(self, name: str, module: nn.Module, cache: dict | None = None) -> SaltLayer:
        """Wrap ``module`` in a :class:`SaltLayer` (its SVD reused from ``cache`` when there)."""
        rank = self.resolve_rank(name, module)
        decomposition = decompose(module.weight, cache)
        return SaltLayer(module, rank, self.lora_rank, self.relu, self.init, self.execution, decomposition)

    @classmethod
    def row_label(cls, peft: Mapping[str, Any], config: Mapping[str, Any], paper_backbone: bool) -> str:
        """``"SALT (rank l)"``; a run whose r differ from the setting of its table row adds them.

        The rank column is the low-rank size ``l`` (``config.peft.lora_rank``). On the paper's backbone the
        Table 1 row has the authors' r (:data:`PAPER_RANKS`), and a run with other r (a cell of the rank
        grid, Fig. 4a) gets its own row, e.g. ``"SALT (rank 16; r 256/200/64)"``: the default r, then the
        ``rank_pattern`` values in the order of their patterns. On another backbone, whose r are its own,
        so does every run of a rank-grid experiment (``config.ablation`` set).
        """
        if "lora_rank" not in peft:
            raise KeyError("config.peft.lora_rank")
        pattern = dict(peft.get("rank_pattern") or {})
        ranks = (peft.get("rank"), *(pattern[key] for key in sorted(pattern)))
        own_row = ranks != PAPER_RANKS if paper_backbone else "ablation" in config
        if ranks[0] is None or not own_row:
            return f"SALT (rank {peft['lora_rank']})"
        return f"SALT (rank {peft['lora_rank']}; r {'/'.join(str(r) for r in ranks)})"
