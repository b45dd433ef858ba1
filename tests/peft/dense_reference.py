"""The spectral adapters' formulas (paper.md §1) written with dense matrices, as the PEFT tests' reference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from salt.peft.salt import SaltLayer

TOLERANCE = {"atol": 1e-10, "rtol": 1e-10}  # float64 throughout


def salt_dense_weight(layer: SaltLayer) -> torch.Tensor:
    """``W' = U ReLU(C) Vh`` with the k x k core written out (diagonal ReLU: only its diagonal clamped)."""
    r, s = layer.rank, layer.S
    top = torch.diag(layer.scale * s[:r] + layer.shift)
    tail = torch.diag(s[r:]) + layer.lora_x @ layer.lora_y
    core = torch.block_diag(top, tail)
    if layer.relu == "full":
        core = torch.relu(core)
    else:
        core = core - torch.diag(core.diagonal()) + torch.diag(torch.relu(core.diagonal()))
    return layer.U @ core @ layer.Vh


def apply_dense(base: nn.Module, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x`` through the flat ``weight (out, in_f)`` with the geometry and bias of ``base``."""
    if isinstance(base, nn.Conv2d):
        return F.conv2d(x, weight.view_as(base.weight), base.bias, base.stride, base.padding, base.dilation)
    return F.linear(x, weight, base.bias)


def assert_matches_dense(out: torch.Tensor, expected: torch.Tensor, inputs: Sequence[torch.Tensor]) -> None:
    """``out`` equals ``expected``, and so do the gradients of their squared sums to every tensor of ``inputs``."""
    grads = torch.autograd.grad(out.square().sum(), inputs)
    expected_grads = torch.autograd.grad(expected.square().sum(), inputs)
    torch.testing.assert_close(out, expected, **TOLERANCE)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, **TOLERANCE)
