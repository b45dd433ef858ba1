"""Multiply-add counts of one forward + backward pass of a target layer, for every method the benchmark runs.

With ``N`` positions (tokens, or Conv2d output positions), ``in`` = ``in * kh * kw`` and ``g`` = 1 when the
input needs its gradient (inside SAM with trainable position embeddings it always does)::

    frozen layer:   N in out (1 + g)                      forward, and the gradient to x
    full tuning:    N in out (2 + g)                      plus the weight gradient
    adapter layer:  its method's cost model, AdapterLayer.multiply_adds (LoRA, SALT, SVD, naive SALT)

Element-wise work (bias, ReLU, dropout, adding the branches) is not counted.
"""

from __future__ import annotations

from torch import nn

from salt.peft.base import flat_shape
from salt.peft.layer import AdapterLayer
from salt.peft.spectral import SpectralLayer


def plain_multiply_adds(module: nn.Module, tokens: int, input_grad: bool) -> int:
    """A plain Linear/Conv2d: frozen, or fully tuned when its weight requires a gradient."""
    out, in_f = flat_shape(module)
    return tokens * in_f * out * (1 + int(input_grad) + int(module.weight.requires_grad))


def layer_multiply_adds(module: nn.Module, tokens: int, input_grad: bool, form: str | None = None) -> int:
    """Multiply-adds of one forward + backward of ``module`` over ``tokens`` positions.

    Args:
        module: a plain Linear/Conv2d or an adapter layer.
        form: for a SpectralLayer, the execution form; None means the one it picks for this call.

    Raises:
        TypeError: a module without a cost model (a peft tuner layer, another module type).
    """
    if isinstance(module, SpectralLayer) and form is not None:
        return module.form_multiply_adds(form, tokens, input_grad)
    if isinstance(module, AdapterLayer):
        return module.multiply_adds(tokens, input_grad)
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        return plain_multiply_adds(module, tokens, input_grad)
    raise TypeError(f"no multiply-add count for a {type(module).__name__}")
