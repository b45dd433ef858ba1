"""The tiny variant: shapes, gradients, class prompts, trainable policy, variant errors."""

from __future__ import annotations

import pytest
import torch

from salt.model import VARIANTS, build_sam, parameter_summary, set_trainable
from salt.model.trainable import group_parameter_names


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_sam("tiny", img_size=64, num_classes=1)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_forward_backward_shapes(num_classes: int) -> None:
    model = build_sam("tiny", img_size=64, num_classes=num_classes)
    images = torch.rand(2, 3, 64, 64) * 255
    logits = model(images)
    assert logits.shape == (2, num_classes, 64, 64)
    assert model.class_tokens.shape == (num_classes, model.prompt_encoder.embed_dim)
    logits.square().mean().backward()
    assert model.class_tokens.grad is not None and model.class_tokens.grad.abs().sum() > 0
    assert model.image_encoder.patch_embed.proj.weight.grad is not None


def test_classes_are_independent_channels() -> None:
    torch.manual_seed(0)
    model = build_sam("tiny", img_size=64, num_classes=3).eval()
    images = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        base = model(images)
        model.class_tokens[1] += 1.0
        changed = model(images)
    assert torch.equal(base[:, 0], changed[:, 0]) and torch.equal(base[:, 2], changed[:, 2])
    assert not torch.allclose(base[:, 1], changed[:, 1])


def test_batch_items_do_not_interact(tiny: torch.nn.Module) -> None:
    tiny.eval()
    images = torch.rand(3, 3, 64, 64) * 255
    with torch.no_grad():
        together = tiny(images)
        alone = torch.cat([tiny(images[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_wrong_input_size_is_a_clear_error(tiny: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        tiny(torch.zeros(1, 3, 32, 32))


def test_unknown_variant_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        build_sam("vit_x")
    for name in VARIANTS:
        assert name in str(err.value)


@pytest.mark.parametrize("img_size", [0, 100])
def test_img_size_must_be_multiple_of_16(img_size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        build_sam("tiny", img_size=img_size)


def test_paper_policy_sets_exactly_the_intended_parameters(tiny: torch.nn.Module) -> None:
    names = set_trainable(tiny, ["norm", "pos_embed", "prompt"])
    trainable = {n for n, p in tiny.named_parameters() if p.requires_grad}
    assert trainable == names
    expected = {"image_encoder.pos_embed", "class_tokens"}
    for i in range(len(tiny.image_encoder.blocks)):
        for norm in ("norm1", "norm2"):
            expected |= {f"image_encoder.blocks.{i}.{norm}.weight", f"image_encoder.blocks.{i}.{norm}.bias"}
    expected |= {f"image_encoder.neck.{i}.{p}" for i in (1, 3) for p in ("weight", "bias")}
    for i in range(2):
        expected |= {
            f"mask_decoder.transformer.layers.{i}.norm{j}.{p}"
            for j in (1, 2, 3, 4)
            for p in ("weight", "bias")
        }
    expected |= {f"mask_decoder.transformer.norm_final_attn.{p}" for p in ("weight", "bias")}
    assert trainable == expected
    assert not any(n.startswith("mask_decoder.output_upscaling") for n in trainable)


def test_decoder_and_encoder_groups(tiny: torch.nn.Module) -> None:
    set_trainable(tiny, ["decoder"])
    trainable = {n for n, p in tiny.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in tiny.named_parameters() if n.startswith("mask_decoder.")}
    set_trainable(tiny, ["encoder"])
    trainable = {n for n, p in tiny.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in tiny.named_parameters() if n.startswith("image_encoder.")}
    set_trainable(tiny, [])
    assert not any(p.requires_grad for p in tiny.parameters())
    with pytest.raises(ValueError, match="valid groups"):
        group_parameter_names(tiny, "bias")


def test_parameter_summary_counts(tiny: torch.nn.Module) -> None:
    set_trainable(tiny, ["prompt", "pos_embed"])
    summary = parameter_summary(tiny, paper_denominator=1e6)
    expected = tiny.class_tokens.numel() + tiny.image_encoder.pos_embed.numel()
    assert summary["trainable"] == expected
    assert summary["total"] == sum(p.numel() for p in tiny.parameters())
    assert summary["groups"]["prompt"] == {"trainable": tiny.class_tokens.numel(), "total": 32}
    assert summary["trainable_percent_paper"] == pytest.approx(100 * expected / 1e6)
