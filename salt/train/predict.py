"""The prediction job behind ``predict.py``: segment a folder of images at their original sizes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from tqdm import tqdm

from salt.data.layout import file_stem, is_supported, is_volume
from salt.data.prompt_file import ClassPrompt, read_prompts
from salt.data.prompts import prompt_kinds
from salt.data.reading import read_image, volume_shape
from salt.data.transforms import fit_to_square, to_model_coords, to_original
from salt.peft import merge
from salt.train.errors import ConfigError
from salt.train.loading import load_trained
from salt.viz import save_overlay

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


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda: no CUDA device is available")
    return torch.device(name)


def label_image(prob: torch.Tensor, threshold: float) -> np.ndarray:
    """``(H, W)`` uint8 mask from probabilities ``(C, H, W)``: 0/255 for one class, else 0..C."""
    fg = prob > threshold  # (C, H, W)
    if prob.shape[0] == 1:
        return fg[0].numpy().astype(np.uint8) * 255
    labels = prob.argmax(0).numpy().astype(np.uint8) + 1  # (H, W)
    labels[~fg.any(0).numpy()] = 0
    return labels


def _plane_sizes(files: list[Path], slice_axis: int) -> dict[str, tuple[int, int]]:
    """``{stem: (H, W)}`` of every plane predict.py will write, read from the file headers (no decoding)."""
    sizes = {}
    for path in files:
        try:
            if is_volume(path):
                shape = list(volume_shape(path))
                depth = shape.pop(slice_axis) if len(shape) == 3 else 1
                stems = (
                    [file_stem(path)] if depth == 1 else [f"{file_stem(path)}_{k:04d}" for k in range(depth)]
                )
                sizes |= {stem: (int(shape[0]), int(shape[1])) for stem in stems}
            else:
                with Image.open(path) as image:
                    sizes[file_stem(path)] = (image.height, image.width)
        except Exception:  # unreadable: reported and skipped by the prediction loop
            continue
    return sizes


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
    prompts = read_prompts(prompts_file, _plane_sizes(files, slice_axis), class_names)
    for stem, per_class in prompts.items():
        for c, prompt in per_class.items():
            if (kind == "box") != (prompt.box is not None) or (kind == "box") == bool(prompt.points):
                raise ConfigError(
                    f"prompts={prompts_file}: image {stem!r}, class {class_names[c]!r}: the run was trained with "
                    f"prompt.mode={mode}, so each image and class takes {'one box' if kind == 'box' else 'points'} only"
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


def predict(cfg: DictConfig) -> dict:
    """Write ``<stem>_mask.png`` (and ``<stem>_overlay.png``) for every image of ``cfg.input``.

    Unreadable files are reported and skipped; the rest of the folder is still processed.

    Returns:
        ``{"written": [...], "skipped": {file: reason}}``.
    """
    files = _inputs(Path(cfg.input))
    out_dir = Path(cfg.output)
    module, run_cfg = load_trained(cfg.ckpt, cfg.get("base_checkpoint"))
    device = _device(str(cfg.device))
    size = module.model.img_size
    resize = run_cfg["dataset"].get("resize", "longest_pad")
    slice_axis = int(run_cfg["dataset"].get("slice_axis", 2))
    class_names = list(run_cfg["dataset"].get("class_names") or [])
    kind, prompts = _read_prompts(cfg.get("prompts"), run_cfg, files, slice_axis, class_names)
    model = merge(module.model).to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = [], {}
    for path in tqdm(files, desc="predict", unit="image"):
        try:
            planes = read_image(path, slice_axis=slice_axis)
        except Exception as exc:  # a bad file is reported and skipped, whatever the reader raised
            skipped[path.name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("skipped %s: %s", path.name, skipped[path.name])
            continue
        for k, plane in enumerate(planes):
            stem = file_stem(path) + (f"_{k:04d}" if is_volume(path) and len(planes) > 1 else "")
            height, width = plane.shape[:2]
            square, _, pad = fit_to_square(plane, np.zeros((height, width, 1), np.uint8), size, resize)
            x = torch.from_numpy(square).permute(2, 0, 1)[None].float().to(device)  # (1, 3, S, S)
            with torch.no_grad():
                if kind is None:
                    logits = model(x)
                else:
                    image_prompts = prompt_tensors(
                        prompts.get(stem, {}), kind, (height, width), len(class_names), size, resize
                    )
                    logits = model(x, {k: v.to(device) for k, v in image_prompts.items()})
                prob = torch.sigmoid(logits[0].float()).cpu()  # (C, S, S)
            prob = to_original(prob, (height, width), pad)  # (C, H, W)
            mask = label_image(prob, float(cfg.threshold))
            Image.fromarray(mask).save(out_dir / f"{stem}_mask.png")
            if len(class_names) > 1:  # one binary mask per class besides the label image
                for c, name in enumerate(class_names):
                    binary = (prob[c] > float(cfg.threshold)).numpy().astype(np.uint8) * 255
                    Image.fromarray(binary).save(out_dir / f"{stem}_{name}_mask.png")
            if cfg.get("overlays", True):
                save_overlay(out_dir / f"{stem}_overlay.png", plane, mask > 0, None)
            written.append(f"{stem}_mask.png")
    log.info("wrote %d masks to %s; skipped %d unreadable file(s)", len(written), out_dir, len(skipped))
    for name, reason in skipped.items():
        log.info("  skipped %s: %s", name, reason)
    return {"written": written, "skipped": skipped}
