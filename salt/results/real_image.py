"""What trained runs predict on one real photograph that has no ground truth: a picture, never a number.

The photograph is scikit-image's colour fundus image (``skimage.data.retina()``, shipped inside the
scikit-image wheel). Each run goes through ``predict.py``'s own code (:func:`salt.inference.predict.predict`), so
the picture shows exactly what a user of that run would get.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from salt.results.collect import Run
from salt.viz.grid import qualitative_grid

log = logging.getLogger(__name__)


def retina_image(side: int = 512) -> np.ndarray:
    """scikit-image's fundus photograph, resized to ``side`` x ``side``: ``(side, side, 3)`` uint8."""
    from skimage import data

    picture = Image.fromarray(data.retina())
    return np.asarray(picture.resize((side, side), Image.Resampling.LANCZOS))


def pick_runs(runs: Sequence[Run], dataset: str) -> list[Run]:
    """One run per table row of ``dataset``: the lowest seed among those with a trained checkpoint.

    Runs with nothing trained (zero-shot rows, which have no checkpoint) are left out with a log line.
    """
    chosen: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: (r.row, r.seed if r.seed is not None else -1)):
        if run.dataset != dataset or run.row in chosen:
            continue
        if not (run.path / "checkpoints" / "best.ckpt").is_file():
            log.info("%s: no trained checkpoint in %s, left out", run.row, run.path)
            continue
        chosen[run.row] = run
    return list(chosen.values())


def predict_on(image: np.ndarray, runs: Sequence[Run], threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Each run's mask on ``image`` ``(H, W, 3)`` uint8, through ``predict.py``: row label -> ``(H, W)`` bool."""
    from salt.inference.predict import predict

    masks: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "input" / "retina.png"
        source.parent.mkdir()
        Image.fromarray(image).save(source)
        for i, run in enumerate(runs):
            out = Path(tmp) / f"run_{i}"
            cfg = OmegaConf.create(
                {
                    "ckpt": str(run.path),
                    "input": str(source),
                    "output": str(out),
                    "base_checkpoint": None,
                    "device": "auto",
                    "threshold": threshold,
                    "prompts": None,
                    "overlays": False,
                    "data": {"batch_size": 1},
                }
            )
            predict(cfg)
            masks[run.row] = np.asarray(Image.open(out / "retina_mask.png")) > 0
    return masks


def real_image_figure(runs: Sequence[Run], dataset: str, out_png: str | Path, side: int = 512) -> Path:
    """Side by side: the fundus photograph, then each method's prediction on it (white on the dimmed image).

    Args:
        runs: runs of any data sets; one per row of ``dataset`` is shown (see :func:`pick_runs`).
        dataset: the data-set column whose runs are shown (the fundus look: ``synthetic_fundus``).
        out_png: where to write the figure.
        side: the photograph's side in pixels before each run resizes it to its own input size.

    Raises:
        ValueError: no run of ``dataset`` has a trained checkpoint.
    """
    chosen = pick_runs(runs, dataset)
    if not chosen:
        raise ValueError(f"no trained run of data set {dataset!r} to show")
    image = retina_image(side)
    masks = predict_on(image, chosen)
    return qualitative_grid([image], {row: [mask] for row, mask in masks.items()}, None, out_png)
