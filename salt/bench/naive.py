"""The SALT authors' algorithm: the dense ``k x k`` core and ``W' = U ReLU(C) V^T`` rebuilt on every call.

It is the reference the benchmark compares :class:`salt.peft.salt.SaltLayer` against. It computes the same
function with the same tensors (relu="full" only), but forms ``C`` densely, multiplies ``U @ ReLU(C)``
(``out k^2``) and then ``@ Vh`` (``out k in_f``) in every forward, training or evaluation, and never caches.
"""

from __future__ import annotations

import torch
from torch import nn

from salt.peft.layer import AdapterLayer, adapter_layers
from salt.peft.salt import SaltLayer


class NaiveSaltLayer(AdapterLayer):
    """The authors' SALT forward around the tensors of a :class:`SaltLayer` (its parameters and buffers).

    Args:
        layer: a SaltLayer with ``relu="full"``; its base layer, ``U``, ``S``, ``Vh`` and parameters are
            taken over (not copied).
    """

    adapter_method = "salt"

    def __init__(self, layer: SaltLayer) -> None:
        if layer.relu != "full":
            raise ValueError(f"the authors' algorithm clamps the whole core; got relu={layer.relu!r}")
        super().__init__(layer.base_layer)
        self.k, self.rank, self.lora_rank = layer.k, layer.rank, layer.lora_rank
        for name in ("U", "S", "Vh"):
            self.register_buffer(name, getattr(layer, name), persistent=False)
        self.scale, self.shift, self.lora_x, self.lora_y = (
            layer.scale,
            layer.shift,
            layer.lora_x,
            layer.lora_y,
        )

    def adapted_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``U @ ReLU(blockdiag(diag(alpha s + beta), diag(s) + X Y)) @ Vh``, ``(out, in_f)``."""
        dtype = dtype or self.U.dtype
        r, s = self.rank, self.S.to(dtype)
        top = torch.diag(self.scale.to(dtype) * s[:r] + self.shift.to(dtype))  # (r, r)
        tail = torch.diag(s[r:]) + self.lora_x.to(dtype) @ self.lora_y.to(dtype)  # (k-r, k-r)
        core = torch.relu(torch.block_diag(top, tail))  # (k, k)
        return self.U.to(dtype) @ core @ self.Vh.to(dtype)

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the freshly rebuilt ``W'``."""
        return self.apply_weight(x, self.adapted_weight(), self.base_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rebuild ``W'`` and apply it, with or without autograd (the authors' code has no cache)."""
        return self.train_forward(x)

    def multiply_adds(self, tokens: int, input_grad: bool = True) -> int:
        """Forward + backward: ``out k (k + in_f)`` to build ``W'`` and as much for its gradient, plus
        ``N in out`` forward, ``N in out`` for ``dW'`` and ``N in out`` to x (when ``input_grad``)."""
        n, i, o, k = tokens, self.in_features, self.out_features, self.k
        return 2 * o * k * (k + i) + n * i * o * (2 + int(input_grad))


def make_naive(model: nn.Module) -> nn.Module:
    """Replace every :class:`SaltLayer` of ``model`` by a :class:`NaiveSaltLayer` on the same tensors (in place).

    Returns:
        ``model``.
    """
    for name, layer in list(adapter_layers(model)):
        if isinstance(layer, SaltLayer):
            naive = NaiveSaltLayer(layer)
            naive.train(layer.training)
            model.set_submodule(name, naive)
    return model
