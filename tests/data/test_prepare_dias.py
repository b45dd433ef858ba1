"""The DIAS converter on releases written in the real layout: sequences to one input each, splits, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salt.data import VesselDataset
from salt.data.layout import read_split_csv
from salt.data.prepare.cli import main
from tests.data.releases import write_dias


def _splits(root: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in read_split_csv(root):
        out.setdefault(row.split, []).append(Path(row.imgs).stem)
    return {k: sorted(v) for k, v in out.items()}


def _frames(src: Path, folder: str, number: int) -> list[np.ndarray]:
    images = src / "DIAS" / folder / "images"
    count = len(list(images.glob(f"image_s{number}_i*.png")))
    return [np.asarray(Image.open(images / f"image_s{number}_i{k}.png")) for k in range(count)]


def _label(src: Path, folder: str, number: int) -> np.ndarray:
    return np.asarray(Image.open(src / "DIAS" / folder / "labels" / f"label_s{number}.png")) > 0


def test_full_release_keeps_its_splits_and_maps_labels_to_their_sequence(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_dias(raw, {"training": {1: 4, 2: 4, 10: 5, 100: 7}, "validation": {30: 6}, "test": {40: 5}})
    assert main(["dias", "--src", str(raw), "--dst", str(tmp_path / "out")]) == 0
    splits = _splits(tmp_path / "out")
    assert splits == {"train": ["s1", "s10", "s100", "s2"], "val": ["s30"], "test": ["s40"]}
    # s1, s10 and s100 share prefixes, and s2 sorts after them as text: each keeps its own label
    for number in (1, 2, 10, 100):
        mask = np.asarray(Image.open(tmp_path / "out" / "masks" / f"s{number}_mask.png")) > 0
        assert np.array_equal(mask, _label(raw, "training", number)), number
    ds = VesselDataset(tmp_path / "out", "test", img_size=64)
    assert [item.name for item in ds.items] == ["s40"] and ds.original(0)["mask"].shape == (1, 800, 800)


def test_minip_is_the_darkest_value_over_the_frames(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_dias(raw, {"training": {3: 6, 4: 4}, "test": {50: 4}})
    assert main(["dias", "--src", str(raw), "--dst", str(tmp_path / "out"), "--frames", "minip"]) == 0
    image = np.asarray(Image.open(tmp_path / "out" / "images" / "s3.png"))
    frames = _frames(raw, "training", 3)
    want = frames[0].copy()
    for frame in frames[1:]:  # an independent running minimum, pixel by pixel
        want = np.where(frame < want, frame, want)
    assert image.shape == (800, 800) and image.dtype == np.uint8
    assert np.array_equal(image, want)
    label = _label(raw, "training", 3)
    # the projection shows every vessel of the label, each frame only part of them
    assert image[label].mean() < min(frame[label].mean() for frame in frames) - 1


@pytest.mark.parametrize("rule", ["last", "three", None])
def test_other_frame_rules(tmp_path: Path, rule: str | None) -> None:
    raw = tmp_path / "raw"
    write_dias(raw, {"training": {5: 5, 6: 4}, "test": {50: 4}})
    argv = ["dias", "--src", str(raw), "--dst", str(tmp_path / "out")] + (["--frames", rule] if rule else [])
    assert main(argv) == 0  # without --frames: three
    image = np.asarray(Image.open(tmp_path / "out" / "images" / "s5.png"))
    frames = _frames(raw, "training", 5)
    if rule == "last":
        assert np.array_equal(image, frames[4])
    else:  # first, middle ((5 - 1) // 2 = 2) and last frame as R, G, B
        assert image.shape == (800, 800, 3)
        for channel, k in enumerate((0, 2, 4)):
            assert np.array_equal(image[..., channel], frames[k]), channel


def test_without_a_test_folder_the_paper_test_size_is_drawn_from_training(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_dias(raw, {"training": dict.fromkeys(range(12), 4), "validation": {30: 4, 31: 4}})
    assert main(["dias", "--src", str(raw / "DIAS"), "--dst", str(tmp_path / "out")]) == 0
    splits = _splits(tmp_path / "out")
    assert (len(splits["train"]), splits["val"], len(splits["test"])) == (2, ["s30", "s31"], 10)


def _stray(root: Path) -> Path:
    path = root / "training" / "images" / "Thumbs.db"
    path.write_bytes(b"\x00" * 64)
    return path


def _no_label(root: Path) -> Path:
    (root / "training" / "labels" / "label_s1.png").unlink()
    return root / "training" / "images" / "image_s1_i0.png"


def _label_without_frames(root: Path) -> Path:
    path = root / "training" / "labels" / "label_s7.png"
    Image.fromarray(np.zeros((800, 800), np.uint8)).save(path)
    return path


def _other_size(root: Path) -> Path:
    path = root / "training" / "images" / "image_s0_i2.png"
    Image.fromarray(np.full((800, 700), 170, np.uint8)).save(path)
    return path


def _too_many_frames(root: Path) -> Path:
    for k in range(5, 8):  # sequence 0 had 5 frames: now 8
        Image.fromarray(np.full((800, 800), 170, np.uint8)).save(
            root / "training" / "images" / f"image_s0_i{k}.png"
        )
    return root / "training" / "images" / "image_s0_i0.png"


def _missing_frame(root: Path) -> Path:
    path = root / "training" / "images" / "image_s0_i2.png"
    path.unlink()
    return path


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_stray, "not a DIAS frame"),
        (_no_label, "has no label"),
        (_label_without_frames, "a label without frames"),
        (_other_size, "frame of size (800, 700)"),
        (_too_many_frames, "has 8 frames"),
        (_missing_frame, "missing from sequence 0"),
    ],
)
def test_a_malformed_release_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage, problem: str
) -> None:
    raw = tmp_path / "raw"
    root = write_dias(raw, {"training": {0: 5, 1: 4}, "test": {50: 4}})
    named = damage(root)
    capsys.readouterr()
    dst = tmp_path / "data" / "dias"
    assert main(["dias", "--src", str(raw), "--dst", str(dst)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {named}: ") and problem in err, err
    assert not dst.exists()  # nothing half-written, no staging folder left beside it
    assert not dst.parent.exists() or not any(dst.parent.iterdir())
