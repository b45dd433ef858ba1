"""merge() == unmerged within atol 1e-5 in float32 on single layers of SAM ViT-B's size."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import salt.peft.spectral as spectral
from salt.peft.lora import LoraLayer
from salt.peft.salt import SaltLayer
from salt.peft.svd import SvdLayer

# (layer, SALT rank r with the authors' ViT-B settings, input)
LAYERS = {
    "qkv": (lambda: nn.Linear(768, 2304), 760, (2, 8, 8, 768)),
    "lin2": (lambda: nn.Linear(3072, 768), 50, (2, 8, 8, 3072)),
    "neck.2": (lambda: nn.Conv2d(256, 256, 3, padding=1, bias=False), 250, (2, 256, 8, 8)),
}
ADAPTERS = {
    "salt-full": lambda base, r: SaltLayer(base, r, 4, relu="full", init="paper"),
    "salt-diagonal": lambda base, r: SaltLayer(base, r, 4, relu="diagonal", init="paper"),
    "svd": lambda base, r: SvdLayer(base),
    "lora": lambda base, r: LoraLayer(base, 4, 4.0, dropout=0.0),
}


@pytest.fixture(scope="module", autouse=True)
def reuse_svds():
    """Each 768 x 2304 float64 SVD takes seconds on a CPU: compute one per base weight for all methods."""
    cache = {}
    compute = spectral.signed_svd

    @functools.wraps(compute)
    def cached(weight: torch.Tensor):
        key = (tuple(weight.shape), tuple(weight.reshape(-1)[:8].tolist()))
        if key not in cache:
            cache[key] = compute(weight)
        return cache[key]

    spectral.signed_svd = cached
    yield
    spectral.signed_svd = compute


@pytest.mark.slow
@pytest.mark.parametrize("layer_name", LAYERS)
@pytest.mark.parametrize("method", ADAPTERS)
def test_merge_matches_unmerged_on_vit_b_layers(layer_name: str, method: str) -> None:
    make_base, rank, shape = LAYERS[layer_name]
    torch.manual_seed(0)
    layer = ADAPTERS[method](make_base(), rank).eval()
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
