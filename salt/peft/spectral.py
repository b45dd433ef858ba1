"""Adapter layers that work in the singular basis of the frozen weight (SALT and S-SAM's SVD).

For ``W (out, in_f) = U diag(S) Vh`` (``k = min(out, in_f)``) the adapted weight is ``W' = U C' Vh`` with a
``k x k`` core ``C' = blockdiag(diag(top), T)``: ``top`` (r,) scales the first r singular directions, ``T``
((k-r) x (k-r), SALT only) mixes the rest. Two exact ways to apply it, with different costs:

    basis:   y = ((x Vh^T) C'^T) U^T + b        W' is never built; no (out, in_f) weight gradient
    weight:  W' = [U[:, :r] * top | U[:, r:] T] Vh,   y = x W'^T + b

Neither forms the ``k x k`` product ``U C'`` with a dense ``C'``; which one is cheaper depends on the layer
shape, the ranks and the token count, so ``execution="auto"`` picks the one with fewer multiply-adds
(:meth:`SpectralLayer.multiply_adds`) on every call. Without autograd the cached ``W'`` is used instead.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from salt.peft.layer import AdapterLayer

EXECUTION_FORMS = ("auto", "basis", "weight")


def canonical_signs(U: torch.Tensor, Vh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fix the sign of every singular pair: the largest-magnitude entry of each column of U is positive.

    Args:
        U: ``(out, k)`` left singular vectors; Vh: ``(k, in)`` right singular vectors (rows).

    Returns:
        ``(U, Vh)`` with column ``i`` of U and row ``i`` of Vh both multiplied by the same sign, so any
        SVD backend's choice of signs maps to the same pair (the product ``U diag(S) Vh`` is unchanged).
    """
    pivot = U.abs().argmax(dim=0)  # (k,) first index of the largest |u_i| entry
    signs = torch.sign(U.gather(0, pivot.unsqueeze(0)).squeeze(0))  # (k,), never 0 for unit columns
    return U * signs, Vh * signs.unsqueeze(1)


@contextmanager
def _single_cpu_thread(device: torch.device) -> Iterator[None]:
    # A CPU SVD run on one thread gives the same bits whatever the process's thread setting (so a reload
    # elsewhere rebuilds the same basis), and threaded LAPACK SVDs of these sizes were several times
    # slower than one thread on shared CPUs.
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def signed_svd(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD of a Linear or Conv2d weight, in float64, with :func:`canonical_signs`.

    Returns:
        ``U (out, k)``, ``S (k,)`` descending, ``Vh (k, in_f)``, all float64, ``in_f = in * kh * kw``.
    """
    flat = weight.detach().reshape(weight.shape[0], -1).to(torch.float64)  # (out, in_f)
    with _single_cpu_thread(flat.device):
        if flat.shape[0] < flat.shape[1]:
            # LAPACK is about twice as fast on tall matrices: W^T = U' S Vh' gives W = Vh'^T S U'^T.
            U_t, S, Vh_t = torch.linalg.svd(flat.T, full_matrices=False)  # (in_f, k), (k,), (k, out)
            U, Vh = Vh_t.T, U_t.T  # (out, k), (k, in_f)
        else:
            U, S, Vh = torch.linalg.svd(flat, full_matrices=False)
    U, Vh = canonical_signs(U, Vh)
    return U, S, Vh


class SpectralLayer(AdapterLayer):
    """A frozen layer re-expressed as ``U diag(S) Vh`` with a trainable core; see the module docstring.

    Buffers ``U (out, k)``, ``S (k,)``, ``Vh (k, in_f)`` are computed once at construction in float64,
    sign-fixed, then stored in the base weight's dtype; they move with ``.to()`` and are not saved in
    state dicts (they are a function of the base weight, recomputed at injection).

    Subclasses provide :meth:`core_rows` and, for a core that is not diagonal, :meth:`core_multiply_adds`.
    """

    def __init__(self, base_layer: nn.Linear | nn.Conv2d, rank: int, execution: str = "auto") -> None:
        super().__init__(base_layer)
        self.k = min(self.out_features, self.in_features)
        self.rank = rank
        self.execution = execution
        dtype = base_layer.weight.dtype
        U, S, Vh = signed_svd(base_layer.weight)
        self.register_buffer("U", U.to(dtype), persistent=False)
        self.register_buffer("S", S.to(dtype), persistent=False)
        self.register_buffer("Vh", Vh.to(dtype), persistent=False)

    @abstractmethod
    def core_rows(self, m: torch.Tensor, transposed: bool) -> torch.Tensor:
        """Rows of ``m (..., k)`` times ``C'^T`` (``transposed``) or ``C'``, in ``m``'s dtype."""

    def core_multiply_adds(self, form: str, tokens: int, input_grad: bool) -> int:
        """Multiply-adds of the core beyond element-wise scaling in ``form`` (forward + backward)."""
        return 0

    def adapted_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``W' = (U C') Vh`` as ``(out, in_f)``, built in the weight form, in ``dtype``."""
        dtype = dtype or self.U.dtype
        core = self.core_rows(self.U.to(dtype), transposed=False)  # (out, k) = U C'
        return core @ self.Vh.to(dtype)  # (out, in_f)

    def basis_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = ((x Vh^T) C'^T) U^T + b`` without building ``W'``."""
        bias = self.base_layer.bias
        if self.is_conv:
            kernel = self.Vh.view(self.k, *self.base_layer.weight.shape[1:])  # (k, in, kh, kw)
            z = self.base_layer._conv_forward(x, kernel, None)  # (B, k, H', W')
            z = self.core_rows(z.movedim(1, -1), transposed=True)  # (B, H', W', k)
            return F.linear(z, self.U, bias).movedim(-1, 1)  # (B, out, H', W')
        z = F.linear(x, self.Vh)  # (..., k)
        return F.linear(self.core_rows(z, transposed=True), self.U, bias)  # (..., out)

    def multiply_adds(self, form: str, tokens: int, input_grad: bool = True) -> int:
        """Multiply-adds of one forward + backward pass over ``tokens`` positions in ``form``.

        basis:  forward ``N k in + N k out``; backward ``N k out`` (to the core) ``+ N k in`` (to x).
        weight: forward ``out k in`` (``W'``) ``+ N in out``; backward ``N in out`` (``dW'``) ``+ out k in``
                (``dW' Vh^T``) ``+ N in out`` (to x). The input terms count only when ``input_grad``.
        """
        n, i, o, k, g = tokens, self.in_features, self.out_features, self.k, int(input_grad)
        if form == "basis":
            cost = n * k * (i + 2 * o + g * i)
        elif form == "weight":
            cost = 2 * o * k * i + n * i * o * (2 + g)
        else:
            raise ValueError(f"unknown execution form {form!r}; valid forms: basis, weight")
        return cost + self.core_multiply_adds(form, n, input_grad)

    def choose_form(self, tokens: int, input_grad: bool) -> str:
        """The execution form for a training call: the fixed ``execution`` option, or the cheaper one."""
        if self.execution != "auto":
            return self.execution
        return min(("weight", "basis"), key=lambda form: self.multiply_adds(form, tokens, input_grad))

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward with autograd, in the form :meth:`choose_form` picks for this input."""
        if self.choose_form(self.tokens(x), x.requires_grad) == "basis":
            return self.basis_forward(x)
        return self.apply_weight(x, self.adapted_weight(), self.base_layer.bias)

    def extra_repr(self) -> str:
        return f"k={self.k}, rank={self.rank}, execution={self.execution}"
