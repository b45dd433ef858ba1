"""thin_vessels.py: reads eval.py folders (metrics.json + masks/), prints centreline recall by width and draws
the figure; refuses folders it cannot compare in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salt.results.thin_vessels import main
from salt.viz.thin import densest_crop


def dataset(root: Path) -> Path:
    """Two test images (80 x 120): a 1 px line in rows 10-49 of col 10 and a 5 px bar in rows 60-64."""
    mask = np.zeros((80, 120), np.uint8)
    mask[10:50, 10] = 255
    mask[60:65, 20:100] = 255
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.stack([mask // 2 + 40] * 3, -1)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    (root / "data_split.csv").write_text("imgs,split\n0.png,test\n1.png,test\n")
    return root


def evaluation(folder: Path, root: Path, upper_rows: int) -> Path:
    """An eval.py folder whose masks hold the bar and the first ``upper_rows`` rows of the line."""
    cfg = {"root": str(root), "img_size": 64, "resize": "longest_pad", "num_classes": 1, "label_map": None}
    (folder / "masks").mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"split": "test", "config": {"dataset": cfg}}))
    pred = np.zeros((80, 120), np.uint8)
    pred[10 : 10 + upper_rows, 10] = 255
    pred[58:67, 15:105] = 255
    for i in range(2):
        Image.fromarray(pred).save(folder / "masks" / f"{i}.png")
    return folder


def table_rows(out: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_recall_by_width_and_the_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = dataset(tmp_path / "set")
    half = evaluation(tmp_path / "half", root, 20)
    quarter = evaluation(tmp_path / "quarter", root, 10)
    out = tmp_path / "fig" / "thin.png"
    code = main([str(half), str(quarter), "--labels", "A,B", "--out", str(out), "--cases", "1"])
    assert code == 0
    rows = table_rows(capsys.readouterr().out)
    # the line's 40 centreline pixels are thin; A covers 20 of them, B 10; both cover the whole bar
    assert rows["A"] == ["0.500", "0.500", "1.000"]
    assert rows["B"] == ["0.250", "0.250", "1.000"]
    picture = np.asarray(Image.open(out).convert("RGB"))
    # a figure with a legend band in the legend's background colour below the grid
    assert picture.shape[0] > 100 and (picture[-3] == (32, 32, 32)).all(axis=-1).any()


def test_folders_that_cannot_be_compared_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = dataset(tmp_path / "set")
    good = evaluation(tmp_path / "good", root, 20)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.json").write_text((good / "metrics.json").read_text())
    assert main([str(good), str(bare)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {bare}: no masks/ folder (evaluate with eval.py ... eval.masks=true)"
    other = dataset(tmp_path / "other")
    moved = evaluation(tmp_path / "moved", other, 20)
    assert main([str(good), str(moved)]) == 2
    assert "compare evaluations of the same images" in capsys.readouterr().err
    (good / "masks" / "1.png").unlink()
    assert main([str(good)]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("1.png: missing (the folder's evaluation did not write this case)")
    )


def test_the_densest_crop_is_the_window_holding_the_most_points() -> None:
    rng = np.random.default_rng(0)
    points = rng.random((40, 50)) < 0.1
    points[25:33, 30:38] = True
    row, col = densest_crop(points, 10)
    sums = np.array([[points[r : r + 10, c : c + 10].sum() for c in range(41)] for r in range(31)])
    assert points[row : row + 10, col : col + 10].sum() == sums.max()
    assert densest_crop(points, 100) == (0, 0)  # a crop larger than the image is the image
