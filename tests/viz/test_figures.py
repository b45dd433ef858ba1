"""Training-curve and comparison-grid figures are written and readable."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from salt.viz import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    TRUE_POSITIVE,
    grid_panels,
    plot_curves,
    qualitative_grid,
    read_metrics,
)

# Lightning's CSVLogger layout: one column per logged key, blank where a key was not logged that row.
METRICS_CSV = """epoch,step,train/loss_epoch,train/loss_step,val/dice,val/hd95
0,0,,0.62,,
0,1,,0.55,,
0,1,,,0.41,30.5
0,1,0.58,,,
1,2,,0.47,,
1,3,,0.40,,
1,3,,,0.52,21.0
1,3,0.43,,,
"""


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_read_metrics_drops_blanks(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(METRICS_CSV)
    rows = read_metrics(path)
    assert len(rows) == 8
    assert rows[0] == {"epoch": 0.0, "step": 0.0, "train/loss_step": 0.62}
    assert rows[2] == {"epoch": 0.0, "step": 1.0, "val/dice": 0.41, "val/hd95": 30.5}


def test_plot_curves_from_csv_and_rows(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(METRICS_CSV)
    from_csv = plot_curves(path, tmp_path / "plots" / "curves.png")
    width, height = _png_size(from_csv)
    assert width > 2 * height  # three panels side by side
    # Only a loss column: one panel.
    rows = [{"step": s, "train/loss_step": v} for s, v in enumerate([0.9, 0.7, 0.6])]
    width, height = _png_size(plot_curves(rows, tmp_path / "loss_only.png"))
    assert width < 2 * height


def test_plot_curves_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="metrics file not found"):
        plot_curves(tmp_path / "missing.csv", tmp_path / "x.png")
    with pytest.raises(ValueError, match="no loss, dice or hd95"):
        plot_curves([{"epoch": 0, "step": 0, "lr": 1e-4}], tmp_path / "x.png")


def test_qualitative_grid(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
        rng.integers(0, 255, (12, 20, 3), dtype=np.uint8),
    ]
    gts = [rng.random(im.shape[:2]) > 0.7 for im in images]
    predictions = {
        "SALT": [g ^ (rng.random(g.shape) > 0.9) for g in gts],  # close to the ground truth, not equal
        "LoRA": [rng.random(im.shape[:2]) > 0.5 for im in images],
    }
    path = qualitative_grid(images, predictions, gts, tmp_path / "grid.png", row_titles=["a", "b"])
    width, height = _png_size(path)
    assert width > height  # 4 columns (image, ground truth, 2 methods) for 2 rows
    # What each panel shows, pixel by pixel, from the masks themselves.
    rows = grid_panels(images, predictions, gts)
    for i, (image, gt, panels) in enumerate(zip(images, gts, rows)):
        assert [title.split()[0] for title, _ in panels] == ["image", "ground", "SALT", "LoRA"]
        assert np.array_equal(panels[0][1], image)
        # the ground-truth column draws the ground truth (the dimmed image never reaches white)
        assert np.array_equal((panels[1][1] == TRUE_POSITIVE).all(-1), gt)
        for (title, picture), name in zip(panels[2:], ("SALT", "LoRA")):
            pred = predictions[name][i]
            assert np.array_equal((picture == TRUE_POSITIVE).all(-1), pred & gt)
            assert np.array_equal((picture == FALSE_NEGATIVE).all(-1), ~pred & gt)
            assert np.array_equal((picture == FALSE_POSITIVE).all(-1), pred & ~gt)
            dice = 2 * (pred & gt).sum() / (pred.sum() + gt.sum())
            assert title.endswith(f"Dice {dice:.3f}")
    path = qualitative_grid(images, {"SALT": predictions["SALT"]}, None, tmp_path / "no_gt.png")
    assert _png_size(path)[0] > 0
    with pytest.raises(ValueError, match="one per image"):
        qualitative_grid(images, {"SALT": predictions["SALT"][:1]}, gts, tmp_path / "bad.png")
