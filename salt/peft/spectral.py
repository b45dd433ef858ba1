"""Adapter layers that work in the singular basis of the frozen weight (SALT and S-SAM's SVD).

For ``W (out, in_f) = U diag(S) Vh`` (``k = min(out, in_f)``) the adapted weight is ``W' = U C' Vh`` with a
``k x k`` core ``C' = blockdiag(diag(top), T)``: ``top`` (r,) scales the first r singular directions, ``T``
((k-r) x (k-r), SALT only) mixes the rest. Two exact ways to apply it, with different costs:

    basis:   y = ((x Vh^T) C'^T) U^T + b        W' is never built; no (out, in_f) weight gradient
    weight:  W' = (U C') Vh  or  U (C' Vh),     y = x W'^T + b

In the basis form the core sits where it is cheapest (:data:`BASIS_PLACEMENTS`): on the ``(N, k)``
activations (``rows``), or folded into the thin input factor ``C' Vh`` (``in``) or output factor ``U C'``
(``out``) once per call. Folding trades the core's per-token products (``N (k-r)^2`` for a dense tail)
for one extra thin-factor gradient (``N k in_f`` or ``N k out``). In the weight form the core is
applied to whichever factor has fewer rows. No form multiplies by a dense ``k x k`` core.

Which form is cheapest depends on the layer shape, the ranks and the token count, so ``execution="auto"``
picks the one with fewer multiply-adds (:meth:`SpectralLayer.multiply_adds`) on every call. Without
autograd the cached ``W'`` is used instead.
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
BASIS_PLACEMENTS = ("rows", "in", "out")


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


def decompose(
    weight: torch.Tensor, cache: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`signed_svd` of ``weight`` in its own dtype, reused from ``cache`` when it holds this tensor's.

    The cache is keyed by the weight's storage, version counter, shape, dtype and device, so a changed or
    another weight never hits; it keeps the weight alive, so that its address cannot be reused by another
    tensor. The factors are stored in the weight's dtype, as a :class:`SpectralLayer` stores them, so layers
    built from one cache entry share their buffers.

    Returns:
        ``U (out, k)``, ``S (k,)``, ``Vh (k, in_f)`` in ``weight.dtype``.
    """
    if cache is None:
        return tuple(t.to(weight.dtype) for t in signed_svd(weight))
    key = (
        "signed_svd",
        weight.data_ptr(),
        weight._version,
        tuple(weight.shape),
        weight.dtype,
        str(weight.device),
    )
    if key not in cache:
        cache[key] = (*(t.to(weight.dtype) for t in signed_svd(weight)), weight)
    return cache[key][:3]


class SpectralLayer(AdapterLayer):
    """A frozen layer re-expressed as ``U diag(S) Vh`` with a trainable core; see the module docstring.

    Buffers ``U (out, k)``, ``S (k,)``, ``Vh (k, in_f)`` are computed once at construction in float64,
    sign-fixed, then stored in the base weight's dtype (or taken as given in ``decomposition``, e.g. from
    :func:`decompose`); they move with ``.to()`` and are not saved in state dicts (they are a function of
    the base weight, recomputed at injection).

    Subclasses provide :meth:`core_rows` and, for a core that is not diagonal, :meth:`core_multiply_adds`;
    a subclass with another exact form adds it to :meth:`forms`, :meth:`multiply_adds` and
    :meth:`form_forward`.
    """

    def __init__(
        self,
        base_layer: nn.Linear | nn.Conv2d,
        rank: int,
        execution: str = "auto",
        decomposition: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(base_layer)
        self.k = min(self.out_features, self.in_features)
        self.rank = rank
        self.execution = execution
        dtype = base_layer.weight.dtype
        U, S, Vh = decomposition if decomposition is not None else signed_svd(base_layer.weight)
        self.register_buffer("U", U.to(dtype), persistent=False)
        self.register_buffer("S", S.to(dtype), persistent=False)
        self.register_buffer("Vh", Vh.to(dtype), persistent=False)

    @abstractmethod
    def core_rows(self, m: torch.Tensor, transposed: bool) -> torch.Tensor:
        """Rows of ``m (..., k)`` times ``C'^T`` (``transposed``) or ``C'``, in ``m``'s dtype."""

    def core_multiply_adds(self, rows: int, input_grad: bool) -> int:
        """Multiply-adds of :meth:`core_rows` on ``rows`` rows beyond element-wise scaling, forward +
        backward, with (``input_grad``) or without the gradient to the rows."""
        return 0

    def forms(self) -> tuple[str, ...]:
        """The exact forms this layer can run in (``execution`` values other than ``auto``)."""
        return EXECUTION_FORMS[1:]

    def adapted_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``W' = (U C') Vh`` or ``U (C' Vh)`` (core on the factor with fewer rows), ``(out, in_f)`` in ``dtype``."""
        dtype = dtype or self.U.dtype
        U, Vh = self.U.to(dtype), self.Vh.to(dtype)
        if self.in_features < self.out_features:
            return U @ self.core_rows(Vh.mT, transposed=True).mT  # (out, k) @ (k, in_f)
        return self.core_rows(U, transposed=False) @ Vh  # (out, k) @ (k, in_f)

    def project(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``x`` through the flat weight ``rows (m, in_f)`` with the base layer's geometry, channels last.

        Returns:
            ``(..., m)`` for a Linear, ``(B, H', W', m)`` for a Conv2d.
        """
        if self.is_conv:
            kernel = rows.reshape(rows.shape[0], *self.base_layer.weight.shape[1:])  # (m, in, kh, kw)
            return self.base_layer._conv_forward(x, kernel, None).movedim(1, -1)  # (B, H', W', m)
        return F.linear(x, rows)  # (..., m)

    def expand(self, z: torch.Tensor, cols: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Channels-last ``z (..., m)`` times ``cols (out, m)`` (plus ``bias``), in the base layer's output layout."""
        y = F.linear(z, cols, bias)  # (..., out)
        return y.movedim(-1, 1) if self.is_conv else y  # Conv2d: (B, out, H', W')

    def basis_forward(self, x: torch.Tensor, placement: str) -> torch.Tensor:
        """``y = ((x Vh^T) C'^T) U^T + b`` without building ``W'``, the core at ``placement``."""
        bias = self.base_layer.bias
        if placement == "rows":
            return self.expand(self.core_rows(self.project(x, self.Vh), transposed=True), self.U, bias)
        if placement == "in":
            folded = self.core_rows(self.Vh.mT, transposed=True).mT  # (k, in_f) = C' Vh
            return self.expand(self.project(x, folded), self.U, bias)
        if placement == "out":
            return self.expand(self.project(x, self.Vh), self.core_rows(self.U, transposed=False), bias)
        raise ValueError(f"unknown core placement {placement!r}; valid: {', '.join(BASIS_PLACEMENTS)}")

    def basis_multiply_adds(self, placement: str, tokens: int, input_grad: bool = True) -> int:
        """Multiply-adds of one basis-form forward + backward over ``tokens`` positions, core at ``placement``.

        rows: forward ``N k in + N k out``; backward ``N k out`` (``dy U``, for the core) ``+ N k in`` (to x);
              plus the core on N rows.
        in:   as rows, plus ``N k in`` (gradient of ``C' Vh``), the core on ``in_f`` rows instead.
        out:  forward as rows; backward ``N k out`` (gradient of ``U C'``) ``+ N k out + N k in`` (to x),
              the core on ``out`` rows instead. The terms to x count only when ``input_grad``.
        """
        n, i, o, k, g = tokens, self.in_features, self.out_features, self.k, int(input_grad)
        if placement == "rows":
            return n * k * (i + 2 * o + g * i) + self.core_multiply_adds(n, input_grad)
        if placement == "in":
            return n * k * (2 * i + 2 * o + g * i) + self.core_multiply_adds(i, False)
        if placement == "out":
            return n * k * (i + 2 * o + g * (i + o)) + self.core_multiply_adds(o, False)
        raise ValueError(f"unknown core placement {placement!r}; valid: {', '.join(BASIS_PLACEMENTS)}")

    def basis_placement(self, tokens: int, input_grad: bool = True) -> str:
        """The core placement of the basis form with the fewest multiply-adds for this call."""
        return min(BASIS_PLACEMENTS, key=lambda p: self.basis_multiply_adds(p, tokens, input_grad))

    def form_multiply_adds(self, form: str, tokens: int, input_grad: bool = True) -> int:
        """Multiply-adds of one forward + backward pass over ``tokens`` positions in ``form``.

        basis:  the cheapest placement of :meth:`basis_multiply_adds` (for a diagonal core: forward
                ``N k in + N k out``; backward ``N k out`` (to the core) ``+ N k in`` (to x)).
        weight: forward ``out k in`` (``W'``) ``+ N in out``; backward ``N in out`` (``dW'``) ``+ out k in``
                (``dW'`` to the core's factor) ``+ N in out`` (to x), plus the core on ``min(out, in_f)``
                rows. The input terms count only when ``input_grad``.
        """
        n, i, o, k, g = tokens, self.in_features, self.out_features, self.k, int(input_grad)
        if form == "basis":
            return self.basis_multiply_adds(self.basis_placement(n, input_grad), n, input_grad)
        if form == "weight":
            return 2 * o * k * i + n * i * o * (2 + g) + self.core_multiply_adds(min(o, i), False)
        raise ValueError(f"unknown execution form {form!r}; valid forms: {', '.join(self.forms())}")

    def auto_forms(self) -> tuple[str, ...]:
        """The forms ``execution="auto"`` chooses from on this layer's device (default: all of :meth:`forms`)."""
        return self.forms()

    def choose_form(self, tokens: int, input_grad: bool) -> str:
        """The execution form for a training call: the fixed ``execution`` option, or the one of
        :meth:`auto_forms` with the fewest multiply-adds."""
        if self.execution != "auto":
            return self.execution
        return min(self.auto_forms(), key=lambda form: self.form_multiply_adds(form, tokens, input_grad))

    def multiply_adds(self, tokens: int, input_grad: bool = True) -> int:
        """Multiply-adds of one forward + backward in the form :meth:`choose_form` picks for this call."""
        return self.form_multiply_adds(self.choose_form(tokens, input_grad), tokens, input_grad)

    def form_forward(self, form: str, x: torch.Tensor) -> torch.Tensor:
        """Forward with autograd in ``form`` (the basis form at its cheapest placement)."""
        if form == "basis":
            return self.basis_forward(x, self.basis_placement(self.tokens(x), x.requires_grad))
        if form == "weight":
            return self.apply_weight(x, self.adapted_weight(), self.base_layer.bias)
        raise ValueError(f"unknown execution form {form!r}; valid forms: {', '.join(self.forms())}")

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward with autograd, in the form :meth:`choose_form` picks for this input."""
        return self.form_forward(self.choose_form(self.tokens(x), x.requires_grad), x)

    def hyper_parameters(self) -> dict[str, int | float]:
        """``k = min(out, in_f)`` and ``r``, the number of singular values with a trainable scale and shift."""
        return {"k": self.k, "r": self.rank}

    def extra_repr(self) -> str:
        return f"k={self.k}, rank={self.rank}, execution={self.execution}"
