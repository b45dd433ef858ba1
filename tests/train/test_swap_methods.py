"""A converted DRIVE release trains with every method swapped in from the command line, as a sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.data.releases import write_drive
from tests.train.conftest import ROOT, run_script
from tests.train.reference_metrics import predicted_masks, reference_metrics, split_cases

pytestmark = pytest.mark.slow
# Low enough that the briefly trained tiny model marks pixels outside DRIVE's field of view too.
THRESHOLD = 0.2


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
        f"eval.threshold={THRESHOLD}",
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
    assert min(counts.values()) > 0  # full tuning's adapter parameters are its targets' weights and biases
    for result in results:  # one definition: the adapter group is what the per-method count counts
        assert counts[result["method"]] == sum(result["params"]["adapters"][result["method"]].values())
    # The SALT run's original-resolution metrics, recomputed from the masks predict.py writes, inside the FOV.
    cases = split_cases(drive_root)
    masks = predicted_masks(
        sweep / "0", [image for _, image, _, _ in cases], tmp_path, f"threshold={THRESHOLD}"
    )
    rows = {r["name"]: r for r in results[0]["per_case"] if r["resolution"] == "original"}
    fov_matters = False
    for stem, _, gt, fov in cases:
        dice, hd95 = reference_metrics(masks[stem], gt, fov)
        assert rows[stem]["dice"] == pytest.approx(dice, abs=1e-6) and rows[stem]["hd95"] == pytest.approx(
            hd95, abs=1e-4
        )
        fov_matters |= reference_metrics(masks[stem], gt, np.ones_like(fov))[0] != pytest.approx(
            dice, abs=1e-3
        )
    assert fov_matters  # the predictions reach outside the FOV, so scoring the whole image would differ


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
