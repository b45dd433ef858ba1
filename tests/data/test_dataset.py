"""``VesselDataset``: the item contract, caching, original-resolution access, volumes and label maps."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import salt.data.dataset as dataset_module
from salt.data import DatasetError, VesselDataset, augment_settings
from salt.data.datamodule import VesselDataModule
from salt.data.layout import write_split_csv


def test_items_follow_the_contract_and_collate(synthetic_root: Path) -> None:
    ds = VesselDataset(synthetic_root, "train", img_size=48, augment=augment_settings())
    item = ds[0]
    assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
    assert item["image"].min() >= 0 and item["image"].max() <= 255 and item["image"].max() > 1
    assert item["mask"].shape == (1, 48, 48) and item["mask"].dtype == torch.float32
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert item["fov"].shape == (1, 48, 48) and item["fov"].dtype == torch.bool
    assert item["orig_size"].tolist() == [64, 64] and item["pad"].tolist() == [0, 0, 0, 0]
    assert item["name"] == ds.items[0].name and item["index"] == 0
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 3, 48, 48) and batch["pad"].shape == (3, 4)
    assert batch["orig_size"].dtype == torch.long and len(batch["name"]) == 3
    assert ds.augment is not None
    assert VesselDataset(synthetic_root, "val", img_size=48, augment=augment_settings()).augment is None
    assert not item["fov"].all()  # the synthetic set has FOV masks: a disc, with background around it
    # At the files' own size the FOV and mask channels are the files themselves.
    val = VesselDataset(synthetic_root, "val", img_size=64)
    for i in range(len(val)):
        stem = val.items[i].name
        fov = np.asarray(Image.open(synthetic_root / "fov" / f"{stem}_fov.png")) > 0
        mask = np.asarray(Image.open(synthetic_root / "masks" / f"{stem}_mask.png")) > 0
        assert np.array_equal(val[i]["fov"][0].numpy(), fov) and not fov.all()
        assert np.array_equal(val[i]["mask"][0].numpy() > 0, mask)


def test_original_and_mapping_back(synthetic_root: Path) -> None:
    ds = VesselDataset(synthetic_root, "test", img_size=40)
    original = ds.original(1)
    assert original["image"].shape == (64, 64, 3) and original["image"].dtype == np.uint8
    assert original["mask"].shape == (1, 64, 64) and original["mask"].dtype == bool
    assert original["fov"].shape == (64, 64) and original["fov"].dtype == bool and not original["fov"].all()
    assert not (original["mask"][0] & ~original["fov"]).any()  # vessels only inside the field of view
    item = ds[1]
    back = ds.to_original(item["mask"] * 2 - 1, 1)  # mask as logits, mapped back bilinearly
    assert back.shape == (1, 64, 64)
    agree = ((back[0] > 0).numpy() == original["mask"][0]).mean()
    assert agree > 0.9, agree


def test_decoded_files_are_cached(synthetic_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = dataset_module.read_image
    monkeypatch.setattr(
        dataset_module, "read_image", lambda path, axis: calls.append(path) or real(path, axis)
    )
    cached = VesselDataset(synthetic_root, "train", img_size=32)
    for _ in range(2):
        for i in range(len(cached)):
            cached[i]
    assert len(calls) == len(cached)
    calls.clear()
    uncached = VesselDataset(synthetic_root, "train", img_size=32, cache=False)
    uncached[0], uncached[0]
    assert len(calls) == 2


def test_empty_split_and_bad_settings_raise(synthetic_copy: Path) -> None:
    write_split_csv(
        synthetic_copy, [(p.name, "train") for p in sorted((synthetic_copy / "images").iterdir())]
    )
    with pytest.raises(DatasetError, match="no rows with split 'test'"):
        VesselDataset(synthetic_copy, "test", img_size=32)
    with pytest.raises(DatasetError, match="unknown split 'training'"):
        VesselDataset(synthetic_copy, "training", img_size=32)
    with pytest.raises(DatasetError, match="resize: unknown mode"):
        VesselDataset(synthetic_copy, "train", img_size=32, resize="crop")


def test_a_broken_folder_stops_construction_with_the_file_named(synthetic_copy: Path) -> None:
    mask = sorted((synthetic_copy / "masks").iterdir())[0]
    mask.unlink()
    stem = mask.name.removesuffix("_mask.png")
    with pytest.raises(DatasetError, match=rf"images/{stem}\.png: no mask") as info:
        VesselDataset(synthetic_copy, "train", img_size=32)
    assert "python -m salt.data.check" in str(info.value) and "\n" not in str(info.value)


def test_volumes_give_one_item_per_slice(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    image = np.random.default_rng(0).integers(0, 1000, (20, 24, 3)).astype(np.int16)  # (X, Y, Z)
    labels = np.zeros((20, 24, 3), dtype=np.uint8)
    labels[5:15, 6:18, :] = 1
    nib.save(nib.Nifti1Image(image, np.eye(4)), root / "images" / "case.nii.gz")
    nib.save(nib.Nifti1Image(labels, np.eye(4)), root / "masks" / "case_mask.nii.gz")
    write_split_csv(root, [("case.nii.gz", "train")])
    ds = VesselDataset(root, "train", img_size=32)
    assert len(ds) == 3 and [ds[k]["name"] for k in range(3)] == ["case_z000", "case_z001", "case_z002"]
    assert ds[2]["orig_size"].tolist() == [20, 24] and ds[2]["fov"].all()  # no FOV file: all True
    assert np.array_equal(ds.original(1)["mask"][0], labels[:, :, 1] > 0)


def test_multi_class_masks_through_a_label_map(tmp_path: Path) -> None:
    root = tmp_path / "multi"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    labels = np.zeros((16, 16), dtype=np.uint8)
    labels[:8], labels[8:12] = 100, 200
    Image.fromarray(np.full((16, 16), 80, np.uint8)).save(root / "images" / "a.png")
    Image.fromarray(labels).save(root / "masks" / "a.png")  # a mask with the image's own stem
    write_split_csv(root, [("a", "train")])  # a stem names the image too
    ds = VesselDataset(root, "train", img_size=16, label_map={100: 1, 200: 2}, num_classes=2)
    mask = ds[0]["mask"]
    assert mask.shape == (2, 16, 16) and mask[0, :8].all() and mask[1, 8:12].all() and mask[:, 12:].sum() == 0
    with pytest.raises(DatasetError, match="not in the label map"):
        VesselDataset(root, "train", img_size=16, label_map={100: 1}, num_classes=1)


def _split_names(root: Path, *splits: str) -> list[str]:
    """Image stems of ``splits`` in data_split.csv's order, read with the csv module."""
    with open(root / "data_split.csv", newline="") as handle:
        return [
            Path(row["imgs"]).name.split(".")[0] for row in csv.DictReader(handle) if row["split"] in splits
        ]


def test_a_dataset_of_two_splits_holds_both_in_file_order_and_augments(synthetic_root: Path) -> None:
    augment = augment_settings()
    both = VesselDataset(synthetic_root, ("train", "val"), img_size=64, augment=augment)
    expected = _split_names(synthetic_root, "train", "val")
    assert len(_split_names(synthetic_root, "val")) > 0
    assert [item.name for item in both.items] == expected
    assert both.split == "train+val"
    assert both.augment is not None
    assert VesselDataset(synthetic_root, "val", img_size=64, augment=augment).augment is None


@pytest.mark.parametrize("bad", [("train", "tests"), ()])
def test_a_dataset_refuses_an_unknown_or_empty_split_list(synthetic_root: Path, bad: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="split"):
        VesselDataset(synthetic_root, bad, img_size=64)


def test_a_folder_without_val_trains_on_train_val_and_otherwise_says_how(synthetic_copy: Path) -> None:
    with open(synthetic_copy / "data_split.csv", newline="") as handle:
        rows = [
            (row["imgs"], "train" if row["split"] == "val" else row["split"])
            for row in csv.DictReader(handle)
        ]
    write_split_csv(synthetic_copy, rows)  # what `--val-fraction 0` converts
    settings = {"name": "synthetic", "root": str(synthetic_copy), "img_size": 64, "num_classes": 1}
    with pytest.raises(DatasetError, match=r"no rows with split 'val'.*data\.train_splits=\[train,val\]"):
        VesselDataModule(settings).setup("fit")
    final = VesselDataModule(settings, train_splits=["train", "val"])
    final.setup("fit")
    assert len(final.datasets["train"]) == sum(1 for _, split in rows if split == "train")
    assert "val" not in final.datasets
