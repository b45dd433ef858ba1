"""Reading every supported format through MONAI, label maps, and the errors for bad files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK
from PIL import Image

from salt.data.layout import DatasetError, FileError
from salt.data.reading import (
    label_problem,
    labels_to_masks,
    normalise_label_map,
    read_image,
    read_labels,
    volume_shape,
)

GREY = np.tile(np.arange(40, 200, 2, dtype=np.uint8), (30, 1))  # (30, 80) horizontal ramp


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".gif", ".bmp", ".pgm"])
def test_grey_planar_formats_become_rescaled_rgb(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"ramp{suffix}"
    Image.fromarray(GREY).save(path)
    (image,) = read_image(path)
    assert image.shape == (30, 80, 3) and image.dtype == np.uint8
    assert np.array_equal(image[..., 0], image[..., 2])  # grey repeated into 3 channels
    assert image.min() == 0 and image.max() == 255  # per-image rescale to [0, 255]
    assert image[0, 0, 0] < image[0, -1, 0]  # orientation kept: (H, W), ramp rises left to right


def test_sixteen_bit_rgba_and_palette_images(tmp_path: Path) -> None:
    Image.fromarray(GREY.astype(np.uint16) * 200).save(tmp_path / "deep.png")
    rgba = np.dstack([GREY, GREY // 2, GREY // 3, np.full_like(GREY, 255)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(GREY).convert("P").save(tmp_path / "palette.png")
    for name in ("deep.png", "rgba.png", "palette.png"):
        (image,) = read_image(tmp_path / name)
        assert image.shape == (30, 80, 3) and image.dtype == np.uint8 and image.max() == 255, name
    (rgb,) = read_image(tmp_path / "rgba.png")
    assert rgb[0, -1, 0] > rgb[0, -1, 2]  # colour channels kept in RGB order, alpha dropped


def test_volumes_are_sliced_along_the_axis_the_same_for_every_format(tmp_path: Path) -> None:
    volume = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)  # (X, Y, Z)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "v.nii.gz")
    for suffix in (".mha", ".nrrd"):
        SimpleITK.WriteImage(SimpleITK.GetImageFromArray(volume.T), str(tmp_path / f"v{suffix}"))  # (Z, Y, X)
    for name in ("v.nii.gz", "v.mha", "v.nrrd"):
        assert volume_shape(tmp_path / name) == (4, 5, 3), name
        planes = read_labels(tmp_path / name, slice_axis=2)
        assert len(planes) == 3 and all(np.array_equal(planes[k], volume[:, :, k]) for k in range(3)), name
        images = read_image(tmp_path / name, slice_axis=0)
        assert len(images) == 4 and images[0].shape == (5, 3, 3), name
    with pytest.raises(FileError, match="slice_axis=5"):
        read_image(tmp_path / "v.nii.gz", slice_axis=5)


def test_labels_default_to_foreground_above_zero_and_map_values() -> None:
    labels = np.array([[0, 255, 128], [1, 0, 2]], dtype=np.uint8)
    assert labels_to_masks(labels).tolist() == [[[False, True, True], [True, False, True]]]
    two = labels_to_masks(labels, None, num_classes=2)  # values are class indices
    assert two.shape == (2, 2, 3) and two[0, 1, 0] and two[1, 1, 2] and not two[:, 0, 1].any()
    mapped = labels_to_masks(labels, normalise_label_map({"255": 1, 128: 0, 2: 2}, 2), num_classes=2)
    assert mapped[0].tolist() == [[False, True, False], [False, False, False]]
    assert mapped[1].tolist() == [[False, False, False], [False, False, True]]


def test_unexpected_mask_values_are_described() -> None:
    binary = np.array([[0, 255]], dtype=np.uint8)
    soft = np.array([[0, 128, 255]], dtype=np.uint8)
    assert label_problem(binary, None, 1) is None
    assert "0, 128, 255" in label_problem(soft, None, 1)
    assert label_problem(soft, {128.0: 1, 255.0: 1}, 1) is None
    assert "[3]" in label_problem(np.array([[0, 1, 3]], dtype=np.uint8), None, 2)
    with pytest.raises(DatasetError, match=r"outside 0\.\.1"):
        normalise_label_map({255: 2}, 1)
    with pytest.raises(DatasetError, match="not a number"):
        normalise_label_map({"vessel": 1}, 1)


def test_bad_files_raise_with_their_path(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "garbage.png").write_bytes(b"not an image at all")
    colour = np.zeros((4, 4, 3), dtype=np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(FileError, match=r"empty\.png: empty file"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(FileError, match=r"garbage\.png: cannot be read"):
        read_image(tmp_path / "garbage.png")
    with pytest.raises(FileError, match="colour mask"):
        read_labels(tmp_path / "colour.png")
