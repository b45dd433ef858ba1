"""The make_tables command end to end on fake runs: table formats, figures, and user errors."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salt.results import build_table, find_runs, overlay_grid, plot_dice_vs_params, plot_training_curves
from salt.results.cli import main
from salt.results.qualitative import PANEL_INCHES
from tests.results.fake_runs import write_history, write_overlays, write_run

ROOT = Path(__file__).resolve().parents[2]
DPI = 100


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for seed in (1, 2):
        run = write_run(
            root / f"salt{seed}", dataset="drive", seed=seed, dice=0.7, hd95=15.0, peft={"lora_rank": 4}
        )
        write_history(run, [0.3, 0.5, 0.6 + 0.05 * seed])
        write_overlays(run, ["01_test", "02_test", "03_test"])
    lora = write_run(
        root / "lora", dataset="drive", seed=1, dice=0.6, hd95=20.0, method="lora", peft={"rank": 4}
    )
    write_history(lora, [0.2, 0.4])
    write_overlays(lora, ["02_test", "03_test"])
    classic = {"family": "classic", "name": "unet"}
    write_run(root / "unet", dataset="drive", seed=1, dice=0.2, hd95=80.0, model=classic, trainable=6_500_000)
    write_run(root / "zero_shot", dataset="drive", seed=0, dice=0.0, hd95=300.0, method="none", task="eval")
    return root


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))  # (H, W, 3)


def test_cli_writes_table_and_figures(runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "figures"
    assert main([str(runs_dir), "--plots", str(out), "--cases", "2"]) == 0
    stdout = capsys.readouterr().out
    assert "| SALT (rank 4) | 2 |" in stdout and "0.700±0.000 (paper .72, -0.02)" in stdout
    for name in ("dice_vs_params.png", "training_curves.png", "qualitative_drive.png"):
        picture = _png(out / name)
        assert picture.shape[0] > 100 and picture.shape[1] > 100 and picture.std() > 0
    # Columns: the three methods with overlays (not U-Net, not zero-shot); rows: the two cases they share most.
    grid = _png(out / "qualitative_drive.png")
    assert grid.shape[1] == round(PANEL_INCHES * 2 * DPI)
    assert grid.shape[0] == round((PANEL_INCHES * 2 + 0.4) * DPI)


def test_figures_refuse_empty_inputs(runs_dir: Path, tmp_path: Path) -> None:
    runs = find_runs(runs_dir)
    unet = [r for r in runs if r.row == "U-Net"]
    with pytest.raises(ValueError, match=r"history\.csv"):
        plot_training_curves(unet, tmp_path / "curves.png")
    with pytest.raises(ValueError, match="overlay PNGs"):
        overlay_grid(unet, "drive", tmp_path / "grid.png")
    with pytest.raises(ValueError, match="average Dice"):
        plot_dice_vs_params(build_table(runs, ["drive", "arcade"]), tmp_path / "bubbles.png")
    assert not list(tmp_path.glob("*.png"))


def test_output_formats_and_resolution(runs_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(runs_dir), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["method"] for r in rows] == ["U-Net", "SAM, text prompt only", "LoRA (rank 4)", "SALT (rank 4)"]
    assert main([str(runs_dir), "--latex"]) == 0
    assert r"\begin{tabular}" in capsys.readouterr().out
    assert main([str(runs_dir), "--resolution", "original"]) == 0
    text = capsys.readouterr().out
    assert "at original resolution" in text and "0.700" not in text  # no run has original-size metrics


def test_user_errors_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 1
    assert "no readable test-split metrics.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--csv", "--latex"])
    assert exit_info.value.code == 2


def test_script_runs_from_the_command_line(runs_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tables.py"), str(runs_dir), "--csv"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == 4


def test_grid_shows_image_and_truth_from_the_recorded_data_set(runs_dir: Path, tmp_path: Path) -> None:
    import json

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    truth = np.zeros((16, 16), np.uint8)
    truth[:, :8] = 255  # left half vessel
    for case in ("01_test", "02_test", "03_test"):
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(data / "images" / f"{case}.png")
        Image.fromarray(truth).save(data / "masks" / f"{case}_mask.png")
    for run in (runs_dir / "salt1", runs_dir / "salt2", runs_dir / "lora"):
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["config"]["dataset"]["root"] = str(data)
        (run / "metrics.json").write_text(json.dumps(metrics))
    out = overlay_grid(find_runs(runs_dir), "drive", tmp_path / "grid.png", max_cases=1)
    grid = _png(out)
    # Two more columns than methods: the image, then its ground truth (white left half, dimmed right half).
    assert grid.shape[1] == round(PANEL_INCHES * 4 * DPI)
    panel = round(PANEL_INCHES * DPI)
    truth_panel = grid[:, panel : 2 * panel].astype(int)
    rows = slice(truth_panel.shape[0] // 3, 2 * truth_panel.shape[0] // 3)
    left, right = truth_panel[rows, panel // 4], truth_panel[rows, 3 * panel // 4]
    assert left.min() > 200 and right.max() < 90
