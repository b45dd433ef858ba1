"""The prediction job behind ``predict.py``: segment a folder of images at their original sizes."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image
from tqdm import tqdm

from salt.checks import check_output, positive_int, probability_threshold
from salt.data.layout import file_stem, file_suffix, is_supported, is_volume
from salt.data.patches import PatchSettings, whole_image
from salt.data.prompt_file import ClassPrompt, read_prompts
from salt.data.prompts import prompt_kinds
from salt.data.reading import read_image, volume_shape, write_volume_like
from salt.data.transforms import fit_to_square, to_model_coords, to_original
from salt.errors import ConfigError
from salt.inference.evaluation import label_image
from salt.inference.loading import autocast_dtype, load_trained, pick_device
from salt.model.sliding import sliding_window_logits
from salt.peft import merge
from salt.viz import ShownPrompts, save_overlay

log = logging.getLogger(__name__)


def _inputs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"input={path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and is_supported(p))
    if not files:
        raise ConfigError(f"input={path}: the folder holds no image in a supported format")
    return files


def _plane_sizes(files: list[Path], slice_axis: int) -> dict[Path, dict[str, tuple[int, int]]]:
    """``{file: {stem: (H, W)}}`` of every plane predict.py will write, read from the file headers (no decoding)."""
    sizes: dict[Path, dict[str, tuple[int, int]]] = {}
    for path in files:
        try:
            if is_volume(path):
                shape = list(volume_shape(path))
                depth = shape.pop(slice_axis) if len(shape) == 3 else 1
                stems = (
                    [file_stem(path)] if depth == 1 else [f"{file_stem(path)}_{k:04d}" for k in range(depth)]
                )
                sizes[path] = {stem: (int(shape[0]), int(shape[1])) for stem in stems}
            else:
                with Image.open(path) as image:
                    sizes[path] = {file_stem(path): (image.height, image.width)}
        except Exception:  # unreadable: reported and skipped by the prediction loop
            continue
    return sizes


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for k in indices:
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def unprompted(sizes: dict[Path, dict[str, tuple[int, int]]], prompts: Mapping[str, object]) -> list[str]:
    """The images ``prompts`` gives nothing for: a file's name, or a volume's name with the slices left out.

    Args:
        sizes: ``{file: {plane stem: (H, W)}}`` as :func:`_plane_sizes` gives.
        prompts: the prompts file's content by plane stem.
    """
    missing = []
    for path, stems in sizes.items():
        left = [k for k, stem in enumerate(stems) if stem not in prompts]
        if len(left) == len(stems):
            missing.append(path.name)
        elif left:
            missing.append(f"{path.name} (slices {_ranges(left)} of {len(stems)})")
    return missing


def _read_prompts(
    prompts_file: str | None, run_cfg: dict, files: list[Path], slice_axis: int, class_names: list[str]
) -> tuple[str | None, dict[str, dict[int, ClassPrompt]]]:
    """The run's prompt kind (``box``, ``point`` or None for class tokens alone) and the file's prompts.

    Raises:
        ConfigError: a run trained with boxes or points and no prompts file, or the reverse, or a file that
            gives points to a box-prompted run (or boxes to a point-prompted one).
    """
    mode = (run_cfg.get("prompt") or {}).get("mode", "class")
    kind = prompt_kinds(mode)[1]
    if kind is None:
        if prompts_file:
            raise ConfigError(
                f"prompts={prompts_file}: the run was trained with prompt.mode={mode}, which takes no file"
            )
        return None, {}
    if not prompts_file:
        raise ConfigError(
            f"prompts is not set: the run was trained with prompt.mode={mode}; give prompts=<JSON or CSV file> "
            "(the format is in salt/data/prompt_file.py)"
        )
    sizes = _plane_sizes(files, slice_axis)
    prompts = read_prompts(
        prompts_file, {k: v for planes in sizes.values() for k, v in planes.items()}, class_names
    )
    for stem, per_class in prompts.items():
        for c, prompt in per_class.items():
            if (kind == "box") != (prompt.box is not None) or (kind == "box") == bool(prompt.points):
                raise ConfigError(
                    f"prompts={prompts_file}: image {stem!r}, class {class_names[c]!r}: the run was trained with "
                    f"prompt.mode={mode}, so each image and class takes {'one box' if kind == 'box' else 'points'} only"
                )
    missing = unprompted(sizes, prompts)
    if missing:
        log.warning(
            "prompts=%s has no %s for %d of %d input files, predicted without one: %s",
            prompts_file,
            kind,
            len(missing),
            len(sizes),
            ", ".join(missing),
        )
    return kind, prompts


def prompt_tensors(
    per_class: dict[int, ClassPrompt],
    kind: str,
    orig_size: tuple[int, int],
    num_classes: int,
    size: int,
    resize: str,
) -> dict[str, torch.Tensor]:
    """One image's ``kind`` (``box``/``point``) prompts as the model's batch tensors (batch of 1), in
    model-input pixels. A class the file does not prompt gets no box (``box_valid`` False) or no point
    (labels -1)."""
    boxes = torch.zeros(1, num_classes, 4)
    valid = torch.zeros(1, num_classes, dtype=torch.bool)
    count = max([len(p.points) for p in per_class.values()] + [1])
    points = torch.zeros(1, num_classes, count, 2)
    labels = torch.full((1, num_classes, count), -1, dtype=torch.long)
    for c, prompt in per_class.items():
        if prompt.box is not None:
            corners = to_model_coords(prompt.box.reshape(2, 2), orig_size, size, resize)  # (2, 2) x, y
            boxes[0, c], valid[0, c] = torch.from_numpy(corners.reshape(4)), True
        if prompt.points:
            n = len(prompt.points)
            points[0, c, :n] = torch.from_numpy(
                to_model_coords(np.array(prompt.points), orig_size, size, resize)
            )
            labels[0, c, :n] = torch.tensor(prompt.labels)
    if kind == "box":
        return {"box": boxes, "box_valid": valid}
    return {"points": points, "point_labels": labels}


@dataclass
class _Volume:
    """A volume file whose slice masks are gathered until the last one is predicted, then written as one file."""

    source: Path
    depth: int  # planes cut from it; a 2D volume is one plane
    planar: bool  # the file holds a single 2D array
    slice_axis: int
    labels: dict[int, np.ndarray] = field(default_factory=dict)  # plane index -> (H, W) uint8 labels 0..C
    classes: dict[int, np.ndarray] = field(default_factory=dict)  # plane index -> (C, H, W) bool

    def stack(self, planes: dict[int, np.ndarray], axis: int) -> np.ndarray:
        """The planes put back in the file's voxel order, cut along ``axis`` (the slice axis, shifted)."""
        ordered = [planes[k] for k in range(self.depth)]
        return ordered[0] if self.planar else np.stack(ordered, axis=axis)


@dataclass
class _Plane:
    """One image plane waiting in a batch: its name, pixels, padding and prompt tensors (batch of 1)."""

    stem: str
    plane: np.ndarray  # (H, W, 3) uint8
    square: np.ndarray  # (S, S, 3) uint8 model input; in patch mode the plane at the patch scale (H', W', 3)
    pad: np.ndarray  # (4,) top, bottom, left, right
    prompts: dict[str, torch.Tensor] | None
    volume: _Volume | None = None  # the volume file it was cut from
    index: int = 0  # its position along the volume's slice axis
    given: dict[int, ClassPrompt] = field(default_factory=dict)  # the file's prompts, in original pixels


class _Writer:
    """Runs the model on batches of planes and writes each plane's masks and overlay."""

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        cfg: DictConfig,
        out_dir: Path,
        names: list[str],
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model, self.device, self.out_dir, self.names = model, device, out_dir, names
        self.threshold = float(cfg.threshold)
        self.overlays = bool(cfg.get("overlays", True))
        self.slices = bool(cfg.get("slices", False))
        self.written: list[str] = []
        self.planes = 0  # image planes predicted
        self.model_seconds = 0.0
        self.dtype = dtype  # autocast dtype of the forward pass; None: float32
        self.patch: PatchSettings | None = None  # patch mode: each plane whole through a sliding window
        self.window = 0  # the network's input side (the sliding window's)

    def run(self, batch: list[_Plane]) -> None:
        if self.patch is not None:
            for item in batch:
                self._run_whole(item)
            return
        images = torch.from_numpy(np.stack([p.square for p in batch])).permute(0, 3, 1, 2)  # (N, 3, S, S)
        images = images.float().to(self.device)
        start = time.perf_counter()
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)
        with torch.no_grad(), autocast:
            if batch[0].prompts is None:
                logits = self.model(images)
            else:
                prompts = {
                    k: torch.cat([p.prompts[k] for p in batch]).to(self.device) for k in batch[0].prompts
                }
                logits = self.model(images, prompts)
            prob = torch.sigmoid(logits.float()).cpu()  # (N, C, S, S)
        self.model_seconds += time.perf_counter() - start
        for item, item_prob in zip(batch, prob):
            self._write(item, to_original(item_prob, item.plane.shape[:2], item.pad))  # (C, H, W)

    def _run_whole(self, item: _Plane) -> None:
        """Patch mode: ``item.square`` is the plane at the patch scale ``(H', W', 3)``; a sliding window of the
        input side predicts it whole and the probabilities are resized to the plane's ``(H, W)``."""
        patch = self.patch
        images = torch.from_numpy(np.ascontiguousarray(item.square)).permute(2, 0, 1)[None].float()
        start = time.perf_counter()
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)
        with torch.no_grad(), autocast:
            logits = sliding_window_logits(
                self.model,
                images.to(self.device),
                window=self.window,
                overlap=patch.overlap,
                blend=patch.blend,
                sw_batch_size=patch.sw_batch_size,
                tta=patch.tta,
            )
            prob = torch.sigmoid(logits.float()).cpu()[0]  # (C, H', W')
        self.model_seconds += time.perf_counter() - start
        height, width = item.plane.shape[:2]
        if tuple(prob.shape[-2:]) != (height, width):
            prob = F.interpolate(prob[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        self._write(item, prob)

    def _write(self, item: _Plane, prob: torch.Tensor) -> None:
        mask = label_image(prob, self.threshold)
        self.planes += 1
        if item.volume is not None:
            self._gather(item, mask, prob)
        if item.volume is not None and not self.slices:
            return
        Image.fromarray(mask).save(self.out_dir / f"{item.stem}_mask.png")
        if len(self.names) > 1:  # one binary mask per class besides the label image
            for c, name in enumerate(self.names):
                binary = (prob[c] > self.threshold).numpy().astype(np.uint8) * 255
                Image.fromarray(binary).save(self.out_dir / f"{item.stem}_{name}_mask.png")
        if self.overlays:
            per_class = (prob > self.threshold).numpy()  # (C, H, W)
            shown = ShownPrompts(
                boxes={c: p.box for c, p in item.given.items() if p.box is not None},
                points={c: np.asarray(p.points) for c, p in item.given.items() if p.points},
                labels={c: np.asarray(p.labels) for c, p in item.given.items() if p.points},
            )
            save_overlay(
                self.out_dir / f"{item.stem}_overlay.png",
                item.plane,
                per_class,
                None,
                class_names=self.names,
                prompts=shown,
            )
        self.written.append(f"{item.stem}_mask.png")

    def _gather(self, item: _Plane, mask: np.ndarray, prob: torch.Tensor) -> None:
        """Keep a volume's plane; after its last plane write ``<stem>_mask<suffix>`` in the input's format
        (labels 0..C, 1 for a single class) and, with several classes, ``<stem>_<class>_mask<suffix>`` (0/1)."""
        volume = item.volume
        volume.labels[item.index] = (mask > 0).astype(np.uint8) if len(self.names) <= 1 else mask
        if len(self.names) > 1:
            volume.classes[item.index] = (prob > self.threshold).numpy()
        if len(volume.labels) < volume.depth:
            return
        stem, suffix = file_stem(volume.source), file_suffix(volume.source)
        axis = volume.slice_axis
        write_volume_like(
            volume.source, volume.stack(volume.labels, axis), self.out_dir / f"{stem}_mask{suffix}"
        )
        self.written.append(f"{stem}_mask{suffix}")
        if volume.classes:
            per_class = volume.stack(volume.classes, axis + 1 if axis >= 0 else axis)  # (C, ...) class first
            for c, name in enumerate(self.names):
                target = self.out_dir / f"{stem}_{name}_mask{suffix}"
                write_volume_like(volume.source, per_class[c].astype(np.uint8), target)
        volume.labels.clear()
        volume.classes.clear()


def _shapes(item: _Plane) -> tuple:
    return tuple((k, tuple(v.shape)) for k, v in sorted((item.prompts or {}).items()))


def predict(cfg: DictConfig) -> dict:
    """Write ``<stem>_mask.png`` (and ``<stem>_overlay.png``) for every image of ``cfg.input``.

    A volume (NIfTI, MHA/MHD, NRRD) gets one mask file ``<stem>_mask<suffix>`` in its own format and geometry
    (affine, spacing), labels 0..C; with ``cfg.slices`` each of its slices is also written as above.

    Planes go through the model ``cfg.data.batch_size`` at a time (planes whose point prompts differ in number
    go in separate batches, so that no padding token changes a prediction). Unreadable files are reported and
    skipped; the rest of the folder is still processed. The log ends with the throughput.

    Returns:
        ``{"written": [...], "skipped": {file: reason}, "images_per_s": float}``.
    """
    batch_size = positive_int("data.batch_size", cfg.data.batch_size)
    probability_threshold("threshold", cfg.threshold)
    files = _inputs(Path(cfg.input))
    out_dir = check_output("output", str(cfg.output), "folder", example="masks")
    device = pick_device(str(cfg.device))
    precision = str(cfg.get("precision", "32-true"))
    dtype = autocast_dtype(precision, device)
    run = load_trained(cfg.ckpt, cfg.get("base_checkpoint"))
    run_cfg = run.config
    size = run.model.img_size
    resize = run_cfg["dataset"].get("resize", "longest_pad")
    slice_axis = int(run_cfg["dataset"].get("slice_axis", 2))
    class_names = list(run_cfg["dataset"].get("class_names") or [])
    kind, prompts = _read_prompts(cfg.get("prompts"), run_cfg, files, slice_axis, class_names)
    model = merge(run.model).to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _Writer(model, device, cfg, out_dir, class_names, dtype)
    patch = PatchSettings.from_config(run_cfg["patch"]) if run_cfg.get("patch") else None
    if patch is not None:  # each plane whole at the run's scale; the windows are batched instead
        writer.patch, writer.window, batch_size = patch, int(size), 1
        log.info(
            "patch mode: sliding window of %d px at scale %g, overlap %g, %s blending",
            size,
            patch.scale,
            patch.overlap,
            patch.blend,
        )
    skipped: dict[str, str] = {}
    pending: list[_Plane] = []
    # The bar counts images (volume slices) through the model, as the throughput line does: files are read
    # ahead of the batch they join, so a count of files read would run ahead of the predictions.
    progress = tqdm(total=len(_plane_sizes(files, slice_axis)) or None, desc="predict", unit="image")
    start = time.perf_counter()

    def run(batch: list[_Plane]) -> None:
        writer.run(batch)
        progress.update(len(batch))

    for path in files:
        try:
            planes = read_image(path, slice_axis=slice_axis)
        except Exception as exc:  # a bad file is reported and skipped, whatever the reader raised
            skipped[path.name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("skipped %s: %s", path.name, skipped[path.name])
            continue
        volume = None
        if is_volume(path):
            planar = len(planes) == 1 and len(volume_shape(path)) == 2
            volume = _Volume(path, len(planes), planar, slice_axis)
        for k, plane in enumerate(planes):
            stem = file_stem(path) + (f"_{k:04d}" if is_volume(path) and len(planes) > 1 else "")
            height, width = plane.shape[:2]
            if patch is not None:
                square, pad = whole_image(plane, patch), np.zeros(4, np.int64)
            else:
                square, _, pad = fit_to_square(plane, np.zeros((height, width, 1), np.uint8), size, resize)
            image_prompts = None
            if kind is not None:
                image_prompts = prompt_tensors(
                    prompts.get(stem, {}), kind, (height, width), len(class_names), size, resize
                )
            item = _Plane(stem, plane, square, pad, image_prompts, volume, k, prompts.get(stem, {}))
            if pending and (len(pending) == batch_size or _shapes(pending[0]) != _shapes(item)):
                run(pending)
                pending = []
            pending.append(item)
    if pending:
        run(pending)
    progress.total = progress.n  # less than announced when a file was skipped
    progress.close()
    seconds = time.perf_counter() - start
    count = writer.planes
    rate = count / seconds if seconds > 0 else 0.0
    log.info(
        "wrote %d masks to %s; skipped %d unreadable file(s)", len(writer.written), out_dir, len(skipped)
    )
    for name, reason in skipped.items():
        log.info("  skipped %s: %s", name, reason)
    log.info(
        "throughput: %.2f images/s end to end (%d images in %.2f s, batch size %d on %s, %s); "
        "the model alone %.2f images/s",
        rate,
        count,
        seconds,
        batch_size,
        device,
        precision,
        count / writer.model_seconds if writer.model_seconds > 0 else 0.0,
    )
    return {"written": writer.written, "skipped": skipped, "images_per_s": rate}
