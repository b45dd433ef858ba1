"""Merging adapters into plain layers for inference."""

from __future__ import annotations

import copy
import logging

from torch import nn

from salt.errors import UserError
from salt.peft.layer import AdapterLayer, adapter_modules
from salt.peft.registry import INJECTIONS_ATTR, injections

log = logging.getLogger(__name__)


class MergeError(UserError, ValueError):
    """An adapter that cannot be folded into its base layer (one-line message naming the layer)."""


def merged_layer(name: str, module: nn.Module) -> nn.Linear | nn.Conv2d:
    """A plain layer computing what the adapter module ``module`` (called ``name``) computes.

    This project's layers build ``W'`` in float64 (:meth:`AdapterLayer.to_plain`); a peft tuner layer is
    merged by peft itself (``merge(safe_merge=True)``) on a copy, so ``module`` stays as it was.

    Raises:
        MergeError: peft cannot merge this layer; the message names it and gives peft's reason.
    """
    if isinstance(module, AdapterLayer):
        return module.to_plain()
    merged = copy.deepcopy(module)
    try:
        merged.merge(safe_merge=True)
    except (NotImplementedError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MergeError(
            f"peft cannot merge the {type(module).__name__} adapter of {name}: {reason}"
        ) from None
    return merged.get_base_layer()


def merge(model: nn.Module) -> nn.Module:
    """Replace every adapter module of ``model`` by a plain ``nn.Linear``/``nn.Conv2d`` holding ``W'``.

    The merged model gives the unmerged outputs (up to float rounding) at the plain model's cost. Every
    layer is merged before any is swapped in, so a layer that cannot be merged leaves ``model`` as it was.
    The change is in place; the injection records of merged methods are dropped, so the merged modules can
    be adapted again.

    Returns:
        ``model`` (or the plain layer, when ``model`` itself is an adapter layer).

    Raises:
        MergeError: a peft adapter that peft cannot merge.
    """
    if isinstance(model, AdapterLayer):
        return model.to_plain()
    plain = {name: merged_layer(name, module) for name, module in list(adapter_modules(model))}
    for name, layer in plain.items():
        model.set_submodule(name, layer)
    kept = [r for r in injections(model) if not set(plain).intersection(r["targets"])]
    setattr(model, INJECTIONS_ATTR, kept)
    log.info("merged %d adapter layers", len(plain))
    return model
