"""predict.py's precision option: bf16 autocast gives the float32 masks up to rounding; bad values are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from salt.inference import predict as predict_module
from tests.train.conftest import run_script, spy_autocast


def _config(run: Path, images: Path, out: Path, precision: str) -> OmegaConf:
    return OmegaConf.create(
        {
            "ckpt": str(run),
            "input": str(images),
            "output": str(out),
            "base_checkpoint": None,
            "device": "cpu",
            "threshold": 0.5,
            "prompts": None,
            "overlays": False,
            "precision": precision,
            "data": {"batch_size": 4},
        }
    )


def test_bf16_autocast_runs_and_keeps_the_masks(
    smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = smoke_run.parent / "synthetic" / "images"
    used = spy_autocast(predict_module, monkeypatch)
    predict_module.predict(_config(smoke_run, images, tmp_path / "fp32", "32-true"))
    assert used and all(not enabled for _, _, enabled in used)
    used.clear()
    predict_module.predict(_config(smoke_run, images, tmp_path / "bf16", "bf16-mixed"))
    assert used and all(u == ("cpu", torch.bfloat16, True) for u in used)
    masks = sorted((tmp_path / "fp32").glob("*_mask.png"))
    assert len(masks) == len(list(images.iterdir()))
    agree = [
        np.mean(np.asarray(Image.open(m)) == np.asarray(Image.open(tmp_path / "bf16" / m.name)))
        for m in masks
    ]
    assert min(agree) >= 0.98


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        ("fp8", "precision='fp8': expected one of 32-true, bf16-mixed, 16-mixed"),
        ("16-mixed", "needs a CUDA device"),
    ],
)
def test_a_bad_precision_is_one_line_and_writes_nothing(
    smoke_run: Path, tmp_path: Path, value: str, wanted: str
) -> None:
    if value == "16-mixed" and torch.cuda.is_available():
        pytest.skip("float16 autocast is valid on a CUDA device")
    out = tmp_path / "out"
    proc = run_script(
        "predict.py",
        f"ckpt={smoke_run}",
        f"input={smoke_run.parent / 'synthetic' / 'images'}",
        f"output={out}",
        "device=cpu",
        f"precision={value}",
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
    (line,) = [line for line in output.splitlines() if "error:" in line]
    assert wanted in line
    assert not out.exists()
