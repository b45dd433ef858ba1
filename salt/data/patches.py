"""Patch mode: train on windows of the model's input side cut from the image at a chosen pixel scale, and
evaluate on whole images (sliding-window inference runs in the model, ``salt.model.sliding``).

Resized mode (the default, the paper's) shrinks every image into the ``S x S`` input; thin structures of a
large image (DRIVE's one-pixel capillaries at 565 px into 256 px) are lost before the network sees them.
Patch mode keeps the image's own pixels (``scale: 1.0``) or rescales it by a fixed factor (a 3504 px fundus
photograph at ``scale: 0.16`` has DRIVE's vessel width), then:

- training (:class:`PatchTrainDataset`) draws ``windows_per_epoch`` windows ``S x S`` per epoch, each from
  a random image, centred on a foreground pixel with probability ``pos_fraction`` and otherwise on a
  background pixel inside the field of view (MONAI's ``RandCropByPosNegLabel``), so windows neither starve on
  sparse thin vessels nor fall on the black surround; the data set's augmentation is applied to each window;
- validation and test (:class:`WholeImageDataset`) give each image whole at the same scale; the network runs
  over it window by window with overlap and blending, and the metrics are scored at the original resolution.

A window larger than the (scaled) image is padded with zeros (outside the field of view).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np
import torch
from monai.transforms import RandCropByPosNegLabel, SpatialPad
from monai.transforms.utils import map_binary_to_indices
from torch.utils.data import Dataset

from salt.data.layout import DatasetError
from salt.data.transforms import augment, build_augmentation, to_original

log = logging.getLogger(__name__)

BLEND_MODES = ("gaussian", "constant")
NORMALIZE_MODES = ("window", "image")
# Test-time flips (``patch.tta``): the dimensions of a ``(B, C, H, W)`` image each pass flips (() = as is).
TTA_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "hflip": ((), (-1,)),
    "flips": ((), (-1,), (-2,), (-2, -1)),
}
TTA_MODES = tuple(TTA_FLIPS)


@dataclass(frozen=True)
class PatchSettings:
    """The ``patch`` config (``configs/patch/native.yaml``).

    Attributes:
        scale: pixel scale applied to every image before windows are cut (1.0 = the image's own pixels).
        windows_per_epoch: training windows drawn per epoch (the epoch's length in samples).
        pos_fraction: share of training windows centred on a foreground pixel; the rest are centred on a
            background pixel inside the field of view.
        overlap: sliding-window overlap in [0, 1) at validation, test, eval.py and predict.py.
        blend: how overlapping window logits are combined: ``gaussian`` (centre-weighted) or ``constant``.
        sw_batch_size: windows per forward pass of the sliding window.
        normalize: ``window``: the backbone's own normalisation sees each window (a min-max backbone scales
            each window by its own range); ``image``: each whole image is stretched to [0, 255] by its own
            range before windows are cut, and a min-max backbone does not stretch the windows again, the same
            at training and inference. Mean/std backbones normalise by constants, the same for a window and
            its image, so for them ``image`` is the whole-image stretch alone (the identity on a planar
            image, which the reader has stretched already).
        tta: test-time flips of the whole image at inference (the sliding window runs once per flip and the
            logits, flipped back, are averaged): ``none``; ``hflip`` (2 passes: as is, left-right);
            ``flips`` (4 passes: as is, left-right, up-down, both), as nnU-Net's mirroring.
        clahe: contrast-limited adaptive histogram equalisation of each whole (rescaled) image's lightness
            before windows are cut and before ``normalize``, at training and inference alike: OpenCV's CLAHE
            with this clip limit on 8 x 8 tiles of the image; 0 leaves the image as it is.
    """

    scale: float = 1.0
    windows_per_epoch: int = 256
    pos_fraction: float = 0.5
    overlap: float = 0.5
    blend: str = "gaussian"
    sw_batch_size: int = 8
    normalize: str = "window"
    tta: str = "none"
    clahe: float = 0.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> PatchSettings:
        """Checked settings from the ``patch`` config.

        Raises:
            DatasetError: an unknown key or a value out of range, naming ``patch.<key>``.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise DatasetError(f"patch: unknown keys {unknown} (valid: {', '.join(sorted(known))})")
        settings = cls(**dict(cfg))
        checks = [
            ("scale", isinstance(settings.scale, int | float) and settings.scale > 0, "a number > 0"),
            (
                "windows_per_epoch",
                _is_int(settings.windows_per_epoch) and settings.windows_per_epoch >= 1,
                "an int >= 1",
            ),
            (
                "pos_fraction",
                _is_number(settings.pos_fraction) and 0 <= settings.pos_fraction <= 1,
                "in [0, 1]",
            ),
            ("overlap", _is_number(settings.overlap) and 0 <= settings.overlap < 1, "in [0, 1)"),
            ("blend", settings.blend in BLEND_MODES, f"one of {', '.join(BLEND_MODES)}"),
            ("sw_batch_size", _is_int(settings.sw_batch_size) and settings.sw_batch_size >= 1, "an int >= 1"),
            ("normalize", settings.normalize in NORMALIZE_MODES, f"one of {', '.join(NORMALIZE_MODES)}"),
            ("tta", settings.tta in TTA_MODES, f"one of {', '.join(TTA_MODES)}"),
            ("clahe", _is_number(settings.clahe) and settings.clahe >= 0, "a number >= 0 (0: off)"),
        ]
        for key, ok, expected in checks:
            if not ok:
                raise DatasetError(f"patch.{key}={getattr(settings, key)!r} must be {expected}")
        return settings

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data (recorded with exported models)."""
        return asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def rescale(array: np.ndarray, scale: float, nearest: bool) -> np.ndarray:
    """``array (H, W[, K])`` resized by ``scale`` (each side rounded, at least 1 px): area averaging when
    shrinking an image, bilinear when enlarging, nearest neighbour for labels. ``scale == 1`` returns it."""
    if scale == 1:
        return array
    height, width = array.shape[:2]
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(array, (w, h), interpolation=cv2.INTER_NEAREST if nearest else shrink)
    return out.reshape(h, w, *array.shape[2:])


def image_range(image: np.ndarray) -> np.ndarray:
    """``image (H, W, 3)`` uint8 stretched to [0, 255] by its own minimum and maximum (``normalize: image``)."""
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros_like(image)
    scaled = (image.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


CLAHE_TILES = (8, 8)


def equalize_contrast(image: np.ndarray, clip_limit: float) -> np.ndarray:
    """``image (H, W, 3)`` uint8 RGB with its lightness equalised by CLAHE (``patch.clahe``).

    The image goes to CIE L*a*b*, OpenCV's contrast-limited adaptive histogram equalisation (``clip_limit``,
    :data:`CLAHE_TILES` tiles over the image) remaps L*, and the result comes back to RGB; colour (a*, b*) is
    kept. ``clip_limit == 0`` returns the image unchanged.
    """
    if clip_limit == 0:
        return image
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=CLAHE_TILES)
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def whole_image(image: np.ndarray, settings: PatchSettings) -> np.ndarray:
    """``image (H, W, 3)`` uint8 as patch mode gives it to the network before windows are cut ``(H', W', 3)``:
    rescaled by ``scale``, equalised by ``clahe`` and, with ``normalize: image``, stretched to its range."""
    image = equalize_contrast(rescale(image, settings.scale, nearest=False), settings.clahe)
    return image_range(image) if settings.normalize == "image" else image


@dataclass(frozen=True)
class _Scaled:
    image: np.ndarray  # (H', W', 3) uint8
    labels: np.ndarray  # (C + 1, H', W') uint8: the class masks, then the field of view
    fg: np.ndarray  # flat indices of foreground pixels (any class)
    bg: np.ndarray  # flat indices of background pixels inside the field of view


class _ScaledImages:
    """The original items of a :class:`~salt.data.VesselDataset`, rescaled once and kept."""

    def __init__(self, base: Any, settings: PatchSettings) -> None:
        self.base, self.settings = base, settings
        self._cache: dict[int, _Scaled] = {}

    def __call__(self, index: int) -> _Scaled:
        if index in self._cache:
            return self._cache[index]
        original = self.base.original(index)
        image = whole_image(original["image"], self.settings)
        labels = np.concatenate([original["mask"], original["fov"][None]]).astype(np.uint8)  # (C+1, H, W)
        labels = rescale(labels.transpose(1, 2, 0), self.settings.scale, nearest=True).transpose(2, 0, 1)
        labels = np.ascontiguousarray(labels)
        foreground = labels[:-1].any(0, keepdims=True)  # (1, H', W')
        fg, bg = map_binary_to_indices(foreground, labels[-1:], 0)
        scaled = _Scaled(image, labels, np.asarray(fg), np.asarray(bg))
        if self.base.cache:
            self._cache[index] = scaled
        return scaled


class PatchTrainDataset(Dataset):
    """Training windows ``S x S`` drawn from the train split of a :class:`~salt.data.VesselDataset`.

    Items have the keys and shapes of ``VesselDataset`` items (``image (3, S, S)`` in [0, 255], ``mask
    (C, S, S)``, ``fov (1, S, S)`` False in the padding and outside the field of view, ``name``, ``index``,
    ``orig_size``, ``pad`` all zero), so the training step is the same as in resized mode. ``index`` here is
    the window's number; ``name`` is the image's. Windows are drawn at random on every access (from torch's
    generator, which DataLoader workers seed apart), so an epoch is ``windows_per_epoch`` fresh windows.

    Args:
        base: the train split, built without augmentation (decoding and caching are its own).
        size: the window side ``S`` (the model's input side).
        settings: the patch settings.
        augment_settings: the data set's ``augment`` block, applied to each window (None: none).
    """

    def __init__(
        self,
        base: Any,
        size: int,
        settings: PatchSettings,
        augment_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.base, self.size, self.settings = base, int(size), settings
        self.images = _ScaledImages(base, settings)
        self.augment = build_augmentation(augment_settings)
        self.pad = SpatialPad((self.size, self.size), mode="constant")
        pos = settings.pos_fraction
        self.crop = RandCropByPosNegLabel(
            (self.size, self.size), pos=pos, neg=1 - pos, num_samples=1, allow_smaller=True
        )
        self.num_classes = int(base.num_classes)
        log.info(
            "patch mode: %d windows of %d px per epoch from %d images at scale %g (%.0f%% centred on foreground)",
            settings.windows_per_epoch,
            self.size,
            len(base),
            settings.scale,
            100 * pos,
        )

    def __len__(self) -> int:
        return self.settings.windows_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_index = int(torch.randint(len(self.base), ()).item())
        scaled = self.images(image_index)
        stacked = np.concatenate([scaled.image.transpose(2, 0, 1), scaled.labels])  # (3 + C + 1, H', W')
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self.crop.set_random_state(seed)
        fg, bg = scaled.fg, scaled.bg
        if len(fg) == 0 and len(bg) == 0:  # neither vessel nor field of view: any pixel may be a centre
            bg = np.arange(stacked.shape[1] * stacked.shape[2])
        shape = torch.from_numpy(scaled.labels[-1:])  # gives the crop its spatial shape; the indices decide
        window = self.crop(torch.from_numpy(stacked), label=shape, fg_indices=fg, bg_indices=bg)[0]
        window = np.asarray(self.pad(torch.as_tensor(window)))  # (3 + C + 1, S, S), zeros in the padding
        image = np.ascontiguousarray(window[:3].transpose(1, 2, 0)).astype(np.uint8)  # (S, S, 3)
        labels = np.ascontiguousarray(window[3:].transpose(1, 2, 0)).astype(np.uint8)  # (S, S, C + 1)
        if self.augment is not None:
            image, labels = augment(self.augment, image, labels, seed)
        labels = torch.from_numpy(np.ascontiguousarray(labels)).permute(2, 0, 1)  # (C + 1, S, S)
        c = self.num_classes
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float(),
            "mask": labels[:c].float(),
            "fov": labels[c:] > 0,
            "name": self.base.items[image_index].name,
            "index": index,
            "orig_size": torch.tensor(scaled.image.shape[:2], dtype=torch.long),
            "pad": torch.zeros(4, dtype=torch.long),
        }


class WholeImageDataset(Dataset):
    """Whole images of a split at the patch scale, for sliding-window validation and testing.

    Items: ``image (3, H', W')`` float in [0, 255], ``mask (C, H', W')``, ``fov (1, H', W')`` (all True
    without a FOV file), ``name``, ``index``, ``orig_size`` = (H, W), ``pad`` zeros; ``(H', W')`` is the
    original size times ``scale``. Images of one split may differ in size: load them one per batch.
    :meth:`original` and :meth:`to_original` serve the original-resolution metrics as for ``VesselDataset``.
    """

    def __init__(self, base: Any, settings: PatchSettings) -> None:
        self.base, self.settings = base, settings
        self.images = _ScaledImages(base, settings)
        self.num_classes = int(base.num_classes)
        self.items = base.items

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        scaled = self.images(index)
        c = self.num_classes
        labels = torch.from_numpy(scaled.labels)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(scaled.image)).permute(2, 0, 1).float(),
            "mask": labels[:c].float(),
            "fov": labels[c:] > 0,
            "name": self.base.items[index].name,
            "index": index,
            "orig_size": torch.tensor(self.base.original(index)["image"].shape[:2], dtype=torch.long),
            "pad": torch.zeros(4, dtype=torch.long),
        }

    def original(self, index: int) -> dict[str, Any]:
        """Item ``index`` at its original resolution (see ``VesselDataset.original``)."""
        return self.base.original(index)

    def to_original(self, pred: torch.Tensor, index: int) -> torch.Tensor:
        """Map a prediction ``(C, H', W')`` at the patch scale back to the original pixels ``(C, H, W)``."""
        height, width = self.base.original(index)["image"].shape[:2]
        if tuple(pred.shape[-2:]) == (height, width):
            return pred
        return to_original(pred, (height, width), (0, 0, 0, 0))
