"""Every classic network config at toy widths and 64 px: output shapes, gradients, input normalisation, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from salt.classic import ClassicSegmenter, SegNet
from salt.model.normalize import SAM_PIXEL_MEAN as PIXEL_MEAN
from salt.model.normalize import SAM_PIXEL_STD as PIXEL_STD

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
SIZE = 64
# The same classes as the paper-sized configs at toy widths, so every network runs in well under a second.
TINY_NET: dict[str, dict] = {
    "unet": {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1},
    "unetr": {"hidden_size": 32, "mlp_dim": 64, "num_heads": 2, "feature_size": 4},
    "regunet": {"num_channel_initial": 4, "depth": 3, "extract_levels": [3]},
    "deeplabv3plus": {"encoder_name": "resnet18", "decoder_channels": 16},
    "segformer": {"encoder_name": "mit_b0", "decoder_segmentation_channels": 16},
    "segnet": {"stages": [[4, 1], [8, 1], [8, 1], [8, 1], [8, 1]]},
}
# The networks trained from scratch: the model configs whose _target_ is the classic segmenter.
NAMES = sorted(
    p.stem
    for p in CONFIGS.glob("*.yaml")
    if OmegaConf.load(p).get("_target_") == "salt.classic.ClassicSegmenter"
)


def build(name: str, num_classes: int = 1, img_size: int = SIZE, **net: object) -> ClassicSegmenter:
    """The network of ``configs/model/<name>.yaml`` at toy widths, built as train.py builds it."""
    cfg = OmegaConf.merge(
        {"dataset": {"img_size": img_size, "num_classes": num_classes}},
        {"model": OmegaConf.load(CONFIGS / f"{name}.yaml")},
        {"model": {"net": {**TINY_NET[name], **net}}},
    )
    model = OmegaConf.to_container(cfg, resolve=True)["model"]
    args = {k: v for k, v in model.items() if k not in ("title", "trainable", "paper_param_denominator")}
    return instantiate(args, _convert_="all")


def test_every_classic_config_has_tiny_settings() -> None:
    assert set(TINY_NET) == set(NAMES)


@pytest.mark.parametrize("num_classes", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_shape_and_every_parameter_gets_a_gradient(name: str, num_classes: int) -> None:
    torch.manual_seed(0)
    model = build(name, num_classes=num_classes)
    images = torch.rand(2, 3, SIZE, SIZE) * 255
    logits = model(images)
    assert logits.shape == (2, num_classes, SIZE, SIZE)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    # A parameter without a gradient would stall DDP's reduction and never train.
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_wrapper_normalises_raw_rgb_before_the_network() -> None:
    net = nn.Conv2d(3, 2, kernel_size=1)
    model = ClassicSegmenter(net, img_size=8, num_classes=2)
    images = torch.rand(1, 3, 8, 8) * 255
    mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model(images), net((images - mean) / std))


def test_wrong_input_size_is_rejected() -> None:
    model = build("unet")
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_img_size_off_the_downsampling_grid_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"model\.img_size=66 must be a multiple of 16"):
        ClassicSegmenter(nn.Identity(), img_size=66, num_classes=1, size_multiple=16)


def test_segnet_rejects_sizes_off_its_grid() -> None:
    net = SegNet(in_channels=3, num_classes=1, stages=TINY_NET["segnet"]["stages"])
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.zeros(1, 3, 48, 48))
