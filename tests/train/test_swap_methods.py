"""A converted DRIVE release trains with every method swapped in from the command line, as a sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.releases import write_drive
from tests.train.conftest import ROOT, run_script

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drive_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("drive")
    src = write_drive(base / "DRIVE", n_train=4, n_test=2)
    dst = base / "drive"
    proc = subprocess.run(
        [sys.executable, "-m", "salt.data.prepare", "drive", "--src", str(src), "--dst", str(dst)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dst


def _common(root: Path) -> list[str]:
    return [
        "dataset=drive",
        f"dataset.root={root}",
        "dataset.img_size=64",
        "model=sam_tiny",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "eval.overlays=1",
    ]


def test_sweep_over_methods_on_drive(drive_root: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_script(
        "train.py", "-m", "peft=salt,lora,svd,full", *_common(drive_root), f"hydra.sweep.dir={sweep}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert [r["method"] for r in results] == ["salt", "lora", "svd", "full"]
    for result in results:
        assert result["dataset"] == "drive"
        # DRIVE ships field-of-view masks: the original-resolution metrics are restricted to them.
        assert result["mean_original"]["n_cases"] == result["mean"]["n_cases"] == 2
        assert result["params"]["trainable"] > 0
    counts = {r["method"]: r["params"]["groups"]["adapter"]["trainable"] for r in results}
    assert counts["full"] == 0 and min(counts["salt"], counts["lora"], counts["svd"]) > 0


def test_decoder_only_tuning(drive_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "decoder"
    proc = run_script(
        "train.py", "peft=none", "model.trainable=[decoder]", *_common(drive_root), f"hydra.run.dir={run}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((run / "metrics.json").read_text())
    groups = result["params"]["groups"]
    assert result["method"] == "none"
    assert result["params"]["trainable"] == groups["decoder"]["trainable"] == groups["decoder"]["total"]
