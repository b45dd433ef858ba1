"""The two library networks that need a step after their constructor before they can train in this project.

Every other classic network is its library class itself, named by ``net._target_`` in
``configs/model/<name>.yaml`` (MONAI's ``UNet``, segmentation-models-pytorch's ``DeepLabV3Plus`` ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import get_class
from monai.networks.nets import UNETR, RegUNet
from torch import nn


def unetr(**kwargs: Any) -> UNETR:
    """MONAI's ``UNETR(**kwargs)`` without the cross-attention norms its blocks build but never call.

    A parameter without a gradient would stall DDP's gradient reduction, so each unused norm becomes an
    ``nn.Identity`` (no parameters; the forward is unchanged). Maps ``(B, in_channels, S, S)`` to
    ``(B, out_channels, S, S)`` for ``spatial_dims=2``, ``S = img_size`` a multiple of its 16-pixel patch.
    """
    net = UNETR(**kwargs)
    for block in net.vit.blocks:
        if not block.with_cross_attention:
            block.norm_cross_attn = nn.Identity()
    return net


def regunet(extract_levels: Sequence[int] | None = None, **kwargs: Any) -> RegUNet:
    """MONAI's ``RegUNet(**kwargs)``, with ``extract_levels`` as the tuple MONAI's checks need (a config gives a list).

    Maps ``(B, in_channels, S, S)`` to ``(B, out_channels, S, S)`` for ``spatial_dims=2``, S a multiple of
    ``2 ** depth``.
    """
    return RegUNet(**kwargs, extract_levels=tuple(extract_levels) if extract_levels else None)


def dropped_arguments(net_cfg: Mapping[str, Any]) -> list[str]:
    """The keys of a ``net`` config that its class would take and then ignore (none for most classes).

    segmentation-models-pytorch's architectures take ``**kwargs`` and hand them to their encoder builder,
    which passes them on to a timm encoder (``encoder_name: tu-...``: timm checks them) and drops them for
    every other encoder, so a misspelt ``model.net.decoder_chanels`` would build the default network. Any
    other class is left to its own signature check.
    """
    target = net_cfg.get("_target_")
    if not isinstance(target, str) or not target.startswith("segmentation_models_pytorch."):
        return []
    if str(net_cfg.get("encoder_name", "")).startswith("tu-"):
        return []
    params = inspect.signature(get_class(target).__init__).parameters
    named = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return sorted(k for k in net_cfg if not k.startswith("_") and k not in named)
