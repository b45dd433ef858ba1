"""Layer-level cases: one target layer of SAM (the real module and shape), forward + backward.

A layer sees ``batch * (px / 16)^2`` positions for a ``px`` input (window padding aside); its input needs
its gradient, as inside SAM when the position embedding trains. Every variant wraps the same frozen module,
except full tuning, which trains a copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from salt.bench.counts import layer_multiply_adds
from salt.bench.naive import NaiveSaltLayer
from salt.bench.variants import SALT_4, SALT_DIAGONAL, Variant, matched_lora_rank, method_name, options
from salt.model.backbones.sam import PATCH_SIZE
from salt.peft import METHODS
from salt.peft.base import flat_shape
from salt.peft.spectral import BASIS_PLACEMENTS, SpectralLayer

# One of each target kind of the image encoder: attention, MLP and the two neck convs.
LAYERS = {
    "qkv": "image_encoder.blocks.0.attn.qkv",
    "proj": "image_encoder.blocks.0.attn.proj",
    "lin1": "image_encoder.blocks.0.mlp.lin1",
    "lin2": "image_encoder.blocks.0.mlp.lin2",
    "neck.0": "image_encoder.neck.0",
    "neck.2": "image_encoder.neck.2",
}

# Timed in every exact form, to check the cost model's pick: the paper's SALT and the diagonal-ReLU variant.
FORM_CHECKS = (SALT_4.name, SALT_DIAGONAL.name)


@dataclass
class LayerCase:
    """A timed call and what it computes: ``call()`` runs forward + backward once."""

    name: str
    call: Callable[[], None]
    multiply_adds: int
    config: dict[str, Any] = field(default_factory=dict)


def form_label(layer: nn.Module, tokens: int, input_grad: bool = True) -> str:
    """The execution form a layer picks for this call, e.g. ``basis/in``; ``""`` for non-spectral layers."""
    if not isinstance(layer, SpectralLayer):
        return ""
    form = layer.choose_form(tokens, input_grad)
    return f"basis/{layer.basis_placement(tokens, input_grad)}" if form == "basis" else form


def adapt(
    variant: Variant, cfg: dict[str, Any], name: str, module: nn.Module, cache: dict | None = None
) -> nn.Module:
    """``module`` (the layer called ``name``) with ``variant``'s method applied, as injection would
    (``cache`` as for :func:`salt.peft.inject`)."""
    if method_name(cfg) == "none":
        return module
    if method_name(cfg) == "full":
        tuned = copy.deepcopy(module)
        tuned.requires_grad_(True)
        return tuned
    layer = METHODS[method_name(cfg)].from_options(options(cfg)).adapt(name, module, cache)
    return NaiveSaltLayer(layer) if variant.naive else layer


def layer_input(module: nn.Module, batch: int, px: int, device: torch.device) -> torch.Tensor:
    """Input of ``module`` for ``px`` images: ``(B, px/16, px/16, in)`` (Linear) or ``(B, in, px/16, px/16)``."""
    side = px // PATCH_SIZE
    if isinstance(module, nn.Conv2d):
        shape = (batch, module.in_channels, side, side)
    else:
        shape = (batch, side, side, module.in_features)
    return torch.randn(shape, device=device, requires_grad=True)


def _fwd_bwd(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, params: list[torch.Tensor]):
    grad = torch.randn_like(forward(x).detach())

    def call() -> None:
        for tensor in (x, *params):
            tensor.grad = None
        forward(x).backward(grad)

    return call


def _form_calls(label: str, layer: SpectralLayer, tokens: int) -> dict[str, tuple[str, Callable, int]]:
    """``{"<label> [form]": (form, forward, multiply-adds)}`` for every exact form and basis placement."""
    calls = {}
    for form in layer.forms():
        if form == "basis":
            for placement in BASIS_PLACEMENTS:
                calls[f"{label} [basis/{placement}]"] = (
                    f"basis/{placement}",
                    lambda x, p=placement: layer.basis_forward(x, p),
                    layer.basis_multiply_adds(placement, tokens),
                )
        else:
            calls[f"{label} [{form}]"] = (
                form,
                lambda x, f=form: layer.form_forward(f, x),
                layer.form_multiply_adds(form, tokens),
            )
    return calls


def layer_cases(
    short: str,
    module: nn.Module,
    variants: list[tuple[Variant, dict[str, Any]]],
    batch: int,
    px: int,
    cache: dict | None = None,
) -> list[LayerCase]:
    """The cases of one layer at one input size.

    Args:
        short: the layer's key in :data:`LAYERS`; module: that frozen layer.
        variants: ``(variant, PEFT config)`` pairs in table order; a variant with ``matches`` must follow
            the variant it matches. The variants named in :data:`FORM_CHECKS` are also timed in every other
            exact form.
        cache: shared by the variants' adapters (one SVD per weight for the spectral ones).
    """
    x = layer_input(module, batch, px, module.weight.device)
    tokens = x.numel() // x.shape[-1] if isinstance(module, nn.Linear) else batch * (px // PATCH_SIZE) ** 2
    out, in_f = flat_shape(module)
    base = {"layer": short, "module": LAYERS[short], "kind": type(module).__name__, "out": out, "in_f": in_f}
    base |= {"px": px, "batch": batch, "tokens": tokens}
    cases, built = [], {}
    for variant, cfg in variants:
        if variant.matches:
            count = sum(p.numel() for p in built[variant.matches].parameters(recurse=False))
            cfg = {**cfg, "rank": matched_lora_rank(count, [module])}
        layer = built[variant.name] = adapt(variant, cfg, LAYERS[short], module, cache)
        params = [p for p in layer.parameters() if p.requires_grad]
        config = base | {
            "peft": {"method": method_name(cfg), **options(cfg)},
            "form": form_label(layer, tokens),
        }
        config["trainable"] = sum(p.numel() for p in params)
        macs = layer_multiply_adds(layer, tokens, True)
        cases.append(LayerCase(variant.name, _fwd_bwd(layer, x, params), macs, config))
        if variant.name in FORM_CHECKS and isinstance(layer, SpectralLayer):
            for label, (form, forward, macs) in _form_calls(variant.name, layer, tokens).items():
                if form == config["form"]:  # the variant's own case times the form auto picks
                    continue
                form_config = config | {"form": form, "form_of": variant.name}
                cases.append(LayerCase(label, _fwd_bwd(forward, x, params), macs, form_config))
    return cases
