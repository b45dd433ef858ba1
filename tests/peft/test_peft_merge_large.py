"""merge() == unmerged within atol 1e-5 in float32 on single layers of SAM ViT-B's size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from salt.peft.lora import LoraLayer
from salt.peft.salt import SaltLayer
from salt.peft.spectral import decompose
from salt.peft.svd import SvdLayer

# (layer, SALT rank r with the authors' ViT-B settings, input)
LAYERS = {
    "qkv": (lambda: nn.Linear(768, 2304), 760, (2, 8, 8, 768)),
    "lin2": (lambda: nn.Linear(3072, 768), 50, (2, 8, 8, 3072)),
    "neck.2": (lambda: nn.Conv2d(256, 256, 3, padding=1, bias=False), 250, (2, 256, 8, 8)),
}
# Each 768 x 2304 float64 SVD takes seconds on a CPU: one per base layer, shared by all methods.
ADAPTERS = {
    "salt-full": lambda base, r, svd: SaltLayer(base, r, 4, relu="full", init="paper", decomposition=svd),
    "salt-diagonal": lambda base, r, svd: SaltLayer(
        base, r, 4, relu="diagonal", init="paper", decomposition=svd
    ),
    "svd": lambda base, r, svd: SvdLayer(base, decomposition=svd),
    "lora": lambda base, r, svd: LoraLayer(base, 4, 4.0, dropout=0.0),
}
BASES: dict[str, tuple[nn.Module, tuple]] = {}


def _base(layer_name: str) -> tuple[nn.Module, tuple]:
    """The seeded base layer of ``layer_name`` and its decomposition, built once per test session."""
    if layer_name not in BASES:
        torch.manual_seed(0)
        base = LAYERS[layer_name][0]()
        BASES[layer_name] = (base, decompose(base.weight))
    return BASES[layer_name]


@pytest.mark.slow
@pytest.mark.parametrize("layer_name", LAYERS)
@pytest.mark.parametrize("method", ADAPTERS)
def test_merge_matches_unmerged_on_vit_b_layers(layer_name: str, method: str) -> None:
    _, rank, shape = LAYERS[layer_name]
    base, svd = _base(layer_name)
    torch.manual_seed(0)
    layer = ADAPTERS[method](base, rank, svd).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in layer.parameters(recurse=False):
            param.add_(torch.randn(param.shape, generator=generator) * 0.01)
    x = torch.randn(shape, generator=generator)
    plain = layer.to_plain()
    with torch.no_grad():
        merged = plain(x)
        torch.testing.assert_close(layer(x), merged, atol=1e-5, rtol=0)  # cached weight
    forms = ("basis", "weight") if hasattr(layer, "execution") else ("train",)
    for form in forms:
        if form != "train":
            layer.execution = form
        torch.testing.assert_close(layer(x).detach(), merged, atol=1e-5, rtol=0, msg=f"{form} form")
