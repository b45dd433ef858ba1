"""Official-format checkpoints: exact loading, resizing, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import sam_model_registry

from salt.model import CheckpointError, build_sam


@pytest.fixture(scope="module")
def official_vit_b(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A state dict saved from segment_anything's own ViT-B builder, like ``sam_vit_b_01ec64.pth``."""
    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"]().eval()
    # segment_anything starts its position tables at zero, which every resize maps to zero: give them values,
    # as trained weights have, so that the resizing is seen.
    with torch.no_grad():
        for name, param in sam.image_encoder.named_parameters():
            if name == "pos_embed" or name.endswith(("rel_pos_h", "rel_pos_w")):
                param.normal_(std=0.02)
    path = tmp_path_factory.mktemp("ckpt") / "sam_vit_b_01ec64.pth"
    torch.save(sam.state_dict(), path)
    return path, sam


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model = build_sam("tiny", img_size=64)
    state = {k: v for k, v in model.state_dict().items() if k != "class_tokens"}
    path = tmp_path_factory.mktemp("tiny") / "tiny.pth"
    torch.save(state, path)
    return path


@pytest.mark.slow
def test_vit_b_loads_exactly_and_matches_official_embeddings(official_vit_b) -> None:
    path, sam = official_vit_b
    model = build_sam("vit_b", str(path), img_size=1024).eval()
    ours = model.state_dict()
    for key, value in sam.state_dict().items():
        assert torch.equal(ours[key], value), key
    images = torch.rand(1, 3, 1024, 1024) * 255
    with torch.no_grad():
        expected = sam.image_encoder((images - sam.pixel_mean) / sam.pixel_std)
        got = model.encode(images)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution weights ``(N, 4)`` of the samples at offsets -1, 0, 1, 2 from ``floor(x)``."""
    d = np.stack([t + 1, t, 1 - t, 2 - t], axis=-1)  # distances to the four samples
    near = ((a + 2) * d - (a + 3)) * d * d + 1  # |d| <= 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # 1 < |d| < 2
    return np.where(d <= 1, near, far)


def _bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` bicubic resampling with pixel-centre alignment and edge samples repeated."""
    x = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    base = np.floor(x).astype(int)
    weights = _cubic_weights(x - base)
    out = np.zeros((n_out, n_in))
    for k in range(4):
        np.add.at(out, (np.arange(n_out), np.clip(base - 1 + k, 0, n_in - 1)), weights[:, k])
    return out


def _linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear resampling with pixel-centre alignment, clamped at both ends."""
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    return np.stack([np.interp(x, np.arange(n_in), np.eye(n_in)[i]) for i in range(n_in)], axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("img_size", [512, 256])
def test_vit_b_loads_at_smaller_sizes(official_vit_b, img_size: int) -> None:
    path, sam = official_vit_b
    model = build_sam("vit_b", str(path), img_size=img_size).eval()
    grid = img_size // 16
    assert model.image_encoder.pos_embed.shape == (1, grid, grid, 768)
    # The position embedding is resized bicubically and the global blocks' relative tables linearly
    # (paper.md §2), checked against the resampling written out as matrices.
    resize = _bicubic_matrix(64, grid)  # (grid, 64)
    pos = sam.image_encoder.pos_embed[0].detach().double().numpy()  # (64, 64, 768)
    expected = np.einsum("ph,qw,hwc->pqc", resize, resize, pos)
    np.testing.assert_allclose(
        model.image_encoder.pos_embed[0].detach().double().numpy(), expected, atol=1e-5
    )
    for i, block in enumerate(model.image_encoder.blocks):
        size = grid if i in (2, 5, 8, 11) else 14
        official = sam.image_encoder.blocks[i].attn
        assert block.attn.rel_pos_h.shape == (2 * size - 1, 64)
        for name in ("rel_pos_h", "rel_pos_w"):
            table, original = getattr(block.attn, name), getattr(official, name)
            if size == 14:
                assert torch.equal(table, original)
            else:
                want = _linear_matrix(127, 2 * size - 1) @ original.detach().double().numpy()  # (2 S - 1, 64)
                np.testing.assert_allclose(table.detach().double().numpy(), want, atol=1e-5)
    assert model.prompt_encoder.image_embedding_size == (grid, grid)
    with torch.no_grad():
        logits = model(torch.rand(1, 3, img_size, img_size) * 255)
    assert logits.shape == (1, 1, img_size, img_size)
    assert torch.isfinite(logits).all()


def test_tiny_roundtrip_and_resize(tiny_ckpt: Path) -> None:
    model = build_sam("tiny", str(tiny_ckpt), img_size=64)
    saved = torch.load(tiny_ckpt)
    assert torch.equal(
        model.image_encoder.patch_embed.proj.weight, saved["image_encoder.patch_embed.proj.weight"]
    )
    resized = build_sam("tiny", str(tiny_ckpt), img_size=128)
    assert resized.image_encoder.pos_embed.shape == (1, 8, 8, 32)
    # A 1:1 resize is the identity: the same file at its own size gives back its own embedding.
    torch.testing.assert_close(model.image_encoder.pos_embed, saved["image_encoder.pos_embed"])


def _one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(CheckpointError) as err:
        build_sam("tiny", str(path))
    assert "not found" in _one_line(err, path)
    assert "checkpoints/README.md" in str(err.value)


def test_truncated_file(tiny_ckpt: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.pth"
    path.write_bytes(tiny_ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as err:
        build_sam("tiny", str(path), img_size=64)
    assert "not a readable PyTorch checkpoint" in _one_line(err, path)


def test_empty_and_non_checkpoint_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError) as err:
        build_sam("tiny", str(empty))
    assert "empty" in _one_line(err, empty)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(CheckpointError) as err:
        build_sam("tiny", str(text))
    _one_line(err, text)
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError) as err:
        build_sam("tiny", str(other))
    assert "not a SAM checkpoint" in _one_line(err, other)


def test_wrong_variant(tiny_ckpt: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        build_sam("vit_b", str(tiny_ckpt), img_size=64)
    assert "tiny checkpoint" in _one_line(err, tiny_ckpt)


def test_missing_keys_are_reported(tiny_ckpt: Path, tmp_path: Path) -> None:
    state = torch.load(tiny_ckpt)
    del state["mask_decoder.iou_token.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_sam("tiny", str(path), img_size=64)
    assert "mask_decoder.iou_token.weight" in _one_line(err, path)


def test_unexpected_keys_are_reported(tiny_ckpt: Path, tmp_path: Path) -> None:
    # A file with every key the model needs plus one it does not know (another head, a newer release's
    # extra buffer) is another network: refused, naming the stray key.
    state = torch.load(tiny_ckpt)
    state["mask_decoder.extra_head.weight"] = torch.zeros(4, 4)
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_sam("tiny", str(path), img_size=64)
    assert "unexpected ['mask_decoder.extra_head.weight']" in _one_line(err, path)


def test_wrapped_state_dict_is_accepted(tiny_ckpt: Path, tmp_path: Path) -> None:
    path = tmp_path / "wrapped.pth"
    torch.save({"model": torch.load(tiny_ckpt)}, path)
    build_sam("tiny", str(path), img_size=64)
