"""LoRA against the ``peft`` package's LoRA on the same weights."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from salt.peft import inject, merge
from salt.peft.lora import LoraLayer


class TwoLayers(nn.Module):
    """A Linear and a strided, padded Conv2d: the two layer types LoRA adapts."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 10)
        self.conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)

    def forward(self, tokens: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lin(tokens), self.conv(image)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    return torch.randn(4, 7, 6, generator=generator), torch.randn(2, 3, 9, 9, generator=generator)


@pytest.mark.parametrize(("rank", "alpha"), [(3, None), (3, 6.0)])
def test_lora_matches_the_peft_package(rank: int, alpha: float | None) -> None:
    torch.manual_seed(0)
    ours = TwoLayers()
    theirs = TwoLayers()
    theirs.load_state_dict(ours.state_dict())
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=["lin", "conv"], lora_dropout=0.0)
    theirs = inject_adapter_in_model(config, theirs)
    inject(ours, "lora", ["lin", "conv"], rank=rank, alpha=alpha, dropout=0.0)
    with torch.no_grad():
        for name in ("lin", "conv"):
            peft_layer, layer = getattr(theirs, name), getattr(ours, name)
            peft_layer.lora_B["default"].weight.normal_()  # peft also starts B at 0: make the branch visible
            layer.lora_a.copy_(peft_layer.lora_A["default"].weight.reshape(rank, -1))  # (r, in * kh * kw)
            layer.lora_b.copy_(peft_layer.lora_B["default"].weight.reshape(-1, rank))  # (out, r)
    inputs = _inputs()
    expected = theirs(*inputs)
    for got, want in zip(ours(*inputs), expected):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    ours.eval()
    with torch.no_grad():
        for got, want in zip(ours(*inputs), expected):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        for got, want in zip(merge(ours)(*inputs), expected):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_lora_init_and_scaling() -> None:
    torch.manual_seed(0)
    layer = LoraLayer(nn.Linear(256, 64), rank=8, alpha=4.0, dropout=0.0)
    assert layer.lora_a.shape == (8, 256) and layer.lora_b.shape == (64, 8)
    assert torch.equal(layer.lora_b, torch.zeros(64, 8))
    assert 0.9 / 8 < layer.lora_a.std().item() < 1.1 / 8  # A ~ N(0, 1/r^2)
    assert layer.scaling == 0.5


def test_dropout_acts_on_the_branch_only_in_training() -> None:
    torch.manual_seed(0)
    layer = LoraLayer(nn.Linear(6, 10), rank=2, alpha=2.0, dropout=0.5)
    with torch.no_grad():
        layer.lora_b.normal_()
    tokens = _inputs()[0]
    with torch.no_grad():
        first, second = layer(tokens), layer(tokens)
    assert not torch.equal(first, second)  # training mode under no_grad still drops (no cached weight)
    layer.eval()
    with torch.no_grad():
        expected = layer.base_layer(tokens) + tokens @ (layer.lora_b @ layer.lora_a).T
        torch.testing.assert_close(layer(tokens), expected)
