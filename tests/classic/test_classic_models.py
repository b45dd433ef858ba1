"""Every registered classic network at 64 px: output shapes, gradients, input normalisation, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from salt.classic import CLASSIC_MODELS, ClassicSegmenter, SegNet, build_classic
from salt.model.normalize import SAM_PIXEL_MEAN as PIXEL_MEAN
from salt.model.normalize import SAM_PIXEL_STD as PIXEL_STD

SIZE = 64
# The same classes as the paper-sized configs at toy widths, so every network runs in well under a second.
TINY_KWARGS: dict[str, dict] = {
    "unet": {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1},
    "unetr": {"hidden_size": 32, "mlp_dim": 64, "num_heads": 2, "feature_size": 4},
    "regunet": {"num_channel_initial": 4, "depth": 3},
    "deeplabv3plus": {"encoder_name": "resnet18", "decoder_channels": 16},
    "segformer": {"encoder_name": "mit_b0", "decoder_segmentation_channels": 16},
    "segnet": {"stages": [[4, 1], [8, 1], [8, 1], [8, 1], [8, 1]]},
}
NAMES = sorted(CLASSIC_MODELS)


def test_every_registered_model_has_tiny_settings() -> None:
    assert set(TINY_KWARGS) == set(CLASSIC_MODELS)


@pytest.mark.parametrize("num_classes", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_shape_and_every_parameter_gets_a_gradient(name: str, num_classes: int) -> None:
    torch.manual_seed(0)
    model = build_classic(name, num_classes=num_classes, img_size=SIZE, **TINY_KWARGS[name])
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
    model = build_classic("unet", num_classes=1, img_size=SIZE, **TINY_KWARGS["unet"])
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"valid:.*deeplabv3plus.*segnet"):
        build_classic("resnet", num_classes=1, img_size=SIZE)


@pytest.mark.parametrize("name", NAMES)
def test_img_size_off_the_downsampling_grid_names_the_key(name: str) -> None:
    # 66 = 2 * 33 is a multiple of none of the networks' downsampling factors (4 to 32 here).
    with pytest.raises(ValueError, match=r"model\.img_size=66"):
        build_classic(name, num_classes=1, img_size=66, **TINY_KWARGS[name])


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("unet", {**TINY_KWARGS["unet"], "chanels": [4]}, r"unsupported key\(s\) \['chanels'\]"),
        ("deeplabv3plus", {"encoder_weights": "imagenet"}, r"unsupported key\(s\) \['encoder_weights'\]"),
        ("segformer", {"encoder_nmae": "mit_b0"}, r"unsupported key\(s\) \['encoder_nmae'\]"),
        ("unetr", {"out_channels": 3}, r"unsupported key\(s\) \['out_channels'\]"),
        ("regunet", {"depth": 3}, r"missing key\(s\) \['num_channel_initial'\]"),
    ],
)
def test_bad_kwargs_name_model_kwargs(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"model.kwargs for {name}: {message}"):
        build_classic(name, num_classes=1, img_size=SIZE, **kwargs)


def test_segnet_rejects_sizes_off_its_grid() -> None:
    net = SegNet(in_channels=3, num_classes=1, stages=TINY_KWARGS["segnet"]["stages"])
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.zeros(1, 3, 48, 48))
