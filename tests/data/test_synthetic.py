"""The synthetic vessel generator: determinism, layout, atomicity, learnability and speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import salt.data.synthetic as synthetic
from salt.data import DatasetError, check_dataset, ensure_synthetic
from salt.data.layout import SPLIT_CSV, read_split_csv
from salt.data.vessels import VesselStyle, render


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_default_set_passes_the_check(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path / "syn", n=40, size=256, seed=0)
    report = check_dataset(root)
    assert report.ok and not report.warnings, report.format()
    assert (report.counts["train"], report.counts["val"], report.counts["test"]) == (26, 6, 8)
    assert sorted(p.name for p in root.iterdir()) == [
        "data_split.csv",
        "fov",
        "images",
        "masks",
        "synthetic.json",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["syn"]  # no temporary folder left behind


def test_deterministic_per_seed(tmp_path: Path) -> None:
    first = ensure_synthetic(tmp_path / "a", n=4, size=48, seed=7)
    second = ensure_synthetic(tmp_path / "b", n=4, size=48, seed=7)
    other = ensure_synthetic(tmp_path / "c", n=4, size=48, seed=8)
    assert _files(first) == _files(second)
    assert _files(first)["images/synth_0000.png"] != _files(other)["images/synth_0000.png"]


def test_vessels_are_visible_but_not_separable_by_intensity_alone() -> None:
    for look in ("fundus", "angio", "octa"):
        style = VesselStyle(look=look, fov=look == "fundus")
        image, mask, fov = render(np.random.default_rng([0, 1]), 128, style)
        inside = fov if fov is not None else np.ones_like(mask)
        grey = image.astype(np.float32).mean(-1)
        # Visible against the background next to it (a ring 3 px wide): lighting and anatomy (the bright optic
        # disc the fundus trees start from) change the background far more across the image than a vessel does.
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask
        vessel, background = grey[mask & inside], grey[ring & inside]
        assert 0.01 < mask[inside].mean() < 0.4, look  # thin structures, not the whole image
        gap = abs(vessel.mean() - background.mean())
        noise = style.noise * 255 / np.sqrt(3)  # std of the noise on a 3-channel mean
        assert gap > 2 * noise, (look, gap)  # clearly above the pixel noise
        best_dice = 0.0  # the best single global threshold still misses: texture, light and thin vessels
        for threshold in np.percentile(grey[inside], np.arange(2, 99, 2)):
            guess = (grey < threshold) if look != "octa" else (grey > threshold)
            guess &= inside
            dice = 2 * (guess & mask).sum() / max(1, guess.sum() + mask.sum())
            best_dice = max(best_dice, dice)
        assert best_dice < 0.9, (look, best_dice)


def test_existing_sets_are_reused_or_regenerated(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path / "syn", n=4, size=32, seed=1)
    stamp = (root / SPLIT_CSV).stat().st_mtime_ns
    assert ensure_synthetic(root, n=4, size=32, seed=1) == root
    assert (root / SPLIT_CSV).stat().st_mtime_ns == stamp  # same parameters: untouched
    ensure_synthetic(root, n=5, size=32, seed=1, look="angio", fov=False)
    assert len(read_split_csv(root)) == 5 and not (root / "fov").exists()
    assert json.loads((root / "synthetic.json").read_text())["style"]["look"] == "angio"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("something else")
    with pytest.raises(DatasetError, match="holds no data set"):
        ensure_synthetic(other, n=4, size=32)
    with pytest.raises(DatasetError, match="unknown style keys"):
        ensure_synthetic(tmp_path / "x", n=4, size=32, colour="red")


def test_a_crash_leaves_no_partial_data_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing(rng: np.random.Generator, size: int, style: VesselStyle) -> tuple:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return render(rng, size, style)

    monkeypatch.setattr(synthetic, "render", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_synthetic(tmp_path / "syn", n=6, size=32)
    assert list(tmp_path.iterdir()) == []


def test_command_line(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "salt.data.synthetic",
        "--out",
        str(tmp_path / "cli"),
        "--n",
        "5",
        "--size",
        "40",
    ]
    proc = subprocess.run(
        [*command, "--look", "angio", "--no-fov"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "train 3, val 1, test 1" in proc.stdout and not (tmp_path / "cli" / "fov").exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
