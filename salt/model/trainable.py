"""Trainable-parameter policies by name group, and parameter counting."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from salt.model.backbones import BackboneError, backbone
from salt.model.segmenter import SamSegmenter
from salt.peft.counting import adapter_parameter_names, added_parameter_names

# The paper's policy on SAM ViT-B: every LayerNorm, the position embedding and the class prompt train.
PAPER_POLICY = ("norm", "pos_embed", "prompt")


def trainable_groups(model: nn.Module) -> dict[str, Callable[[nn.Module], Iterable[str]]]:
    """The trainable groups the backbone of ``model`` (a SamSegmenter) declares: name -> parameter names."""
    return backbone(model.backbone).groups()


def group_parameter_names(model: nn.Module, group: str) -> set[str]:
    """Names of the parameters of ``model`` (a SamSegmenter) that belong to ``group``.

    Raises:
        BackboneError: the model's backbone has no group of that name (the message lists its groups).
    """
    groups = trainable_groups(model)
    if group not in groups:
        raise BackboneError(
            f"unknown trainable group {group!r} for the {model.backbone} backbone; valid groups: {', '.join(groups)}"
        )
    return set(groups[group](model))


def set_trainable(model: nn.Module, groups: Iterable[str]) -> set[str]:
    """Freeze every parameter of ``model``, then unfreeze those in ``groups``.

    Call it before injecting adapters: adapters added afterwards bring their own trainable tensors.
    The paper's policy is ``("norm", "pos_embed", "prompt")``.

    Returns:
        The names of the parameters left trainable.
    """
    names: set[str] = set()
    for group in groups:
        names |= group_parameter_names(model, group)
    for name, param in model.named_parameters():
        param.requires_grad_(name in names)
    return names


def parameter_summary(model: nn.Module, paper_denominator: float | None = None) -> dict:
    """Trainable and total parameter counts, overall and per group.

    The ``adapter`` group holds the adapter parameters (``salt.peft.counting.adapter_parameter_names``:
    what the injected methods train, full tuning's targets included); ``total_base`` excludes the
    parameters adapters added to the base (``added_parameter_names``). Groups may overlap (``norm`` lies
    inside ``encoder``).

    Args:
        model: a SamSegmenter, with or without adapters.
        paper_denominator: the paper's percentage denominator (it counts the frozen CLIP model too); when
            given, ``trainable_percent_paper`` is added.

    Returns:
        ``{"trainable", "total", "total_base", "trainable_percent", "groups": {name: {"trainable",
        "total"}}}``.
    """
    adapter_names = adapter_parameter_names(model)
    params = dict(model.named_parameters())
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    total = sum(p.numel() for p in params.values())
    groups: dict[str, dict[str, int]] = {}
    for group, fn in trainable_groups(model).items() if isinstance(model, SamSegmenter) else ():
        names = set(fn(model)) & set(params)
        groups[group] = {
            "trainable": sum(params[n].numel() for n in names if params[n].requires_grad),
            "total": sum(params[n].numel() for n in names),
        }
    groups["adapter"] = {
        "trainable": sum(params[n].numel() for n in adapter_names if params[n].requires_grad),
        "total": sum(params[n].numel() for n in adapter_names),
    }
    total_base = total - sum(params[n].numel() for n in added_parameter_names(model))
    summary = {
        "trainable": trainable,
        "total": total,
        "total_base": total_base,
        "trainable_percent": 100.0 * trainable / max(total_base, 1),
        "groups": groups,
    }
    if paper_denominator:
        summary["trainable_percent_paper"] = 100.0 * trainable / paper_denominator
    return summary
