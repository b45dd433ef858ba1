"""export.py on the tiny SALT run: onnxruntime and torch.jit give the trained (unmerged) network's outputs at
any batch size, the ONNX file's masks are predict.py's, the sidecar says how to feed it, bad input is refused."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from omegaconf import OmegaConf
from segment_anything.modeling import Sam

from salt.data.reading import read_image
from salt.data.transforms import fit_to_square, to_original
from salt.errors import ConfigError
from salt.export import job
from salt.inference.loading import load_trained
from salt.peft import AdapterLayer
from tests.train.conftest import run_script
from tests.train.reference_metrics import predicted_masks, split_cases

pytestmark = pytest.mark.slow

SIZE = 64  # tiny_overrides' dataset.img_size


@pytest.fixture(scope="module")
def onnx_file(smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("export")
    output = base / "out" / "model.onnx"
    proc = run_script(
        "export.py", f"ckpt={smoke_run}", "format=onnx", f"output={output}", f"hydra.run.dir={base / 'h'}"
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in output.parent.iterdir()) == ["model.onnx", "model.onnx.json"]
    return output


@pytest.fixture(scope="module")
def trained(smoke_run: Path) -> torch.nn.Module:
    """The run's network as trained: adapters not merged, decoded image by image."""
    return load_trained(smoke_run).model


def _random_images(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 255


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_equals_pytorch(onnx_file: Path, trained: torch.nn.Module, batch: int) -> None:
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    images = _random_images(batch, seed=batch)
    logits, probabilities = session.run(["logits", "probabilities"], {"images": images.numpy()})
    with torch.no_grad():
        reference = trained(images)  # (B, 1, S, S)
    assert logits.shape == probabilities.shape == (batch, 1, SIZE, SIZE)
    np.testing.assert_allclose(logits, reference.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(probabilities, torch.sigmoid(reference).numpy(), rtol=0, atol=1e-4)


def test_sidecar_describes_the_file(onnx_file: Path, smoke_run: Path) -> None:
    info = json.loads(job.sidecar_path(onnx_file).read_text())
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [(i["name"], i["shape"]) for i in info["inputs"]] == [
        (i.name, i.shape) for i in session.get_inputs()
    ]
    assert [(o["name"], o["shape"]) for o in info["outputs"]] == [
        (o.name, o.shape) for o in session.get_outputs()
    ]
    assert info["inputs"][0]["shape"] == ["batch", 3, SIZE, SIZE]
    assert {i.type for i in [*session.get_inputs(), *session.get_outputs()]} == {"tensor(float)"}
    assert info["img_size"] == SIZE and info["file"] == "model.onnx" and info["format"] == "onnx"
    # SAM's own pixel statistics, from segment_anything's Sam.
    defaults = inspect.signature(Sam.__init__).parameters
    normalization = info["preprocessing"]["normalization"]
    assert normalization["kind"] == "mean_std"
    assert normalization["mean"] == pytest.approx(defaults["pixel_mean"].default)
    assert normalization["std"] == pytest.approx(defaults["pixel_std"].default)
    assert info["preprocessing"]["resize"]["mode"] == "longest_pad"
    assert info["threshold"] == 0.5
    assert info["run"]["method"] == "salt" and info["run"]["model"] == "tiny"
    assert isinstance(info["opset"], int)


def test_onnx_masks_are_predict_masks(onnx_file: Path, smoke_run: Path, tmp_path: Path) -> None:
    info = json.loads(job.sidecar_path(onnx_file).read_text())
    config = json.loads((smoke_run / "metrics.json").read_text())["config"]
    cases = split_cases(Path(config["dataset"]["root"]))
    expected = predicted_masks(smoke_run, [image for _, image, _, _ in cases], tmp_path)
    planes = [read_image(image)[0] for _, image, _, _ in cases]  # (H, W, 3) uint8 each
    squares, pads = [], []
    for plane in planes:
        square, _, pad = fit_to_square(
            plane,
            np.zeros((*plane.shape[:2], 1), np.uint8),
            info["img_size"],
            info["preprocessing"]["resize"]["mode"],
        )
        squares.append(square.transpose(2, 0, 1))
        pads.append(pad)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"images": np.stack(squares).astype(np.float32)})
    assert len(cases) > 1  # one batch of several images
    for (stem, _, _, _), plane, pad, prob in zip(cases, planes, pads, probabilities):
        back = to_original(torch.from_numpy(prob), plane.shape[:2], pad)[0].numpy()  # (H, W)
        mask = back > info["threshold"]
        assert mask.any(), stem  # a mask with something in it, so the comparison means something
        differ = mask != expected[stem]
        # Float rounding may flip a pixel whose probability is at the threshold, nothing else.
        assert np.all(np.abs(back[differ] - info["threshold"]) < 1e-4), stem


def _cfg(**values: object) -> OmegaConf:
    return OmegaConf.create({"format": "onnx", "base_checkpoint": None, "threshold": None, **values})


@pytest.fixture(scope="module")
def torchscript_file(smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("torchscript") / "model.pt"
    info = job.export(_cfg(ckpt=str(smoke_run), format="torchscript", output=str(output)))
    assert info["format"] == "torchscript" and job.sidecar_path(output).is_file()
    return output


def _adapter_classes(cls: type = AdapterLayer) -> set[str]:
    return {cls.__name__} | {name for sub in cls.__subclasses__() for name in _adapter_classes(sub)}


def test_torchscript_holds_plain_layers(torchscript_file: Path, trained: torch.nn.Module) -> None:
    loaded = torch.jit.load(str(torchscript_file))
    assert {type(m).__name__ for m in trained.modules()} & _adapter_classes()  # the run has adapters ...
    assert not {m.original_name for m in loaded.modules()} & _adapter_classes()  # ... the file none


@pytest.mark.parametrize("batch", [1, 3])
def test_torchscript_equals_pytorch(torchscript_file: Path, trained: torch.nn.Module, batch: int) -> None:
    loaded = torch.jit.load(str(torchscript_file))
    images = _random_images(batch, seed=10 + batch)
    with torch.no_grad():
        logits, probabilities = loaded(images)
        reference = trained(images)
    torch.testing.assert_close(logits, reference, rtol=0, atol=1e-4)
    torch.testing.assert_close(probabilities, torch.sigmoid(reference), rtol=0, atol=1e-4)


def test_missing_checkpoint_is_one_line(tmp_path: Path) -> None:
    output = tmp_path / "model.onnx"
    proc = run_script(
        "export.py", f"ckpt={tmp_path / 'nowhere'}", f"output={output}", f"hydra.run.dir={tmp_path / 'h'}"
    )
    assert proc.returncode == 1
    assert "ckpt=" in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert not output.exists() and not (tmp_path / "h").exists()


def test_bad_format_and_output_are_refused(smoke_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format=tflite"):
        job.export(_cfg(ckpt=str(smoke_run), format="tflite", output=str(tmp_path / "m.onnx")))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="output="):
        job.export(_cfg(ckpt=str(smoke_run), output=str(blocker / "m.onnx")))
    with pytest.raises(ConfigError, match="is a folder"):
        job.export(_cfg(ckpt=str(smoke_run), output=str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_box_prompted_run_is_refused(
    smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = load_trained(smoke_run)
    run.model.set_prompt_mode("box")
    monkeypatch.setattr(job, "load_trained", lambda *args: run)
    with pytest.raises(ConfigError, match=r"prompt\.mode=box") as refused:
        job.export(_cfg(ckpt=str(smoke_run), output=str(tmp_path / "m.onnx")))
    assert "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_nothing(
    smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
        path.write_bytes(b"partial")
        raise RuntimeError("the exporter stopped")

    monkeypatch.setattr(job, "_write_torchscript", half_written)
    with pytest.raises(RuntimeError, match="exporter stopped"):
        job.export(_cfg(ckpt=str(smoke_run), format="torchscript", output=str(tmp_path / "model.pt")))
    assert list(tmp_path.iterdir()) == []
