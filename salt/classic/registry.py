"""The paper's traditional baselines (Table 1), built from maintained implementations and trained from scratch.

U-Net, UNETR and RegUNet come from MONAI, DeepLabV3+ and SegFormer from segmentation-models-pytorch (always
with ``encoder_weights=None``: nothing is downloaded), SegNet from :mod:`salt.classic.segnet`. Each entry
of :data:`CLASSIC_MODELS` is the one private builder bound to a network maker; architecture settings come
from ``model.kwargs`` (``configs/model/<name>.yaml`` holds the paper-sized ones), the library's defaults
fill the rest.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import segmentation_models_pytorch as smp
from monai.networks.nets import UNETR, RegUNet, UNet
from torch import nn

from salt.classic.segmenter import ClassicSegmenter
from salt.classic.segnet import SegNet
from salt.errors import ConfigError

IN_CHANNELS = 3
SPATIAL_DIMS = 2
# MONAI's UNETR fixes 16-pixel patches and decodes with four 2x upsamplings back to the input size.
UNETR_PATCH = 16


def _check_kwargs(cls: type, name: str, kwargs: dict[str, Any], fixed: dict[str, Any]) -> None:
    """Reject keys the constructor does not name (smp swallows them in ``**kwargs``) or that we set."""
    params = inspect.signature(cls).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    valid = sorted(named - set(fixed))
    wrong = sorted(set(kwargs) - set(valid))
    if wrong:
        raise ConfigError(f"model.kwargs for {name}: unsupported key(s) {wrong}; valid: {valid}")
    required = {p.name for p in params if p.default is p.empty and p.kind != p.VAR_KEYWORD}
    missing = sorted(required - set(fixed) - set(kwargs))
    if missing:
        raise ConfigError(f"model.kwargs for {name}: missing key(s) {missing}")


def _check_size(img_size: int, multiple: int, name: str) -> None:
    if img_size % multiple:
        raise ConfigError(f"model.img_size={img_size} must be a multiple of {multiple} for {name}")


def _unet(num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
    fixed = {"spatial_dims": SPATIAL_DIMS, "in_channels": IN_CHANNELS, "out_channels": num_classes}
    _check_kwargs(UNet, "unet", kwargs, fixed)
    _check_size(img_size, math.prod(kwargs["strides"]), "unet")
    return UNet(**fixed, **kwargs)


def _unetr(num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
    fixed = {
        "spatial_dims": SPATIAL_DIMS,
        "in_channels": IN_CHANNELS,
        "out_channels": num_classes,
        "img_size": img_size,
    }
    _check_kwargs(UNETR, "unetr", kwargs, fixed)
    _check_size(img_size, UNETR_PATCH, "unetr")
    net = UNETR(**fixed, **kwargs)
    for block in net.vit.blocks:
        # MONAI builds this norm even without cross-attention and never calls it; a parameter without a
        # gradient would stall DDP's gradient reduction.
        if not block.with_cross_attention:
            block.norm_cross_attn = nn.Identity()
    return net


def _regunet(num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
    fixed = {"spatial_dims": SPATIAL_DIMS, "in_channels": IN_CHANNELS, "out_channels": num_classes}
    _check_kwargs(RegUNet, "regunet", kwargs, fixed)
    _check_size(img_size, 2 ** kwargs["depth"], "regunet")
    # MONAI takes the levels as a tuple (a list from a config would fail its checks).
    levels = kwargs.pop("extract_levels", None)
    return RegUNet(**fixed, **kwargs, extract_levels=tuple(levels) if levels else None)


def _smp(cls: type, name: str, num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
    fixed = {"in_channels": IN_CHANNELS, "classes": num_classes, "encoder_weights": None}
    _check_kwargs(cls, name, kwargs, fixed)
    net = cls(**fixed, **kwargs)
    # smp rejects inputs not divisible by its encoder's output stride; fail at build time instead.
    _check_size(img_size, net.encoder.output_stride, name)
    return net


def _segnet(num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
    fixed = {"in_channels": IN_CHANNELS, "num_classes": num_classes}
    _check_kwargs(SegNet, "segnet", kwargs, fixed)
    net = SegNet(**fixed, **kwargs)
    _check_size(img_size, net.downsample, "segnet")
    return net


def _build(
    make_net: Callable[..., nn.Module], num_classes: int, img_size: int, **kwargs: Any
) -> ClassicSegmenter:
    return ClassicSegmenter(make_net(num_classes, img_size, **kwargs), img_size, num_classes)


CLASSIC_MODELS: dict[str, Callable[..., ClassicSegmenter]] = {
    "unet": partial(_build, _unet),
    "unetr": partial(_build, _unetr),
    "regunet": partial(_build, _regunet),
    "deeplabv3plus": partial(_build, partial(_smp, smp.DeepLabV3Plus, "deeplabv3plus")),
    "segformer": partial(_build, partial(_smp, smp.Segformer, "segformer")),
    "segnet": partial(_build, _segnet),
}


def build_classic(name: str, num_classes: int, img_size: int, **kwargs: Any) -> ClassicSegmenter:
    """Build the classic baseline ``name`` with fresh random weights.

    Args:
        name: a key of :data:`CLASSIC_MODELS` (``unet``, ``unetr``, ``regunet``, ``deeplabv3plus``,
            ``segformer``, ``segnet``).
        num_classes: number of foreground classes, one output logit map each.
        img_size: square input side in pixels; each network needs a multiple of its downsampling factor
            (16 or 32 for the paper's settings), and UNETR sizes its patch grid from it.
        **kwargs: architecture settings passed to the network's constructor (``model.kwargs``); the input
            channels, class count, image size and weights are set here and may not be given.

    Returns:
        A :class:`ClassicSegmenter` mapping images ``(B, 3, img_size, img_size)`` float in [0, 255] RGB to
        logits ``(B, num_classes, img_size, img_size)``.

    Raises:
        ValueError: unknown ``name``, unsupported or missing ``kwargs``, or an ``img_size`` the network
            cannot take.
    """
    if name not in CLASSIC_MODELS:
        raise ConfigError(f"model.name={name!r} is not a classic model; valid: {sorted(CLASSIC_MODELS)}")
    return CLASSIC_MODELS[name](num_classes, img_size, **kwargs)
