"""The real-photograph figure: one trained run per row through predict.py's code, untrained rows left out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from salt.results.collect import find_runs
from salt.results.real_image import pick_runs, predict_on, real_image_figure, retina_image
from salt.viz.grid import PANEL_INCHES
from tests.results.fake_runs import write_run

ROOT = Path(__file__).resolve().parents[2]


def _runs_dir(smoke_run: Path, tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(smoke_run, root / "salt")
    dataset = json.loads((smoke_run / "metrics.json").read_text())["dataset"]
    write_run(root / "zero_shot", dataset=dataset, seed=0, dice=0.0, hd95=90.0, method="none", task="eval")
    return root, dataset


def test_figure_shows_each_trained_run_on_the_photograph(smoke_run: Path, tmp_path: Path) -> None:
    root, dataset = _runs_dir(smoke_run, tmp_path)
    runs = find_runs(root)
    chosen = pick_runs(runs, dataset)
    assert [r.path.name for r in chosen] == ["salt"]  # the zero-shot row has no checkpoint
    image = retina_image(128)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8 and image.std() > 10
    masks = predict_on(image, chosen)
    assert list(masks) == [chosen[0].row] and masks[chosen[0].row].shape == (128, 128)
    out = real_image_figure(runs, dataset, tmp_path / "fig.png", side=128)
    with Image.open(out) as picture:
        assert picture.width == round(PANEL_INCHES * 2 * 100)  # the photograph and one method


def test_script_refuses_a_folder_without_trained_runs(tmp_path: Path) -> None:
    write_run(
        tmp_path / "zs", dataset="synthetic_fundus", seed=0, dice=0.0, hd95=9.0, method="none", task="eval"
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/real_image.py"),
            str(tmp_path),
            "--out",
            str(tmp_path / "f.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"real_image.py: {tmp_path}: no trained run of data set 'synthetic_fundus' to show"
    ]
    assert not (tmp_path / "f.png").exists()
