"""The evaluation job behind ``eval.py``: score a trained run on one split of a data set.

The network is rebuilt from the run (:func:`salt.inference.loading.load_trained`) and scored image by image as
training's test step scores it (:func:`salt.inference.evaluation.evaluate_batch`): ``metrics.json``,
``per_case.csv`` and overlays go to the job's folder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import move_data_to_device
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from salt.checks import pixel_spacing, positive_int, probability_threshold
from salt.data.datamodule import VesselDataModule
from salt.data.patches import TTA_MODES
from salt.data.prompts import check_prompt_options
from salt.errors import ConfigError
from salt.inference.evaluation import ROW_KEY, evaluate_batch, whole_image_logits
from salt.inference.loading import autocast_dtype, load_trained, pick_device
from salt.inference.outputs import code_version, parameter_report, report, run_info, write_results
from salt.metrics import MetricAccumulator

log = logging.getLogger(__name__)


def given_on_command_line(key: str) -> bool:
    """Whether the running Hydra job got ``key=...`` (or ``+key``, ``++key``) among its command-line overrides."""
    if not HydraConfig.initialized():
        return False
    return any(o.split("=", 1)[0].lstrip("+~") == key for o in HydraConfig.get().overrides.task)


def eval_prompt(run_cfg: dict, given: dict) -> dict:
    """The run's prompt settings with the evaluation's ``eval_box_jitter``/``seed`` where those are not null
    (``load_trained`` has refused a ``prompt.mode`` other than the run's)."""
    recorded = dict(run_cfg.get("prompt") or {"mode": "class"})
    return {**recorded, **{k: v for k, v in given.items() if k != "mode" and v is not None}}


def score_loader(
    model: nn.Module,
    loader: DataLoader,
    run_cfg: Mapping,
    eval_cfg: Mapping,
    threshold: float,
    device: torch.device,
    overlay_dir: Path | None = None,
    mask_dir: Path | None = None,
    dtype: torch.dtype | None = None,
) -> list[dict]:
    """Score every image of ``loader`` with ``model``, as training's test step does.

    Args:
        model: the network in eval mode.
        loader: batches of whole images (``image (B, 3, S, S)`` or ``(1, 3, H, W)`` in patch mode, ``mask``,
            ``fov``, ``name``, ``index`` and any prompts) of a :class:`~salt.data.VesselDataset` or
            :class:`~salt.data.patches.WholeImageDataset`.
        run_cfg: the run configuration (``patch``, ``dataset.img_size``, ``class_names``, ``spacing``).
        eval_cfg: ``original_resolution`` (also score each image mapped back to its own size) and
            ``overlays`` (how many cases get an overlay PNG).
        threshold: the probability above which a pixel is foreground.
        device: where the network runs.
        overlay_dir: where overlays go (None: none are written).
        mask_dir: where each case's predicted mask PNG goes (None: none are written).
        dtype: the autocast dtype of the forward passes (None: float32).

    Returns:
        The rows of :meth:`MetricAccumulator.add`, sorted by resolution, name and class.
    """
    dataset = loader.dataset if eval_cfg.get("original_resolution", True) else None
    accumulator = MetricAccumulator(key=ROW_KEY)
    spacing = pixel_spacing(run_cfg["dataset"].get("spacing"))
    patch = run_cfg.get("patch") or None
    model = model.to(device).eval()
    with torch.inference_mode():
        for batch in tqdm(loader, desc="eval", unit="batch"):
            batch = move_data_to_device(batch, device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = whole_image_logits(model, batch, patch, int(run_cfg["dataset"]["img_size"]))
            logits = logits.float()
            evaluate_batch(
                logits,
                batch,
                threshold,
                accumulator,
                dataset=dataset,
                overlay_dir=overlay_dir,
                overlays=int(eval_cfg.get("overlays", 0)),
                class_names=list(run_cfg["dataset"].get("class_names") or []),
                spacing=spacing,
                mask_dir=mask_dir,
            )
    return sorted(accumulator.rows, key=lambda r: (r["resolution"], r["name"], r["class"]))


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate a trained checkpoint on one split and write metrics.json, per_case.csv and overlays."""
    out_dir = Path(cfg.paths.output_dir)
    version = code_version()  # the code that runs, read before the (possibly long) evaluation
    batch_size = positive_int("batch_size", cfg.batch_size)
    # A data set group replaces the run's; a model group that sets dataset.img_size alone (LiteMedSAM) does not.
    chosen = "name" in (cfg.get("dataset") or {})
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True) if chosen else None
    configured_size = dataset.get("img_size") if dataset else None
    if dataset is not None and not given_on_command_line("dataset.img_size"):
        # The data set's img_size is its training size; evaluated, its images take the network's input size.
        dataset.pop("img_size", None)
    eval_cfg = OmegaConf.to_container(cfg.eval, resolve=True)
    threshold = probability_threshold("eval.threshold", eval_cfg["threshold"])
    device = pick_device(str(cfg.device))
    precision = str(cfg.get("precision", "32-true"))
    dtype = autocast_dtype(precision, device)
    tta = eval_cfg.pop("tta", None)
    if tta is not None and tta not in TTA_MODES:
        raise ConfigError(
            f"eval.tta={tta!r}: expected null (the run's patch.tta) or one of {', '.join(TTA_MODES)}"
        )
    run = load_trained(cfg.ckpt, cfg.get("base_checkpoint"), dataset, given=cfg)
    run_cfg = run.config
    if tta is not None:
        if not run_cfg.get("patch"):
            raise ConfigError(
                f"eval.tta={tta}: test-time flips belong to the sliding window of a patch-mode run; "
                f"{cfg.ckpt} was trained in resized mode"
            )
        # What runs is what metrics.json records: the run's patch settings with this evaluation's flips.
        run_cfg["patch"] = {**run_cfg["patch"], "tta": tta}
    size = run_cfg["dataset"]["img_size"]
    patch = run_cfg.get("patch")
    if patch:
        log.info(
            "patch mode: whole images at scale %g through a %d px sliding window (overlap %g, %s blending, "
            "test-time flips: %s)",
            patch["scale"],
            size,
            patch["overlap"],
            patch["blend"],
            patch.get("tta", "none"),
        )
    elif configured_size is not None and configured_size != size:
        log.info(
            "%s: images resized to %d x %d, the network's input size (the data set's img_size %s is for training)",
            run_cfg["dataset"]["name"],
            size,
            size,
            configured_size,
        )
    trained_on = (run_cfg.get("data") or {}).get("train_splits") or ["train"]
    if str(cfg.split) in trained_on:
        log.warning(
            "split=%s: %s was trained on these images, so these numbers are not held out", cfg.split, cfg.ckpt
        )
    prompt = eval_prompt(run_cfg, OmegaConf.to_container(cfg.prompt, resolve=True) if "prompt" in cfg else {})
    check_prompt_options(prompt)
    datamodule = VesselDataModule(
        run_cfg["dataset"],
        batch_size=batch_size,
        num_workers=0,
        test_split=str(cfg.split),
        prompt=prompt,
        patch=patch,
    )
    datamodule.prepare_data()
    datamodule.setup("test")
    # The evaluation's settings replace the run's in the configuration metrics.json records.
    run_cfg["eval"] = {**run_cfg.get("eval", {}), **eval_cfg, "precision": precision}
    rows = score_loader(
        run.model,
        datamodule.test_dataloader(),
        run_cfg,
        run_cfg["eval"],
        threshold,
        device,
        overlay_dir=out_dir / "overlays",
        mask_dir=out_dir / "masks" if eval_cfg.get("masks") else None,
        dtype=dtype,
    )
    params = parameter_report(run.model, run_cfg)
    info = run_info(
        "eval", run_cfg, str(cfg.split), str(cfg.ckpt), run.build_info, params, prompt, code_version=version
    )
    result = write_results(out_dir, rows, info)
    report(result, out_dir, str(cfg.split))
    return result
