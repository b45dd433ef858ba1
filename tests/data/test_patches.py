"""Patch mode's data: positive/negative-balanced windows inside the field of view, padding of windows larger
than the image, whole images at a pixel scale, and settings refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from salt.data import DatasetError, VesselDataset
from salt.data.patches import (
    PatchSettings,
    PatchTrainDataset,
    WholeImageDataset,
    equalize_contrast,
    image_range,
)

SIDE = 200
WINDOW = 32


def write_set(root: Path, size: tuple[int, int] = (SIDE, SIDE), n: int = 2) -> Path:
    """A canonical-layout set: a foreground band (rows 90-109, cols 40-159) inside a centred circular FOV of
    radius 0.45 x side; the image is bright where the label is, so a window's pixels show what it holds. The last
    image is the test split, the one before it val when ``n > 2``, the rest train."""
    height, width = size
    for sub in ("images", "masks", "fov"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:height, :width]
    fov = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 <= (0.45 * min(height, width)) ** 2
    mask = np.zeros((height, width), bool)
    mask[int(0.45 * height) : int(0.55 * height), int(0.2 * width) : int(0.8 * width)] = True
    rows = ["imgs,split"]
    for i in range(n):
        image = np.where(mask, 200, 60) * fov
        Image.fromarray(np.repeat(image[..., None], 3, -1).astype(np.uint8)).save(
            root / "images" / f"{i}.png"
        )
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"{i}.png")
        Image.fromarray(fov.astype(np.uint8) * 255).save(root / "fov" / f"{i}_fov.png")
        split = "test" if i == n - 1 else ("val" if i == n - 2 and n > 2 else "train")
        rows.append(f"{i}.png,{split}")
    (root / "data_split.csv").write_text("\n".join(rows) + "\n")
    return root


def patch_train(root: Path, **settings: object) -> PatchTrainDataset:
    base = VesselDataset(root, "train", img_size=WINDOW)
    return PatchTrainDataset(base, WINDOW, PatchSettings.from_config({"windows_per_epoch": 200, **settings}))


def test_windows_follow_the_positive_fraction_and_stay_in_the_field_of_view(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set")
    torch.manual_seed(0)
    centre = WINDOW // 2
    positive = patch_train(root, pos_fraction=1.0)
    assert len(positive) == 200
    items = [positive[i] for i in range(len(positive))]
    assert all(item["mask"][0, centre, centre] == 1 for item in items)
    assert {tuple(item["image"].shape) for item in items} == {(3, WINDOW, WINDOW)}
    negative = patch_train(root, pos_fraction=0.0)
    items = [negative[i] for i in range(200)]
    assert all(item["mask"][0, centre, centre] == 0 and item["fov"][0, centre, centre] for item in items)
    half = patch_train(root, pos_fraction=0.5)
    share = np.mean([half[i]["mask"][0, centre, centre].item() for i in range(200)])
    # the band covers about 4 % of the field of view: uniform windows would almost never be centred on it
    assert 0.38 < share < 0.62


def test_window_pixels_are_the_images_own(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set")
    item = patch_train(root, pos_fraction=1.0)[0]
    # scale 1, no augmentation: 200 on the band, 60 elsewhere in the field of view, 0 outside it
    image, mask, fov = item["image"][0], item["mask"][0] > 0, item["fov"][0]
    # the reader stretches each file to [0, 255]: 200 -> 255, 60 -> 76, 0 -> 0
    assert torch.all(image[mask] == 255)
    assert torch.all(image[~mask & fov] == 76)
    assert torch.all(image[~fov] == 0)


def test_a_window_larger_than_the_image_is_padded_outside_the_field_of_view(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set", size=(20, 24))
    item = patch_train(root, pos_fraction=0.5)[0]
    assert tuple(item["image"].shape) == (3, WINDOW, WINDOW)
    assert tuple(item["fov"].shape) == (1, WINDOW, WINDOW)
    assert item["fov"].sum() <= 20 * 24  # the padding is outside the field of view
    assert item["fov"].any()
    assert item["image"][:, ~item["fov"][0]].eq(0).all()


def test_a_scale_larger_than_the_window_makes_the_whole_image_fit_with_padding(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set", size=(SIDE, SIDE))
    item = patch_train(root, scale=0.1)[0]  # 200 px -> 20 px, smaller than the 32 px window
    assert tuple(item["image"].shape) == (3, WINDOW, WINDOW)
    assert item["fov"].sum() <= 20 * 20


def test_whole_images_at_a_scale_and_back(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set", size=(100, 140))
    base = VesselDataset(root, "test", img_size=WINDOW)
    whole = WholeImageDataset(base, PatchSettings.from_config({"scale": 0.5}))
    item = whole[0]
    assert tuple(item["image"].shape) == (3, 50, 70)
    assert tuple(item["mask"].shape) == (1, 50, 70)
    assert item["orig_size"].tolist() == [100, 140]
    back = whole.to_original(item["mask"], 0)
    assert tuple(back.shape) == (1, 100, 140)
    original = whole.original(0)["mask"][0]
    assert (back[0] > 0.5).numpy().astype(bool).__eq__(original).mean() > 0.98
    native = WholeImageDataset(base, PatchSettings.from_config({}))
    assert torch.equal(native[0]["mask"][0].bool(), torch.from_numpy(original))


def test_image_normalisation_stretches_each_image_by_its_own_range() -> None:
    image = np.array([[[10, 60, 210], [110, 10, 10]]], dtype=np.uint8)  # (1, 2, 3), range [10, 210]
    # (x - 10) * 255 / 200, rounded: 0, 63.75 -> 64, 255, 127.5 -> 128
    assert image_range(image).tolist() == [[[0, 64, 255], [128, 0, 0]]]
    assert image_range(np.full((2, 2, 3), 7, np.uint8)).max() == 0  # a constant image


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"scale": 0}, r"patch\.scale=0 must be a number > 0"),
        ({"overlap": 1.0}, r"patch\.overlap=1\.0 must be in \[0, 1\)"),
        ({"pos_fraction": 1.5}, r"patch\.pos_fraction=1\.5 must be in \[0, 1\]"),
        ({"blend": "max"}, r"patch\.blend='max' must be one of gaussian, constant"),
        ({"windows_per_epoch": 0}, r"patch\.windows_per_epoch=0 must be an int >= 1"),
        ({"normalize": "dataset"}, r"patch\.normalize='dataset' must be one of window, image"),
        ({"clahe": -1}, r"patch\.clahe=-1 must be a number >= 0 \(0: off\)"),
        ({"stride": 3}, r"patch: unknown keys \['stride'\]"),
    ],
)
def test_invalid_settings_are_refused_naming_the_key(settings: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        PatchSettings.from_config(settings)


def lightness(image: np.ndarray) -> np.ndarray:
    """CIE L* in [0, 100] of ``image (H, W, 3)`` uint8 sRGB, from the CIE formulas (not OpenCV)."""
    rgb = image.astype(np.float64) / 255.0
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 0.008856, 116 * np.cbrt(y) - 16, 903.3 * y)


def test_clahe_spreads_a_faint_images_lightness_tile_by_tile_and_keeps_its_colour() -> None:
    rng = np.random.default_rng(0)
    # a dim reddish image with faint texture whose brightness drifts from left to right, as a fundus photograph
    drift = np.linspace(0, 40, 128)[None, :, None]
    base = np.array([120.0, 60.0, 30.0])
    image = np.clip(base + drift + rng.normal(0, 3, (128, 128, 1)), 0, 255).astype(np.uint8)
    assert equalize_contrast(image, 0) is image  # 0: off
    out = equalize_contrast(image, 2.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    before, after = lightness(image), lightness(out)
    # each 16 x 16 tile's lightness spread is widened (the faint texture shows), wherever the tile lies on the drift
    tiles = [(r, c) for r in range(0, 128, 16) for c in range(0, 128, 16)]
    gain = [after[r : r + 16, c : c + 16].std() / before[r : r + 16, c : c + 16].std() for r, c in tiles]
    assert min(gain) > 1.5
    # the hue stays red-orange: the channels keep their order almost everywhere
    assert np.mean((out[..., 0] >= out[..., 1]) & (out[..., 1] >= out[..., 2])) > 0.99


def test_clahe_is_what_windows_and_whole_images_are_cut_from(tmp_path: Path) -> None:
    root = write_set(tmp_path / "set", n=3)
    rng = np.random.default_rng(1)
    # a textured train and test image, so a window's pixels fix where it was cut
    for name in ("0.png", "2.png"):
        texture = rng.integers(60, 90, (SIDE, SIDE, 1)) + np.array([40, 10, 0])
        Image.fromarray(texture.astype(np.uint8)).save(root / "images" / name)
    settings = {"clahe": 3.0, "normalize": "image"}
    plain = WholeImageDataset(VesselDataset(root, "test", img_size=WINDOW), PatchSettings.from_config({}))
    whole = WholeImageDataset(
        VesselDataset(root, "test", img_size=WINDOW), PatchSettings.from_config(settings)
    )
    original = plain[0]["image"].permute(1, 2, 0).numpy().astype(np.uint8)
    expected = image_range(equalize_contrast(original, 3.0))
    assert np.array_equal(whole[0]["image"].permute(1, 2, 0).numpy(), expected)
    assert not np.array_equal(expected, image_range(original))
    train_source = WholeImageDataset(
        VesselDataset(root, "train", img_size=WINDOW), PatchSettings.from_config(settings)
    )
    source = train_source[0]["image"].numpy()  # (3, H, W): the equalised train image
    # every S x S window of it: (H-S+1, W-S+1, 3, S, S)
    views = np.lib.stride_tricks.sliding_window_view(source, (3, WINDOW, WINDOW))[0]
    windows = patch_train(root, **settings)
    checked = 0
    for i in range(20):
        window = windows[i]["image"].numpy()
        inside = window.any(0)  # windows reaching past the border are zero-padded there: not comparable
        if not inside.all():
            continue
        assert np.argwhere((views == window).all(axis=(2, 3, 4))).size > 0  # cut from the equalised image
        checked += 1
        if checked == 3:
            break
    assert checked == 3, f"only {checked} of 20 windows lay wholly inside the image"
