"""What counts as adapter parameters, per method and layer type, and the ranks each target group got.

"Adapter parameters" has one definition, :func:`adapter_parameter_names`: for every injection, the tensors
its method trains in each adapted target (:meth:`~salt.peft.base.Method.trained_names`). An adapter layer's
own tensors (SALT per layer: ``2r + 2(k-r)l``; a peft layer's ``adapter_layer_names``), never its frozen
base or buffers; for a method that adapts its targets in place (``full``), the targets' own parameters.
Adapter files hold them, counts count them, and ``parameter_summary`` reports them as the ``adapter``
group. What an injection *added* to the base model (:func:`added_parameter_names`) differs for ``full``,
which adds nothing, and for peft tuners with frozen parameters of their own (AdaLoRA's ``ranknum``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from torch import nn

from salt.peft.layer import adapter_modules, is_adapter_module
from salt.peft.registry import METHODS, injections


def _targets(model: nn.Module) -> Iterator[tuple[dict[str, Any], str, nn.Module]]:
    for record in injections(model):
        for name in record["targets"]:
            yield record, name, model.get_submodule(name)


def adapter_parameter_names(model: nn.Module) -> set[str]:
    """Names (as in ``model.named_parameters()``) of the tensors the injected methods train."""
    return {
        f"{name}.{tensor}"
        for record, name, module in _targets(model)
        for tensor in METHODS[record["method"]].trained_names(module)
    }


def added_parameter_names(model: nn.Module) -> set[str]:
    """Names of the parameters that adapter modules hold outside their ``base_layer``: not part of the base."""
    return {
        f"{name}.{param}"
        for name, module in adapter_modules(model)
        for param, _ in module.named_parameters()
        if not param.startswith("base_layer.")
    }


def _base_type(module: nn.Module) -> str:
    while is_adapter_module(module):
        module = module.base_layer
    return type(module).__name__


def count_adapter_parameters(model: nn.Module) -> dict[str, dict[str, int]]:
    """Adapter parameter counts of ``model`` (:func:`adapter_parameter_names`) by method and base-layer type.

    Returns:
        ``{method: {layer_type: count}}``, e.g. ``{"salt": {"Linear": 1900, "Conv2d": 548}}``.
    """
    counts: dict[str, dict[str, int]] = {}
    for record, _, module in _targets(model):
        params = dict(module.named_parameters())
        count = sum(params[t].numel() for t in METHODS[record["method"]].trained_names(module))
        per_type = counts.setdefault(record["method"], {})
        per_type[_base_type(module)] = per_type.get(_base_type(module), 0) + count
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
    for record, name, module in _targets(model):
        entry = groups.setdefault(target_group(name), {"method": record["method"], "count": 0})
        entry["count"] += 1
        for key, value in METHODS[record["method"]].hyper_parameters(module).items():
            entry.setdefault(key, set()).add(value)
    return {
        group: {k: sorted(v) if isinstance(v, set) else v for k, v in entry.items()}
        for group, entry in sorted(groups.items())
    }
