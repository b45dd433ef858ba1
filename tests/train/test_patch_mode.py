"""Patch mode through the training module on every backbone family: windows train, whole images are predicted
by a sliding window of the input side (MONAI), one window equals one forward pass, images smaller than a
window are padded; patch-mode settings that cannot run are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from salt.data.datamodule import VesselDataModule
from salt.errors import ConfigError
from salt.model.normalize import MeanStdNormalize, MinMaxNormalize
from salt.model.sliding import ImageRangeScale
from salt.train.checks import check_train_config
from salt.train.module import SegmentationModule
from tests.data.test_patches import write_set
from tests.train.conftest import run_script, tiny_overrides
from tests.train.reference_metrics import predicted_masks, reference_metrics, split_cases

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SIZE = 64


def config(root: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "patch=native",
                "dataset=synthetic",
                f"dataset.root={root}",
                f"dataset.img_size={SIZE}",
                "patch.windows_per_epoch=4",
                "patch.sw_batch_size=4",
                "data.batch_size=2",
                *overrides,
            ],
        )
        cfg.paths.output_dir = str(root.parent / "out")
        return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 150 x 110 px images: larger than a 64 px window, not a multiple of it, not square
    return write_set(tmp_path_factory.mktemp("patches") / "set", size=(150, 110), n=3)


def datamodule(cfg: dict) -> VesselDataModule:
    data = VesselDataModule(cfg["dataset"], batch_size=2, prompt=cfg["prompt"], patch=cfg["patch"])
    data.setup("fit")
    data.setup("test")
    return data


MODELS = {
    "sam_tiny": ["model=sam_tiny"],
    "sam_vit_b": ["model=sam_vit_b", "model.checkpoint=null", "peft=lora"],
    "sam2_hiera_t": ["model=sam2_hiera_t", "model.checkpoint=null", "peft=lora"],
    "unet": [
        "model=unet",
        "peft=none",
        "model.net.channels=[4,8,16]",
        "model.net.strides=[2,2]",
        "model.net.num_res_units=1",
    ],
}


@pytest.mark.parametrize("model", list(MODELS))
def test_windows_train_and_whole_images_are_predicted(model: str, data_root: Path) -> None:
    cfg = config(data_root, *MODELS[model])
    data = datamodule(cfg)
    module = SegmentationModule(cfg)
    batch = next(iter(data.train_dataloader()))
    assert tuple(batch["image"].shape) == (2, 3, SIZE, SIZE)
    loss = module.loss(module.logits(batch), batch)
    loss.backward()
    trained = [p for p in module.model.parameters() if p.requires_grad]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    module.eval()
    whole = next(iter(data.test_dataloader()))
    assert tuple(whole["image"].shape) == (1, 3, 150, 110)
    with torch.no_grad():
        logits = module.whole_image_logits(whole)
    assert tuple(logits.shape) == (1, 1, 150, 110)
    assert torch.isfinite(logits).all()


def test_an_image_of_one_window_gives_the_single_forward_pass(tmp_path: Path) -> None:
    cfg = config(write_set(tmp_path / "set", size=(SIZE, SIZE)), "model=sam_tiny")
    module = SegmentationModule(cfg).eval()
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        single = module.model(images)
        for blend in ("gaussian", "constant"):
            module.patch = {**cfg["patch"], "blend": blend}
            windowed = module.whole_image_logits({"image": images})
            torch.testing.assert_close(windowed, single, rtol=1e-5, atol=1e-5)


def test_an_image_smaller_than_a_window_is_padded_and_cropped_back(tmp_path: Path) -> None:
    cfg = config(write_set(tmp_path / "set", size=(40, 52)), "model=sam_tiny")
    module = SegmentationModule(cfg).eval()
    image = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(0)) * 255
    padded = torch.zeros(1, 3, SIZE, SIZE)
    padded[..., 12:52, 6:58] = (
        image  # MONAI pads symmetrically: (64 - 40) / 2 = 12 rows, (64 - 52) / 2 = 6 cols
    )
    with torch.no_grad():
        expected = module.model(padded)[..., 12:52, 6:58]
        windowed = module.whole_image_logits({"image": image})
    assert tuple(windowed.shape) == (1, 1, 40, 52)
    torch.testing.assert_close(windowed, expected, rtol=1e-5, atol=1e-5)


class FirstChannel(torch.nn.Module):
    """Logits = the input's first channel, for inputs of the window's side only (as the networks)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert tuple(images.shape[-2:]) == (SIZE, SIZE)
        return images[:, :1]


def test_a_sliding_window_covers_every_pixel_with_blended_windows(tmp_path: Path) -> None:
    # A network whose logits are its input's first channel: blending any windows of it gives the image back.
    cfg = config(write_set(tmp_path / "set"), "model=sam_tiny", "patch.overlap=0.25")
    module = SegmentationModule(cfg)
    module.model = FirstChannel()
    image = torch.rand(1, 3, 150, 110, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(module.whole_image_logits({"image": image}), image[:, :1])


class Ramp(torch.nn.Module):
    """Logits = the input's first channel times ``row + col`` (each in [0, 1] across the window): a network that
    is not flip-equivariant, so each test-time flip changes its output in a known way."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        side = torch.linspace(0, 1, images.shape[-1])
        return images[:, :1] * (side[:, None] + side[None, :])


@pytest.mark.parametrize(
    ("tta", "weight"),
    [
        ("none", lambda r, c: r + c),
        ("hflip", lambda r, c: r + 0.5),  # c and its left-right mirror 1 - c average to 1/2
        ("flips", lambda r, c: torch.ones_like(r + c)),  # both averaged: 1/2 + 1/2
    ],
)
def test_test_time_flips_average_the_flipped_back_logits(tmp_path: Path, tta: str, weight) -> None:
    cfg = config(write_set(tmp_path / "set", size=(SIZE, SIZE)), "model=sam_tiny", f"patch.tta={tta}")
    module = SegmentationModule(cfg)
    module.model = Ramp()
    image = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    side = torch.linspace(0, 1, SIZE)
    expected = image[:, :1] * weight(side[:, None], side[None, :])
    torch.testing.assert_close(module.whole_image_logits({"image": image}), expected)
    # validation ranks checkpoints without the flips
    plain = image[:, :1] * (side[:, None] + side[None, :])
    torch.testing.assert_close(module.whole_image_logits({"image": image}, tta=False), plain)


def test_test_time_flips_are_undone_over_many_windows(tmp_path: Path) -> None:
    # A network that looks at each pixel alone gives the image back through any flips, if each is undone.
    cfg = config(write_set(tmp_path / "set"), "model=sam_tiny", "patch.overlap=0.25", "patch.tta=flips")
    module = SegmentationModule(cfg)
    module.model = FirstChannel()
    image = torch.rand(1, 3, 150, 110, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(module.whole_image_logits({"image": image}), image[:, :1])


def test_image_normalisation_replaces_the_min_max_normaliser_only(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set")
    # A mean/std backbone normalises by constants, the same for a window and its image: it keeps its normaliser
    # (the data pipeline's whole-image stretch is all `image` means there), so a recipe that sets `image` can
    # run a SAM or U-Net row too.
    sam = SegmentationModule(config(root, "model=sam_tiny", "patch.normalize=image"))
    kinds = {type(m) for m in sam.model.modules()}
    assert MeanStdNormalize in kinds and ImageRangeScale not in kinds and MinMaxNormalize not in kinds


@pytest.mark.slow
def test_image_normalisation_on_litemedsam(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set")
    module = SegmentationModule(
        config(root, "model=medsam_lite", "dataset.img_size=256", "patch.normalize=image")
    )
    kinds = {type(m) for m in module.model.modules()}
    assert ImageRangeScale in kinds and MinMaxNormalize not in kinds


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["prompt=box"], r"prompt=box: patch mode takes class prompts only"),
        (["prompt=class+point"], r"prompt=class\+point: patch mode takes class prompts only"),
        (["patch.overlap=1"], r"patch\.overlap=1 must be in \[0, 1\)"),
        (["patch.tta=mirror"], r"patch\.tta='mirror' must be one of none, hflip, flips"),
    ],
)
def test_patch_settings_that_cannot_run_are_refused(
    overrides: list[str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_train_config(config(tmp_path / "set", "model=sam_tiny", *overrides))


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny patch-mode run: 64 px windows of 96 px synthetic images, so every image takes 4+ windows."""
    base = tmp_path_factory.mktemp("patch_run")
    overrides = tiny_overrides(
        base / "synthetic",
        base / "run",
        "patch=native",
        "patch.windows_per_epoch=8",
        "trainer.check_val_every_n_epoch=2",  # as the DRIVE recipe: no validation after the first epoch
        "patch.tta=hflip",  # test, eval.py and predict.py run each image as is and mirrored
        "patch.clahe=2.0",  # ... each image equalised first, at training, test, eval.py and predict.py alike
    )
    proc = run_script("train.py", *overrides)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (base / "console.txt").write_text(proc.stdout + proc.stderr)
    return base / "run"


@pytest.mark.slow
def test_epochs_without_validation_keep_the_best_checkpoint_without_a_warning(patch_run: Path) -> None:
    console = (patch_run.parent / "console.txt").read_text()
    assert "could not find the monitored key" not in console
    history = (patch_run / "history.csv").read_text().splitlines()
    assert len(history) == 3 and history[1].endswith(",,,") and not history[2].endswith(",,,")
    assert (patch_run / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.slow
def test_eval_and_predict_of_a_patch_run_use_its_sliding_window(patch_run: Path, tmp_path: Path) -> None:
    trained = json.loads((patch_run / "metrics.json").read_text())
    assert trained["config"]["patch"]["overlap"] == 0.5 and trained["config"]["patch"]["tta"] == "hflip"
    assert trained["config"]["patch"]["clahe"] == 2.0
    proc = run_script(
        "eval.py", f"ckpt={patch_run}", "split=test", "eval.masks=true", f"hydra.run.dir={tmp_path / 'eval'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["mean_original"]["dice"] == pytest.approx(trained["mean_original"]["dice"], abs=1e-6)
    # predict.py's masks, scored here independently, give eval's original-resolution Dice per case
    data = Path(trained["config"]["dataset"]["root"])
    cases = split_cases(data)
    (tmp_path / "predict").mkdir()
    masks = predicted_masks(patch_run, [image for _, image, _, _ in cases], tmp_path / "predict")
    rows = {
        row["name"]: float(row["dice"])
        for row in evaluated["per_case"]
        if row["resolution"] == "original" and row["class"] == 0
    }
    for stem, _, gt, fov in cases:
        assert masks[stem].shape == gt.shape
        assert reference_metrics(masks[stem], gt, fov)[0] == pytest.approx(rows[stem], abs=2e-3)
        # eval.masks=true wrote the very masks it scored, at the original size
        written = np.asarray(Image.open(tmp_path / "eval" / "masks" / f"{stem}.png")) > 0
        assert reference_metrics(written, gt, fov)[0] == pytest.approx(rows[stem], abs=1e-6)


@pytest.mark.slow
def test_export_of_a_patch_run_records_its_sliding_window(patch_run: Path, tmp_path: Path) -> None:
    output = tmp_path / "model.onnx"
    proc = run_script("export.py", f"ckpt={patch_run}", f"output={output}", f"hydra.run.dir={tmp_path / 'x'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sidecar = json.loads(output.with_name("model.onnx.json").read_text())
    window = sidecar["sliding_window"]
    assert (window["window"], window["scale"], window["overlap"], window["blend"]) == (
        64,
        1.0,
        0.5,
        "gaussian",
    )
    assert sidecar["inputs"][0]["shape"] == ["batch", 3, 64, 64]
    assert window["tta"] == "hflip"
    assert "equalised by OpenCV's CLAHE, clip limit 2.0, 8 x 8 tiles" in sidecar["preprocessing"]["intensity"]
    assert "on 2 versions of the image (as is, left-right)" in window["tta_rule"]


@pytest.mark.slow
def test_eval_tta_replaces_the_runs_flips_and_is_recorded(patch_run: Path, tmp_path: Path) -> None:
    trained = json.loads((patch_run / "metrics.json").read_text())
    proc = run_script(
        "eval.py", f"ckpt={patch_run}", "split=test", "eval.tta=none", f"hydra.run.dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    assert evaluated["config"]["patch"]["tta"] == "none"
    assert "tta" not in evaluated["config"]["eval"]
    # one pass instead of the mean of two gives other probabilities
    assert evaluated["mean_original"]["dice"] != trained["mean_original"]["dice"]
