"""The adapter-layer base class: a drop-in wrapper around a frozen ``nn.Linear`` or ``nn.Conv2d``.

Two kinds of adapter module live in a model: this project's :class:`AdapterLayer` and the tuner layers of
the ``peft`` package (``peft.tuners.tuners_utils.BaseTunerLayer``, injected by the ``hf`` method). Both hold
the frozen original as ``base_layer``; :func:`is_adapter_module` recognises either without importing peft.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class AdapterLayer(nn.Module, ABC):
    """Wraps a frozen Linear or Conv2d (``base_layer``) and applies an adapted weight ``W'`` instead of ``W``.

    Every method works on the flat weight matrix ``(out, in_f)`` with ``in_f = in * kh * kw`` for a Conv2d
    (``weight.reshape(out, -1)``); a flat weight is applied with the base layer's own stride, padding,
    dilation and padding mode, so shapes are kept. The call signature and output equal the base layer's.

    Without autograd (``torch.no_grad``/``inference_mode``) and with no stochastic part active, the layer
    applies ``W'`` from a cache keyed on the storage and version counter of every parameter and buffer, so
    evaluation rebuilds ``W'`` only after a parameter changed (optimizer step, ``load_state_dict``, ``.to()``).

    Subclasses set ``adapter_method`` and implement :meth:`adapted_weight` and :meth:`train_forward`.
    """

    adapter_method: ClassVar[str]

    def __init__(self, base_layer: nn.Linear | nn.Conv2d) -> None:
        super().__init__()
        self.base_layer = base_layer
        for param in base_layer.parameters():
            param.requires_grad_(False)
        self.out_features, self.in_features = base_layer.weight.shape[0], base_layer.weight[0].numel()
        self._cache: tuple[tuple, torch.Tensor] | None = None

    @property
    def is_conv(self) -> bool:
        """True when the wrapped layer is a Conv2d."""
        return isinstance(self.base_layer, nn.Conv2d)

    def apply_weight(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Apply a flat weight ``(out, in_f)`` the way the base layer applies its own."""
        if self.is_conv:
            return self.base_layer._conv_forward(x, weight.view_as(self.base_layer.weight), bias)
        return F.linear(x, weight, bias)

    def tokens(self, x: torch.Tensor) -> int:
        """Number of positions the layer is applied at (Conv2d: output positions, from the stride)."""
        if self.is_conv:
            stride_h, stride_w = self.base_layer.stride
            return x.shape[0] * (x.shape[-2] // stride_h) * (x.shape[-1] // stride_w)
        return x.numel() // x.shape[-1]

    @abstractmethod
    def adapted_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The adapted flat weight ``W' (out, in_f)``, computed in ``dtype`` (default: the layer's)."""

    @abstractmethod
    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass when gradients are needed (or the layer is stochastic)."""

    def is_deterministic(self) -> bool:
        """Whether the output depends on parameters only (no active dropout), so ``W'`` may be cached."""
        return True

    def hyper_parameters(self) -> dict[str, int | float]:
        """The structural settings this layer was built with (``k``, ``r``, ``l`` ...), JSON-ready."""
        return {}

    def regularization(self) -> torch.Tensor:
        """This layer's regulariser, a 0-dim tensor (0 for methods without one)."""
        return self.base_layer.weight.new_zeros(())

    def _cache_key(self) -> tuple:
        return tuple((t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers()))

    def cached_weight(self) -> torch.Tensor:
        """``W'`` built under no_grad, rebuilt only when a parameter or buffer changed since the last call."""
        key = self._cache_key()
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self.adapted_weight())
        return self._cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same contract as the base layer: ``(..., in) -> (..., out)`` or ``(B, in, H, W) -> (B, out, H', W')``."""
        if not torch.is_grad_enabled() and self.is_deterministic():
            return self.apply_weight(x, self.cached_weight(), self.base_layer.bias)
        return self.train_forward(x)

    def clear_cache(self) -> None:
        """Drop the cached ``W'``; the next call without autograd rebuilds it."""
        self._cache = None

    def train(self, mode: bool = True) -> AdapterLayer:
        """Set training mode; entering training frees the evaluation cache (parameters will change)."""
        if mode:
            self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):
        # .to()/.half()/.cuda() replace every tensor: the cached weight would keep the old device or dtype.
        self.clear_cache()
        return super()._apply(fn, recurse)

    def multiply_adds(self, tokens: int, input_grad: bool = True) -> int:
        """Multiply-adds of one forward + backward over ``tokens`` positions (the cost model of the method).

        Element-wise work (bias, ReLU, dropout, adding branches) is not counted; the gradient to the input
        counts only when ``input_grad``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no multiply-add count")

    def to_plain(self) -> nn.Linear | nn.Conv2d:
        """A copy of the base layer holding ``W'`` (computed in float64, then cast): same outputs, no overhead."""
        plain = copy.deepcopy(self.base_layer)
        with torch.no_grad():
            plain.weight.copy_(self.adapted_weight(torch.float64).view_as(plain.weight))
        return plain


def adapter_layers(model: nn.Module) -> Iterator[tuple[str, AdapterLayer]]:
    """``(name, layer)`` for every adapter layer of ``model``, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, AdapterLayer):
            yield name, module


def is_adapter_module(module: nn.Module) -> bool:
    """Whether ``module`` is an adapter wrapping a ``base_layer``: an :class:`AdapterLayer` or a peft tuner layer."""
    if isinstance(module, AdapterLayer):
        return True
    # peft's BaseTunerLayer declares the attribute names of its trainable adapter tensors.
    return isinstance(getattr(module, "base_layer", None), nn.Module) and hasattr(
        module, "adapter_layer_names"
    )


def adapter_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(name, module)`` for every adapter module of ``model`` (see :func:`is_adapter_module`), in module order."""
    for name, module in model.named_modules():
        if is_adapter_module(module):
            yield name, module


def owned_state_names(module: nn.Module) -> list[str]:
    """State-dict keys of an adapter module outside its ``base_layer``: what the adapter added to the base."""
    return [key for key in module.state_dict() if not key.startswith("base_layer.")]
