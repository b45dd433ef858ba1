"""SAM 2.1 from the installed ``sam2`` package: its own model's image path as reference on the same random
weights, exact loading of the official ``{"model": state_dict}`` format with the memory modules dropped,
the input contract and the trainable groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import initialize_config_module
from torch import nn

from salt.model import BackboneError, CheckpointError, build_sam, group_parameter_names
from salt.model.backbones.sam2 import CONFIGS, import_sam2

pytestmark = pytest.mark.slow

SIZE = 256
BOX = (40.0, 60.0, 180.0, 200.0)  # x0, y0, x1, y1 in input pixels
# The modules of the package's SAM2Base that only video (memory) mode uses.
MEMORY_MODULES = {
    "memory_attention",
    "memory_encoder",
    "mask_downsample",
    "obj_ptr_proj",
    "obj_ptr_tpos_proj",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "no_obj_embed_spatial",
}


def package_model(variant: str, img_size: int, seed: int = 0) -> nn.Module:
    """The package's own ``build_sam2`` (random weights), without its eval-time multimask fallback."""
    import_sam2()  # before the package's own Hydra initialisation, which needs a clean global state
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    with initialize_config_module("sam2", version_base="1.2"):
        return build_sam2(
            f"configs/sam2.1/{CONFIGS[variant]}",
            device="cpu",
            apply_postprocessing=False,
            hydra_overrides_extra=[f"++model.image_size={img_size}"],
        )


def save_official(model: nn.Module, path: Path) -> Path:
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def reference() -> nn.Module:
    return package_model("hiera_t", SIZE)


@pytest.fixture(scope="module")
def weights(reference: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_official(reference, tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt")


@pytest.fixture(scope="module")
def ours(weights: Path) -> nn.Module:
    return build_sam("hiera_t", checkpoint=str(weights), img_size=SIZE).eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """An RGB uint8 image ``(SIZE, SIZE, 3)`` with a bright disc on a gradient."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    disc = (yy - 130) ** 2 + (xx - 110) ** 2 < 60**2
    rgb = np.stack([disc * 180 + xx * 0.2, disc * 120 + yy * 0.3, 255 - xx * 0.5], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def as_input(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()  # (1, 3, S, S) in [0, 255]


def reference_box_prediction(model: nn.Module, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The package's image path (SAM2ImagePredictor's steps at any size): embedding and single-mask logits."""
    from sam2.utils.transforms import SAM2Transforms

    size = model.image_size
    x = SAM2Transforms(resolution=size, mask_threshold=0.0)(image)[None]  # (1, 3, S, S)
    backbone_out = model.forward_image(x)
    _, feats, _, sizes = model._prepare_backbone_features(backbone_out)
    feats[-1] = feats[-1] + model.no_mem_embed
    maps = [f.permute(1, 2, 0).reshape(1, -1, *s) for f, s in zip(feats, sizes)]  # strides 4, 8, 16
    corners = torch.tensor(BOX).reshape(1, 2, 2)
    sparse, dense = model.sam_prompt_encoder(
        points=(corners, torch.tensor([[2, 3]], dtype=torch.int)), boxes=None, masks=None
    )
    low, *_ = model.sam_mask_decoder(
        image_embeddings=maps[2],
        image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=False,
        repeat_image=False,
        high_res_features=maps[:2],
    )
    return maps[2], F.interpolate(low, (size, size), mode="bilinear", align_corners=False)


def box_prompt(model: nn.Module) -> dict:
    model.set_prompt_mode("box")
    return {"box": torch.tensor([[BOX]]), "box_valid": torch.tensor([[True]])}


def test_embedding_and_box_mask_equal_the_packages_image_path(
    ours: nn.Module, reference: nn.Module, image: np.ndarray
) -> None:
    with torch.no_grad():
        expected_emb, expected_mask = reference_box_prediction(reference.eval(), image)
        embedding, maps = ours.encode(as_input(image))
        logits = ours(as_input(image), box_prompt(ours))
    assert embedding.shape == (1, 256, SIZE // 16, SIZE // 16)
    assert [m.shape[1:] for m in maps] == [(32, SIZE // 4, SIZE // 4), (64, SIZE // 8, SIZE // 8)]
    assert (embedding - expected_emb).abs().max().item() <= 1e-4
    assert logits.shape == expected_mask.shape == (1, 1, SIZE, SIZE)
    assert (logits - expected_mask).abs().max().item() <= 1e-4
    assert expected_mask.std() > 0  # a flat map would match anything


def test_equals_sam2_image_predictor_at_1024(tmp_path: Path) -> None:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    reference = package_model("hiera_t", 1024).eval()
    model = build_sam("hiera_t", checkpoint=str(save_official(reference, tmp_path / "t.pt"))).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    box = np.array([200.0, 300.0, 700.0, 800.0])
    predictor = SAM2ImagePredictor(reference)
    predictor.set_image(image)
    masks, _, _ = predictor.predict(box=box, multimask_output=False, return_logits=True)
    model.set_prompt_mode("box")
    prompts = {"box": torch.from_numpy(box).float()[None, None], "box_valid": torch.tensor([[True]])}
    with torch.no_grad():
        embedding, _ = model.encode(as_input(image))
        logits = model(as_input(image), prompts)
    assert (embedding - predictor.get_image_embedding()).abs().max().item() <= 1e-4
    assert (logits[0] - torch.from_numpy(masks)).abs().max().item() <= 1e-4


def test_every_kept_tensor_is_loaded_and_the_memory_modules_are_dropped(
    ours: nn.Module, reference: nn.Module
) -> None:
    saved = reference.state_dict()
    memory = {k for k in saved if k.split(".")[0] in MEMORY_MODULES}
    assert ours.memory_keys == memory and len(memory) > 100
    mine = ours.state_dict()
    renamed = {
        k.replace("sam_prompt_encoder.", "prompt_encoder.").replace("sam_mask_decoder.", "mask_decoder."): v
        for k, v in saved.items()
        if k not in memory
    }
    assert set(mine) - set(renamed) == {"class_tokens"}
    assert set(renamed) <= set(mine)
    for key, value in renamed.items():
        assert torch.equal(mine[key], value), key


def test_a_1024_file_loads_at_a_smaller_size(tmp_path: Path, image: np.ndarray) -> None:
    full = save_official(package_model("hiera_t", 1024, seed=1), tmp_path / "t1024.pt")
    small = build_sam("hiera_t", checkpoint=str(full), img_size=SIZE).eval()
    saved = torch.load(full, weights_only=True)["model"]
    key = "image_encoder.trunk.pos_embed"  # Hiera interpolates it to the token grid in every forward
    assert torch.equal(small.state_dict()[key], saved[key])
    with torch.no_grad():
        assert torch.isfinite(small(as_input(image))).all()


def test_a_file_of_another_size_is_a_one_line_error(tmp_path: Path) -> None:
    path = save_official(package_model("hiera_s", SIZE), tmp_path / "sam2.1_hiera_small.pt")
    with pytest.raises(CheckpointError) as err:
        build_sam("hiera_t", checkpoint=str(path), img_size=SIZE)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "hiera_s checkpoint" in message


def test_a_sam_v1_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "sam_tiny.pth"
    torch.save(
        {k: v for k, v in build_sam("tiny", img_size=64).state_dict().items() if k != "class_tokens"}, path
    )
    with pytest.raises(CheckpointError) as err:
        build_sam("hiera_t", checkpoint=str(path), img_size=SIZE)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: not a SAM2 checkpoint (a SAM ViT")


def test_a_file_without_the_memory_modules_is_refused(reference: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "image_only.pt"
    kept = {k: v for k, v in reference.state_dict().items() if not k.startswith("memory_attention.")}
    torch.save({"model": kept}, path)
    with pytest.raises(
        CheckpointError, match=r"memory-module keys do not match .*missing \['memory_attention"
    ):
        build_sam("hiera_t", checkpoint=str(path), img_size=SIZE)


def test_input_sizes() -> None:
    with pytest.raises(BackboneError, match="img_size=240: SAM2 takes a positive multiple of 32 px"):
        build_sam("hiera_t", img_size=240)
    model = build_sam("hiera_t", img_size=224, num_classes=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 224, 224) * 255).shape == (1, 2, 224, 224)


def test_trainable_groups(ours: nn.Module) -> None:
    norm = group_parameter_names(ours, "norm")
    modules = dict(ours.named_modules())
    assert {type(modules[n.rsplit(".", 1)[0]]) for n in norm} == {nn.LayerNorm}
    assert any(n.startswith("image_encoder.trunk.blocks.11.norm2") for n in norm)
    assert any(n.startswith("mask_decoder.transformer.") for n in norm)
    assert group_parameter_names(ours, "pos_embed") == {
        "image_encoder.trunk.pos_embed",
        "image_encoder.trunk.pos_embed_window",
    }
    assert "no_mem_embed" in group_parameter_names(ours, "encoder")
    assert "mask_decoder.conv_s0.weight" in group_parameter_names(ours, "decoder")
