"""Counting adapter parameters per method and layer type."""

from __future__ import annotations

from torch import nn

from salt.peft.layer import AdapterLayer, adapter_layers
from salt.peft.registry import injections


def count_adapter_parameters(model: nn.Module) -> dict[str, dict[str, int]]:
    """Adapter parameter counts of ``model`` by method and base-layer type.

    Adapter layers count the tensors they own (SALT per layer: ``2r + 2(k-r)l``; never the frozen base
    or the U/S/Vh buffers); a method that adapts its targets in place (``full``) counts the targets'
    parameters.

    Returns:
        ``{method: {layer_type: count}}``, e.g. ``{"salt": {"Linear": 1900, "Conv2d": 548}}``.
    """
    counts: dict[str, dict[str, int]] = {}

    def add(method: str, layer_type: str, count: int) -> None:
        per_type = counts.setdefault(method, {})
        per_type[layer_type] = per_type.get(layer_type, 0) + count

    for _, layer in adapter_layers(model):
        own = sum(p.numel() for p in layer.parameters(recurse=False))
        add(layer.adapter_method, type(layer.base_layer).__name__, own)
    for record in injections(model):
        for name in record["targets"]:
            module = model.get_submodule(name)
            if not isinstance(module, AdapterLayer):
                add(record["method"], type(module).__name__, sum(p.numel() for p in module.parameters()))
    return counts
