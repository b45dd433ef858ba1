"""Converters: tiny fixtures in each official layout go through ``python -m salt.data.prepare`` and load."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from salt.data import VesselDataset, check_dataset
from salt.data.layout import read_split_csv
from salt.data.prepare import Converter, cli, convert_drive, converter_names, load_converter
from salt.data.prepare.arcade import rasterise_polygons
from salt.data.prepare.cli import CONFIG_DIR, main
from salt.data.writer import DatasetWriter
from tests.data.releases import DRIVE_SIZE, write_arcade, write_drive


def _splits(root: Path) -> dict[str, int]:
    counts = {"train": 0, "val": 0, "test": 0}
    for row in read_split_csv(root):
        counts[row.split] += 1
    return counts


def test_drive_release_converts_and_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = write_drive(tmp_path / "DRIVE"), tmp_path / "drive"
    assert main(["drive", "--src", str(tmp_path), "--dst", str(dst)]) == 0  # parent of DRIVE/ works too
    out = capsys.readouterr().out
    assert "train 2, val 1, test 2" in out and "Result: OK" in out
    assert (dst / "images" / "21_training.tif").is_file() and (dst / "fov" / "21_training_fov.png").is_file()
    assert (dst / "masks" / "01_test_mask.png").is_file()
    manual = np.asarray(Image.open(src / "test" / "1st_manual" / "01_manual1.gif")) > 0
    ds = VesselDataset(dst, "test", img_size=64)
    original = ds.original([item.name for item in ds.items].index("01_test"))
    assert original["image"].shape == (*DRIVE_SIZE, 3) and np.array_equal(original["mask"][0], manual)
    assert original["fov"].shape == DRIVE_SIZE and 0.3 < original["fov"].mean() < 0.8
    item = ds[0]
    assert item["orig_size"].tolist() == list(DRIVE_SIZE) and item["pad"].tolist() == [0, 0, 0, 2]


def test_drive_without_test_annotations_takes_the_paper_split(tmp_path: Path) -> None:
    write_drive(tmp_path / "raw", n_train=8, n_test=2, test_manual=False)
    assert main(["drive", "--src", str(tmp_path / "raw"), "--dst", str(tmp_path / "drive")]) == 0
    assert _splits(tmp_path / "drive") == {"train": 1, "val": 1, "test": 6}


@pytest.mark.parametrize("level", ["arcade", "syntax"])
def test_arcade_release_converts_and_loads(tmp_path: Path, level: str) -> None:
    arcade = write_arcade(tmp_path / "raw")
    src = arcade if level == "arcade" else arcade / "syntax"
    assert main(["arcade", "--src", str(src), "--dst", str(tmp_path / "out")]) == 0
    assert _splits(tmp_path / "out") == {"train": 3, "val": 2, "test": 2}  # the release's own splits
    ds = VesselDataset(tmp_path / "out", "val", img_size=128)
    assert [item.name for item in ds.items] == ["val_1", "val_2"]  # every split numbers from 1
    mask = ds.original(0)["mask"][0]
    assert mask.shape == (512, 512) and mask[98:110, 70:100].all() and mask[98:110, 220:250].all()
    assert not mask[:60].any() and 0.01 < mask.mean() < 0.1  # union of the two polygons, nothing else
    assert ds[0]["mask"].shape == (1, 128, 128)


def test_arcade_non_square_images_keep_height_and_width_apart(tmp_path: Path) -> None:
    # (H, W) = (256, 400): the second polygon of each image reaches x = 331, past the height.
    src = write_arcade(tmp_path / "raw", {"train": 2, "val": 1, "test": 1}, size=(256, 400))
    assert main(["arcade", "--src", str(src), "--dst", str(tmp_path / "out")]) == 0
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "val_1_mask.png")) > 0
    assert mask.shape == (256, 400)
    assert mask[98:110, 70:100].all() and mask[108:122, 290:320].all()  # both polygons where they were drawn
    assert not mask[:, 340:].any() and not mask[160:].any()


def test_arcade_per_category_writes_class_indices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_arcade(tmp_path / "raw", {"train": 2, "val": 1, "test": 1})
    assert main(["arcade", "--src", str(src), "--dst", str(tmp_path / "out"), "--per-category"]) == 0
    assert "1=1, 2=2, 3=3" in capsys.readouterr().out
    values = np.unique(np.asarray(Image.open(tmp_path / "out" / "masks" / "train_1_mask.png")))
    assert values.tolist() == [0, 1, 3]
    ds = VesselDataset(tmp_path / "out", "train", img_size=64, num_classes=8)
    assert ds[0]["mask"].shape == (8, 64, 64) and ds.original(0)["mask"][[0, 2]].any(axis=(1, 2)).all()


def test_rose_and_xray_angio_presets(tmp_path: Path) -> None:
    rose = tmp_path / "ROSE-1" / "SVC"
    for split, names in (("train", ["01", "02", "03"]), ("test", ["31"])):
        for sub in ("img", "gt"):
            (rose / split / sub).mkdir(parents=True)
        for name in names:
            Image.fromarray(np.full((304, 304), 60, np.uint8)).save(rose / split / "img" / f"{name}.tif")
            Image.fromarray(np.eye(304, dtype=np.uint8) * 255).save(rose / split / "gt" / f"{name}.tif")
    assert main(["rose", "--src", str(tmp_path), "--dst", str(tmp_path / "rose")]) == 0
    assert _splits(tmp_path / "rose") == {"train": 2, "val": 1, "test": 1}
    angio = tmp_path / "Database_134_Angiograms"
    angio.mkdir()
    for i in range(1, 7):
        Image.fromarray(np.full((300, 300), 90 + i, np.uint8)).save(angio / f"{i}.pgm")
        Image.fromarray(np.eye(300, dtype=np.uint8) * 255).save(angio / f"{i}_gt.pgm")
    command = ["xray_angio", "--src", str(tmp_path), "--dst", str(tmp_path / "xa"), "--n-test", "2"]
    assert main(command) == 0
    assert _splits(tmp_path / "xa") == {"train": 3, "val": 1, "test": 2}
    assert check_dataset(tmp_path / "xa").counts["images"] == 6  # the *_gt.pgm files are not images


def test_folder_with_split_lists_and_fov(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for sub in ("pics", "labels", "fields"):
        (raw / sub).mkdir(parents=True)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(np.full((20, 30, 3), 70, np.uint8)).save(raw / "pics" / f"{name}.jpg")
        Image.fromarray(np.tri(20, 30, dtype=np.uint8)).save(raw / "labels" / f"{name}-seg.png")
        Image.fromarray(np.ones((20, 30), np.uint8) * 255).save(raw / "fields" / f"{name}.png")
    (tmp_path / "test.txt").write_text("d.jpg\n")
    (tmp_path / "train.txt").write_text("a\nb\nc\n")
    command = [
        "folder",
        "--src",
        str(raw),
        "--dst",
        str(tmp_path / "out"),
        "--images",
        "pics",
        "--masks",
        "labels",
    ]
    command += ["--mask-pattern", "{stem}-seg.png", "--fov", "fields", "--val-fraction", "0"]
    command += ["--train-list", str(tmp_path / "train.txt"), "--test-list", str(tmp_path / "test.txt")]
    assert main(command) == 0
    assert _splits(tmp_path / "out") == {"train": 3, "val": 0, "test": 1}
    labels = np.asarray(Image.open(tmp_path / "out" / "masks" / "a_mask.png"))
    assert labels.max() == 1  # label values kept as released
    assert (tmp_path / "out" / "fov" / "d_fov.png").is_file()


def test_user_mistakes_fail_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_drive(tmp_path / "raw", n_train=2, n_test=1)
    dst = tmp_path / "drive"
    assert main(["drive", "--src", str(tmp_path / "raw"), "--dst", str(dst)]) == 0
    assert main(["drive", "--src", str(tmp_path / "raw"), "--dst", str(dst)]) == 1
    assert "not empty (pass --overwrite" in capsys.readouterr().err
    assert main(["drive", "--src", str(tmp_path / "raw"), "--dst", str(dst), "--overwrite"]) == 0
    assert main(["drive", "--src", str(tmp_path / "nowhere"), "--dst", str(tmp_path / "x")]) == 1
    assert "not a DRIVE release" in capsys.readouterr().err
    (tmp_path / "raw" / "training" / "mask" / "21_training_mask.gif").unlink()
    assert main(["drive", "--src", str(tmp_path / "raw"), "--dst", str(tmp_path / "y")]) == 1
    assert "21_training_mask.gif: missing" in capsys.readouterr().err
    assert main(["dias", "--src", str(tmp_path), "--dst", str(tmp_path / "z")]) == 1
    assert "not a DIAS release" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def _shoelace(points: np.ndarray) -> float:
    """Area of a simple polygon ``(N, 2)``: the geometric reference the rasterised pixel count must meet."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _vessel(width: float, kind: str) -> np.ndarray:
    """Outline ``(N, 2)`` (x, y) of a vessel segment ``width`` px wide: a straight box or a circular arc.

    (A thin straight band at an angle samples the pixel grid unevenly, a few percent off its area either way
    whoever rasterises it; along an arc those errors average out.)
    """
    if kind == "box":  # axis-aligned, at a sub-pixel offset
        x0, y0 = 100.3, 200.7
        return np.array([[x0, y0], [x0 + 200, y0], [x0 + 200, y0 + width], [x0, y0 + width]])
    t = np.linspace(0.2, 2.6, 80)
    radius = 150.0
    outer = np.stack([256 + (radius + width / 2) * np.cos(t), 256 + (radius + width / 2) * np.sin(t)], 1)
    inner = np.stack([256 + (radius - width / 2) * np.cos(t), 256 + (radius - width / 2) * np.sin(t)], 1)
    return np.concatenate([outer, inner[::-1]])


@pytest.mark.parametrize("kind", ["box", "arc"])
@pytest.mark.parametrize("width", [2, 3, 4, 6, 10])
def test_arcade_polygons_cover_their_annotated_area(width: int, kind: str) -> None:
    outline = _vessel(width, kind)
    annotation = {"id": 1, "category_id": 1, "segmentation": [outline.ravel().tolist()]}
    labels = rasterise_polygons([annotation], 512, 512, {1: 1}, "test.json")
    area = _shoelace(outline)
    assert abs(int((labels == 1).sum()) - area) <= 0.01 * area, (int((labels == 1).sum()), area)
    # the COCO reference rasteriser gives the same pixels
    reference = coco_mask.decode(coco_mask.frPyObjects([outline.ravel().tolist()], 512, 512))[..., 0]
    assert np.array_equal(labels == 1, reference > 0)


class _Copy(Converter):
    """A throw-away converter: the DRIVE conversion under another name, built from its YAML alone."""

    def convert(
        self, args: argparse.Namespace, src: Path, dst: Path, val_fraction: float, seed: int, overwrite: bool
    ) -> DatasetWriter:
        return convert_drive(src, dst, val_fraction=val_fraction, seed=seed, overwrite=overwrite)


def test_every_config_file_is_a_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    names = converter_names()
    assert names == sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert {"drive", "arcade", "folder", "rose", "xray_angio", "dias"} <= set(names)
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    for name in names:
        assert load_converter(name).summary in " ".join(listed.split())


def test_unknown_converter_is_refused_in_one_line_naming_those_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drvie", "--src", str(tmp_path), "--dst", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown converter 'drvie'" in err
    assert f"(valid: {', '.join(converter_names())};" in err
    assert not (tmp_path / "out").exists()


def test_a_converter_is_its_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tmp_path / "prepare"
    configs.mkdir()
    (configs / "copy.yaml").write_text(f"_target_: {__name__}._Copy\nsummary: a copy of DRIVE\n")
    monkeypatch.setattr(cli, "CONFIG_DIR", configs)
    assert converter_names() == ["copy"]
    write_drive(tmp_path / "raw", n_train=2, n_test=1)
    assert main(["copy", "--src", str(tmp_path / "raw"), "--dst", str(tmp_path / "out")]) == 0
    assert _splits(tmp_path / "out") == {"train": 1, "val": 1, "test": 1}
    assert main(["drive", "--src", str(tmp_path / "raw"), "--dst", str(tmp_path / "x")]) == 2
