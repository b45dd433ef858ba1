"""Decoding image and label files with MONAI's readers into plain numpy arrays.

Planar formats (PNG, JPEG, TIFF, GIF, BMP, PGM/PPM) go through ``PILReader`` in PIL's own axis order,
``(H, W[, ch])``. Volumes go through ``NibabelReader`` (NIfTI) or a SimpleITK reader (MHA/MHD/NRRD; MONAI's
``ITKReader`` needs the separate ``itk`` package); both return ``(X, Y, Z)`` and are cut into 2D slices along
a configured axis, image and mask alike, so they stay aligned.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK
from monai.data import ImageReader, NibabelReader, PILReader
from monai.transforms import LoadImage
from monai.utils import ensure_tuple
from PIL import Image

from salt.data.layout import DatasetError, FileError, file_suffix, is_volume

SITK_SUFFIXES = (".mha", ".mhd", ".nrrd")
# PIL modes turned into RGB or grey before decoding; others (L, RGB, I;16, I, F) are kept as they are.
_TO_RGB = {"P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_GREY = {"1", "LA", "La"}


class SimpleITKReader(ImageReader):
    """MONAI reader for MHA/MHD/NRRD files through SimpleITK; arrays in ``(X, Y[, Z])`` order like nibabel."""

    def verify_suffix(self, filename: Sequence[str | Path] | str | Path) -> bool:
        """True when every file name ends in a SimpleITK suffix."""
        return all(file_suffix(Path(f)) in SITK_SUFFIXES for f in ensure_tuple(filename))

    def read(self, data: Sequence[str | Path] | str | Path, **kwargs: Any) -> Any:
        """Open one file (the loader always passes one)."""
        return SimpleITK.ReadImage(str(ensure_tuple(data)[0]))

    def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
        """Scalar image as ``(X, Y[, Z])`` plus its spatial shape."""
        if img.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError("vector-valued pixels are not supported")
        array = SimpleITK.GetArrayFromImage(img).T  # (Z, Y, X) -> (X, Y, Z)
        return array, {"spatial_shape": np.asarray(array.shape), "original_channel_dim": float("nan")}


def _image_mode(img: Image.Image) -> Image.Image:
    if img.mode in _TO_RGB:
        return img.convert("RGB")
    return img.convert("L") if img.mode in _TO_GREY else img


def _label_mode(img: Image.Image) -> Image.Image:
    # Palette indices are the labels of a palette mask, so "P" stays; transparency carries no label.
    if img.mode in {"RGBA", "RGBa", "RGBX"}:
        return img.convert("RGB")
    return img.convert("L") if img.mode in _TO_GREY else img


_LOADER = LoadImage(image_only=True, dtype=None)
_IMAGE_READER = PILReader(converter=_image_mode, reverse_indexing=False)
_LABEL_READER = PILReader(converter=_label_mode, reverse_indexing=False)
_NIFTI_READER = NibabelReader(as_closest_canonical=False, squeeze_non_spatial_dims=True)
_SITK_READER = SimpleITKReader()


def _first_line(err: Exception) -> str:
    """``Type: message`` on one line, since reports list one problem per line."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def load_array(path: Path, labels: bool = False) -> np.ndarray:
    """Decode ``path``: planar files give ``(H, W)`` or ``(H, W, ch)``, volumes ``(X, Y[, Z])``.

    Raises:
        DatasetError: empty, undecodable or unsupported file.
    """
    suffix = file_suffix(path)
    if suffix in SITK_SUFFIXES:
        reader: ImageReader = _SITK_READER
    elif is_volume(path):
        reader = _NIFTI_READER
    else:
        reader = _LABEL_READER if labels else _IMAGE_READER
    try:
        if path.stat().st_size == 0:
            raise FileError(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            # PIL hands out read-only arrays; MONAI wraps them in a tensor, which only ever gets copied.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return np.asarray(_LOADER(path, reader=reader))
    except DatasetError:
        raise
    except Exception as err:
        raise FileError(path, f"cannot be read ({_first_line(err)})") from err


def _planes(array: np.ndarray, path: Path, slice_axis: int) -> list[np.ndarray]:
    """Cut a volume into 2D planes along ``slice_axis``; a planar array is one plane."""
    if not is_volume(path) or array.ndim == 2:
        return [array]
    if array.ndim != 3:
        raise FileError(path, f"volume of shape {array.shape}; only 2D images and 3D volumes are supported")
    if not -3 <= slice_axis < 3:
        raise FileError(path, f"slice_axis={slice_axis} is not an axis of this 3D volume")
    return list(np.moveaxis(array, slice_axis, 0))  # Z planes of (X, Y) for slice_axis=2


def volume_shape(path: Path) -> tuple[int, ...]:
    """Array shape of a volume in ``(X, Y[, Z])`` order, read from its header without decoding voxels."""
    try:
        if file_suffix(path) in SITK_SUFFIXES:
            header = SimpleITK.ImageFileReader()
            header.SetFileName(str(path))
            header.ReadImageInformation()
            return tuple(int(v) for v in header.GetSize())  # SimpleITK sizes are already (X, Y, Z)
        shape = tuple(int(v) for v in nib.load(path).shape)
        return shape[:3] + tuple(v for v in shape[3:] if v != 1)  # as NibabelReader squeezes them
    except Exception as err:
        raise FileError(path, f"cannot be read ({_first_line(err)})") from err


def rescale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Min-max rescale the whole array to [0, 255] (the paper's per-image scaling); constant -> zeros."""
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    if array.dtype == np.uint8 and (low, high) == (0.0, 255.0):
        return array  # already spans [0, 255]: the rescale is the identity
    return np.rint((array.astype(np.float32) - low) * (255.0 / (high - low))).astype(np.uint8)


def to_rgb(plane: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, ch)`` uint8 -> ``(H, W, 3)``: grey is repeated, extra channels dropped."""
    if plane.ndim == 3 and plane.shape[-1] >= 3:
        return np.ascontiguousarray(plane[..., :3])
    grey = plane if plane.ndim == 2 else plane[..., 0]
    return np.repeat(grey[..., None], 3, axis=-1)  # (H, W, 3)


def read_image(path: Path, slice_axis: int = 2) -> list[np.ndarray]:
    """Images in ``path`` as a list of ``(H, W, 3)`` uint8 RGB planes (one for a planar file).

    Intensities are rescaled to [0, 255] over the whole file (the whole volume for a volume).
    """
    array = load_array(path)
    if array.ndim == 3 and not is_volume(path) and array.shape[-1] not in (1, 2, 3, 4):
        raise FileError(path, f"image of shape {array.shape}; expected (H, W) or (H, W, 1-4 channels)")
    return [to_rgb(plane) for plane in _planes(rescale_to_uint8(array), path, slice_axis)]


def read_labels(path: Path, slice_axis: int = 2) -> list[np.ndarray]:
    """Label planes ``(H, W)`` in ``path``; a colour mask must have equal channels (grey stored as RGB)."""
    array = load_array(path, labels=True)
    if array.ndim == 3 and not is_volume(path):
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in range(1, array.shape[-1])):
            raise FileError(path, "colour mask with differing channels; store labels as a grey image")
        array = array[..., 0]
    return _planes(array, path, slice_axis)


def normalise_label_map(label_map: Mapping[Any, Any] | None, num_classes: int) -> dict[float, int] | None:
    """Validate ``{mask value: class index}`` (0 = background, 1..num_classes); keys may be strings.

    Raises:
        DatasetError: a key that is not a number or a class index outside ``0..num_classes``.
    """
    if num_classes < 1:
        raise DatasetError(f"num_classes must be >= 1, got {num_classes}")
    if label_map is None:
        return None
    result: dict[float, int] = {}
    for key, cls in label_map.items():
        try:
            value = float(key)
        except (TypeError, ValueError) as err:
            raise DatasetError(f"label_map: key {key!r} is not a number") from err
        if not isinstance(cls, (int, np.integer)) or not 0 <= int(cls) <= num_classes:
            raise DatasetError(f"label_map: class {cls!r} for value {key!r} is outside 0..{num_classes}")
        result[value] = int(cls)
    return result


def present_values(labels: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a label plane (a histogram for 8/16-bit labels, faster than sorting)."""
    if labels.dtype in (np.uint8, np.uint16, np.bool_):
        return np.flatnonzero(np.bincount(labels.ravel(), minlength=2))
    return np.unique(labels)


def label_problem(labels: np.ndarray, label_map: Mapping[float, int] | None, num_classes: int) -> str | None:
    """Describe values that ``labels_to_masks`` would not understand, or ``None`` when all are expected.

    Default (no map): binary masks hold 0 and one foreground value; ``num_classes > 1`` masks hold 0..C.
    """
    values = present_values(labels)
    shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if len(values) > 8 else "")
    if label_map is None and num_classes == 1:
        if (values < 0).any() or (values > 0).sum() > 1:
            return f"mask values [{shown}]; expected 0 and one foreground value (set label_map otherwise)"
        return None
    allowed = set(label_map) | {0.0} if label_map is not None else set(range(num_classes + 1))
    unknown = [v for v in values.tolist() if v not in allowed]
    if unknown:
        listed = ", ".join(f"{v:g}" for v in unknown[:8])
        return f"mask values [{listed}] are not in the label map (present: [{shown}])"
    return None


def labels_to_masks(
    labels: np.ndarray, label_map: Mapping[float, int] | None = None, num_classes: int = 1
) -> np.ndarray:
    """Label plane ``(H, W)`` -> boolean masks ``(C, H, W)``, one channel per foreground class.

    Without a map: ``> 0`` is foreground for one class, value ``c`` is class ``c`` for several. With a map:
    ``{value: class}``, class 0 (or a value missing from the map) is background.
    """
    if label_map is None and num_classes == 1:
        return (labels > 0)[None]  # (1, H, W)
    values, inverse = np.unique(labels, return_inverse=True)
    if label_map is None:
        classes = np.where((values >= 1) & (values <= num_classes), values, 0).astype(np.int64)
    else:
        classes = np.array([label_map.get(float(v), 0) for v in values], dtype=np.int64)
    class_plane = classes[inverse].reshape(labels.shape)  # (H, W) class index per pixel
    return class_plane[None] == np.arange(1, num_classes + 1)[:, None, None]  # (C, H, W)


def write_volume_like(source: Path, array: np.ndarray, target: Path) -> Path:
    """Write ``array`` ``(X, Y[, Z])`` (the voxel order :func:`load_array` gives) to ``target`` in the format of
    the volume ``source``, with its geometry: the affine and header of a NIfTI file, the origin, spacing and
    direction of an MHA/MHD/NRRD file. ``target``'s suffix names the format (``.nii.gz``, ``.mha``, ...).

    Returns:
        ``target``.
    """
    if file_suffix(source) in SITK_SUFFIXES:
        reference = SimpleITK.ImageFileReader()
        reference.SetFileName(str(source))
        reference.ReadImageInformation()
        # (X, Y, Z) -> SimpleITK's (Z, Y, X)
        image = SimpleITK.GetImageFromArray(np.ascontiguousarray(array.T))
        image.SetOrigin(reference.GetOrigin())
        image.SetSpacing(reference.GetSpacing())
        image.SetDirection(reference.GetDirection())
        SimpleITK.WriteImage(image, str(target), True)
        return target
    reference = nib.load(source)
    image = type(reference)(array, reference.affine, reference.header)
    image.set_data_dtype(array.dtype)
    image.header.set_slope_inter(1.0, 0.0)  # the labels as they are, whatever the source's intensity scaling
    nib.save(image, target)
    return target
