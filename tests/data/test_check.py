"""``check_dataset`` and ``python -m salt.data.check``: every listed problem, its message and exit status."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salt.data.check import check_dataset, main
from salt.data.layout import SPLIT_CSV


def _break(root: Path) -> dict[str, str]:
    """Damage a copy of the synthetic set in every way the check knows; returns the stems used."""
    stems = [p.name.removesuffix(".png") for p in sorted((root / "images").iterdir())]
    no_mask, zero, garbage, small, soft, empty = stems[:6]
    (root / "masks" / f"{no_mask}_mask.png").unlink()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "stray_mask.png")
    (root / "images" / f"{zero}.png").write_bytes(b"")
    (root / "masks" / f"{garbage}_mask.png").write_bytes(b"\x89PNG but not really")
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "masks" / f"{small}_mask.png")
    soft_values = np.zeros((64, 64), np.uint8)
    soft_values[:20], soft_values[20:40] = 128, 255
    Image.fromarray(soft_values).save(root / "masks" / f"{soft}_mask.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(root / "masks" / f"{empty}_mask.png")
    rows = [
        f"{stems[7]}.png,holdout" if row.startswith(f"{stems[7]}.png,") else row
        for row in (root / SPLIT_CSV).read_text().splitlines()
    ]
    rows += ["missing.png,train", rows[1]]
    (root / SPLIT_CSV).write_text("\n".join(rows) + "\n")
    return {
        "no_mask": no_mask,
        "zero": zero,
        "garbage": garbage,
        "small": small,
        "soft": soft,
        "empty": empty,
    }


def test_an_intact_folder_passes(synthetic_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = check_dataset(synthetic_root)
    assert report.ok and not report.warnings
    assert report.counts["images"] == report.counts["masks"] == report.counts["fov"] == 10
    assert report.counts["train"] + report.counts["val"] + report.counts["test"] == 10
    assert main([str(synthetic_root)]) == 0
    assert "Result: OK" in capsys.readouterr().out


def test_a_broken_folder_reports_every_problem(
    synthetic_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = _break(synthetic_copy)
    report = check_dataset(synthetic_copy)
    errors, warnings = "\n".join(report.errors), "\n".join(report.warnings)
    assert f"images/{s['no_mask']}.png: no mask" in errors  # image without mask
    assert "masks/stray_mask.png: mask without an image" in errors
    assert f"images/{s['zero']}.png: empty file (0 bytes)" in errors
    assert f"masks/{s['garbage']}_mask.png: cannot be read" in errors
    assert f"masks/{s['small']}_mask.png: size 12x10 (WxH) != image 64x64" in errors
    assert f"masks/{s['soft']}_mask.png: mask values [0, 128, 255]" in errors
    assert "missing.png' names no file" in errors
    assert "duplicate of line 2" in errors
    assert "unknown split 'holdout'" in errors
    assert f"masks/{s['empty']}_mask.png: empty mask" in warnings
    assert not report.ok and len(report.errors) == 9, report.errors
    assert main([str(synthetic_copy)]) == 1
    out = capsys.readouterr().out
    assert "Errors (9):" in out and "Result: FAILED" in out


def test_missing_pieces_and_a_wrong_csv(tmp_path: Path) -> None:
    assert "does not exist" in check_dataset(tmp_path / "absent").errors[0]
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path / SPLIT_CSV).write_text("image,fold\na.png,0\n")
    report = check_dataset(tmp_path)
    errors = "\n".join(report.errors)
    assert "masks: missing folder" in errors and "expected imgs,split" in errors
    assert any("notes.txt: not a supported image format" in w for w in report.warnings)
    assert any("a.png: not listed" in w for w in report.warnings)


def test_label_map_option_accepts_multi_valued_masks(synthetic_copy: Path) -> None:
    soft = np.zeros((64, 64), np.uint8)
    soft[:20], soft[20:40] = 128, 255
    first = sorted((synthetic_copy / "masks").iterdir())[0]
    Image.fromarray(soft).save(first)
    assert main([str(synthetic_copy)]) == 1
    assert main([str(synthetic_copy), "--label-map", "128:1,255:1"]) == 0
    assert main([str(synthetic_copy), "--num-classes", "2", "--label-map", "128:1,255:2"]) == 0
