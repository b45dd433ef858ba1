"""What a user gives eval.py and predict.py: another data set's image size, the run's own model and PEFT
groups, output paths that cannot work, prompts files that leave images out, and volumes in and out.

The runs here are the tiny SAM as built, saved as an adapter file with its configuration (no training): eval.py
and predict.py load it as they load a trained run's ``adapter.safetensors``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK
from omegaconf import OmegaConf
from PIL import Image

from salt.errors import ConfigError
from salt.experiments import compose_run, hydra_configs
from salt.inference.predict import predict
from salt.peft import save_adapter
from salt.train.module import SegmentationModule
from tests.train.conftest import run_script


def _untrained_run(folder: Path, *overrides: str) -> Path:
    """``folder`` holding ``adapter.safetensors`` and its sidecar for the 64 px tiny SAM as built."""
    with hydra_configs():
        cfg = compose_run("reduced", [f"paths.data_dir={folder / 'data'}", *overrides], str(folder))
        del cfg["hydra"]
        plain = OmegaConf.to_container(cfg, resolve=True)
    module = SegmentationModule(plain)
    save_adapter(module.model, folder / "adapter.safetensors", metadata={"config": plain})
    return folder


@pytest.fixture(scope="module")
def class_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _untrained_run(tmp_path_factory.mktemp("class_run"))


@pytest.fixture(scope="module")
def box_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _untrained_run(tmp_path_factory.mktemp("box_run"), "prompt=box")


def _images(folder: Path, names: list[str], shape: tuple[int, int] = (50, 70)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _predict_cfg(run: Path, source: Path, out: Path, **extra: object) -> OmegaConf:
    return OmegaConf.create(
        {
            "ckpt": str(run),
            "input": str(source),
            "output": str(out),
            "base_checkpoint": None,
            "device": "cpu",
            "threshold": 0.5,
            "prompts": None,
            "overlays": False,
            "precision": "32-true",
            "data": {"batch_size": 4},
            **extra,
        }
    )


def _one_error_line(proc) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output[-3000:]
    (line,) = [line for line in output.splitlines() if "error:" in line]
    return line


# ------------------------------------------------------------------ eval.py: another data set's image size
def test_eval_resizes_another_data_set_to_the_networks_input_size(class_run: Path, tmp_path: Path) -> None:
    # configs/dataset/synthetic.yaml trains at 224 px; the run's network takes 64 px.
    out = tmp_path / "eval"
    other = ["dataset=synthetic", f"dataset.root={tmp_path / 'other'}", "dataset.synthetic.n=6"]
    proc = run_script(
        "eval.py",
        f"ckpt={class_run}",
        *other,
        "dataset.synthetic.size=80",
        "split=train",
        f"hydra.run.dir={out}",
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["dataset"]["img_size"] == 64
    assert metrics["config"]["dataset"]["root"] == str(tmp_path / "other")
    assert metrics["mean"]["n_cases"] == 4  # 6 images: 1 test, 1 validation, 4 training
    assert metrics["mean_original"]["n_cases"] == 4  # scored on the 80 px originals too
    assert "images resized to 64 x 64" in output


def test_eval_refuses_an_image_size_the_network_cannot_take(class_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = run_script(
        "eval.py",
        f"ckpt={class_run}",
        "dataset=synthetic",
        f"dataset.root={tmp_path / 'other'}",
        "dataset.img_size=128",
        f"hydra.run.dir={out}",
    )
    line = _one_error_line(proc)
    assert "dataset.img_size=128 contradicts ckpt=" in line and "takes 64 x 64 images" in line
    assert not out.exists() and not (tmp_path / "other").exists()


# ------------------------------------------------------------------ eval.py model=/peft= as given to train.py
def test_eval_takes_the_runs_own_model_and_peft_groups(class_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = run_script("eval.py", f"ckpt={class_run}", "model=sam_tiny", "peft=salt", f"hydra.run.dir={out}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert json.loads((out / "metrics.json").read_text())["model"] == "tiny"


def test_eval_refuses_another_model_naming_the_checkpoints(class_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = run_script("eval.py", f"ckpt={class_run}", "model=sam_vit_b", f"hydra.run.dir={out}")
    line = _one_error_line(proc)
    assert "model.variant='vit_b' contradicts ckpt=" in line and "trained with model.variant='tiny'" in line
    assert not out.exists()


# ------------------------------------------------------------------ predict.py output=
@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("a_file", "is a file; give a folder"),
        ("/dev/null/x", "the folder /dev/null/x cannot be created (/dev/null is not a folder)"),
        ("mask.png", "names an image file (.png), but output is the folder the files are written into"),
        ("vol_mask.nii.gz", "names an image file (.nii.gz)"),
    ],
)
def test_predict_refuses_an_output_that_is_no_folder(
    class_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    images = _images(tmp_path / "images", ["a.png"])
    (tmp_path / "a_file").write_text("kept")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as refused:
        predict(_predict_cfg(class_run, images, Path(output)))
    assert str(refused.value).startswith(f"output={output}: ") and expected in str(refused.value)
    assert "\n" not in str(refused.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_predict_output_refusal_is_one_line_from_the_command_line(class_run: Path, tmp_path: Path) -> None:
    images = _images(tmp_path / "images", ["a.png"])
    out = tmp_path / "mask.png"
    proc = run_script(
        "predict.py",
        f"ckpt={class_run}",
        f"input={images}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'h'}",
    )
    assert f"error: output={out}: names an image file (.png)" in _one_error_line(proc)
    assert not out.exists() and not (tmp_path / "h").exists()


# ------------------------------------------------------------------ predict.py prompts= that leave images out
def test_predict_names_every_image_without_a_prompt(
    box_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = _images(tmp_path / "images", ["a.png", "b.png", "c.png"])
    volume = np.random.default_rng(1).integers(0, 255, (40, 48, 4)).astype(np.uint8)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), images / "vol.nii.gz")
    prompts = tmp_path / "boxes.json"
    prompts.write_text(
        json.dumps(
            [
                {"image": "b.png", "class": "vessel", "box": [5, 5, 30, 20]},
                {"image": "vol_0001", "class": "vessel", "box": [5, 5, 30, 20]},
            ]
        )
    )
    cfg = _predict_cfg(box_run, images, tmp_path / "out", prompts=str(prompts))
    with caplog.at_level(logging.WARNING, logger="salt"):
        predict(cfg)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    (line,) = [w for w in warnings if "boxes.json" in w]
    assert line.endswith("a.png, c.png, vol.nii.gz (slices 0, 2-3 of 4)"), line
    assert "3 of 4 input files" in line and "b.png" not in line


# ------------------------------------------------------------------ predict.py on volumes
def _nifti(path: Path, shape: tuple[int, int, int]) -> nib.Nifti1Image:
    affine = np.array([[0.0, -0.7, 0.0, 12.5], [0.8, 0.0, 0.0, -30.0], [0.0, 0.0, 2.5, 4.0], [0, 0, 0, 1]])
    data = np.random.default_rng(2).normal(100, 30, shape).astype(np.float32)
    image = nib.Nifti1Image(data, affine)
    image.header.set_slope_inter(2.0, 10.0)  # an intensity scaling the mask must not inherit
    nib.save(image, path)
    return nib.load(path)


def test_predict_writes_a_volume_in_the_inputs_format_and_geometry(class_run: Path, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    reference = _nifti(source / "ct.nii.gz", (40, 48, 3))
    itk = SimpleITK.GetImageFromArray(np.random.default_rng(3).integers(0, 400, (5, 30, 20)).astype(np.int16))
    itk.SetSpacing((0.6, 0.9, 3.0))
    itk.SetOrigin((1.0, -2.0, 7.5))
    itk.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    SimpleITK.WriteImage(itk, str(source / "mr.mha"))
    out = tmp_path / "out"
    result = predict(_predict_cfg(class_run, source, out, threshold=0.5, overlays=True))
    assert sorted(p.name for p in out.iterdir()) == ["ct_mask.nii.gz", "mr_mask.mha"]
    assert sorted(result["written"]) == ["ct_mask.nii.gz", "mr_mask.mha"]

    mask = nib.load(out / "ct_mask.nii.gz")
    assert mask.shape == (40, 48, 3)
    np.testing.assert_allclose(mask.affine, reference.affine)
    assert mask.get_data_dtype() == np.uint8
    values = np.asarray(mask.dataobj)
    assert set(np.unique(values)) <= {0, 1}

    mr = SimpleITK.ReadImage(str(out / "mr_mask.mha"))
    assert mr.GetSize() == (20, 30, 5)
    np.testing.assert_allclose(mr.GetSpacing(), (0.6, 0.9, 3.0))
    np.testing.assert_allclose(mr.GetOrigin(), (1.0, -2.0, 7.5))
    np.testing.assert_allclose(mr.GetDirection(), (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))

    # Asked for, the slices come too, as PNG masks of the same voxels (slice k = the volume's [:, :, k]).
    sliced = tmp_path / "sliced"
    predict(_predict_cfg(class_run, source / "ct.nii.gz", sliced, slices=True, overlays=True))
    names = sorted(p.name for p in sliced.iterdir())
    assert names == [
        "ct_0000_mask.png",
        "ct_0000_overlay.png",
        "ct_0001_mask.png",
        "ct_0001_overlay.png",
        "ct_0002_mask.png",
        "ct_0002_overlay.png",
        "ct_mask.nii.gz",
    ]
    for k in range(3):
        png = np.asarray(Image.open(sliced / f"ct_{k:04d}_mask.png"))
        assert png.shape == (40, 48)
        np.testing.assert_array_equal(png > 0, values[:, :, k] > 0)
