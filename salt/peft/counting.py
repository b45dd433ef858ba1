"""Counting adapter parameters per method and layer type, and the ranks each target group got."""

from __future__ import annotations

import re

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


def target_group(name: str) -> str:
    """A module name with every numeric segment replaced by ``*``: the group of layers repeated per block."""
    return re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "*", name)


def adapter_ranks(model: nn.Module) -> dict[str, dict]:
    """The ranks the adapters of ``model`` were built with, per target group (:func:`target_group`).

    Returns:
        ``{group: {"method", "count", <hyper-parameter>: [distinct values, ascending], ...}}``, e.g.
        ``{"image_encoder.blocks.*.attn.qkv": {"method": "salt", "count": 12, "k": [768], "r": [760], "l": [4]}}``;
        a group whose blocks differ in width (LiteMedSAM's stages) lists each value once.
    """
    groups: dict[str, dict] = {}
    for name, layer in adapter_layers(model):
        entry = groups.setdefault(target_group(name), {"method": layer.adapter_method, "count": 0})
        entry["count"] += 1
        for key, value in layer.hyper_parameters().items():
            entry.setdefault(key, set()).add(value)
    for record in injections(model):
        for name in record["targets"]:
            if not isinstance(model.get_submodule(name), AdapterLayer):
                entry = groups.setdefault(target_group(name), {"method": record["method"], "count": 0})
                entry["count"] += 1
    return {
        group: {k: sorted(v) if isinstance(v, set) else v for k, v in entry.items()}
        for group, entry in sorted(groups.items())
    }
