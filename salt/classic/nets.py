"""The two library networks that need a step after their constructor before they can train in this project.

Every other classic network is its library class itself, named by ``net._target_`` in
``configs/model/<name>.yaml`` (MONAI's ``UNet``, segmentation-models-pytorch's ``DeepLabV3Plus`` ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
