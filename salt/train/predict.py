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
from salt.data.reading import read_image
from salt.data.transforms import fit_to_square, to_original
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
    model = merge(module.model).to(device).eval()
    size = model.img_size
    resize = run_cfg["dataset"].get("resize", "longest_pad")
    slice_axis = int(run_cfg["dataset"].get("slice_axis", 2))
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
                prob = torch.sigmoid(model(x)[0].float()).cpu()  # (C, S, S)
            prob = to_original(prob, (height, width), pad)  # (C, H, W)
            mask = label_image(prob, float(cfg.threshold))
            Image.fromarray(mask).save(out_dir / f"{stem}_mask.png")
            if cfg.get("overlays", True):
                save_overlay(out_dir / f"{stem}_overlay.png", plane, mask > 0, None)
            written.append(f"{stem}_mask.png")
    log.info("wrote %d masks to %s; skipped %d unreadable file(s)", len(written), out_dir, len(skipped))
    for name, reason in skipped.items():
        log.info("  skipped %s: %s", name, reason)
    return {"written": written, "skipped": skipped}
