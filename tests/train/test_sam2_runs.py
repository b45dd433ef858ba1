"""``python train.py model=sam2_hiera_t ...`` from the command line: a run on random weights that records what
ran, and the one-line refusals of an input size and of weights files SAM2 cannot take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from salt.model import build_sam
from tests.train.conftest import run_script
from tests.train.test_backbone_errors import assert_refused

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sam2") / "synthetic"


def sam2_run(data_root: Path, run_dir: Path, *extra: str):
    """SALT on Hiera-T (its model config's settings) at 64 px, one batch of a 6-image synthetic set."""
    return run_script(
        "train.py",
        "model=sam2_hiera_t",
        "peft=salt",
        "debug=fast",
        f"dataset.root={data_root}",
        "dataset.synthetic.n=6",
        "dataset.synthetic.size=64",
        "dataset.img_size=64",
        "trainer.limit_train_batches=1",
        f"hydra.run.dir={run_dir}",
        *extra,
    )


def test_salt_on_hiera_t_trains_from_random_weights(data_root: Path, tmp_path: Path) -> None:
    proc = sam2_run(data_root, tmp_path / "run")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "sam2.1_hiera_tiny.pt: training from RANDOM weights" in output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["model"] == "hiera_t" and metrics["pretrained"] is None
    adapters = metrics["adapters"]
    assert adapters["image_encoder.neck.convs.*.conv"]["method"] == "lora"
    assert adapters["image_encoder.neck.convs.*.conv"]["r"] == [4]
    assert adapters["image_encoder.trunk.blocks.*.attn.qkv"] == {
        "method": "salt",
        "count": 12,
        "k": [96, 192, 384, 768],
        "r": [9, 19, 38, 76],
        "l": [256],
    }
    sidecar = json.loads((tmp_path / "run" / "adapter.json").read_text())
    assert sidecar["method"] == "salt+lora"


def test_an_input_size_sam2_cannot_take(data_root: Path, tmp_path: Path) -> None:
    proc = sam2_run(data_root, tmp_path / "run", "dataset.img_size=80")
    assert_refused(proc, tmp_path / "run", "model.img_size=80", "SAM2 takes a positive multiple of 32 px")


def test_a_sam_v1_file_is_refused(data_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "sam_vit_tiny.pth"
    torch.save(
        {k: v for k, v in build_sam("tiny", img_size=64).state_dict().items() if k != "class_tokens"}, path
    )
    proc = sam2_run(data_root, tmp_path / "run", f"model.checkpoint={path}")
    assert_refused(proc, tmp_path / "run", str(path), "not a SAM2 checkpoint")
