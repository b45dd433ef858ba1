"""Merging adapters into plain layers for inference."""

from __future__ import annotations

import logging

from torch import nn

from salt.peft.layer import AdapterLayer, adapter_layers
from salt.peft.registry import INJECTIONS_ATTR, injections

log = logging.getLogger(__name__)


def merge(model: nn.Module) -> nn.Module:
    """Replace every adapter layer of ``model`` by a plain ``nn.Linear``/``nn.Conv2d`` holding ``W'``.

    ``W'`` is computed in float64 and cast to the layer's dtype, so the merged model gives the unmerged
    outputs (up to float rounding) at the plain model's cost. The change is in place; the injection
    records of merged methods are dropped, so the merged modules can be adapted again.

    Returns:
        ``model`` (or the plain layer, when ``model`` itself is an adapter layer).
    """
    if isinstance(model, AdapterLayer):
        return model.to_plain()
    merged = [(name, layer) for name, layer in adapter_layers(model)]
    for name, layer in merged:
        model.set_submodule(name, layer.to_plain())
    merged_names = {name for name, _ in merged}
    kept = [r for r in injections(model) if not merged_names.intersection(r["targets"])]
    setattr(model, INJECTIONS_ATTR, kept)
    log.info("merged %d adapter layers", len(merged))
    return model
